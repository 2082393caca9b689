"""The staff console on a real server on loopback (uvicorn in a thread), and a logged-in HTTP client."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from mailbot.app import App
from mailbot.store import users
from mailbot.store.db import transaction
from mailbot.web.app import create_app

SECRET = "test-secret-for-signing-console-sessions"
STAFF, VIEWER, PASSWORD = "王维", "张敏", "correct horse battery"


@contextmanager
def serving(app: App, wrap: Callable[[Starlette], Any] | None = None) -> Iterator[str]:
    """The console of `app` on a free loopback port; yields its base URL. `wrap` may put ASGI middleware around
    the console (the benchmark's timing)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    console = create_app(app, SECRET)
    asgi = wrap(console) if wrap is not None else console
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def add_accounts(app: App, now: datetime) -> None:
    with transaction(app.sessions) as session:
        users.add_user(session, STAFF, "staff", PASSWORD, now)
        users.add_user(session, VIEWER, "viewer", PASSWORD, now)


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "the page has no CSRF token"
    return found.group(1)


@contextmanager
def logged_in(base: str, name: str = STAFF, password: str = PASSWORD) -> Iterator[httpx.Client]:
    """A client with a console session (its cookie jar holds the session cookie)."""
    with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:
        token = csrf_of(client.get("/login").text)
        answer = client.post("/login", data={"username": name, "password": password, "csrf_token": token})
        assert answer.status_code == 303, answer.text
        yield client
