"""A real SMTP server on loopback (aiosmtpd) that answers DATA from a script: 451 then 250, 554, … and
refuses logins with 535 unless the password matches. Hooks run while a client waits for the answer to RCPT or
DATA: what happens elsewhere (a second sender, a signal) while a sender is stuck at that point."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult, LoginPassword

from mailbot.demo.servers import free_port

USER = "pingqf163@example.cn"
PASSWORD = "sq-auth-code"


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class ScriptedSmtp:
    host: str = "127.0.0.1"
    port: int = 0
    password: str = PASSWORD
    replies: list[str] = field(default_factory=list)  # answers to DATA, in order; then "250 OK"
    delivered: list[Delivered] = field(default_factory=list)
    logins: int = 0
    data_delay: float = 0.0  # seconds between taking a message and answering: a window to kill the client in
    rcpt_delay: float = 0.0  # seconds before answering each RCPT
    # Run in a thread before the answer to the next RCPT, or to the next DATA once the server holds the text;
    # each once, in order. The server keeps serving other clients meanwhile.
    on_rcpt: list[Callable[[], object]] = field(default_factory=list)
    on_data: list[Callable[[], object]] = field(default_factory=list)
    _controller: Any = None

    def start(self) -> Self:
        self.port = free_port(self.host)
        self._controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            auth_require_tls=False,
            authenticator=self._authenticate,
            ready_timeout=10.0,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        self.logins += 1
        ok = isinstance(data, LoginPassword) and data.login.decode() == USER and data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> Any:
        if self.on_rcpt:
            await asyncio.to_thread(self.on_rcpt.pop(0))
        await asyncio.sleep(self.rcpt_delay)
        return MISSING  # aiosmtpd's own handling: take the recipient, answer 250

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        reply = self.replies.pop(0) if self.replies else "250 OK"
        if reply.startswith("250"):
            parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            self.delivered.append(Delivered(envelope.mail_from, list(envelope.rcpt_tos), parsed))  # type: ignore[arg-type]
        if self.on_data:
            await asyncio.to_thread(self.on_data.pop(0))
        await asyncio.sleep(self.data_delay)
        return reply
