"""The raw archive: every received message, byte for byte, in a content-addressed file.

A message is written here before anything else is done with it, so every later stage can be re-run from the
archive. Writing is atomic (temporary file, fsync, rename) and idempotent (same bytes, same name).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class Archive:
    """A folder of `ab/abcdef….eml` files named by the SHA-256 of their content."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / f"{digest}.eml"

    def store(self, raw: bytes) -> str:
        """Write `raw` unless it is already there; return its SHA-256."""
        digest = sha256_hex(raw)
        target = self.path_for(digest)
        if target.exists() and target.stat().st_size == len(raw):
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(raw)
                handle.flush()
                os.fsync(handle.fileno())
            Path(temp_name).replace(target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return digest

    def load(self, digest: str) -> bytes:
        return self.path_for(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists()


def _fsync_dir(folder: Path) -> None:
    # The rename is only durable once the directory entry is on disk too.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
