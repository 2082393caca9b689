"""Classify stage: is a message automatic (never answered, never counted), a report, a nil report, or other.

Pure. Automatic mail is recognised per RFC 3834 and by the habits of Chinese mail services (自动回复, 退信),
because answering an auto-reply with a receipt starts a mail loop.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mailbot.attribute import Attribution
from mailbot.message.decode import html_to_text
from mailbot.message.model import ParsedMessage

REPORT = "report"
NIL_REPORT = "nil_report"
NOT_A_REPORT = "not_a_report"
AUTO_OR_BOUNCE = "auto_or_bounce"
UNKNOWN_SENDER = "unknown_sender"
REJECTED_INPUT = "rejected_input"

_AUTO_SUBJECTS = (
    "自动回复",
    "自动答复",
    "auto:",
    "automatic reply",
    "out of office",
    "退信",
    "系统退信",
    "undeliverable",
    "delivery status notification",
    "returned mail",
)
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_DAEMONS = frozenset({"mailer-daemon", "postmaster"})
_NO_REPLY_LOCALS = frozenset({"noreply", "donotreply", "notreply", "noresponse"})
_MAX_REFERENCES = 10
_NIL_PHRASES = ("未开展", "没有开展", "无数据", "无相关数据", "本月无", "暂无")


def automatic_reason(msg: ParsedMessage, own_addresses: frozenset[str]) -> str | None:
    """A short English reason when the message is automatic and must never be answered or counted."""
    checks = (_own_mail, _auto_headers, _auto_subject, _report_part, _daemon_sender)
    return next((reason for check in checks if (reason := check(msg, own_addresses))), None)


def _own_mail(msg: ParsedMessage, own_addresses: frozenset[str]) -> str | None:
    if msg.from_address and msg.from_address in own_addresses:
        return "own mail (from mailbot's address)"
    return "own mail (X-Mailbot-Kind)" if _has_header(msg, "x-mailbot-kind") else None


def _auto_headers(msg: ParsedMessage, _own: frozenset[str]) -> str | None:
    submitted = _token(msg.header("auto-submitted"))
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    # Outlook sets X-Auto-Response-Suppress on ordinary mail, so presence alone proves nothing.
    if _token(msg.header("x-autoreply")) == "yes":
        return "X-Autoreply: yes"
    precedence = _token(msg.header("precedence"))
    return f"Precedence: {precedence}" if precedence in _BULK_PRECEDENCE else None


def _auto_subject(msg: ParsedMessage, _own: frozenset[str]) -> str | None:
    subject = unicodedata.normalize("NFKC", msg.subject).strip().lower()
    prefix = next((p for p in _AUTO_SUBJECTS if subject.startswith(p)), None)
    return f"subject starts with {prefix!r}" if prefix else None


def _report_part(msg: ParsedMessage, _own: frozenset[str]) -> str | None:
    if msg.content_type != "multipart/report":
        return None
    kinds = {"delivery-status": "bounce (delivery-status report)", "disposition-notification": "read receipt"}
    return kinds.get(msg.report_type, f"multipart/report ({msg.report_type or 'no report-type'})")


def _daemon_sender(msg: ParsedMessage, _own: frozenset[str]) -> str | None:
    if msg.from_address.split("@", 1)[0] in _DAEMONS:
        return f"bounce (from {msg.from_address})"
    # RFC 3834 §3.3: automatic responses go out with an empty envelope sender.
    return "bounce (empty Return-Path)" if msg.header("return-path").strip() == "<>" else None


def _has_header(msg: ParsedMessage, name: str) -> bool:
    return any(key == name for key, _ in msg.headers)


def _token(value: str) -> str:
    # "auto-replied (vacation)" and "auto-generated; owner=x" both carry their keyword first.
    return re.split(r"[\s;(]", value.strip(), maxsplit=1)[0].lower()


def no_reply_reason(msg: ParsedMessage) -> str:
    """Why a message a person may well have sent must still never get a receipt; "" when one may go back.

    A mailing list or newsletter (List-Id, List-Unsubscribe), a spam verdict from a filter on the way, or a
    no-reply sender: answering them reaches nobody, or everybody, or teaches a filter that mailbot sends spam.
    """
    if msg.header("list-id") or msg.header("list-unsubscribe"):
        return "mailing list"
    if _token(msg.header("x-spam-flag")) == "yes" or _token(msg.header("x-spam-status")).rstrip(",") == "yes":
        return "marked as spam"
    local = msg.from_address.split("@", 1)[0].replace("-", "").replace("_", "").replace(".", "")
    return "no-reply sender" if local in _NO_REPLY_LOCALS else ""


def reply_references(msg: ParsedMessage) -> str:
    """The References a reply carries (RFC 5322 §3.6.4): the message's own, then its Message-ID; the newest
    few only, as clients do, so that a long thread does not grow a header without end."""
    ids = re.findall(r"<[^<>\s]+>", msg.header("references") or msg.header("in-reply-to"))
    if msg.message_id:
        ids.append(f"<{msg.message_id}>")
    return " ".join(ids[-_MAX_REFERENCES:])


# ---------------------------------------------------------------------------------------------------------
# Kind


@dataclass(frozen=True)
class TableOutcome:
    """What reading the message's tables gave, as far as its kind is concerned."""

    counted: bool = False  # at least one submission with data
    nil: bool = False  # only nil reports (a table saying 无, a 合计 of 0)
    rejected: bool = False  # files were sent but none could be read: the unit must resend
    carries_data: bool = False  # a table anywhere, or a file that could hold one (a document, a PDF, a photo)


def decide_kind(msg: ParsedMessage, attribution: Attribution, automatic: str | None, tables: TableOutcome) -> str:
    """report | nil_report | rejected_input | not_a_report | auto_or_bounce | unknown_sender."""
    if automatic:
        return AUTO_OR_BOUNCE
    if attribution.unit is None:
        return UNKNOWN_SENDER if concerns_a_unit(attribution, tables) else NOT_A_REPORT
    if tables.counted:
        return REPORT
    if tables.nil:
        return NIL_REPORT
    if tables.rejected:
        return REJECTED_INPUT
    return NIL_REPORT if says_nil_report(msg) else NOT_A_REPORT


def concerns_a_unit(attribution: Attribution, tables: TableOutcome) -> bool:
    """Mail from an unregistered address is for staff to settle when it names a unit (several, or one staff
    rejected for it) or carries data; spam and newsletters that do neither concern nobody and are only counted."""
    return bool(attribution.findings) or tables.carries_data or tables.counted or tables.nil or tables.rejected


def says_nil_report(msg: ParsedMessage) -> bool:
    """The unit writes that it has nothing to report this time (本月无, 未开展…)."""
    body = msg.text_body if msg.text_body.strip() else html_to_text(msg.html_body)
    text = "".join(ch for ch in unicodedata.normalize("NFKC", f"{msg.subject}\n{body}") if not ch.isspace())
    return any(phrase in text for phrase in _NIL_PHRASES)
