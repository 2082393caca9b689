"""Header decoding for mail from Chinese mailers: RFC 2047, RFC 2231 and raw 8-bit bytes.

Every function returns what it could read plus a flag that says replacement characters were needed, so the
caller can record an UNDECODABLE_HEADER finding instead of silently losing characters (imap-tools drops them).

Values come from `email` parsed with the compat32 policy: raw 8-bit header bytes arrive as str with
surrogate escapes, and `value.encode("ascii", "surrogateescape")` gives the original bytes back.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.utils
import functools
import re
from datetime import UTC, datetime
from email.message import Message
from email.policy import compat32
from html.parser import HTMLParser

# gb2312 labels often carry GBK-only characters (郟); GB18030 is a superset of all of them.
_GB_LABELS = frozenset(
    {"gb2312", "gbk", "gb18030", "x-gbk", "cp936", "ms936", "windows-936", "gb_2312-80", "gb_2312"}
    | {"euc-cn", "x-euc-cn", "csgb2312", "chinese", "iso-ir-58", "csiso58gb231280"}
)
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_SURROGATE = re.compile("[\udc80-\udcff]")
# A mailbox repeats its header values (senders, recipients, charsets, a unit's file names), and decoding one
# costs more than the rest of a small message's parsing; the pure decoders below keep what they read. A longer
# value (rare, or hostile) is decoded every time instead of being kept.
_CACHED_CHARS = 500
_CACHE_SIZE = 1024

Chunk = tuple[bytes, str] | str


def codec_for(label: str | None) -> str | None:
    """The Python codec for a MIME charset label, or None when the label is missing or unknown."""
    if not label:
        return None
    # RFC 2231 allows a language after "*" in an encoded-word charset (utf-8*zh).
    name = label.strip().strip("\"'").split("*", 1)[0].lower()
    if name in _GB_LABELS:
        return "gb18030"
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a label with a NUL in it
        return None
    # base64, rot13 and friends are codecs too, but not text encodings.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Decode in the declared charset, else UTF-8, else GB18030; the flag says replacements were needed."""
    codec = codec_for(charset)
    # A declared us-ascii over 8-bit bytes is a mailer's default, not a claim: guess as if undeclared.
    guesses = ("utf-8", "gb18030") if codec in (None, "ascii") else ()
    for attempt in (codec, *guesses):
        if attempt is None:
            continue
        try:
            return data.decode(attempt), False
        except (UnicodeDecodeError, LookupError):
            continue
    fallback = codec if codec not in (None, "ascii") else "gb18030"
    return data.decode(fallback or "gb18030", errors="replace"), True


def raw_to_text(value: str) -> tuple[str, bool]:
    """Turn surrogate-escaped 8-bit header bytes into text: strict UTF-8 first, then GB18030."""
    if not _SURROGATE.search(value):
        return value, False
    return decode_bytes(value.encode("ascii", "surrogateescape"), None)


def decode_header_value(value: str) -> tuple[str, bool]:
    """Decode a whole header value (raw 8-bit and/or RFC 2047 encoded-words) to text."""
    return _decoded_header_kept(value) if len(value) <= _CACHED_CHARS else _decoded_header(value)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _decoded_header_kept(value: str) -> tuple[str, bool]:
    return _decoded_header(value)


def _decoded_header(value: str) -> tuple[str, bool]:
    text, bad = raw_to_text(_FOLD.sub("", value))
    words, bad_words = _decode_encoded_words(text)
    return words.strip(), bad or bad_words


def _decode_encoded_words(text: str) -> tuple[str, bool]:
    chunks = _split_encoded_words(text)
    return _join_chunks(_merge_chunks(chunks))


def _split_encoded_words(text: str) -> list[Chunk]:
    chunks: list[Chunk] = []
    last_end = 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[last_end : match.start()]
        # Whitespace between two encoded-words is not part of the text (RFC 2047 §6.2).
        if gap and not (gap.isspace() and chunks and isinstance(chunks[-1], tuple)):
            chunks.append(gap)
        chunks.append(_word_bytes(match) or match.group(0))
        last_end = match.end()
    if text[last_end:]:
        chunks.append(text[last_end:])
    return chunks


def _word_bytes(match: re.Match[str]) -> tuple[bytes, str] | None:
    charset, encoding, payload = match.group(1), match.group(2).lower(), match.group(3)
    try:
        if encoding == "b":
            data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
        else:
            data = _q_decode(payload)
    except (binascii.Error, ValueError):
        return None  # kept as literal text: showing the odd word beats losing it
    return data, charset


def _q_decode(payload: str) -> bytes:
    raw = payload.replace("_", " ").encode("ascii", "surrogateescape")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def _merge_chunks(chunks: list[Chunk]) -> list[Chunk]:
    # Mailers split one multi-byte character across two encoded-words; join the bytes before decoding.
    merged: list[Chunk] = []
    for chunk in chunks:
        previous = merged[-1] if merged else None
        if isinstance(chunk, tuple) and isinstance(previous, tuple) and _same_charset(previous[1], chunk[1]):
            merged[-1] = (previous[0] + chunk[0], previous[1])
        else:
            merged.append(chunk)
    return merged


def _same_charset(a: str, b: str) -> bool:
    return (codec_for(a) or a.lower()) == (codec_for(b) or b.lower())


def _join_chunks(chunks: list[Chunk]) -> tuple[str, bool]:
    parts: list[str] = []
    bad = False
    for chunk in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
            continue
        text, replaced = decode_bytes(*chunk)
        parts.append(text)
        bad = bad or replaced
    return "".join(parts), bad


# ---------------------------------------------------------------------------------------------------------
# Parameters (filename, name, charset, report-type)


def header_param(value: str, name: str) -> tuple[str, bool] | None:
    """A parameter of a structured header value, decoded; None when absent.

    Handles RFC 2231 (with continuations and a charset), RFC 2047 words inside quotes, and raw 8-bit bytes.
    """
    return _param_kept(value, name) if len(value) <= _CACHED_CHARS else _param(value, name)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _param_kept(value: str, name: str) -> tuple[str, bool] | None:
    return _param(value, name)


def _param(value: str, name: str) -> tuple[str, bool] | None:
    text, bad = raw_to_text(_FOLD.sub("", value))
    scratch = Message(policy=compat32)
    scratch["X-Param"] = text
    try:
        found = scratch.get_param(name, header="x-param")
    except (ValueError, TypeError, IndexError):
        return None
    if found is None:
        return None
    decoded, replaced = _param_text(found)
    return decoded, bad or replaced


def _param_text(found: str | tuple[str | None, str | None, str]) -> tuple[str, bool]:
    if isinstance(found, str):
        return decode_header_value(found)
    charset, _language, text = found
    try:
        # RFC 2231 %XX escapes arrive as latin-1 characters, one per byte.
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        return decode_header_value(text)
    return decode_bytes(data, charset)


def first_token(value: str) -> str:
    """The value before the first ';', lower-cased: a content type or disposition."""
    return value.split(";", 1)[0].strip().lower()


# ---------------------------------------------------------------------------------------------------------
# Addresses and dates


def parse_addresses(value: str) -> list[tuple[str, str]]:
    """(display name, lower-case addr-spec) pairs; entries without an "@" are dropped."""
    return list(_addresses_kept(value) if len(value) <= _CACHED_CHARS else _addresses(value))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _addresses_kept(value: str) -> tuple[tuple[str, str], ...]:
    return _addresses(value)


def _addresses(value: str) -> tuple[tuple[str, str], ...]:
    unfolded = _FOLD.sub("", value)
    pairs: list[tuple[str, str]] = []
    for name, addr in email.utils.getaddresses([unfolded]):
        spec, _ = raw_to_text(addr)
        if "@" not in spec:
            continue
        pairs.append((decode_header_value(name)[0], spec.strip().lower()))
    return tuple(pairs)


def normalise_message_id(value: str) -> str:
    """A Message-ID without angle brackets or folding whitespace; "" when absent.

    The ledger, the split stage and the IMAP re-sync after a UIDVALIDITY change must agree on it exactly.
    """
    text = "".join(value.split())
    match = re.search(r"<([^<>]*)>", text)
    return (match.group(1) if match else text.strip("<>"))[:998]


def parse_date(value: str) -> datetime | None:
    """An aware datetime from an RFC 5322 date, or None; "-0000" and missing zones are read as UTC."""
    text, _ = decode_header_value(value)
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_received_time(value: str) -> datetime | None:
    """The timestamp of a Received header: what follows its last ';'."""
    text, _ = decode_header_value(value)
    if ";" not in text:
        return None
    return parse_date(text.rsplit(";", 1)[1])


# ---------------------------------------------------------------------------------------------------------
# HTML


class _TextCollector(HTMLParser):
    _SKIPPED = frozenset({"script", "style", "head", "title"})
    _BREAKS = frozenset({"br", "p", "div", "tr", "li", "table", "h1", "h2", "h3", "h4"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag in self._BREAKS:
            self.pieces.append("\n")
        elif tag in ("td", "th"):
            self.pieces.append("\t")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.pieces.append(data)


def html_to_text(html: str) -> str:
    """The visible text of an HTML body (cells separated by tabs), for matching words in it."""
    collector = _TextCollector()
    try:
        collector.feed(html)
        collector.close()
    except (AssertionError, ValueError):  # html.parser asserts on some broken markup: keep what was read
        return "".join(collector.pieces)
    return "".join(collector.pieces)
