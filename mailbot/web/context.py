"""What every page handler shares: the App, the templates, who is logged in, and the guards around handlers.

A handler never decides anything itself: it calls the library the CLI calls, and renders. The guards make
every page need a login, every POST need the session's CSRF token, and every action need the staff role.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mailbot.app import App
from mailbot.digests import Digests
from mailbot.store.db import transaction
from mailbot.store.models import User

Handler = Callable[[Request], Awaitable[Response]]
# Handlers are plain functions: they run in Starlette's thread pool, so that database work and document
# rendering never hold up the event loop.
PageHandler = Callable[[Request, "Viewer"], Response]
ActionHandler = Callable[[Request, "Viewer", FormData], Response]


@dataclass(frozen=True)
class Viewer:
    """The person behind a request."""

    name: str
    role: str  # staff | viewer

    @property
    def can_act(self) -> bool:
        return self.role == "staff"


def templates() -> Environment:
    environment = Environment(
        loader=PackageLoader("mailbot.web", "templates"),
        autoescape=select_autoescape(["html"], default=True),  # everything a unit wrote is escaped
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment


@dataclass
class Console:
    app: App
    pages: Environment
    digests: Digests  # built once: `App.digests()` would mirror the config's units on every request

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        page = self.pages.get_template(name).render(
            request=request, viewer=viewer_of(request), csrf_token=csrf_token(request), **context
        )
        return HTMLResponse(page, status_code=status, headers=NO_STORE)

    def forbidden(self, request: Request, why: str) -> HTMLResponse:
        return self.render(request, "error.html", status=403, title="无权操作", why=why)

    def not_found(self, request: Request, why: str = "没有这一页") -> HTMLResponse:
        return self.render(request, "error.html", status=404, title="未找到", why=why)

    def still_allowed(self, viewer: Viewer) -> bool:
        """A disabled account loses access at once, whatever its session cookie says."""
        with transaction(self.app.sessions, readonly=True) as session:
            user = session.scalar(select(User).where(User.name == viewer.name))
            return user is not None and user.disabled_at is None and user.role == viewer.role


# Pages show data that changes: never from a shared cache.
NO_STORE = {"Cache-Control": "no-store"}


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (the login page makes it before anyone logs in)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, form: FormData) -> bool:
    sent, expected = form.get("csrf_token"), request.session.get("csrf")
    return isinstance(sent, str) and isinstance(expected, str) and secrets.compare_digest(sent, expected)


def viewer_of(request: Request) -> Viewer | None:
    name, role = request.session.get("user"), request.session.get("role")
    return Viewer(name, role) if isinstance(name, str) and isinstance(role, str) else None


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def page(console: Console) -> Callable[[PageHandler], Handler]:
    """A GET handler that needs a login."""

    def wrap(handler: PageHandler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: Request) -> Response:
            viewer = viewer_of(request)
            if viewer is None or not await run_in_threadpool(console.still_allowed, viewer):
                request.session.pop("user", None)
                return login_redirect(request)
            return await run_in_threadpool(handler, request, viewer)

        return guarded

    return wrap


def action(console: Console) -> Callable[[ActionHandler], Handler]:
    """A POST handler that changes something: it needs a login, the session's CSRF token and the staff role."""

    def wrap(handler: ActionHandler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: Request) -> Response:
            form = await request.form()
            if not csrf_ok(request, form):
                return console.forbidden(request, "表单已过期或来源不明（缺少有效的 CSRF 令牌），请刷新页面后重试")
            viewer = viewer_of(request)
            if viewer is None or not await run_in_threadpool(console.still_allowed, viewer):
                return login_redirect(request)
            if not viewer.can_act:
                return console.forbidden(request, "只读账户不能进行操作")
            return await run_in_threadpool(handler, request, viewer, form)

        return guarded

    return wrap


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this site only (never //host or a full URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
