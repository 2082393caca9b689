"""The SMTP adapter. The only module that talks SMTP (the outbox of issue 4 sends through it)."""

from __future__ import annotations

import smtplib
import ssl

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


def check_login(config: SmtpConfig, password: str) -> str:
    """Log in and out once. 535 is an AuthenticationError: never retried (163 locks the account)."""
    client = connect(config)
    try:
        client.login(config.user, password)
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
