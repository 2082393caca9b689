"""The SMTP adapter. The only module that talks SMTP (the outbox of issue 4 sends through it)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from mailbot.config import SmtpConfig
from mailbot.errors import AuthenticationError, MailServerError


def connect(config: SmtpConfig) -> smtplib.SMTP:
    """An SMTP connection: implicit TLS (465) when ssl, else plain with optional STARTTLS."""
    try:
        if config.ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
            if config.starttls:
                client.starttls(context=ssl.create_default_context())
    except (OSError, smtplib.SMTPException) as exc:
        raise MailServerError(f"cannot connect to SMTP {config.host}:{config.port}: {exc}") from exc
    return client


def login(client: smtplib.SMTP, user: str, password: str) -> None:
    """Log in with one mechanism, once. smtplib's own login() tries every mechanism the server offers in turn,
    so one wrong 授权码 would count as two or three failed logins, and 163.com locks an account after a few."""
    client.ehlo_or_helo_if_needed()
    offered = client.esmtp_features.get("auth", "").upper().split()
    client.user, client.password = user, password
    if "PLAIN" in offered:
        client.auth("PLAIN", client.auth_plain)
    elif "LOGIN" in offered:
        client.auth("LOGIN", client.auth_login)
    else:
        client.login(user, password)  # smtplib explains what the server offers instead


def check_login(config: SmtpConfig, password: str) -> str:
    """Log in and out once. 535 is an AuthenticationError: never retried (163 locks the account)."""
    client = connect(config)
    try:
        login(client, config.user, password)
        return f"logged in to {config.host}:{config.port} as {config.user}"
    except smtplib.SMTPAuthenticationError as exc:
        raise AuthenticationError(f"SMTP login refused ({exc.smtp_code}): check the 授权码; not retrying") from exc
    except (TimeoutError, OSError, smtplib.SMTPException) as exc:
        raise MailServerError(f"SMTP error: {exc}") from exc
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


SENT, RETRY, FAILED, UNCERTAIN, LOST = "sent", "retry", "failed", "uncertain", "lost"


@dataclass(frozen=True)
class Delivery:
    """What became of one mail: sent, retry (4xx or a connection lost before the text went out), failed
    (5xx, e.g. 554 DT:SPM), uncertain (the connection broke while the server had the text), or lost (the
    caller no longer holds the mail, so its text was never sent)."""

    outcome: str
    detail: str = ""


class SmtpSender:
    """One logged-in connection for a round of sending. `handing_over` is called just before the message
    text goes out, so that the caller can record that from then on the mail may have been delivered; it
    answers False when the caller has lost the mail to another sender, and then the text is not sent."""

    def __init__(self, config: SmtpConfig, password: str) -> None:
        self.config, self._password = config, password
        self._client: smtplib.SMTP | None = None

    def send(self, message: EmailMessage, to: str, handing_over: Callable[[], bool]) -> Delivery:
        try:
            client = self._connected()
            refused = _refusal(*client.mail(self.config.from_address or self.config.user))
            refused = refused or _refusal(*client.rcpt(to))
        except AuthenticationError:
            raise  # not a temporary failure: the caller stops all sending
        except (OSError, smtplib.SMTPException, MailServerError) as exc:
            self.close()
            return Delivery(RETRY, f"连接邮件服务器出错：{exc}")
        if refused is not None:
            self._reset()
            return refused
        if not handing_over():
            self._reset()  # the envelope is dropped; the connection stays usable
            return Delivery(LOST, "邮件已由其他发送进程接手，本进程未发送正文")
        try:
            code, reply = client.data(message.as_bytes())
        except smtplib.SMTPResponseException as exc:  # DATA itself refused: nothing was handed over
            self._reset()
            return _refusal(exc.smtp_code, exc.smtp_error) or Delivery(RETRY, str(exc))
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            return Delivery(UNCERTAIN, f"投递过程中连接中断：{exc}")
        return _refusal(code, reply) or Delivery(SENT, f"{code} {_text(reply)}")

    def _connected(self) -> smtplib.SMTP:
        if self._client is None:
            client = connect(self.config)
            try:
                login(client, self.config.user, self._password)
            except smtplib.SMTPAuthenticationError as exc:
                client.close()
                raise AuthenticationError(
                    f"SMTP 登录被拒绝（{exc.smtp_code} {_text(exc.smtp_error)}）：请检查授权码；已暂停发送，不会重试"
                ) from exc
            self._client = client
        return self._client

    def _reset(self) -> None:
        try:
            if self._client is not None:
                self._client.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


def _refusal(code: int, reply: bytes | str) -> Delivery | None:
    """None for a 2xx/3xx answer; otherwise retry for 4xx, failed for 5xx (GUIDE §5: 451 DT:SPM is temporary,
    554 DT:SPM permanent)."""
    if code < 400:
        return None
    detail = f"{code} {_text(reply)}"
    return Delivery(RETRY if code < 500 else FAILED, detail)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
