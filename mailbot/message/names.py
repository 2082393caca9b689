"""Names that come from senders (attachment filenames, members of zips) are attack surface. Pure functions.

A name is used three ways, one function each:

- `display_name`: as the sender wrote it, minus what could fool a reader (control characters, and bidi controls
  that make "gpj.exe" display as "exe.jpg"). Shown in problems and receipts and stored; slashes stay, because
  it is never a path.
- `safe_name`: one path component that cannot leave its folder or misbehave on Linux or Windows. Any file
  written under a name a sender chose goes through it. Today none is: the archive names files by their
  SHA-256, LibreOffice converts a fixed `input.<ext>`, the demo numbers its .eml files.
- `name_finding`: what is wrong with the name, as a `path_traversal_name` finding. The file is still read:
  a hostile name does not make the content hostile, and the name is never used as a path.
"""

from __future__ import annotations

import re
import unicodedata

from mailbot.problems import PATH_TRAVERSAL_NAME, Finding

# Explicit bidi formatting characters (Unicode TR 9): embeddings, overrides, isolates and the marks.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# C0 and C1 controls (NUL, ESC, DEL …), and the line and paragraph separators that break a line of a receipt.
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[/\\]")
# Characters Windows refuses in a file name; a file staff copy to their PC must keep working there.
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
)
MAX_NAME_BYTES = 255  # ext4, NTFS and APFS all stop here (NTFS counts UTF-16 units, which is never more)
FALLBACK_NAME = "附件"


def is_control(char: str) -> bool:
    return unicodedata.category(char) in _CONTROL_CATEGORIES


def is_hidden_control(char: str) -> bool:
    """A character that changes how a name looks without being visible itself."""
    return is_control(char) or char in BIDI_CONTROLS


def display_name(name: str) -> str:
    """The name for people to read: hidden controls removed, otherwise as the sender wrote it."""
    return "".join(ch for ch in name if not is_hidden_control(ch)).strip()


def shown_name(name: str) -> str:
    """The name in a problem's detail: hidden controls made visible as [U+202E], so staff see the trick."""
    return "".join(f"[U+{ord(ch):04X}]" if is_hidden_control(ch) else ch for ch in name)


def name_hazards(name: str) -> tuple[str, ...]:
    """What makes a name dangerous, in words for staff; () for a harmless name. A relative folder
    ("报表/附件3.xlsx") is harmless: it cannot leave the folder it would be extracted to."""
    parts = _SEPARATORS.split(name)
    found = {
        "含有上级目录（..）": ".." in (part.strip() for part in parts),
        "是绝对路径": name.startswith(("/", "\\")),
        "带有盘符": _DRIVE.match(name) is not None,
        "含有控制字符": any(is_control(ch) for ch in name),
        "含有文字方向控制字符（可使扩展名显示成另一种）": any(ch in BIDI_CONTROLS for ch in name),
    }
    return tuple(reason for reason, present in found.items() if present)


def name_finding(name: str, label: str = "附件名") -> Finding | None:
    """A `path_traversal_name` finding for a hostile name, or None. `label` says whose name it is ("附件名",
    "压缩包中的文件名"). The caller sets the attachment position."""
    hazards = name_hazards(name)
    if not hazards:
        return None
    detail = f"{label}「{shown_name(name)}」{'、'.join(hazards)}，疑似恶意构造；文件名仅作显示，内容照常读取"
    return Finding(PATH_TRAVERSAL_NAME, detail)


def safe_name(name: str, fallback: str = FALLBACK_NAME) -> str:
    """One path component safe to create in any folder: the last part of the name, without hidden or
    format characters, characters Windows refuses, leading dots or a device name; at most 255 bytes."""
    visible = "".join(ch for ch in name if not is_hidden_control(ch) and unicodedata.category(ch) != "Cf")
    base = _SEPARATORS.split(_DRIVE.sub("", visible))[-1]
    cleaned = _WINDOWS_FORBIDDEN.sub("_", base).strip(" .")
    if not cleaned:
        return fallback
    if cleaned.split(".", 1)[0].strip().lower() in _WINDOWS_DEVICES:
        cleaned = "_" + cleaned  # "NUL.xlsx" opens the null device on Windows, whatever the extension
    return _truncated(cleaned)


def _truncated(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """The name cut to `limit` UTF-8 bytes, keeping a short extension so the file still opens by type."""
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, dot, suffix = name.rpartition(".")
    tail = dot + suffix if dot and stem and len(suffix) <= 16 else ""
    head = name[: len(name) - len(tail)]
    room = limit - len(tail.encode("utf-8"))
    return head.encode("utf-8")[:room].decode("utf-8", errors="ignore") + tail
