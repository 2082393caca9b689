"""The raw archive: every received message, byte for byte, in a content-addressed file.

A message is written here before anything else is done with it, so every later stage can be re-run from the
archive. Writing is atomic (temporary file, fsync, rename) and idempotent (same bytes, same name).
"""

from __future__ import annotations

import hashlib
import os
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
        """Write several messages, then make their directory entries durable with one fsync per folder.

        When this returns, every message is on disk: the caller may now record them in the ledger.
        """
        digests = [sha256_hex(raw) for raw in raws]
        written = [self._write(raw, digest) for raw, digest in zip(raws, digests, strict=True)]
        for folder in {path for path in written if path is not None}:
            _fsync_dir(folder)
        return digests

    def _write(self, raw: bytes, digest: str) -> Path | None:
        target = self.path_for(digest)
        if target.exists() and target.stat().st_size == len(raw):
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        # A unique temporary name in the same folder, so the rename is atomic and a crash leaves no half file
        # under the real name; leftovers are ignored and overwritten by the next attempt.
        temp = target.with_name(f".incoming-{digest}-{os.getpid()}")
        with temp.open("wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(target)
        return target.parent

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
