"""Database fixtures: every storage test runs on SQLite and, when MAILBOT_TEST_DATABASE_URL is set, on a
fresh PostgreSQL database created for the test and dropped after it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.config import Config, config_from_dict
from mailbot.demo.run import to_toml
from mailbot.ingest import ingest_paths
from mailbot.store.db import make_engine

from smtpservers import PASSWORD, USER, ScriptedSmtp

PG_URL = os.environ.get("MAILBOT_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]

UNITS: list[dict[str, Any]] = [
    {
        "name": "郏县总工会",
        "category": "县市区",
        "aliases": ["郏县", "郟县"],
        "emails": ["jiaxian@example.cn"],
        "contact": "张三",
        "phone": "0375-2900001",
    },
    {
        "name": "宝丰县总工会",
        "category": "县市区",
        "aliases": ["宝丰"],
        "emails": ["baofeng@example.cn"],
        "contact": "李四",
        "phone": "0375-2900002",
    },
    {"name": "舞钢市总工会", "category": "县市区", "aliases": ["舞钢市"], "emails": ["wugangshi@example.cn"]},
    {
        "name": "舞钢公司工会",
        "category": "直属企业",
        "aliases": ["舞钢公司"],
        "emails": ["wugang@example.cn"],
    },
    {
        "name": "平顶山发电分公司工会",
        "category": "直属企业",
        "aliases": ["平顶山 发电分公司"],
        "emails": ["fadian@example.cn"],
    },
    {"name": "市总工会", "category": "市总", "aliases": [], "emails": ["shizong@example.cn"]},
]


class FixedClock:
    """A settable clock for tests that need `now` to move without time-machine."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def new_postgres_database() -> tuple[str, str]:
    """A fresh database per test; where the CI's role may not create databases, a fresh schema instead."""
    name = f"mailbot_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return make_url(PG_URL).set(database=name).render_as_string(hide_password=False), name
    except ProgrammingError:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False), f"schema:{name}"
    finally:
        admin.dispose()


def drop_postgres_database(name: str) -> None:
    admin = make_engine(PG_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if name.startswith("schema:"):
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name.removeprefix("schema:")}" CASCADE'))
        else:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def backend_database(backend: str, folder: Path) -> Iterator[str]:
    """An empty database's URL: a SQLite file in `folder`, or a fresh PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'mailbot.db'}"
        return
    url, name = new_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(name)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with backend_database(request.param, tmp_path) as url:
        yield url


def write_config(folder: Path, units: list[dict[str, Any]] | None = None, **sections: Any) -> Path:
    """A mailbot.toml in `folder` (data in folder/data), written the way the demo writes its own."""
    raw: dict[str, Any] = {"data_dir": str(folder / "data"), **sections, "units": UNITS[:1] if units is None else units}
    path = folder / "mailbot.toml"
    path.write_text(to_toml(raw), encoding="utf-8")
    return path


def server_section(server: Any, password_env: str, **more: Any) -> dict[str, Any]:
    """An [imap] or [smtp] section pointing at a loopback server or proxy (anything with host and port)."""
    return {"host": server.host, "port": server.port, "ssl": False, "password_env": password_env, **more}


def make_config(data_dir: Path, database_url: str, **sections: Any) -> Config:
    raw: dict[str, Any] = {"data_dir": str(data_dir), "database": {"url": database_url}, "units": UNITS}
    raw["imap"] = {"user": "pingqf163@example.cn", "host": "127.0.0.1", "port": 1, "ssl": False}
    raw["smtp"] = {"user": "pingqf163@example.cn", "from": "pingqf163@example.cn"}
    raw.update(sections)
    return config_from_dict(raw)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2021, 6, 20, 10, 0, tzinfo=TZ))


@pytest.fixture
def app(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[App]:
    application = App(make_config(tmp_path / "data", database_url), clock=clock)
    application.upgrade()
    try:
        yield application
    finally:
        application.close()


# The 06-08 09:00 round of 2021: 7 days before the 06-15 deadline, a reminder for every unit.
MORNING = datetime(2021, 6, 8, 9, 0, tzinfo=TZ)


@pytest.fixture
def smtp() -> Iterator[ScriptedSmtp]:
    with ScriptedSmtp() as server:
        yield server


@pytest.fixture
def mailer(tmp_path: Path, database_url: str, smtp: ScriptedSmtp, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    """An App sending through `smtp`, its clock a FixedClock at MORNING (tests move `mailer.clock.moment`)."""
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    section = server_section(smtp, "TEST_SMTP_PASSWORD", user=USER, **{"from": USER})
    deadlines = {"annex1_close": ["04-30"]}  # annex 1 stops taking tables (and nagging) at the end of April
    config = make_config(tmp_path / "data", database_url, smtp=section, deadlines=deadlines)
    application = App(config, clock=FixedClock(MORNING))
    application.upgrade()
    try:
        yield application
    finally:
        application.close()


def ingest_raws(app: App, folder: Path, *raws: bytes) -> None:
    """Raw messages written as numbered .eml files into `folder` and ingested (`mailbot ingest`'s path)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for raw in raws:
        paths.append(folder / f"{len(list(folder.iterdir()))}.eml")
        paths[-1].write_bytes(raw)
    ingest_paths(app.ready_pipeline(), paths)
