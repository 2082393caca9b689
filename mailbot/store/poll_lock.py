"""One poller per folder: a lock the database holds for as long as the polling process lives.

Two polls of one folder at once (a `mailbot poll` typed beside the worker) would fetch and store the same
messages twice over. PostgreSQL keeps a session-level advisory lock on a connection of the poller's own; SQLite
is one machine's file, so an exclusive flock on a file next to it is the database's lock. Both vanish with the
process: a killed poll leaves nothing to clean up or wait out, and a stopped (SIGSTOP) one keeps its lock, as it
must, since it may wake up in the middle of a batch.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from mailbot.errors import PollBusyError

RETRY_SECONDS = 0.5


def hold(
    engine: Engine, folder: str, wait_seconds: float, sleep: Callable[[float], None] = time.sleep
) -> AbstractContextManager[object]:
    """Hold the lock of `folder` on `engine`'s database, waiting up to `wait_seconds` for another poller to
    finish; PollBusyError when it does not."""
    if engine.dialect.name == "postgresql":
        return _advisory(engine, _key(folder), folder, wait_seconds, sleep)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        return _flock(Path(f"{database}.poll-{_key(folder) & 0xFFFFFFFF:08x}.lock"), folder, wait_seconds, sleep)
    return nullcontext()  # an in-memory database belongs to one process


def _key(folder: str) -> int:
    """A stable signed 64-bit advisory-lock key for the folder (PostgreSQL's key type is bigint)."""
    digest = hashlib.sha256(f"mailbot poll {folder}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _waiting(try_once: Callable[[], bool], folder: str, wait_seconds: float, sleep: Callable[[float], None]) -> None:
    waited = 0.0
    while not try_once():
        if waited >= wait_seconds:
            raise PollBusyError(
                f"另一个 mailbot 进程正在收取文件夹 {folder}（同一数据库），"
                f"等待 {wait_seconds:g} 秒后仍未结束；它收完后本次要收的邮件也会收到，无需重试"
            )
        sleep(RETRY_SECONDS)
        waited += RETRY_SECONDS


@contextmanager
def _advisory(
    engine: Engine, key: int, folder: str, wait_seconds: float, sleep: Callable[[float], None]
) -> Iterator[Connection]:
    with engine.connect() as connection:
        # Each try in its own committed transaction, so that the connection never sits idle in a transaction
        # while the poll runs: the lock is the session's, not a transaction's.
        def try_once() -> bool:
            got = bool(connection.execute(select(func.pg_try_advisory_lock(key))).scalar())
            connection.commit()
            return got

        _waiting(try_once, folder, wait_seconds, sleep)
        try:
            yield connection
        finally:
            # The pool keeps the connection, and a session-level lock outlives a rollback: unlock explicitly.
            connection.execute(select(func.pg_advisory_unlock(key)))
            connection.commit()


@contextmanager
def _flock(path: Path, folder: str, wait_seconds: float, sleep: Callable[[float], None]) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:

        def try_once() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        _waiting(try_once, folder, wait_seconds, sleep)
        yield fd  # closing the descriptor below releases the lock
    finally:
        os.close(fd)
