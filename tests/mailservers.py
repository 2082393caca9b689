"""Loopback IMAP servers for tests and the demo: dovecot, pymap, and a proxy that behaves like 163.com.

Not a test module: plain classes usable as context managers, and small imaplib helpers. Everything listens
on 127.0.0.1 on a free port; every process and thread started here is stopped by ``stop()`` / ``__exit__``.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from imap_tools.imap_utf7 import utf7_encode

from mailbot.demo.servers import DemoImapServer, LoopThread, free_port

HOST = "127.0.0.1"
USER = "mailbot@example.test"
PASSWORD = "secret"
DOVECOT = "/usr/sbin/dovecot"

_T = TypeVar("_T")


def dovecot_available() -> bool:
    """Whether dovecot is installed here (CI installs it; a developer machine may not have it)."""
    return Path(DOVECOT).is_file() and os.access(DOVECOT, os.X_OK)


def wait_for_port(host: str, port: int, timeout: float = 5.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout} s") from None
            time.sleep(0.005)


# ---------------------------------------------------------------------------------------------------------
# imaplib helpers (a second, independent client: they never go through mailbot's adapter)


def connect(host: str, port: int, user: str, password: str) -> imaplib.IMAP4:
    """A logged-in imaplib client with TCP_NODELAY (APPEND stalls ~45 ms per message without it)."""
    client = imaplib.IMAP4(host, port, timeout=10)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.login(user, password)
    return client


def append_messages(
    host: str,
    port: int,
    user: str,
    password: str,
    folder: str,
    raws: Sequence[bytes],
    flags: Iterable[str] = (),
    internaldates: Sequence[datetime | None] | None = None,
) -> list[int]:
    """APPEND each raw message (with its INTERNALDATE when given); returns the UIDs from APPENDUID."""
    flag_text = f"({' '.join(flags)})"
    dates = list(internaldates) if internaldates is not None else [None] * len(raws)
    uids: list[int] = []
    client = connect(host, port, user, password)
    try:
        for raw, date in zip(raws, dates, strict=True):
            when = imaplib.Time2Internaldate(date) if date is not None else None
            typ, data = client.append(_quote(folder), flag_text, when, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND refused: {data!r}")
            uids.append(_appenduid(client, data, folder))
    finally:
        client.logout()
    return uids


def _appenduid(client: imaplib.IMAP4, data: list[Any], folder: str) -> int:
    text = b" ".join(d for d in data if isinstance(d, bytes))
    match = re.search(rb"APPENDUID \d+ (\d+)", text)
    if match:
        return int(match.group(1))
    client.select(_quote(folder), readonly=True)  # fallback for servers without UIDPLUS
    _typ, found = client.uid("SEARCH", "ALL")
    return max(int(u) for u in found[0].split())


def fetch_flags(host: str, port: int, user: str, password: str, folder: str = "INBOX") -> dict[int, set[str]]:
    """UID -> flags, read from a separate connection with EXAMINE (which changes nothing)."""
    client = connect(host, port, user, password)
    try:
        typ, data = client.select(_quote(folder), readonly=True)
        if typ != "OK":
            raise RuntimeError(f"EXAMINE refused: {data!r}")
        typ, data = client.uid("FETCH", "1:*", "(UID FLAGS)")
        flags: dict[int, set[str]] = {}
        for item in data:
            if not isinstance(item, bytes):
                continue
            uid = re.search(rb"UID (\d+)", item)
            found = re.search(rb"FLAGS \(([^)]*)\)", item)
            if uid and found:
                flags[int(uid.group(1))] = set(found.group(1).decode().split()) - {"\\Recent"}
        return flags
    finally:
        client.logout()


def message_count(host: str, port: int, user: str, password: str, folder: str = "INBOX") -> int:
    client = connect(host, port, user, password)
    try:
        typ, data = client.select(_quote(folder), readonly=True)
        if typ != "OK":
            raise RuntimeError(f"EXAMINE refused: {data!r}")
        return int(data[0] or b"0")
    finally:
        client.logout()


def create_folder(host: str, port: int, user: str, password: str, folder: str) -> None:
    client = connect(host, port, user, password)
    try:
        typ, data = client.create(_quote(folder))
        if typ != "OK":
            raise RuntimeError(f"CREATE refused: {data!r}")
    finally:
        client.logout()


def _quote(name: str) -> str:
    """A folder name as IMAP wants it: modified UTF-7, quoted (so 已处理 works)."""
    encoded = utf7_encode(name).decode("ascii")
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------------------------------------
# Servers


class MailServer:
    """Common shape: host, port, user, password, append(), a context manager."""

    host = HOST
    port = 0
    user = USER
    password = PASSWORD
    kind = ""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def append(
        self,
        raws: Sequence[bytes],
        folder: str = "INBOX",
        flags: Iterable[str] = (),
        internaldates: Sequence[datetime | None] | None = None,
    ) -> list[int]:
        return append_messages(self.host, self.port, self.user, self.password, folder, raws, flags, internaldates)

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        return fetch_flags(self.host, self.port, self.user, self.password, folder)

    def count(self, folder: str = "INBOX") -> int:
        return message_count(self.host, self.port, self.user, self.password, folder)

    def create_folder(self, folder: str) -> None:
        create_folder(self.host, self.port, self.user, self.password, folder)

    def recreate_folder(self, folder: str) -> None:
        """Delete and create `folder` again: the server gives it a new UIDVALIDITY."""
        client = connect(self.host, self.port, self.user, self.password)
        try:
            client.delete(_quote(folder))
            client.create(_quote(folder))
        finally:
            client.logout()


_DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {user}
mail_gid = {group}
mail_location = maildir:{root}/mail/%u
mail_fsync = never
maildir_very_dirty_syncs = yes
mailbox_list_index = no
login_greeting = dovecot ready
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  inet_listener http {{
    port = 0
  }}
}}
"""


class DovecotServer(MailServer):
    """dovecot in the foreground from a config in a fresh 0755 dir under /tmp, user ``mailbot@example.test``.

    Run as root (CI), its processes drop to ``nobody``; run as another user, they stay that user.
    """

    kind = "dovecot"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mailbot-dovecot-", dir="/tmp"))
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self.root.chmod(0o755)
        user, group = _unprivileged_user()
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n", encoding="utf-8")
        (self.root / "passwd").chmod(0o644)
        mail = self.root / "mail"
        mail.mkdir()
        if os.geteuid() == 0:
            os.chown(mail, pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid)
        for attempt in range(3):
            self.port = free_port()
            conf = _DOVECOT_CONF.format(root=self.root, host=self.host, port=self.port, user=user, group=group)
            (self.root / "dovecot.conf").write_text(conf, encoding="utf-8")
            self._proc = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: stop() signals master and children at once
            )
            try:
                self._wait_ready()
                return self
            except RuntimeError:
                self._kill()
                if attempt == 2:
                    raise
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"dovecot exited with {self._proc.returncode}: {err}\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.005)
        raise RuntimeError(f"dovecot did not answer on {self.host}:{self.port}\n{self.log()}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # A test server holds nothing worth a clean shutdown. SIGTERM to the master takes ~1 s (it waits
        # for its children) and sometimes 5 s; SIGKILL to its process group ends all of them at once.
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait(5)
        if proc.stderr:
            proc.stderr.close()

    def stop(self) -> None:
        self._kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _unprivileged_user() -> tuple[str, str]:
    if os.geteuid() == 0:
        group = "nogroup" if _group_exists("nogroup") else "nobody"
        return "nobody", group
    return pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


class PymapServer(MailServer):
    """pymap's in-memory ``dict`` backend, served in-process: the demo's server, with the tests' user."""

    kind = "pymap"

    def __init__(self) -> None:
        self._imap: DemoImapServer | None = None

    def start(self) -> Self:
        self._imap = DemoImapServer(self.user, self.password, self.host).start()
        self.port = self._imap.port
        return self

    def stop(self) -> None:
        imap, self._imap = self._imap, None
        if imap is not None:
            imap.stop()


# ---------------------------------------------------------------------------------------------------------
# A proxy that behaves like 163.com


UNSAFE_LOGIN = b"NO SELECT Unsafe Login. Please contact kefu@188.com for help"
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r?\n?$")


@dataclass
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    id_seen: bool = False


@dataclass
class ProxyStats:
    connections: int = 0
    logins: int = 0
    id_params: list[str] = field(default_factory=list)
    refused_selects: int = 0
    selects: int = 0
    commands: list[str] = field(default_factory=list)


class IdRequiredProxy:
    """A TCP proxy in front of a real IMAP server that refuses SELECT/EXAMINE before ID, as 163.com does.

    It passes bytes through, reads the client's tagged lines to notice ID, LOGIN and SELECT/EXAMINE, and
    records what it saw in ``stats``. ``cut()`` drops every open connection (both sides) at once.
    ``id_answer`` (e.g. ``b"BAD Unknown command"``) makes the proxy answer ID itself instead of passing it on,
    to play a server that does not know ID; ``require_id=False`` then lets SELECT through anyway.
    """

    def __init__(
        self, upstream_host: str, upstream_port: int, *, require_id: bool = True, id_answer: bytes | None = None
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.require_id = require_id
        self.id_answer = id_answer
        self.host = HOST
        self.port = 0
        self.stats = ProxyStats()
        self._open: list[_Connection] = []
        self._loop: LoopThread | None = None
        self._server: asyncio.AbstractServer | None = None

    @property
    def id_seen(self) -> bool:
        return bool(self.stats.id_params)

    def start(self) -> Self:
        self._loop = LoopThread("imap-proxy")
        self._server = self._loop.run(asyncio.start_server(self._handle, self.host, 0))
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        loop.run(self._close_all())
        loop.stop()

    def cut(self) -> None:
        """Drop every open connection, as a flaky network or a server restart would."""
        if self._loop is not None:
            self._loop.run(self._cut_all())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def _close_all(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut_all()

    async def _cut_all(self) -> None:
        for conn in self._open:
            for writer in (conn.client, conn.upstream):
                writer.transport.abort()
        self._open.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        conn = _Connection(writer, up_writer)
        self._open.append(conn)
        pump = asyncio.create_task(_pump(up_reader, writer))
        try:
            await self._client_lines(reader, conn)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            for w in (writer, up_writer):
                w.transport.abort()
            if conn in self._open:
                self._open.remove(conn)

    async def _client_lines(self, reader: asyncio.StreamReader, conn: _Connection) -> None:
        while line := await reader.readline():
            reply = self._inspect(line, conn)
            if reply is not None:
                conn.client.write(reply)
                await conn.client.drain()
                continue
            conn.upstream.write(line)
            literal = _LITERAL.search(line)
            if literal:  # pass a client literal through untouched (rare here: no APPEND via the proxy)
                conn.upstream.write(await reader.readexactly(int(literal.group(1))))
            await conn.upstream.drain()

    def _inspect(self, line: bytes, conn: _Connection) -> bytes | None:
        parts = line.rstrip(b"\r\n").split(b" ", 2)
        if len(parts) < 2:
            return None
        tag, command = parts[0], parts[1].upper()
        rest = parts[2].decode(errors="replace") if len(parts) > 2 else ""
        if command == b"UID" and rest:
            command = b"UID " + rest.split(" ", 1)[0].upper().encode()
        self.stats.commands.append(command.decode(errors="replace"))
        if command == b"ID":
            conn.id_seen = self.id_answer is None
            self.stats.id_params.append(rest)
            if self.id_answer is not None:  # playing a server that does not take ID
                return tag + b" " + self.id_answer + b"\r\n"
        elif command in (b"LOGIN", b"AUTHENTICATE"):
            self.stats.logins += 1
        elif command in (b"SELECT", b"EXAMINE"):
            self.stats.selects += 1
            if self.require_id and not conn.id_seen:
                self.stats.refused_selects += 1
                return tag + b" " + UNSAFE_LOGIN + b"\r\n"
        return None


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.CancelledError):
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    writer.transport.abort()


def make_server(kind: str) -> MailServer:
    if kind == "dovecot":
        return DovecotServer()
    if kind == "pymap":
        return PymapServer()
    raise ValueError(f"unknown server kind {kind!r}")


def server_kinds() -> list[str]:
    """The real servers available here: pymap always, dovecot when installed."""
    return (["dovecot"] if dovecot_available() else []) + ["pymap"]


__all__ = [
    "HOST",
    "PASSWORD",
    "USER",
    "DovecotServer",
    "IdRequiredProxy",
    "MailServer",
    "PymapServer",
    "append_messages",
    "dovecot_available",
    "fetch_flags",
    "free_port",
    "make_server",
    "server_kinds",
    "wait_for_port",
]
