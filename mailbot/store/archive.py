"""The raw archive: every received message, byte for byte, in a content-addressed file.

A message is written here before anything else is done with it, so every later stage can be re-run from the
archive. Writing is atomic (temporary file, flush to disk, rename, flush again) and idempotent (same bytes, same
name).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class Archive:
    """A folder of `ab/abcdef….eml` files named by the SHA-256 of their content."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / f"{digest}.eml"

    def store_many(self, raws: list[bytes]) -> list[str]:
        """Write several messages: every content to a temporary name, one flush to disk, every rename, one
        more flush. When this returns, every message is on disk: the caller may now record them in the ledger.
        """
        digests = [sha256_hex(raw) for raw in raws]
        distinct = dict(zip(digests, raws, strict=True))  # the same bytes twice in a batch are written once
        moves = [move for digest, raw in distinct.items() if (move := self._write(raw, digest))]
        if not moves:
            return digests
        # The contents must be on disk before a rename can make them visible under their real names: a crash
        # between the two would otherwise leave an empty file that looks archived.
        _make_durable(self.root, [temp for temp, _ in moves])
        for temp, target in moves:
            temp.replace(target)
        _make_durable(self.root, sorted({target.parent for _, target in moves}))
        return digests

    def _write(self, raw: bytes, digest: str) -> tuple[Path, Path] | None:
        """Write `raw` under a temporary name next to its real one; None if it is archived already."""
        target = self.path_for(digest)
        if target.exists() and target.stat().st_size == len(raw):
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        # A unique temporary name in the same folder, so the rename is atomic; leftovers of a crash are ignored
        # and overwritten by the next attempt.
        temp = target.with_name(f".incoming-{digest}-{os.getpid()}")
        temp.write_bytes(raw)
        return temp, target

    def load(self, digest: str) -> bytes:
        return self.path_for(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists()


def _load_syncfs() -> Callable[[int], int] | None:
    """Linux's syncfs(2): flush one file system in a single call. Python has no binding for it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return function


_SYNCFS = _load_syncfs()


def _make_durable(root: Path, paths: Sequence[Path]) -> None:
    """Flush `paths` (files or folders under `root`) to disk. One syncfs of the archive's file system costs
    about what two fsyncs do, and a batch of fifty messages spread over up to fifty folders needs a hundred."""
    if _SYNCFS is None or len(paths) < 3:
        for path in paths:
            _fsync(path)
        return
    fd = os.open(root, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs {root}: {os.strerror(error)}")
    finally:
        os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
