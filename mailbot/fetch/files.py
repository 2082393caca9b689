"""`mailbot ingest`: messages from .eml files, folders of them, or mbox files, without IMAP."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailbot.errors import InputError

MBOX_MAGIC = b"From "


@dataclass(frozen=True)
class FileMessage:
    raw: bytes
    ref: str  # where it came from: a path, or path#index inside an mbox


def read_paths(paths: list[Path]) -> Iterator[FileMessage]:
    """Yield every message under `paths` in a stable order. A missing path is an InputError."""
    for path in paths:
        if not path.exists():
            raise InputError(f"no such file or folder: {path}")
        yield from _read_path(path)


def _read_path(path: Path) -> Iterator[FileMessage]:
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".eml", ".mbox")):
            yield from _read_file(child)
    else:
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
