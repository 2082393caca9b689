"""The pure middle of the pipeline: raw bytes + registry + received time → what the message is.

split → classify → attribute → check; no I/O, so it is tested without servers and re-run by `reprocess`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailbot.attribute import Attribution, attribute
from mailbot.classify import automatic_reason, decide_kind
from mailbot.clock import as_local
from mailbot.config import LimitsConfig
from mailbot.message.model import ParsedMessage
from mailbot.message.split import parse_message
from mailbot.problems import NO_RECEIVED_TIME, OVERSIZED, UNKNOWN_SENDER, WRONG_DATE_HEADER, Finding
from mailbot.registry import Registry


@dataclass(frozen=True)
class Analysis:
    parsed: ParsedMessage
    kind: str
    unit: str | None
    sender_known: bool
    attributed_by: str
    automatic: str | None
    findings: tuple[Finding, ...]


def analyse(
    raw: bytes,
    registry: Registry,
    limits: LimitsConfig,
    received_at: datetime,
    received_from_header: bool = True,
) -> Analysis:
    """Decide kind, unit and problems of one message. `received_from_header` is False when an ingested
    file had no Received header and its received time had to be taken from elsewhere."""
    parsed = parse_message(raw, max_attachment_bytes=limits.max_attachment_bytes)
    automatic = automatic_reason(parsed, registry.own_addresses)
    attribution = _attribution(parsed, registry, automatic)
    kind = decide_kind(parsed, attribution, automatic)
    findings = (
        *_size_findings(len(raw), limits),
        *parsed.findings,
        *attribution.findings,
        *_sender_findings(kind, attribution, parsed),
        *_time_findings(parsed, received_at, limits, received_from_header),
    )
    return Analysis(
        parsed=parsed,
        kind=kind,
        unit=attribution.unit,
        sender_known=attribution.sender_known,
        attributed_by=attribution.by,
        automatic=automatic,
        findings=_unique(findings) if kind != "auto_or_bounce" else (),
    )


def _attribution(parsed: ParsedMessage, registry: Registry, automatic: str | None) -> Attribution:
    # Automatic mail (bounces, auto-replies, our own mail) often quotes a unit's name; it must not count.
    if automatic is not None:
        unit = registry.unit_for_address(parsed.from_address)
        return Attribution(unit=unit.name if unit else None, sender_known=unit is not None, by="", findings=())
    return attribute(parsed, registry)


def _size_findings(size: int, limits: LimitsConfig) -> tuple[Finding, ...]:
    if size <= limits.max_message_bytes:
        return ()
    return (
        Finding(
            OVERSIZED,
            f"邮件大小 {size // 1024 // 1024} MB，超过上限 {limits.max_message_bytes // 1024 // 1024} MB",
        ),
    )


def _sender_findings(kind: str, attribution: Attribution, parsed: ParsedMessage) -> tuple[Finding, ...]:
    if kind != "unknown_sender" or any(f.code == UNKNOWN_SENDER for f in attribution.findings):
        return ()
    sender = parsed.from_address or "（无发件地址）"
    return (Finding(UNKNOWN_SENDER, f"发件地址 {sender} 未登记，邮件中也未能识别出单位，请工作人员核实"),)


def _time_findings(
    parsed: ParsedMessage, received_at: datetime, limits: LimitsConfig, received_from_header: bool
) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    if not received_from_header:
        findings.append(Finding(NO_RECEIVED_TIME, "邮件文件没有 Received 信头，收件时间按 Date 信头或导入时间计"))
    if parsed.date_header is not None and received_from_header:
        gap = abs(parsed.date_header - received_at)
        if gap > timedelta(hours=limits.date_header_tolerance_hours):
            claimed = as_local(parsed.date_header).strftime("%Y-%m-%d %H:%M")
            actual = as_local(received_at).strftime("%Y-%m-%d %H:%M")
            findings.append(
                Finding(WRONG_DATE_HEADER, f"邮件自称发送于 {claimed}，服务器收到于 {actual}，以收到时间为准")
            )
    return tuple(findings)


def _unique(findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    return tuple(dict.fromkeys(findings))
