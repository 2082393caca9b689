"""The pure middle of the pipeline: raw bytes + registry + received time → what the message is.

split → classify → attribute → read tables → recognise → normalise → check; no I/O but the injected
LibreOffice converter, so it is tested without servers and re-run by `reprocess`.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from mailbot.attribute import Attribution, alias_index, attribute
from mailbot.bounces import Bounce, is_bounce, parse_bounce
from mailbot.classify import TableOutcome, automatic_reason, decide_kind, says_nil_report
from mailbot.clock import as_local
from mailbot.config import Config, DeadlinesConfig, LimitsConfig
from mailbot.extract import Extraction, Reading, extract, read_message, table_unit_names
from mailbot.message.decode import html_to_text
from mailbot.message.model import ParsedMessage
from mailbot.message.split import parse_message
from mailbot.normalise.mapping import Mapping, load_mapping
from mailbot.periods import open_period
from mailbot.problems import NO_OPEN_PERIOD, NO_RECEIVED_TIME, OVERSIZED, UNKNOWN_SENDER, WRONG_DATE_HEADER, Finding
from mailbot.read.guard import ReadLimits
from mailbot.read.office import Converter, LibreOffice
from mailbot.read.sniff import sniff_type
from mailbot.registry import Registry
from mailbot.submissions import Draft, Setting, nil_draft
from mailbot.workdays import WorkCalendar

STAFF = "staff"  # attributed_by of a message staff assigned to a unit: the assignment outlives every re-read


@dataclass(frozen=True)
class TableRules:
    """What reading tables needs from the config and the outside world (the converter)."""

    mapping: Mapping
    deadlines: DeadlinesConfig = field(default_factory=DeadlinesConfig)
    workdays: WorkCalendar = field(default_factory=WorkCalendar)
    convert: Converter | None = None
    limits: ReadLimits = field(default_factory=ReadLimits)

    @classmethod
    def default(cls) -> TableRules:
        return cls(mapping=load_mapping())

    @classmethod
    def from_config(cls, config: Config) -> TableRules:
        """The staff's mapping, the deadlines and LibreOffice (when installed)."""
        tables = config.tables
        mapping = load_mapping(Path(config.base_dir) / tables.mapping_file if tables.mapping_file else None)
        program = shutil.which(tables.libreoffice) if tables.libreoffice else None
        office = LibreOffice(program, tables.conversion_timeout_seconds) if program else None
        limits = ReadLimits(
            max_inflated_bytes=tables.max_inflated_bytes, convert_timeout_seconds=tables.conversion_timeout_seconds
        )
        return cls(mapping, config.deadlines, WorkCalendar.from_config(config.calendar), office, limits)


@dataclass(frozen=True)
class Analysis:
    parsed: ParsedMessage
    kind: str
    unit: str | None
    sender_known: bool
    attributed_by: str
    automatic: str | None
    findings: tuple[Finding, ...]
    drafts: tuple[Draft, ...] = ()
    file_types: tuple[str, ...] = ()  # the type sniffed from each attachment's content, in order
    bounce: Bounce | None = None  # what a bounce of mailbot's own mail says it returns


@dataclass(frozen=True)
class Opened:
    """A message on its way through `analyse`, which runs in three steps (parse, read the files, decide) so
    that a worker can take a few messages through each step in turn, the step's code staying in the
    processor's caches (see workers.run_jobs)."""

    raw: bytes
    parsed: ParsedMessage
    automatic: str | None  # why the mail is automatic (never read, never counted, never answered), else None
    reading: Reading | None = None  # its files and the tables in them, once read (never, for automatic mail)

    @property
    def cells(self) -> int:
        """How many cells the tables read so far hold (what reading ahead keeps in memory)."""
        tables = self.reading.tables if self.reading is not None else ()
        sheets = {id(located.table.sheet): located.table.sheet for located in tables}  # two tables, one sheet
        return sum(len(row) for sheet in sheets.values() for row in sheet.rows)


def open_message(raw: bytes, registry: Registry, limits: LimitsConfig) -> Opened:
    parsed = parse_message(raw, max_attachment_bytes=limits.max_attachment_bytes)
    return Opened(raw, parsed, automatic_reason(parsed, registry.own_addresses))


def read_files(opened: Opened, rules: TableRules | None = None) -> Opened:
    """The message with its files read; automatic mail is never read."""
    if opened.automatic is not None or opened.reading is not None:
        return opened
    rules = rules or TableRules.default()
    return dataclasses.replace(opened, reading=read_message(opened.parsed, rules.convert, rules.limits))


def analyse(
    raw: bytes,
    registry: Registry,
    limits: LimitsConfig,
    received_at: datetime,
    received_from_header: bool = True,
    rules: TableRules | None = None,
    assigned: str | None = None,
) -> Analysis:
    """Decide kind, unit, submissions and problems of one message. `received_from_header` is False when an
    ingested file had no Received header and its received time had to be taken from elsewhere. `assigned`: the
    unit staff assigned this message to; it replaces attribution (but automatic mail still never counts)."""
    opened = open_message(raw, registry, limits)
    return conclude(opened, registry, limits, received_at, received_from_header, rules, assigned)


def conclude(
    opened: Opened,
    registry: Registry,
    limits: LimitsConfig,
    received_at: datetime,
    received_from_header: bool = True,
    rules: TableRules | None = None,
    assigned: str | None = None,
) -> Analysis:
    """The rest of `analyse` for a message `open_message` parsed: read its files (unless `read_files` did) and
    decide."""
    rules = rules or TableRules.default()
    raw, parsed, automatic = opened.raw, opened.parsed, opened.automatic
    if automatic is not None:  # never read, never counted, never answered
        attribution = _automatic_attribution(parsed, registry)
        file_types = tuple(sniff_type(part.data, part.filename) for part in parsed.attachments)
        bounce = parse_bounce(raw, registry.own_addresses) if is_bounce(parsed) else None
        unit, known = attribution.unit, attribution.sender_known
        return Analysis(parsed, "auto_or_bounce", unit, known, "", automatic, (), (), file_types, bounce)
    reading = opened.reading if opened.reading is not None else read_message(parsed, rules.convert, rules.limits)
    attribution = (
        Attribution(assigned, sender_known=False, by=STAFF)
        if assigned
        else _with_tables(attribute(parsed, registry), parsed, reading, registry)
    )
    extraction = extract(parsed, reading, _setting(parsed, attribution, received_at, rules, registry))
    drafts = _with_nil(extraction, parsed, attribution, received_at, rules)
    kind = decide_kind(parsed, attribution, None, _with_data(_outcome(drafts, extraction), reading))
    findings = (
        *_size_findings(len(raw), limits),
        *parsed.findings,
        *attribution.findings,
        *_sender_findings(kind, attribution, parsed),
        *_time_findings(parsed, received_at, limits, received_from_header),
        *extraction.findings,
    )
    return Analysis(
        parsed=parsed,
        kind=kind,
        unit=attribution.unit,
        sender_known=attribution.sender_known,
        attributed_by=attribution.by,
        automatic=None,
        findings=_unique(findings),
        drafts=drafts,
        file_types=reading.file_types,
    )


def _setting(
    parsed: ParsedMessage, attribution: Attribution, received_at: datetime, rules: TableRules, registry: Registry
) -> Setting:
    body = parsed.text_body if parsed.text_body.strip() else html_to_text(parsed.html_body)
    return Setting(
        unit=attribution.unit,
        received_at=received_at,
        body=f"{parsed.subject}\n{body}",
        mapping=rules.mapping,
        deadlines=rules.deadlines,
        workdays=rules.workdays,
        unit_named=alias_index(registry).unit_named,
    )


def _with_tables(attribution: Attribution, parsed: ParsedMessage, reading: Reading, registry: Registry) -> Attribution:
    """An unknown sender whose tables name exactly one registered unit (单位名称, title) is that unit."""
    if attribution.unit is not None or attribution.findings:
        return attribution  # a registered address, or staff rejected this sender, or the content is ambiguous
    named = table_unit_names(reading, alias_index(registry).unit_named)
    if len(named) != 1:
        return attribution
    (unit,) = named
    address = parsed.from_address or "（空）"
    finding = Finding(UNKNOWN_SENDER, f"发件地址 {address} 未登记，按表格中的单位名称归属于 {unit}，请工作人员确认")
    return Attribution(unit, sender_known=False, by="table", findings=(finding,))


def _with_nil(
    extraction: Extraction, parsed: ParsedMessage, attribution: Attribution, received_at: datetime, rules: TableRules
) -> tuple[Draft, ...]:
    """A mail that only says 未开展 / 本期无 (a signature logo aside) is a nil report for the period of annex 3
    (annex 1 when it says so) open when it arrived."""
    drafts = extraction.drafts
    if drafts or attribution.unit is None or extraction.reading.files_sent or not says_nil_report(parsed):
        return drafts
    period = open_period(_nil_annex(parsed), received_at, rules.deadlines, rules.workdays)
    return drafts if period is None else (nil_draft(attribution.unit, period, received_at),)


def _nil_annex(parsed: ParsedMessage) -> str:
    text = parsed.subject + parsed.text_body
    return "1" if "附件1" in text or "推荐" in text else "3"


def _outcome(drafts: tuple[Draft, ...], extraction: Extraction) -> TableOutcome:
    # A table the deadlines have no period for was still a report: staff settle it (no_open_period).
    unplaced = any(f.code == NO_OPEN_PERIOD for f in extraction.findings)
    return TableOutcome(
        counted=unplaced or any(not d.nil for d in drafts),
        nil=bool(drafts) and all(d.nil for d in drafts),
        rejected=extraction.rejected,
    )


def _automatic_attribution(parsed: ParsedMessage, registry: Registry) -> Attribution:
    # Automatic mail (bounces, auto-replies, our own mail) often quotes a unit's name; it must not count.
    unit = registry.unit_for_address(parsed.from_address)
    return Attribution(unit=unit.name if unit else None, sender_known=unit is not None, by="", findings=())


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


def _with_data(outcome: TableOutcome, reading: Reading) -> TableOutcome:
    """Whether the mail carried a table or a file that could hold one: spam with neither concerns nobody."""
    return dataclasses.replace(outcome, carries_data=bool(reading.tables or reading.files_sent))


def _unique(findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    return tuple(dict.fromkeys(findings))
