"""The raw archive: every received message, byte for byte, in a content-addressed file.

A message is written here before anything else is done with it, so every later stage can be re-run from the
archive. Writing is atomic (temporary file, flush to disk, rename, flush again) and idempotent (same bytes, same
name). Reading checks the content against its name: a flipped byte or a cut-off file must never be read as a
unit's mail with different figures.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from mailbot.clock import Clock, system_clock
from mailbot.errors import ArchiveCorruptError
from mailbot.processes import Holder, gone

TEMP_PREFIX = ".incoming-"
# A temporary file this old was left by a killed process even where its name cannot tell (another host, or a
# name from before names carried the host): writing and renaming one batch takes seconds, not an hour.
STALE_AFTER = timedelta(hours=1)
RESTORE = (
    "此前读取的数据保持不变；请从备份恢复该文件（或用 mailbot ingest 重新导入这封邮件的原件），"
    "再运行 mailbot reprocess --failed"
)

MISSING, SIZE, CONTENT = "missing", "size", "sha256"  # what can be wrong with an archived file


@dataclass(frozen=True)
class Fault:
    """What is wrong with one archived file; `describe` says it for people, in Chinese."""

    kind: str  # MISSING | SIZE | CONTENT
    path: Path
    expected_size: int | None = None
    size: int | None = None

    def describe(self) -> str:
        if self.kind == MISSING:
            return f"存档原件缺失（{self.path}）"
        if self.kind == SIZE:
            return f"存档原件大小不符（应为 {self.expected_size} 字节，实为 {self.size} 字节：{self.path}）"
        return f"存档原件已损坏（内容与文件名中的 SHA-256 不符：{self.path}）"


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class Archive:
    """A folder of `ab/abcdef….eml` files named by the SHA-256 of their content.

    `clock` dates the temporary files left by a killed process: their times are the file system's, so it is the
    system clock unless a test says otherwise.
    """

    def __init__(self, root: Path, clock: Clock = system_clock) -> None:
        self.root = root
        self.clock = clock
        self._swept = False

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / f"{digest}.eml"

    def store_many(self, raws: list[bytes]) -> list[str]:
        """Write several messages: every content to a temporary name, one flush to disk, every rename, one
        more flush. When this returns, every message is on disk: the caller may now record them in the ledger.
        """
        if not self._swept:  # once per process: a kill's leftovers are no one's, and never renamed
            self.sweep()
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
        if self.check(digest, len(raw)) is None:  # a damaged copy is replaced: ingesting the original repairs it
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        # A unique temporary name in the same folder, so the rename is atomic. It names its process and host:
        # a kill's leftover is removed by the next `sweep` on this host once that process is gone.
        holder = Holder.current()
        temp = target.with_name(f"{TEMP_PREFIX}{digest}-{holder.pid}@{holder.host}")
        temp.write_bytes(raw)
        return temp, target

    def load(self, digest: str) -> bytes:
        """The archived message, checked against its name: a file that is missing or no longer hashes to
        `digest` raises ArchiveCorruptError (its message, in Chinese, is for staff)."""
        path = self.path_for(digest)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ArchiveCorruptError(f"{Fault(MISSING, path).describe()}：{RESTORE}") from None
        if sha256_hex(raw) != digest:
            raise ArchiveCorruptError(f"{Fault(CONTENT, path).describe()}：{RESTORE}")
        return raw

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists()

    def check(self, digest: str, size: int) -> Fault | None:
        """What is wrong with the file of a message of `size` bytes named `digest`; None when it is intact."""
        path = self.path_for(digest)
        try:
            found = path.stat().st_size
            if found != size:
                return Fault(SIZE, path, size, found)
            return None if sha256_hex(path.read_bytes()) == digest else Fault(CONTENT, path, size, found)
        except FileNotFoundError:
            return Fault(MISSING, path, size)

    def sweep(self) -> list[Path]:
        """Remove the temporary files that killed processes left behind (see `stale`); returns them."""
        self._swept = True
        now, removed = self.clock().timestamp(), []
        for path in self.root.glob(f"*/{TEMP_PREFIX}*"):
            try:
                if stale(path.name, now - path.stat().st_mtime):
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:
                continue  # its process renamed it, or another sweep removed it, meanwhile
        return removed


def stale(name: str, age_seconds: float) -> bool:
    """Whether a temporary file is a leftover: the process it names ("pid@host") no longer runs on this host, or
    it is older than STALE_AFTER (another host's process cannot be asked, and a pid may have been reused)."""
    _, _, writer = name.removeprefix(TEMP_PREFIX).partition("-")  # after the digest (hex digits, no "-")
    pid, _, host = writer.partition("@")
    if host and pid.isdigit() and gone(str(Holder(host, int(pid)))):
        return True
    return age_seconds > STALE_AFTER.total_seconds()


def _load_syncfs() -> Callable[[int], int] | None:
    """Linux's syncfs(2): flush one file system in a single call. Python has no binding for it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The C library's symbols through the program's own handle: find_library("c") would run `ldconfig -p`,
        # a subprocess at every start of mailbot and of its fork server.
        libc = ctypes.CDLL(None, use_errno=True)
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
