"""Mail texts from Jinja2 templates named by convention: `{name}.subject.txt`, `{name}.body.txt`,
`{name}.body.html`; reports (the circular) have theirs in templates/report. Staff may copy any of them into
`outbox.templates_dir` and edit it there; a file in that folder wins over mailbot's own.
HTML is autoescaped: unit names and file names come from outside.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2

PROBLEM_NAMES = "_problem_names.txt"
MAIL_POLICY = SMTP  # CRLF line ends, RFC 2047 encoded Chinese headers: what 163.com and every client read


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Templates:
    staff_dir: Path | None = None

    @cached_property
    def _env(self) -> jinja2.Environment:
        loaders: list[jinja2.BaseLoader] = []
        if self.staff_dir is not None:
            loaders.append(jinja2.FileSystemLoader(self.staff_dir))
        loaders.append(jinja2.PackageLoader("mailbot", "templates/mail"))
        loaders.append(jinja2.PackageLoader("mailbot", "templates/report"))
        return jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=jinja2.StrictUndefined,  # a misspelt variable in an edited template fails loudly
            keep_trailing_newline=True,
        )

    def render(self, name: str, context: Mapping[str, Any]) -> Rendered:
        subject = self._env.get_template(f"{name}.subject.txt").render(context)
        return Rendered(
            subject=" ".join(subject.split()),  # one line: a header cannot hold a line break
            text=self._env.get_template(f"{name}.body.txt").render(context),
            html=self._env.get_template(f"{name}.body.html").render(context),
        )

    def render_file(self, name: str, context: Mapping[str, Any]) -> str:
        """One template by its file name (the circular's `circular.txt`), staff's copy first."""
        return self._env.get_template(name).render(context)

    def problem_name(self, code: str) -> str:
        """What staff call a problem code (sum_mismatch → 合计与明细不符), from the editable `_problem_names.txt`;
        the digest, the workbook and the circular all name problems this way."""
        macro = self._env.get_template(PROBLEM_NAMES).module.problem_name  # type: ignore[attr-defined]
        return str(macro(code))


@dataclass(frozen=True)
class Envelope:
    """What a queued mail holds, as plain data (the outbox row without the database)."""

    to: str
    subject: str
    text: str
    html: str
    message_id: str
    kind: str = ""  # reminder | late_notice | receipt …: also tells mailbot, reading the mailbox, it is its own
    attachment_name: str = ""
    attachment: bytes | None = None
    in_reply_to: str = ""
    references: str = ""


def compose(envelope: Envelope, from_address: str, from_name: str, now: datetime) -> EmailMessage:
    """The MIME message: text and HTML alternatives, the attachment, and the headers that keep auto-responders
    (and mailbot itself, reading the same mailbox) from answering it (RFC 3834)."""
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = formataddr((from_name, from_address))
    message["To"] = envelope.to
    message["Subject"] = envelope.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = envelope.message_id
    if envelope.in_reply_to:
        message["In-Reply-To"] = envelope.in_reply_to
        message["References"] = envelope.references or envelope.in_reply_to
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Mailbot-Kind"] = envelope.kind or "mail"
    message.set_content(envelope.text)
    if envelope.html:
        message.add_alternative(envelope.html, subtype="html")
    if envelope.attachment is not None:
        message.add_attachment(
            envelope.attachment,
            maintype="application",
            subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            filename=envelope.attachment_name or "附件.xlsx",
        )
    return message


def new_message_id(key: str, from_address: str, now: datetime) -> str:
    """A Message-ID fixed when the mail is queued, so that every attempt sends the same one."""
    domain = from_address.rpartition("@")[2] or "mailbot.invalid"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"<mailbot.{digest}.{int(now.timestamp())}@{domain}>"
