"""The console's pages (GET). Each reads through the library the CLI uses and renders a template."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailbot.store.db import transaction
from mailbot.web.context import Console, Viewer, page


def routes(console: Console) -> list[Route]:
    @page(console)
    def overview(request: Request, viewer: Viewer) -> Response:
        app = console.app
        now = app.clock()
        with transaction(app.sessions, readonly=True) as session:
            items = console.digests.needs_a_person(session, now)
        return console.render(request, "overview.html", title="总览", items=len(items), now=now)

    return [Route("/", overview, methods=["GET"])]
