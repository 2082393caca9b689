"""Split stage: raw message bytes → ParsedMessage (headers, bodies, attachments). Pure; never raises.

Hostile or truncated input yields a MALFORMED_MESSAGE finding with whatever could be read, because one bad
message must not stop a poll and the archive keeps the raw bytes for a person to look at.
"""

from __future__ import annotations

import email.errors
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser
from email.policy import compat32

from mailbot.message.blobs import Blobs, lift
from mailbot.message.boundary import restore, share_boundary
from mailbot.message.decode import (
    decode_bytes,
    decode_header_value,
    first_token,
    header_param,
    normalise_message_id,
    parse_addresses,
    parse_date,
    parse_received_time,
)
from mailbot.message.model import ParsedMessage, Part
from mailbot.message.names import display_name, name_finding
from mailbot.problems import MALFORMED_MESSAGE, OVERSIZED, UNDECODABLE_HEADER, Finding

MAX_DEPTH = 30  # forwarded-in-forwarded mail never nests this deep; hostile input might
# Report machinery inside bounces and receipts: neither body text nor a file a unit sent.
_REPORT_PARTS = frozenset(
    {"message/delivery-status", "message/disposition-notification", "text/rfc822-headers"}
    | {"message/feedback-report", "message/global-delivery-status", "message/global-headers"}
)
_DEFECTS: dict[type[email.errors.MessageDefect], str] = {
    email.errors.StartBoundaryNotFoundDefect: "找不到分段起始边界",
    email.errors.CloseBoundaryNotFoundDefect: "缺少分段结束边界（邮件可能被截断）",
    email.errors.NoBoundaryInMultipartDefect: "多段邮件未声明分段边界",
    email.errors.MultipartInvariantViolationDefect: "多段邮件结构自相矛盾",
    email.errors.MissingHeaderBodySeparatorDefect: "邮件头与正文之间缺少空行",
    email.errors.FirstHeaderLineIsContinuationDefect: "第一行邮件头是续行",
    email.errors.MisplacedEnvelopeHeaderDefect: "邮件头中夹有信封行",
    email.errors.InvalidBase64LengthDefect: "base64 编码长度错误，内容可能不完整",
    email.errors.InvalidMultipartContentTransferEncodingDefect: "多段邮件使用了无效的传输编码",
}


@dataclass
class _Collected:
    """What the walk over the MIME tree gathers; frozen into a ParsedMessage at the end."""

    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Part] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    blobs: Blobs = field(default_factory=lambda: Blobs(b""))


def parse_message(raw: bytes, max_attachment_bytes: int | None = None) -> ParsedMessage:
    """Parse raw message bytes. Never raises: broken input yields a MALFORMED_MESSAGE finding."""
    # The contract is "never raises": the raw bytes stay archived for a person to look at.
    try:
        return _parse(raw, max_attachment_bytes)
    except Exception as exc:
        problem = f"邮件正文无法解析（内部错误 {type(exc).__name__}），只读取了邮件头，原始邮件已存档"
    try:
        return _headers_only(raw, problem)
    except Exception:
        return _unreadable(f"邮件无法解析，原始邮件已存档，请人工查看。{problem}")


def _parse(raw: bytes, max_attachment_bytes: int | None) -> ParsedMessage:
    slim, blobs = lift(raw)
    slim, boundary = share_boundary(slim)
    root = BytesParser(policy=compat32).parsebytes(slim)
    del slim
    headers, header_findings = _decoded_headers(root, boundary)
    collected = _Collected(findings=header_findings, blobs=blobs)
    if not headers:
        collected.problems.append("未找到任何邮件头")
    _walk(root, 0, collected, max_attachment_bytes)
    return _assemble(root, headers, collected)


def _headers_only(raw: bytes, problem: str) -> ParsedMessage:
    # The body parser recurses once per nesting level; a hostile message can exhaust the stack.
    root = BytesHeaderParser(policy=compat32).parsebytes(raw)
    headers, header_findings = _decoded_headers(root)
    return _assemble(root, headers, _Collected(findings=header_findings, problems=[problem]))


def _assemble(root: Message, headers: tuple[tuple[str, str], ...], got: _Collected) -> ParsedMessage:
    first = _first_values(headers)
    from_name, from_address = _first_address(_raw_header(root, "from"))
    return ParsedMessage(
        message_id=normalise_message_id(first.get("message-id", "")),
        from_address=from_address,
        from_name=from_name,
        to_addresses=tuple(a for v in _raw_headers(root, "to") for _, a in parse_addresses(v)),
        subject=first.get("subject", ""),
        date_header=parse_date(first["date"]) if "date" in first else None,
        received_header_time=parse_received_time(first["received"]) if "received" in first else None,
        headers=headers,
        content_type=_content_type(root),
        report_type=_report_type(root),
        text_body="\n".join(got.text),
        html_body="\n".join(got.html),
        attachments=tuple(got.attachments),
        findings=(*got.findings, *_malformed(got.problems)),
    )


def _unreadable(detail: str) -> ParsedMessage:
    return ParsedMessage(
        message_id="",
        from_address="",
        from_name="",
        to_addresses=(),
        subject="",
        date_header=None,
        received_header_time=None,
        headers=(),
        content_type="",
        report_type="",
        text_body="",
        html_body="",
        attachments=(),
        findings=(Finding(MALFORMED_MESSAGE, detail),),
    )


# ---------------------------------------------------------------------------------------------------------
# Headers


def _decoded_headers(root: Message, boundary: str | None = None) -> tuple[tuple[tuple[str, str], ...], list[Finding]]:
    """`boundary`: the top-level boundary as the mail wrote it, when `share_boundary` gave the parser a shared one;
    the Content-Type header gets it back (`_report_type`, the only other reader of that header, needs none)."""
    decoded: list[tuple[str, str]] = []
    findings: dict[str, Finding] = {}
    for name, value in root.raw_items():
        text, bad = decode_header_value(restore(str(value), boundary))
        decoded.append((name.lower(), text))
        if bad and name.lower() not in findings:
            detail = f"邮件头“{name}”含无法识别的字节，已用 � 代替：{text}"
            findings[name.lower()] = Finding(UNDECODABLE_HEADER, detail)
    return tuple(decoded), list(findings.values())


def _first_values(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    first: dict[str, str] = {}
    for name, value in headers:
        first.setdefault(name, value)
    return first


def _raw_headers(part: Message, name: str) -> list[str]:
    # raw_items() skips the policy, so 8-bit bytes stay as surrogate escapes instead of becoming "�".
    return [str(v) for k, v in part.raw_items() if k.lower() == name]


def _raw_header(part: Message, name: str) -> str:
    values = _raw_headers(part, name)
    return values[0] if values else ""


def _first_address(value: str) -> tuple[str, str]:
    pairs = parse_addresses(value) if value else []
    return pairs[0] if pairs else ("", "")


def _content_type(part: Message) -> str:
    declared = first_token(_raw_header(part, "content-type"))
    # RFC 2045 §5.2: a missing or invalid type is text/plain (email does the same).
    if declared.count("/") == 1 and "" not in declared.split("/"):
        return declared
    return part.get_default_type()


def _report_type(root: Message) -> str:
    if _content_type(root) != "multipart/report":
        return ""
    found = header_param(_raw_header(root, "content-type"), "report-type")
    return found[0].strip().lower() if found else ""


def _malformed(problems: list[str]) -> tuple[Finding, ...]:
    if not problems:
        return ()
    listed = "；".join(dict.fromkeys(problems))
    return (Finding(MALFORMED_MESSAGE, f"邮件结构有误，已保留能读取的部分：{listed}"),)


# ---------------------------------------------------------------------------------------------------------
# The MIME tree


def _walk(part: Message, depth: int, got: _Collected, limit: int | None) -> None:
    got.problems.extend(_DEFECTS[type(d)] for d in part.defects if type(d) in _DEFECTS)
    if depth > MAX_DEPTH:
        got.problems.append(f"嵌套超过 {MAX_DEPTH} 层，更深的部分未读取")
        return
    ctype = _content_type(part)
    if ctype in _REPORT_PARTS:
        return
    for child in _children(part):
        _walk(child, depth + 1, got, limit)
    if not part.is_multipart():
        _leaf(part, ctype, got, limit)


def _children(part: Message) -> Iterator[Message]:
    # Multiparts and message/rfc822 (forwarded mail) both hold a list of sub-messages under compat32.
    payload = part.get_payload() if part.is_multipart() else None
    if isinstance(payload, list):
        yield from (child for child in payload if isinstance(child, Message))


def _leaf(part: Message, ctype: str, got: _Collected, limit: int | None) -> None:
    given, bad_name = _filename(part)
    filename = display_name(given)
    disposition = first_token(_raw_header(part, "content-disposition"))
    body_type = ctype if ctype in ("text/plain", "text/html") else ""
    if ctype.startswith("multipart/"):
        body_type = "text/plain"  # a multipart without usable boundaries: its text is all we have
    if body_type and not filename and disposition != "attachment":
        _body(part, body_type, got)
        return
    position = len(got.attachments)
    got.attachments.append(_attachment(part, position, filename, ctype, limit, got))
    if bad_name:
        detail = f"附件文件名含无法识别的字节，已用 � 代替：{filename}"
        got.findings.append(Finding(UNDECODABLE_HEADER, detail, position))
    hostile = name_finding(given)
    if hostile is not None:
        got.findings.append(replace(hostile, attachment_position=position))


def _body(part: Message, body_type: str, got: _Collected) -> None:
    data = _payload(part, got.blobs)
    charset = header_param(_raw_header(part, "content-type"), "charset")
    text, _ = decode_bytes(data, charset[0] if charset else None)
    (got.text if body_type == "text/plain" else got.html).append(text)


def _filename(part: Message) -> tuple[str, bool]:
    """The decoded name as given, hidden characters and all (checked, then cleaned for display by the caller),
    and whether some of its bytes could not be decoded."""
    found = header_param(_raw_header(part, "content-disposition"), "filename")
    found = found or header_param(_raw_header(part, "content-type"), "name")
    if found is None:
        return "", False
    return found[0], found[1]


# ---------------------------------------------------------------------------------------------------------
# Attachments


def _attachment(part: Message, position: int, name: str, ctype: str, limit: int | None, got: _Collected) -> Part:
    size = _encoded_size(part, got.blobs)
    data = b"" if limit is not None and size > limit else _payload(part, got.blobs)
    if limit is not None and (size > limit or len(data) > limit):
        got.findings.append(_oversized(position, name, max(size, len(data)), limit))
        return Part(position, name, ctype, b"", "", size=max(size, len(data)))  # no hash: no content kept
    return Part(position, name, ctype, data, hashlib.sha256(data).hexdigest())


def _encoded_payload(part: Message) -> str | None:
    """The payload as transferred, or None when the email package cannot give it (it decodes 8-bit text
    with the part's declared charset, and a hostile charset parameter makes that raise)."""
    try:
        encoded = part.get_payload()
    except (ValueError, LookupError):
        return None
    return encoded if isinstance(encoded, str) else None


def _encoded_size(part: Message, blobs: Blobs) -> int:
    """The decoded size, estimated from the encoded payload so a huge part is never decoded."""
    encoded = _encoded_payload(part)
    if encoded is None:
        return len(_payload(part, blobs))
    span = blobs.span(encoded)
    if span is not None:
        return blobs.base64_size(span) if _is_base64(part) else blobs.encoded_size(span)
    if not _is_base64(part):
        return len(encoded)
    significant = len(encoded) - sum(encoded.count(ch) for ch in " \t\r\n")
    return significant * 3 // 4 - min(encoded.rstrip().count("=", -2), 2)


def _payload(part: Message, blobs: Blobs) -> bytes:
    encoded = _encoded_payload(part)
    span = blobs.span(encoded) if encoded is not None else None
    if span is not None and _is_base64(part):
        return blobs.decode_base64(span)
    if encoded is not None and blobs.spans and "mailbot-blob-" in encoded:
        # Lifted lines of another transfer encoding (quoted-printable Chinese is all letters, digits and "="),
        # or a token amid other lines: put the text back and let the email package decode it as sent.
        part.set_payload(blobs.restore(encoded))
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _is_base64(part: Message) -> bool:
    return first_token(_raw_header(part, "content-transfer-encoding")) == "base64"


def _oversized(position: int, name: str, size: int, limit: int) -> Finding:
    shown = name or "（无文件名）"
    detail = f"附件“{shown}”大小约 {_human_size(size)}，超过单个附件上限 {_human_size(limit)}，未读取其内容"
    return Finding(OVERSIZED, detail, position)


def _human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} 字节"
