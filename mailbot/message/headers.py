"""Cheap header look-ups on raw bytes, for the archive stage (before the full split)."""

from __future__ import annotations

import email.utils
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from mailbot.clock import as_local


def _headers(raw: bytes) -> Message:
    # Only the header block is parsed: this runs for every fetched message.
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[: end + 2]
    return BytesHeaderParser(policy=compat32).parsebytes(head)


def message_id_of(raw: bytes) -> str:
    """The Message-ID without angle brackets, "" when absent."""
    value = _headers(raw).get("Message-ID", "")
    return str(value).strip().strip("<>").strip()[:998]


def received_time_of(raw: bytes) -> tuple[datetime | None, str]:
    """The received time of a message file: the topmost Received header's timestamp, else the Date header.

    Returns the time and where it came from (received_header | date_header), or (None, "") when neither parses.
    """
    headers = _headers(raw)
    for name, source in (("Received", "received_header"), ("Date", "date_header")):
        value = headers.get(name)
        moment = _parse_time(str(value).rsplit(";", 1)[-1] if name == "Received" and value else value)
        if moment is not None:
            return moment, source
    return None, ""


def _parse_time(text: object) -> datetime | None:
    if not text:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(" ".join(str(text).split()))
    except (TypeError, ValueError, IndexError):
        return None
    return as_local(moment) if moment.tzinfo is not None else None
