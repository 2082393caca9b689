"""Keep attachments out of the stdlib email parser's line handling.

The parser holds a message as text, splits it into one string per line, tests every line against the part's
boundary and joins them again: a 25 MB attachment costs several times its size in memory, and even a 7 KB
workbook costs more time than the rest of its message. Before parsing, runs of base64 lines are lifted out of
the raw bytes and replaced by a short token; a part whose payload is a token is decoded straight from the raw
bytes (binascii reads a memoryview slice without copying it).
"""

from __future__ import annotations

import binascii
import re
import uuid
from dataclasses import dataclass, field

# About 1 KB of base64. The parser handles every line of a part several times, so even the 7 KB of a typical
# annex workbook costs it more than the whole rest of the message; a shorter run is not worth a token.
MIN_LINES = 16
# Continuation lines may be short: the last line of a base64 body usually is. The repeat is possessive: a
# plain one keeps a backtracking frame per line (tens of MB for a 25 MB attachment); this one keeps none, and
# is twice as fast as matching line by line.
_RUN = re.compile(rb"(?:[A-Za-z0-9+/=]+[ \t]*\r?\n)++")
# Where a run may start; skips non-base64 text fast.
_FIRST = re.compile(rb"^[A-Za-z0-9+/=]{16,}[ \t]*\r?\n", re.MULTILINE)


@dataclass
class Blobs:
    raw: bytes
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)

    def span(self, payload: str) -> tuple[int, int] | None:
        """The raw byte range a payload stands for, when the payload is one of our tokens."""
        return self.spans.get(payload.strip()) if len(payload) < 100 else None

    def restore(self, payload: str) -> str:
        """The payload with any token put back as the original text: a token amid other lines, or lifted lines
        of a part that is not base64."""
        for token, span in self.spans.items():
            if token in payload:
                payload = payload.replace(token, self.original(span).decode("ascii").rstrip("\r\n"))
        return payload

    def encoded_size(self, span: tuple[int, int]) -> int:
        return span[1] - span[0]

    def base64_size(self, span: tuple[int, int]) -> int:
        """What a run decodes to, counted without decoding or copying it (a limit may be exactly that size)."""
        start, end = span
        spaces = sum(self.raw.count(char, start, end) for char in (b" ", b"\t", b"\r", b"\n"))
        stop = end
        while stop > start and self.raw[stop - 1] in b" \t\r\n":
            stop -= 1
        padding = min(self.raw.count(b"=", max(start, stop - 2), stop), 2)
        return (end - start - spaces) * 3 // 4 - padding

    def decode_base64(self, span: tuple[int, int]) -> bytes:
        view = memoryview(self.raw)[span[0] : span[1]]
        try:
            return binascii.a2b_base64(view)  # non-strict: line breaks and stray characters are skipped
        except binascii.Error:
            return b""  # a truncated run; the caller reports what it could not read
        finally:
            view.release()

    def original(self, span: tuple[int, int]) -> bytes:
        return self.raw[span[0] : span[1]]


def lift(raw: bytes) -> tuple[bytes, Blobs]:
    """The raw message with long base64 runs replaced by tokens, and what the tokens stand for."""
    blobs = Blobs(raw)
    pieces: list[bytes] = []
    last = 0
    nonce = uuid.uuid4().hex  # tokens no sender can have written
    for number, (start, end) in enumerate(_runs(raw)):
        token = f"mailbot-blob-{nonce}-{number}"
        blobs.spans[token] = (start, end)
        pieces += [raw[last:start], token.encode(), b"\r\n"]
        last = end
    if not blobs.spans:
        return raw, blobs
    pieces.append(raw[last:])
    return b"".join(pieces), blobs


def _runs(raw: bytes) -> list[tuple[int, int]]:
    """Byte ranges of at least MIN_LINES consecutive base64 lines."""
    runs: list[tuple[int, int]] = []
    position = 0
    while (first := _FIRST.search(raw, position)) is not None:
        start = first.start()
        end = first.end() if (run := _RUN.match(raw, start)) is None else run.end()  # None never: first matched
        if raw.count(b"\n", start, end) >= MIN_LINES:
            runs.append((start, end))
        position = end
    return runs
