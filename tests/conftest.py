"""Shared fixtures. The mail servers behind them live in ``mailservers.py`` (usable without pytest too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dbfixtures import app, clock, database_url, mailer, smtp  # noqa: F401 - fixtures shared by every test module
from mailservers import IdRequiredProxy, MailServer, make_server, server_kinds
from reportfixtures import demo_app, demo_run  # noqa: F401 - the demo database, for the report tests

# ---------------------------------------------------------------------------------------------------------
# IMAP servers on loopback


@pytest.fixture(params=server_kinds())
def imap_server(request: pytest.FixtureRequest) -> Iterator[MailServer]:
    """A fresh, empty IMAP server per test: dovecot (when installed) and pymap.

    Attributes host, port, user, password; methods append(raws, folder=, flags=, internaldates=) -> UIDs,
    flags(folder) -> {uid: flags}, count(folder), create_folder(name).
    """
    with make_server(request.param) as server:
        yield server


@pytest.fixture
def one_imap_server() -> Iterator[MailServer]:
    """One real IMAP server (dovecot when installed, else pymap), for the long fault runs: what they test is
    mailbot's side of a kill or a race, and the protocol itself is tested on both servers elsewhere."""
    with make_server(server_kinds()[0]) as server:
        yield server


@pytest.fixture
def id_proxy(imap_server: MailServer) -> Iterator[IdRequiredProxy]:
    """A 163.com look-alike in front of ``imap_server``: refuses SELECT/EXAMINE before ID, counts LOGINs."""
    with IdRequiredProxy(imap_server.host, imap_server.port) as proxy:
        yield proxy
