"""One spelling for the top-level multipart boundary, so that the stdlib parser's regex for it is compiled once.

The parser compiles a regex for every boundary it meets (≈0.15 ms, a third of the parser's own time on a small
report), and every mail has a boundary of its own, so `re`'s cache never helps. Before parsing, the top-level
boundary is therefore rewritten to one shared token, and the header that declared it gets its own spelling back
afterwards (`restore`). Only when that is invisible: a plain header block, a lone `multipart/…; boundary="…"`
Content-Type, the boundary nowhere in the header block but there, and elsewhere only on delimiter lines. Any
other mail is parsed as it came.
"""

from __future__ import annotations

import re

SHARED = "mailbot-shared-boundary-4b1d9e"
_SHARED = SHARED.encode()
# The stdlib feedparser's test for a header line (email.feedparser.headerRE): any other line ends the header
# block for it, so a block of such lines ending at the first empty line is what the parser reads as headers.
_HEADER_LINE = re.compile(rb"From |[\041-\071\073-\176]*:|[\t ]")
# RFC 2046 bchars without space and "?" (an encoded word in a header would be decoded differently).
_CONTENT_TYPE = re.compile(
    rb"content-type:[ \t]*multipart/[a-z0-9.+-]+[ \t]*;[ \t]*(?:\r?\n[ \t]+)?"
    rb'boundary="([a-z0-9\'()+_,./:=-]{1,70})"[ \t]*\r?\n',
    re.IGNORECASE,
)
_BLANK = re.compile(rb"\r?\n\r?\n")


def share_boundary(data: bytes) -> tuple[bytes, str | None]:
    """The message with its top-level boundary spelt as SHARED, and the boundary it had (None: unchanged)."""
    blank = _BLANK.search(data)
    if blank is None or _SHARED in data:
        return data, None
    end = data.index(b"\n", blank.start()) + 1  # the header block with its last line's ending
    head, body = data[:end], data[end:]
    boundary = _declared(head)
    if boundary is None or not _only_delimiters(body, boundary):
        return data, None
    return head.replace(boundary, _SHARED) + body.replace(boundary, _SHARED), boundary.decode("ascii")


def restore(value: str, boundary: str | None) -> str:
    """A header value as the mail wrote it."""
    return value.replace(SHARED, boundary) if boundary is not None else value


def _declared(head: bytes) -> bytes | None:
    lines = head.split(b"\n")[:-1]
    if not lines or not all(b"\r" not in line[:-1] and _HEADER_LINE.match(line) for line in lines):
        return None
    starts = [i for i, line in enumerate(lines) if line[:13].lower() == b"content-type:"]
    if len(starts) != 1:
        return None
    first = starts[0]
    last = first + 1
    while last < len(lines) and lines[last][:1] in (b" ", b"\t"):
        last += 1
    match = _CONTENT_TYPE.fullmatch(b"\n".join(lines[first:last]) + b"\n")
    if match is None or head.count(match.group(1)) != 1:
        return None
    return match.group(1)


def _only_delimiters(body: bytes, boundary: bytes) -> bool:
    """Whether every occurrence of the boundary is a delimiter line: `--boundary`, `--`, blanks, line end."""
    found = body.find(boundary)
    while found >= 0:
        if body[found - 2 : found] != b"--" or found < 3 or body[found - 3] not in b"\r\n":
            return False
        end = found + len(boundary)
        end += 2 if body[end : end + 2] == b"--" else 0
        while body[end : end + 1] in (b" ", b"\t"):
            end += 1
        if end < len(body) and body[end] not in b"\r\n":
            return False
        found = body.find(boundary, end)
    return True
