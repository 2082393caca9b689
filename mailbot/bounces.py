"""Bounces of mailbot's own mail: which mail came back, and which address failed. Pure.

Three shapes reach the mailbox: a DSN (RFC 3464, `multipart/report; report-type=delivery-status`, with
`Final-Recipient`, `Action` and `Diagnostic-Code` per recipient and the returned mail or its headers), 163's
系统退信 (a Chinese text naming the 收件人, often with the original attached), and plain text bounces that only
quote the server's "550 … user unknown". The returned Message-ID is the surest link to the outbox; the failed
recipient is the fallback (`mailbot.store.bounces` does the matching).
"""

from __future__ import annotations

import email
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from mailbot.message.decode import decode_bytes, header_param, html_to_text, normalise_message_id
from mailbot.message.model import ParsedMessage

# Problem codes on the bounce message itself. The undeliverable address, not the bounce, is what staff act on.
BOUNCED = "bounce"  # it returned a mail mailbot sent; the address is marked undeliverable
FORMER_ADDRESS = "bounce_former_address"  # it names an address mailbot never wrote to: information only
UNMATCHED = "bounce_unmatched"  # neither a mail of mailbot's nor an address could be found in it

MAX_DEPTH = 10  # a bounce of a bounce of a forward is as deep as real ones get
MAX_DIAGNOSTIC = 300  # characters of the server's reason kept for staff
_DAEMONS = frozenset({"mailer-daemon", "postmaster"})
_SUBJECTS = (
    *("退信", "系统退信", "邮件退回", "未能送达", "投递失败"),
    *("undeliverable", "undelivered mail", "delivery status notification", "returned mail", "failure notice"),
    *("mail delivery failed", "delivery failure", "mail delivery failure"),
)
# Actions of a DSN that mean the mail will not arrive; "delayed" and "relayed" are not final.
_FINAL_ACTIONS = frozenset({"failed", ""})
_ADDRESS = re.compile(r"[A-Za-z0-9._%+\-=]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_MESSAGE_ID = re.compile(r"^\s*message-id\s*:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
# An SMTP reply for a permanent failure: "550", "550-", "5.1.1", as servers quote them.
_PERMANENT = re.compile(r"(?<![\d.])(5[0-5]\d(?:[ -]|$)|5\.\d{1,3}\.\d{1,3})")
# A reply code alone could be an amount ("合计 550 元"): the line must also say what failed.
_FAILURE_WORDS = re.compile(
    r"user|unknown|mailbox|recipient|not found|no such|does not exist|denied|rejected|unavailable|invalid|"
    r"不存在|拒绝|无效|失败|退回|无法",
    re.IGNORECASE,
)
# 163 writes "收件人： x@y" and "无法送达以下收件人：x@y" (with full-width spaces in between, sometimes).
_RECIPIENT_LINE = re.compile(r"收\s*件\s*人")


@dataclass(frozen=True)
class Bounce:
    """What a bounce says about the mail it returns."""

    message_ids: tuple[str, ...] = ()  # of the returned mail, without angle brackets
    recipients: tuple[str, ...] = ()  # the addresses that failed, lower case
    diagnostic: str = ""  # the server's reason ("550 5.1.1 user unknown"), for staff; "" when none was given

    @property
    def empty(self) -> bool:
        return not self.message_ids and not self.recipients


def is_bounce(msg: ParsedMessage) -> bool:
    """A delivery failure report (as opposed to an auto-reply or a read receipt)."""
    if msg.content_type == "multipart/report":
        return msg.report_type == "delivery-status"
    if msg.from_address.split("@", 1)[0] in _DAEMONS:
        return True
    subject = unicodedata.normalize("NFKC", msg.subject).strip().lower()
    return any(word in subject for word in _SUBJECTS)


def parse_bounce(raw: bytes, ignore: frozenset[str] = frozenset()) -> Bounce:
    """The returned Message-ID(s) and failed recipient(s) of a bounce. `ignore`: mailbot's own addresses,
    which a bounce quotes as the sender and which never are the failed recipient."""
    found = _Found()
    root = email.message_from_bytes(raw, policy=compat32)
    _walk(root, 0, found)
    # A delivery-status part is authoritative: a delay report names no failed recipient, whatever its text says.
    recipients = found.dsn_recipients if found.dsn else found.text_recipients
    return Bounce(
        message_ids=tuple(dict.fromkeys(found.message_ids)),
        recipients=tuple(a for a in dict.fromkeys(recipients) if a not in ignore),
        diagnostic=(found.diagnostic or found.text_diagnostic)[:MAX_DIAGNOSTIC],
    )


@dataclass
class _Found:
    message_ids: list[str] = field(default_factory=list)
    dsn_recipients: list[str] = field(default_factory=list)
    text_recipients: list[str] = field(default_factory=list)
    diagnostic: str = ""
    text_diagnostic: str = ""
    dsn: bool = False  # a message/delivery-status part was seen


def _walk(part: Message, depth: int, found: _Found) -> None:
    if depth > MAX_DEPTH:
        return
    ctype = part.get_content_type()
    if ctype == "message/delivery-status":
        _delivery_status(part, found)
    elif ctype in ("message/rfc822", "message/global"):
        _returned_message(part, found)
    elif ctype == "text/rfc822-headers":
        _returned_headers(_text(part), found)
    elif part.is_multipart():
        for child in _children(part):
            _walk(child, depth + 1, found)
    elif ctype in ("text/plain", "text/html"):
        text = _text(part)
        _human_text(html_to_text(text) if ctype == "text/html" else text, found)


def _children(part: Message) -> Iterator[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        yield from (child for child in payload if isinstance(child, Message))


# ---------------------------------------------------------------------------------------------------------
# The machine-readable parts


def _delivery_status(part: Message, found: _Found) -> None:
    """RFC 3464: a per-message block, then one block per recipient. The stdlib parses each block as headers;
    a report it could not split is read as text."""
    found.dsn = True
    blocks = list(_children(part))
    if not blocks:
        blocks = [HeaderParser(policy=compat32).parsestr(chunk) for chunk in re.split(r"\n\s*\n", _text(part))]
    for block in blocks:
        if str(block.get("Action", "")).strip().lower() not in _FINAL_ACTIONS:
            continue
        # The original recipient is the address mailbot wrote to; the final one may be where it forwarded.
        recipient = _dsn_address(str(block.get("Original-Recipient", ""))) or _dsn_address(
            str(block.get("Final-Recipient", ""))
        )
        if recipient:
            found.dsn_recipients.append(recipient)
            found.diagnostic = found.diagnostic or _dsn_text(str(block.get("Diagnostic-Code", "")))


def _dsn_address(value: str) -> str:
    """`rfc822; user@example.cn` → user@example.cn (other address types are not mail addresses)."""
    kind, _, address = value.partition(";")
    if not address:
        kind, address = "rfc822", kind
    match = _ADDRESS.search(address)
    return match.group(0).lower() if match and kind.strip().lower() in ("rfc822", "utf-8") else ""


def _dsn_text(value: str) -> str:
    """`smtp; 550 5.1.1 user unknown` → 550 5.1.1 user unknown."""
    kind, _, text = value.partition(";")
    return " ".join((text or kind).split())


def _returned_message(part: Message, found: _Found) -> None:
    # Only the returned mail's headers: its body is mailbot's own text and says nothing about the failure.
    for child in _children(part):
        if message_id := normalise_message_id(str(child.get("Message-ID", ""))):
            found.message_ids.append(message_id)


def _returned_headers(text: str, found: _Found) -> None:
    headers = HeaderParser(policy=compat32).parsestr(text.lstrip(), headersonly=True)
    if message_id := normalise_message_id(str(headers.get("Message-ID", ""))):
        found.message_ids.append(message_id)


# ---------------------------------------------------------------------------------------------------------
# The human-readable text


def _human_text(text: str, found: _Found) -> None:
    """163's 收件人 lines, a quoted Message-ID header, and the addresses next to a "550 …" reply."""
    found.message_ids += [normalise_message_id(m) for m in _MESSAGE_ID.findall(text)]
    lines = [line.strip() for line in unicodedata.normalize("NFKC", text).splitlines()]
    previous = ""
    for line in lines:
        if not line:
            continue
        if _RECIPIENT_LINE.search(line):
            found.text_recipients += _addresses(line)
        elif _PERMANENT.search(line) and _FAILURE_WORDS.search(line):
            # qmail and Exim put the address on the line before the reply when it is not on the reply's line.
            found.text_recipients += _addresses(line) or _addresses(previous)
            found.text_diagnostic = found.text_diagnostic or line
        previous = line


def _addresses(line: str) -> list[str]:
    return [address.lower().strip(".") for address in _ADDRESS.findall(line)]


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = header_param(str(part.get("Content-Type", "")), "charset")
    text, _ = decode_bytes(payload, charset[0] if charset else None)
    return text


# ---------------------------------------------------------------------------------------------------------
# Which sent mail it returns


@dataclass(frozen=True)
class SentMail:
    """A mail mailbot handed to the server, as far as matching a bounce is concerned."""

    id: int
    message_id: str  # as sent, with or without angle brackets
    to: str
    sent_at: datetime


@dataclass(frozen=True)
class Returned:
    mails: tuple[SentMail, ...]  # the outbox mails the bounce returns
    strangers: tuple[str, ...]  # failed recipients mailbot never wrote to (a former address, a forward)


def match(bounce: Bounce, sent: Sequence[SentMail], received_at: datetime) -> Returned:
    """By the returned Message-ID first; else each failed recipient's most recent mail before the bounce came."""
    by_id = {normalise_message_id(mail.message_id): mail for mail in sent}
    found = [by_id[i] for i in bounce.message_ids if i in by_id]
    if found:
        return Returned(tuple(dict.fromkeys(found)), ())
    latest: list[SentMail] = []
    strangers: list[str] = []
    for recipient in bounce.recipients:
        mails = [m for m in sent if m.to.lower() == recipient and m.sent_at <= received_at]
        if mails:
            latest.append(max(mails, key=lambda m: (m.sent_at, m.id)))
        else:
            strangers.append(recipient)
    return Returned(tuple(latest), tuple(strangers))
