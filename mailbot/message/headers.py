"""Cheap header look-ups on raw bytes, for the archive stage (before the full split)."""

from __future__ import annotations

from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from mailbot.clock import as_local
from mailbot.message.decode import normalise_message_id, parse_date, parse_received_time


def _headers(raw: bytes) -> Message:
    # Only the header block is parsed: this runs for every fetched message.
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[: end + 2]
    return BytesHeaderParser(policy=compat32).parsebytes(head)


def message_id_of(raw: bytes) -> str:
    """The Message-ID without angle brackets, "" when absent."""
    return normalise_message_id(str(_headers(raw).get("Message-ID", "")))


def received_time_of(raw: bytes) -> tuple[datetime | None, str]:
    """The received time of a message file: the topmost Received header's timestamp, else the Date header.

    Returns the time and where it came from (received_header | date_header), or (None, "") when neither parses.
    """
    headers = _headers(raw)
    received = headers.get("Received")
    moment = parse_received_time(str(received)) if received else None
    if moment is not None:
        return as_local(moment), "received_header"
    date = headers.get("Date")
    moment = parse_date(str(date)) if date else None
    return (as_local(moment), "date_header") if moment is not None else (None, "")
