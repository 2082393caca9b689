"""Mail servers for `mailbot demo`, in-process on 127.0.0.1: pymap's in-memory IMAP and aiosmtpd's SMTP.

Both are pure Python dependencies, so the demo runs after a bare ``pip install -e .`` (no dovecot). Each
server listens on a free port and runs in a daemon thread with its own asyncio loop; ``stop()`` (or leaving
the ``with`` block) shuts the loop and the thread down.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import re
import socket
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

HOST = "127.0.0.1"
DEMO_USER = "pingqf163@163.com"
DEMO_PASSWORD = "demo"  # noqa: S105 - the demo's well-known password on a loopback-only server

_T = TypeVar("_T")


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (aiosmtpd's Controller wants a number, not a socket)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LoopThread:
    """A daemon thread running its own asyncio loop; coroutines are submitted from the caller's thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = 10.0) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, func: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(func)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):  # best effort: the loop stops below either way
            self.run(_cancel_other_tasks(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


async def _cancel_other_tasks() -> None:
    me = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not me]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# ---------------------------------------------------------------------------------------------------------
# IMAP


class DemoImapServer:
    """pymap's ``dict`` backend with one user and an empty INBOX (no pymap demo data)."""

    def __init__(self, user: str = DEMO_USER, password: str = DEMO_PASSWORD, host: str = HOST) -> None:
        self.host, self.user, self.password = host, user, password
        self.port = 0
        self._loop: LoopThread | None = None
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> Self:
        if self._loop is not None:
            return self
        # proto=IPPROTO_TCP, or asyncio does not set TCP_NODELAY on accepted sockets (+45 ms per command).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind((self.host, 0))
        sock.listen(50)
        self.port = int(sock.getsockname()[1])
        self._loop = LoopThread("demo-imap")
        try:
            self._server = self._loop.run(self._serve(sock))
        except BaseException:
            self.stop()
            sock.close()
            raise
        return self

    async def _serve(self, sock: socket.socket) -> asyncio.AbstractServer:
        from argparse import Namespace

        from proxyprotocol.reader import ProxyProtocolReader
        from pymap.backend.dict import Config, DictBackend, Login
        from pymap.imap import IMAPServer
        from pysasl.hashing import Cleartext

        args = Namespace(passlib_cfg=None, proxy_protocol=None, inherited_sockets=None)
        config = Config(
            args,
            host=self.host,
            port=self.port,
            demo_data=False,
            demo_user=self.user,
            demo_password=self.password,
            hash_context=Cleartext(),  # a real hash costs ~150 ms per LOGIN
            tls_enabled=False,  # LOGIN without STARTTLS: loopback only
            invalid_user_sleep=0.0,
            reject_dnsbl=False,
        )
        config.apply_context()
        login = Login(config)
        # pymap's "demo user" is simply the one configured user; demo_data=False keeps its INBOX empty.
        await DictBackend._add_demo_user(config, login)
        callback = ProxyProtocolReader(config.proxy_protocol).get_callback(IMAPServer(login, config))
        return await asyncio.start_server(callback, sock=sock)

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        server, self._server = self._server, None
        if server is not None:
            loop.loop.call_soon_threadsafe(server.close)
        loop.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def connect(self) -> imaplib.IMAP4:
        """A logged-in imaplib client with TCP_NODELAY (APPEND stalls ~45 ms per message without it)."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.login(self.user, self.password)
        return client

    def append(self, raws: Sequence[tuple[bytes, datetime]], folder: str = "INBOX") -> list[int]:
        """APPEND each raw message with its INTERNALDATE (aware datetime); returns the new UIDs in order."""
        client = self.connect()
        try:
            return [self._append_one(client, folder, raw, when) for raw, when in raws]
        finally:
            client.logout()

    @staticmethod
    def _append_one(client: imaplib.IMAP4, folder: str, raw: bytes, when: datetime) -> int:
        typ, data = client.append(folder, "()", imaplib.Time2Internaldate(when), raw)
        if typ != "OK":
            raise RuntimeError(f"APPEND refused: {data!r}")
        text = b" ".join(d for d in data if isinstance(d, bytes))
        match = re.search(rb"APPENDUID \d+ (\d+)", text)
        return int(match.group(1)) if match else 0


# ---------------------------------------------------------------------------------------------------------
# SMTP


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


class _Recorder:
    """aiosmtpd handler: keep every message it is given."""

    def __init__(self, sink: list[ReceivedMail]) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        content = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else str(content).encode()
        self.sink.append(ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), data))
        return "250 Message accepted for delivery"


def _authenticator(user: str, password: str) -> Callable[..., Any]:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False)

    return check


class _DropLoginDataWarning(logging.Filter):
    """aiosmtpd 1.4 logs a deprecation warning of its own on every successful AUTH; it is noise here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


_LOGIN_DATA_FILTER = _DropLoginDataWarning()


class DemoSmtpServer:
    """aiosmtpd on a free loopback port; accepts AUTH PLAIN/LOGIN for the demo user without TLS."""

    def __init__(self, user: str = DEMO_USER, password: str = DEMO_PASSWORD, host: str = HOST) -> None:
        self.host, self.user, self.password = host, user, password
        self.port = 0
        self.messages: list[ReceivedMail] = []
        self._controller: Any = None

    def start(self) -> Self:
        if self._controller is not None:
            return self
        from aiosmtpd.controller import Controller

        logger = logging.getLogger("mail.log")  # aiosmtpd's logger
        if _LOGIN_DATA_FILTER not in logger.filters:
            logger.addFilter(_LOGIN_DATA_FILTER)
        for attempt in range(3):  # the free port may be taken between probing and binding
            self.port = free_port(self.host)
            controller = Controller(
                _Recorder(self.messages),
                hostname=self.host,
                port=self.port,
                auth_require_tls=False,
                authenticator=_authenticator(self.user, self.password),
                ready_timeout=10.0,
            )
            try:
                controller.start()
            except (OSError, RuntimeError):
                if attempt == 2:
                    raise
                continue
            self._controller = controller
            break
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


__all__ = [
    "DEMO_PASSWORD",
    "DEMO_USER",
    "HOST",
    "DemoImapServer",
    "DemoSmtpServer",
    "LoopThread",
    "ReceivedMail",
    "free_port",
]
