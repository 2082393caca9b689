"""Plain zip attachments: the files inside, with names fit for display and never used as paths (see
mailbot.message.names).

Windows zips name members in GBK without the UTF-8 flag; zipfile decodes those names as cp437, so they are
re-decoded here from the raw bytes as GB18030. Members are read one at a time, after `check_zip` has vouched for
the whole archive, so at most one inflated member is held at once.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from mailbot.message.names import display_name as clean_name
from mailbot.message.names import name_finding
from mailbot.problems import ARCHIVE_BOMB, Finding
from mailbot.read.guard import DEFAULT_LIMITS, ReadLimits, check_zip

_UTF8_FLAG = 0x800
# Left behind by macOS and Windows Explorer; never a table.
_NOISE_PREFIXES = ("__MACOSX/",)
_NOISE_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class Member:
    """One file inside a zip. `name` is its full path inside the archive, decoded and cleaned for display only;
    `given_name` is the same before cleaning, to be checked (`traversal_finding`), never shown or used."""

    name: str
    data: bytes
    given_name: str


def check_container(data: bytes, limits: ReadLimits = DEFAULT_LIMITS, depth: int = 1) -> Finding | None:
    """None when the zip at this nesting depth (1 = the attachment itself) may be opened."""
    if depth > limits.max_depth:
        return Finding(ARCHIVE_BOMB, f"压缩包内又套了压缩包，超过 {limits.max_depth} 层（疑似压缩炸弹），未读取")
    return check_zip(data, limits)


def iter_members(data: bytes) -> Iterator[Member]:
    """The files of a zip that `check_container` passed, skipping folders and operating-system clutter."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            given = display_name(info)
            if not info.is_dir() and not _is_noise(given):
                yield Member(clean_name(given), archive.read(info), given)


def display_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its creator wrote it: GB18030 unless the UTF-8 flag says otherwise."""
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename  # not GBK after all; show what zipfile made of it


def _is_noise(name: str) -> bool:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return name.startswith(_NOISE_PREFIXES) or base.lower() in _NOISE_NAMES or base.startswith("._")


def traversal_finding(name: str) -> Finding | None:
    """A `path_traversal_name` finding for a member name that would escape a folder if someone extracted it,
    or that hides characters from a reader."""
    return name_finding(name, "压缩包中的文件名")
