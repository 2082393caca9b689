"""`mailbot ingest`: messages from .eml files, folders of them, or mbox files, without IMAP.

What was named is planned before anything is read in full: every file is checked by its first bytes, so a
PNG, /etc/passwd or an empty file is refused with a reason instead of being archived as a "message". Like
`cp` or `grep`, ingest reads what it can and names the rest; the CLI turns refusals into exit code 6.
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MBOX_MAGIC = b"From "
FILE_SUFFIXES = (".eml", ".mbox")
# Enough for the header block of any real message: the fields that identify one come first.
HEAD_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"
# RFC 5322 §2.2: a field name is printable ASCII except ":", then ":" (obsolete syntax allows blanks before it).
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:")
# A header block must hold at least one field every mail system writes; "root:x:0:0" is not a message.
MESSAGE_FIELDS = frozenset(
    {
        b"from",
        b"to",
        b"cc",
        b"subject",
        b"date",
        b"message-id",
        b"received",
        b"return-path",
        b"delivered-to",
        b"mime-version",
        b"content-type",
        b"sender",
        b"reply-to",
    }
)


@dataclass(frozen=True)
class FileMessage:
    raw: bytes
    ref: str  # where it came from: a path, or path#index inside an mbox


@dataclass(frozen=True)
class Refused:
    """A path named on the command line that holds no message, and why (in words for the operator)."""

    ref: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """What `ingest` will read: the files in a stable order, the paths refused, and how many paths were named."""

    files: tuple[Path, ...]
    refused: tuple[Refused, ...]
    named: int


def plan_paths(paths: list[Path]) -> Plan:
    """Expand folders and check every file's first bytes; nothing is read in full and nothing is written."""
    files: list[Path] = []
    refused: list[Refused] = []
    for path in paths:
        found, bad = _plan_path(path)
        files += found
        refused += bad
    return Plan(tuple(files), tuple(refused), len(paths))


def _plan_path(path: Path) -> tuple[list[Path], list[Refused]]:
    if not path.exists():
        return [], [Refused(str(path), "no such file or folder")]
    if not path.is_dir():
        reason = refusal(_head(path))
        return ([], [Refused(str(path), reason)]) if reason else ([path], [])
    children = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FILE_SUFFIXES)
    if not children:
        return [], [Refused(str(path), "the folder holds no .eml or .mbox files")]
    reasons = [(child, refusal(_head(child))) for child in children]
    return [c for c, reason in reasons if not reason], [Refused(str(c), reason) for c, reason in reasons if reason]


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(HEAD_BYTES)


def refusal(head: bytes) -> str:
    """Why a file starting with `head` is not a message or an mbox, or "" when it is one."""
    if not head.strip():
        return "empty file, not an email"
    if head.startswith(MBOX_MAGIC) or looks_like_message(head):
        return ""
    return "not an email: no header block (From:, Date:, Subject: …) at the start of the file"


def looks_like_message(head: bytes) -> bool:
    """True when the file starts with a header block: a header field on the first line, and among the fields
    before the first blank line at least one that mail systems write. A broken message still passes (the split
    stage reports what is wrong with it); a picture, a password file or a spreadsheet does not."""
    lines = head.removeprefix(_BOM).splitlines()
    if not lines or _FIELD.match(lines[0]) is None:
        return False
    for line in lines:
        if not line.strip():
            break
        field = _FIELD.match(line)
        if field is not None and field.group(1).lower() in MESSAGE_FIELDS:
            return True
    return False


def read_files(files: tuple[Path, ...]) -> Iterator[FileMessage]:
    """Every message in planned files, in order: one per .eml file, each message of an mbox."""
    for path in files:
        yield from _read_file(path)


def _read_file(path: Path) -> Iterator[FileMessage]:
    with path.open("rb") as handle:
        head = handle.read(len(MBOX_MAGIC))
    if head == MBOX_MAGIC:
        yield from _read_mbox(path)
    else:
        yield FileMessage(path.read_bytes(), str(path))


def _read_mbox(path: Path) -> Iterator[FileMessage]:
    box = mailbox.mbox(path, create=False)
    try:
        for index, key in enumerate(box.iterkeys()):
            yield FileMessage(box.get_bytes(key), f"{path}#{index}")
    finally:
        box.close()
