"""The database adapter: engine creation, sessions and migrations. Nothing else in mailbot opens a connection."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.errors import DatabaseError

# The newest migration (migrations/versions). Every command checks the database against it with one SELECT;
# reading it from the scripts would import alembic, a third of a second at each start. A test fails when a new
# migration is added without updating it (tests/test_imports.py).
SCHEMA_HEAD = "0010"


@functools.cache
def migrations_dir() -> Path:
    # Installed, the top-level migrations/ folder is the package mailbot.migrations (see pyproject.toml).
    spec = importlib.util.find_spec("mailbot.migrations")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError("the migrations are missing from this installation of mailbot")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys, a busy timeout and write transactions that begin
    IMMEDIATE, for the worker and the commands side by side."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        engine = create_engine(url, future=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise DatabaseError(f"cannot use database URL {_redact(url)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "begin", _postgresql_begin)
    return engine


# How long SQLite waits for another connection's write transaction before "database is locked". Ours last
# milliseconds, but a long batch, a backup or a `sqlite3` shell left in a transaction may hold the file for
# half a minute: the worker's jobs and the commands wait that out. Two minutes is four times that, and still an
# error, not a hang, when a lock is never let go. (PostgreSQL waits for a row or table lock without limit.)
BUSY_TIMEOUT_MS = 120_000

# The execution option that carries `transaction(readonly=True)` to the "begin" events below: SQLAlchemy applies
# a session's connection options when it procures the connection, before it begins the transaction.
READONLY = "mailbot_readonly"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Python's sqlite3 (before 3.12) opens transactions itself, late, and not before SAVEPOINT: a savepoint
    # would then be its own transaction and RELEASE would commit it. Take transaction control away from it;
    # SQLAlchemy's "begin" event below opens every transaction explicitly.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A transaction that may write takes the write lock at BEGIN IMMEDIATE, waiting for it on the busy timeout.
    # A deferred one reads a snapshot first; when it then writes after another connection committed (the
    # worker's own heartbeat, a command beside it), SQLite fails it at once with "database is locked": waiting
    # could not make its snapshot current, so the busy handler is not even called.
    # A read-only transaction stays deferred: in WAL mode it reads a snapshot and never waits for a writer.
    # query_only turns a write slipped into it into an error instead of that same failure under load; set on
    # every BEGIN, as the pooled connection keeps it.
    readonly = bool(connection.get_execution_options().get(READONLY, False))
    connection.exec_driver_sql(f"PRAGMA query_only={int(readonly)}")
    connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _postgresql_begin(connection: Any) -> None:
    # PostgreSQL's readers never wait for writers anyway; READ ONLY makes a write slipped into a read-only
    # transaction fail here as it does on SQLite. It applies to this transaction alone (psycopg has just
    # opened it for this first statement), so the pooled connection keeps no trace of it.
    if connection.get_execution_options().get(READONLY, False):
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session], readonly: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    A transaction that may write holds SQLite's write lock from its start, so keep it short: never network I/O
    or analysis inside, and never a second transaction inside it in the same thread (on SQLite the inner one
    would wait for the outer). `readonly=True` (status, exports, previews) never waits for a writer, and a
    write in it fails (SQLite's query_only, PostgreSQL's READ ONLY)."""
    with factory() as session, session.begin():
        if readonly:
            session.connection(execution_options={READONLY: True})
        yield session


class _WouldWriteError(Exception):
    """A dry run of `change_if_needed` found something to write."""


def change_if_needed(factory: sessionmaker[Session], change: Callable[[Session], object]) -> bool:
    """Run `change` as a dry run in a read-only transaction, and again in a write transaction only if it had
    something to write; True when it wrote. For a change that is nearly always already made (the config's
    units mirrored at every command start): then it costs reads, and never waits for the write lock."""
    try:
        with transaction(factory, readonly=True) as session:
            event.listen(session, "before_flush", _refuse_changes)
            change(session)  # leaving the block commits, and so flushes what `change` left pending
        return False
    except _WouldWriteError:
        pass
    with transaction(factory) as session:
        change(session)
    return True


def _refuse_changes(session: Session, *_: Any) -> None:
    # Before the flush, while nothing is written: an object set to the value it had is dirty but not modified.
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        raise _WouldWriteError


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (alembic upgrade)."""
    from alembic import command

    try:
        command.upgrade(_alembic_config(engine), revision)
    except SQLAlchemyError as exc:
        raise DatabaseError(f"migration failed: {exc}") from exc


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, None before `mailbot db upgrade`: one SELECT, without alembic."""
    with engine.connect() as connection:
        connection.execution_options(**{READONLY: True})  # a check must not wait for a writer's lock
        return _stored_revision(connection)


def _stored_revision(connection: Connection) -> str | None:
    try:
        versions = connection.scalars(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:
        connection.rollback()  # PostgreSQL refuses every statement after an error until then
        if inspect(connection).has_table("alembic_version"):
            raise  # the table is there: the error is something else (a lock, a lost connection)
        return None
    # One row on a linear history; several would be branches, never the head.
    return ", ".join(sorted(versions)) or None


@functools.cache
def head_revision() -> str:
    """The newest migration as alembic reads it from the scripts (imports alembic): `doctor` and the tests check
    SCHEMA_HEAD against it."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrations_dir()))
    head = script.get_current_head()
    if head is None:
        raise DatabaseError("no migrations found")
    return head


def require_current(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not at the newest migration (SCHEMA_HEAD)."""
    try:
        current = current_revision(engine)
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot open database {_redact(str(engine.url))}: {exc}") from exc
    if current != SCHEMA_HEAD:
        raise DatabaseError(
            f"database is at revision {current or 'none'}, expected {SCHEMA_HEAD}: run `mailbot db upgrade`"
        )


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


def _redact(url: str) -> str:
    # Never print a database password.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
