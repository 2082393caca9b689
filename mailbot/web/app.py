"""The console's ASGI application: routes, the signed session cookie, and the static files shipped with it."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from mailbot.app import App
from mailbot.web import actions, api, auth, pages
from mailbot.web.context import Console, templates

SESSION_COOKIE = "mailbot_session"
SESSION_HOURS = 12  # a working day: staff log in once in the morning


def create_app(app: App, secret: str) -> Starlette:
    """The console over `app`'s database and config. `secret` signs the session cookie."""
    console = Console(app, templates(), app.digests())  # checks the schema and mirrors the units, once
    routes: list[BaseRoute] = [
        *auth.routes(console),
        *pages.routes(console),
        *actions.routes(console),
        *api.routes(console),
        Mount("/static", StaticFiles(packages=[("mailbot.web", "static")]), name="static"),
    ]
    session = Middleware(
        SessionMiddleware,  # HttpOnly always; Secure when staff reach the console over https
        secret_key=secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_HOURS * 3600,
        same_site="lax",
        https_only=app.config.web.base_url.startswith("https://"),
    )

    async def not_found(request: Request, _exc: Exception) -> Response:
        return console.not_found(request)

    return Starlette(routes=routes, middleware=[session], exception_handlers={404: not_found})
