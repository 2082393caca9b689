"""Configuration: a TOML file read into frozen dataclasses, validated at load.

Every error names the offending key (``imap.port``, ``units[3].emails[0]``) so an operator can fix the file
without reading code. Secrets are never in the file: it names an environment variable (or a file) instead.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailbot.errors import ConfigError

UNIT_CATEGORIES = ("县市区", "产业工会", "市直", "直属企业", "市总")
AFTER_INGEST_ACTIONS = ("none", "flag")  # plus "move:<folder>"
AMOUNT_UNITS = ("wan", "yuan")  # 万元 or 元, for the consolidated workbook


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = ""  # empty: a SQLite file inside data_dir


@dataclass(frozen=True)
class ImapConfig:
    host: str = "imap.163.com"
    port: int = 993
    ssl: bool = True
    user: str = ""
    password_env: str = "MAILBOT_IMAP_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
    password_file: str = ""
    folder: str = "INBOX"
    batch_size: int = 50
    timeout_seconds: int = 60
    # Sent with the IMAP ID command; 163.com refuses SELECT from clients that do not identify themselves.
    id_name: str = "mailbot"
    id_vendor: str = "mailbot"
    # What to do with a message in the mailbox once it is stored: leave it ("none"), add \Seen ("flag"),
    # or "move:<folder>". Staff read the same mailbox, so the default changes nothing.
    after_ingest: str = "none"


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "smtp.163.com"
    port: int = 465
    ssl: bool = True
    starttls: bool = False
    user: str = ""
    password_env: str = "MAILBOT_SMTP_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
    password_file: str = ""
    from_address: str = ""
    from_name: str = "平顶山市总工会"
    timeout_seconds: int = 60


@dataclass(frozen=True)
class StaffConfig:
    digest_to: tuple[str, ...] = ()
    # The worker sends the digest at this time on working days (HH:MM, Asia/Shanghai).
    digest_time: str = "17:30"
    # The periods a digest is about: due within this many days, or overdue by fewer than digest_overdue_days
    # (a period that takes tables all year is not news every day once its reminders have stopped).
    digest_lookahead_days: int = 30
    digest_overdue_days: int = 45
    # Unknown senders and unreadable files stay on the digest this many days, or until they are settled.
    digest_attention_days: int = 14
    # Amounts in the consolidated workbook attached to the digest: "wan" (万元, as the circular) or "yuan" (元).
    digest_amounts: str = "wan"
    # Names of the receiving organisation. Units write them in every mail ("报送市总工会"), so they are
    # removed from text before a unit is recognised from content; a registered address still attributes
    # to 市总工会.
    addressee_names: tuple[str, ...] = ("平顶山市总工会", "市总工会", "市总")
    # Further addresses whose mail is mailbot's own (besides imap.user and smtp.from_address).
    own_addresses: tuple[str, ...] = ()
    # Who signs every mail to units, and the person and phone they can call (seed 000: 联系人 王维 0375-3799638).
    office: str = "平顶山市总工会"
    contact_name: str = "王维"
    contact_phone: str = "0375-3799638"
    # The address units send their tables to, as the notices name it; empty: smtp.from_address.
    mailbox: str = ""


@dataclass(frozen=True)
class LimitsConfig:
    max_message_bytes: int = 60 * 1024 * 1024
    max_attachment_bytes: int = 30 * 1024 * 1024
    # How far the Date header may be from the received time before it is flagged.
    date_header_tolerance_hours: int = 48


# What people call each period (2021年上半年, not "the one due 2021-06-15"), by its id without the year; {year} and,
# for months, {month} are filled in. A period without a name here is "2021年6月15日截止的一期".
DEFAULT_PERIOD_NAMES: tuple[tuple[str, str], ...] = (
    ("annex1-04-15", "{year}年度"),  # the year's product recommendations (推荐统计表), due 4月15日
    ("annex3-06-15", "{year}年上半年"),
    ("annex3-11-25", "{year}年全年"),  # seed 000: 11月底前完成全年任务; the 11-25 table reports the year
    ("monthly", "{year}年{month}月"),
)


@dataclass(frozen=True)
class DeadlinesConfig:
    """Deadlines as month-day strings; a year's periods are built from them (GUIDE §2)."""

    annex1: tuple[str, ...] = ("04-15",)
    annex3: tuple[str, ...] = ("06-15", "11-25")
    # When each period stops taking tables: until then a late table counts toward it, afterwards toward the
    # next one. Empty: the end of the deadline's month, and 12-31 for the year's last deadline — which gives
    # the 2021 notice's checks at the end of June and of December (督促检查阶段 6月底、12月底).
    annex1_close: tuple[str, ...] = ()
    annex3_close: tuple[str, ...] = ()
    annex2_within_days: int = 7
    monthly: bool = False
    monthly_close_days: int = 10
    # [deadlines.names]: a TOML table, merged over DEFAULT_PERIOD_NAMES (kept as pairs: the config is hashable).
    names: tuple[tuple[str, str], ...] = DEFAULT_PERIOD_NAMES

    def name_of(self, key: str) -> str:
        return dict(self.names).get(key, "")


@dataclass(frozen=True)
class RemindersConfig:
    before_days: tuple[int, ...] = (7, 3, 1)
    after_days: tuple[int, ...] = (1, 3, 7)  # then weekly until the period closes
    # At most this many weekly notices: a period that takes tables all year (annex 1) is not nagged all year.
    weekly_limit: int = 4
    # Annex 2 is due a week after each activity, a date mailbot cannot know: on this day of each month (moved to
    # the working day before), units that sent no annex-2 table that month are asked. 0 = off.
    annex2_nudge_day: int = 0
    receipts: bool = True  # a 回执 for every report, nil report and rejected file from a unit
    # Mail older than this gets no receipt: a first sync of last year's mailbox must not answer it all.
    receipt_max_age_days: int = 3


@dataclass(frozen=True)
class OutboxConfig:
    per_minute: int = 20  # 163.com treats a burst as spam (451 DT:SPM)
    max_attempts: int = 8  # temporary failures (4xx, a dropped connection) before a mail is given up
    templates_dir: str = ""  # a folder of staff-edited mail templates; files there win over mailbot's own
    # A claim older than this belongs to a sender that died or stalled (an SMTP conversation never takes this
    # long): its mail is taken back. A stalled sender that wakes up later finds it lost the mail and stops.
    lease_seconds: int = 600


@dataclass(frozen=True)
class CalendarConfig:
    """Staff corrections to chinesecalendar, as YYYY-MM-DD: days worked (调休) and days off it does not know."""

    workdays: tuple[str, ...] = ()
    days_off: tuple[str, ...] = ()


@dataclass(frozen=True)
class TablesConfig:
    """How tables are read: the staff's spelling mapping and the LibreOffice command for .doc/.wps files."""

    mapping_file: str = ""  # empty: the mapping shipped with mailbot (mailbot/data/mapping.toml)
    libreoffice: str = "soffice"  # a command or path; empty disables .doc/.wps conversion
    conversion_timeout_seconds: int = 60
    max_inflated_bytes: int = 100 * 1024 * 1024  # per file, all zip members together (xlsx and docx are zips)
    # Processes reading tables side by side when a first sync or a backlog brings many messages:
    # 0 = one per CPU core (at most 4), 1 = none besides mailbot's own.
    workers: int = 0


@dataclass(frozen=True)
class WorkerConfig:
    """`mailbot run`: how often the worker polls, and how often it tells other workers it is alive."""

    poll_minutes: int = 5
    # A worker whose heartbeat is 4 beats old (2 minutes by default) is taken for dead by the next one to start.
    heartbeat_seconds: int = 30
    # Push: the worker waits for new mail in IMAP IDLE (RFC 2177) when the server offers it, and answers it at
    # once; the scheduled poll stays as the safety net. false: only the scheduled poll.
    idle: bool = True
    idle_minutes: int = 25  # IDLE is ended and re-issued after this long (RFC 2177: within 29 minutes)
    noop_seconds: int = 60  # a server without IDLE is asked with NOOP this often; 0 = only the scheduled poll


CIRCULAR_PRAISE = ("on_time", "with_data", "no_problems")  # what a unit must have done to be named with praise
CIRCULAR_CRITICISE = ("late", "missing")  # who the circular names as falling short


@dataclass(frozen=True)
class CircularConfig:
    """Whom the draft circular names, as seed 003 does: a few exemplary units, and those that fell short."""

    # Every condition must hold for praise: on_time (first table by the deadline), with_data (not 本期无数据),
    # no_problems (no data problem left in the table that counts).
    praise: tuple[str, ...] = CIRCULAR_PRAISE
    praise_max: int = 10  # the earliest reporters first; 0 names every unit that qualifies
    criticise: tuple[str, ...] = CIRCULAR_CRITICISE  # late, missing: named under 报送不够及时
    # The 文号 line under the red masthead; staff fill in the number.
    doc_number: str = "平工办〔{year}〕【 】号"
    issuer: str = "平顶山市总工会办公室"  # the masthead (…文件) and the signature


@dataclass(frozen=True)
class WebConfig:
    """`mailbot web`: the staff console. It binds to loopback unless told otherwise (a reverse proxy in front
    serves it to the office); the session-signing secret comes from the environment or a file, never this file."""

    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = ""  # how staff reach it, e.g. https://mailbot.example.cn: the digest's links; https → Secure cookie
    secret_env: str = "MAILBOT_WEB_SECRET"  # noqa: S105 - the name of a variable, not a secret
    secret_file: str = ""


@dataclass(frozen=True)
class UnitConfig:
    name: str
    category: str
    aliases: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    contact: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Config:
    data_dir: str = "mailbot-data"
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    imap: ImapConfig = field(default_factory=ImapConfig)
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    deadlines: DeadlinesConfig = field(default_factory=DeadlinesConfig)
    reminders: RemindersConfig = field(default_factory=RemindersConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    calendar: CalendarConfig = field(default_factory=CalendarConfig)
    tables: TablesConfig = field(default_factory=TablesConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    web: WebConfig = field(default_factory=WebConfig)
    circular: CircularConfig = field(default_factory=CircularConfig)
    units: tuple[UnitConfig, ...] = ()
    # The folder the config file lives in: relative paths in it are relative to this.
    base_dir: str = "."

    @property
    def data_path(self) -> Path:
        path = Path(self.data_dir)
        return path if path.is_absolute() else Path(self.base_dir) / path

    @property
    def archive_path(self) -> Path:
        return self.data_path / "archive"

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.data_path / 'mailbot.db'}"

    @property
    def mailbox(self) -> str:
        """The address units send tables to, as mails and blank annexes name it."""
        return self.staff.mailbox or self.smtp.from_address or self.imap.user

    @property
    def own_addresses(self) -> frozenset[str]:
        found = {self.imap.user, self.smtp.user, self.smtp.from_address, *self.staff.own_addresses}
        return frozenset(a.strip().lower() for a in found if a.strip())


# ---------------------------------------------------------------------------------------------------------
# Loading


def load_config(path: Path) -> Config:
    """Read and validate a TOML file. Raises ConfigError naming the key at fault."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return config_from_dict(raw, base_dir=str(path.resolve().parent))


def config_from_dict(raw: dict[str, Any], base_dir: str = ".") -> Config:
    """Build a Config from parsed TOML (the demo and tests build their config this way)."""
    raw = dict(raw)
    if "base_dir" in raw:
        raise ConfigError("base_dir: unknown key (it is always the folder the config file is in)")
    sections = (
        "database",
        "imap",
        "smtp",
        "staff",
        "limits",
        "deadlines",
        "reminders",
        "outbox",
        "calendar",
        "tables",
        "worker",
        "web",
        "circular",
    )
    for section in sections:
        if section in raw and not isinstance(raw[section], dict):
            raise ConfigError(f"{section}: expected a table ([{section}])")
    raw = _monthly_defaults(raw)
    config: Config = _build(Config, {**raw, "base_dir": base_dir}, "")
    _check_semantics(config)
    return config


def _monthly_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """Monthly reporting replaces the fixed annex-3 deadlines: a config that turns it on without naming annex-3
    deadlines means no fixed ones (the 2020 regime), rather than the 2021 defaults beside the months."""
    deadlines = raw.get("deadlines")
    if not isinstance(deadlines, dict) or deadlines.get("monthly") is not True or "annex3" in deadlines:
        return raw
    return {**raw, "deadlines": {**deadlines, "annex3": []}}


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    # Resolving the annotations costs ~0.4 ms a call: once per class, not once per [[units]] block (300 of them).
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _build(cls: type[Any], raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a table")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    toml_names = {_toml_name(name): name for name in fields}
    unknown = sorted(set(raw) - set(toml_names))
    if unknown:
        known = ", ".join(sorted(toml_names))
        raise ConfigError(f"{_join(where, unknown[0])}: unknown key (known keys here: {known})")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = toml_names[key]
        values[name] = _convert(hints[name], value, _join(where, key))
    missing = [
        n
        for n, f in fields.items()
        if n not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{_join(where, _toml_name(missing[0]))}: required key is missing")
    return cls(**values)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type[Any], hint), value, where)
    if origin is tuple and typing.get_args(hint)[0] == tuple[str, str]:
        return _pairs(value, where)
    if origin is tuple:
        item_hint = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {_kind(value)}")
        return tuple(_convert(item_hint, item, f"{where}[{i}]") for i, item in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{where}: unsupported type")  # no optional keys: every key has a default
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_kind(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_kind(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_kind(value)}")
        return value
    raise ConfigError(f"{where}: unsupported type {hint!r}")


def _pairs(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """A TOML table of strings, merged over the field's defaults (only [deadlines.names] has this shape)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table of names, got {_kind(value)}")
    merged = dict(DEFAULT_PERIOD_NAMES)
    for key, name in value.items():
        if not isinstance(name, str):
            raise ConfigError(f"{_join(where, key)}: expected a string, got {_kind(name)}")
        merged[key] = name
    return tuple(merged.items())


def _toml_name(field_name: str) -> str:
    # `from` is a Python keyword, so the dataclass says from_address while the file says `from`.
    return {"from_address": "from"}.get(field_name, field_name)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}.get(
        type(value), type(value).__name__
    )


# ---------------------------------------------------------------------------------------------------------
# Checks that go beyond types


def _check_semantics(config: Config) -> None:
    _check_month_days("deadlines.annex1", config.deadlines.annex1)
    _check_month_days("deadlines.annex3", config.deadlines.annex3)
    _check_closes("deadlines.annex1_close", config.deadlines.annex1, config.deadlines.annex1_close)
    _check_closes("deadlines.annex3_close", config.deadlines.annex3, config.deadlines.annex3_close)
    _check_positive("deadlines.monthly_close_days", config.deadlines.monthly_close_days)
    _check_period_names(config.deadlines.names)
    if config.deadlines.monthly and config.deadlines.annex3:
        raise ConfigError(
            "deadlines.monthly: with monthly reporting on, annex-3 tables count toward their month, so the fixed "
            "annex-3 deadlines would never receive a table; remove deadlines.annex3 (or set annex3 = [])"
        )
    _check_positive("tables.conversion_timeout_seconds", config.tables.conversion_timeout_seconds)
    _check_positive("tables.max_inflated_bytes", config.tables.max_inflated_bytes)
    if config.tables.workers < 0:
        raise ConfigError(f"tables.workers: must be 0 (one per CPU core) or more, got {config.tables.workers}")
    _check_positive("imap.port", config.imap.port)
    _check_positive("smtp.port", config.smtp.port)
    _check_positive("imap.batch_size", config.imap.batch_size)
    _check_positive("imap.timeout_seconds", config.imap.timeout_seconds)
    _check_positive("smtp.timeout_seconds", config.smtp.timeout_seconds)
    _check_positive("limits.max_message_bytes", config.limits.max_message_bytes)
    _check_positive("limits.max_attachment_bytes", config.limits.max_attachment_bytes)
    _check_positive("limits.date_header_tolerance_hours", config.limits.date_header_tolerance_hours)
    _check_positive("deadlines.annex2_within_days", config.deadlines.annex2_within_days)
    _check_not_negative("reminders.before_days", config.reminders.before_days)
    _check_not_negative("reminders.after_days", config.reminders.after_days)
    _check_not_negative("reminders.weekly_limit", (config.reminders.weekly_limit,))
    if not 0 <= config.reminders.annex2_nudge_day <= 28:
        raise ConfigError("reminders.annex2_nudge_day: expected 0 (off) or a day of the month from 1 to 28")
    _check_positive("reminders.receipt_max_age_days", config.reminders.receipt_max_age_days)
    _check_positive("outbox.per_minute", config.outbox.per_minute)
    _check_positive("outbox.max_attempts", config.outbox.max_attempts)
    _check_positive("outbox.lease_seconds", config.outbox.lease_seconds)
    _check_staff(config.staff)
    _check_positive("worker.poll_minutes", config.worker.poll_minutes)
    _check_positive("worker.heartbeat_seconds", config.worker.heartbeat_seconds)
    if not 1 <= config.worker.idle_minutes <= 29:
        raise ConfigError(f"worker.idle_minutes: expected 1 to 29 (RFC 2177), got {config.worker.idle_minutes}")
    _check_not_negative("worker.noop_seconds", (config.worker.noop_seconds,))
    _check_web(config.web)
    _check_circular(config.circular)
    _check_dates("calendar.workdays", config.calendar.workdays)
    _check_dates("calendar.days_off", config.calendar.days_off)
    if config.smtp.ssl and config.smtp.starttls:
        raise ConfigError("smtp.starttls: cannot be true together with smtp.ssl (port 465 is ssl, 587 is starttls)")
    _check_after_ingest(config.imap.after_ingest)
    _check_units(config.units)


def _check_staff(staff: StaffConfig) -> None:
    _check_positive("staff.digest_lookahead_days", staff.digest_lookahead_days)
    _check_positive("staff.digest_overdue_days", staff.digest_overdue_days)
    _check_positive("staff.digest_attention_days", staff.digest_attention_days)
    if staff.digest_amounts not in AMOUNT_UNITS:
        raise ConfigError(f"staff.digest_amounts: expected 'wan' (万元) or 'yuan' (元), got {staff.digest_amounts!r}")
    try:
        datetime.time.fromisoformat(staff.digest_time)
    except ValueError:
        raise ConfigError(f"staff.digest_time: expected HH:MM, got {staff.digest_time!r}") from None


PERIOD_NAME_KEY = re.compile(r"monthly|annex[13]-\d\d-\d\d")


def _check_period_names(names: tuple[tuple[str, str], ...]) -> None:
    for key, name in names:
        where = f"deadlines.names.{key}"
        if not PERIOD_NAME_KEY.fullmatch(key):
            raise ConfigError(f"{where}: expected a key such as annex3-06-15 or monthly")
        try:
            name.format(year=2021, month=6)
        except (KeyError, IndexError, ValueError):
            raise ConfigError(f"{where}: {name!r} may use only {{year}} and {{month}}") from None


def _check_circular(circular: CircularConfig) -> None:
    for where, values, known in (
        ("circular.praise", circular.praise, CIRCULAR_PRAISE),
        ("circular.criticise", circular.criticise, CIRCULAR_CRITICISE),
    ):
        for i, value in enumerate(values):
            if value not in known:
                raise ConfigError(f"{where}[{i}]: {value!r} is not one of {', '.join(known)}")
    if circular.praise_max < 0:
        raise ConfigError(f"circular.praise_max: must be 0 (no limit) or more, got {circular.praise_max}")
    try:
        circular.doc_number.format(year=2021)
    except (KeyError, IndexError, ValueError):
        raise ConfigError(f"circular.doc_number: {circular.doc_number!r} may use only {{year}}") from None


def _check_web(web: WebConfig) -> None:
    if not 0 < web.port < 65536:
        raise ConfigError(f"web.port: {web.port} is not a TCP port (1–65535)")
    if web.base_url and not web.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"web.base_url: {web.base_url!r} must start with http:// or https://")


def _check_positive(where: str, value: int) -> None:
    if value <= 0:
        raise ConfigError(f"{where}: must be a positive integer, got {value}")


def _check_not_negative(where: str, values: tuple[int, ...]) -> None:
    for i, value in enumerate(values):
        if value < 0:
            raise ConfigError(f"{where}[{i}]: must not be negative, got {value}")


def _check_dates(where: str, values: tuple[str, ...]) -> None:
    for i, text in enumerate(values):
        try:
            datetime.date.fromisoformat(text)
        except ValueError:
            raise ConfigError(f"{where}[{i}]: expected a date as YYYY-MM-DD, got {text!r}") from None


def _check_after_ingest(action: str) -> None:
    if action in AFTER_INGEST_ACTIONS or (action.startswith("move:") and len(action) > len("move:")):
        return
    raise ConfigError(f"imap.after_ingest: expected 'none', 'flag' or 'move:<folder>', got {action!r}")


def _check_month_days(where: str, values: tuple[str, ...]) -> None:
    for i, text in enumerate(values):
        try:
            month, day = (int(part) for part in text.split("-"))
        except ValueError:
            raise ConfigError(f"{where}[{i}]: expected MM-DD, got {text!r}") from None
        try:
            datetime.date(2000, month, day)  # a leap year, so 02-29 is allowed
        except ValueError:
            raise ConfigError(f"{where}[{i}]: not a valid month-day: {text!r}") from None


def _check_closes(where: str, deadlines: tuple[str, ...], closes: tuple[str, ...]) -> None:
    _check_month_days(where, closes)
    if not closes:
        return  # derived from the deadlines
    if len(closes) != len(deadlines):
        raise ConfigError(f"{where}: expected one close date per deadline ({len(deadlines)}), got {len(closes)}")
    for i, (deadline, close) in enumerate(zip(deadlines, closes, strict=True)):
        if _month_day(close) < _month_day(deadline):
            raise ConfigError(f"{where}[{i}]: {close} is before its deadline {deadline}")


def _month_day(text: str) -> tuple[int, int]:
    month, day = text.split("-")
    return int(month), int(day)


def _check_units(units: tuple[UnitConfig, ...]) -> None:
    names: dict[str, int] = {}
    addresses: dict[str, int] = {}
    spellings: dict[str, int] = {}
    for i, unit in enumerate(units):
        if not unit.name.strip():
            raise ConfigError(f"units[{i}].name: must not be empty")
        if unit.category not in UNIT_CATEGORIES:
            raise ConfigError(f"units[{i}].category: {unit.category!r} is not one of {', '.join(UNIT_CATEGORIES)}")
        if unit.name in names:
            raise ConfigError(f"units[{i}].name: duplicate unit name {unit.name!r} (also units[{names[unit.name]}])")
        names[unit.name] = i
        _check_spellings(i, unit, spellings)
        for j, email in enumerate(unit.emails):
            address = email.strip().lower()
            if "@" not in address:
                raise ConfigError(f"units[{i}].emails[{j}]: not an email address: {email!r}")
            if address in addresses:
                raise ConfigError(
                    f"units[{i}].emails[{j}]: address {email!r} is already used by units[{addresses[address]}]"
                )
            addresses[address] = i


def _check_spellings(i: int, unit: UnitConfig, seen: dict[str, int]) -> None:
    """A name or alias (spaces ignored) may belong to one unit only, or attribution would be a coin toss."""
    for key, spelling in [("name", unit.name), *((f"aliases[{j}]", a) for j, a in enumerate(unit.aliases))]:
        text = "".join(spelling.split())
        if not text:
            raise ConfigError(f"units[{i}].{key}: must not be empty")
        owner = seen.setdefault(text, i)
        if owner != i:
            raise ConfigError(f"units[{i}].{key}: {spelling!r} is already a name or alias of units[{owner}]")


# ---------------------------------------------------------------------------------------------------------
# Secrets


def read_secret(env_name: str, file_name: str, where: str, base_dir: str = ".", keys: str = "password") -> str:
    """A secret from the environment variable named in the config, else from the named file.

    Pass ``config.base_dir``: a relative file is relative to the config file's folder. `keys` names the pair of
    settings in messages: ``password`` (password_env, password_file) or ``secret`` (secret_env, secret_file).
    """
    if env_name and os.environ.get(env_name):
        return os.environ[env_name]
    if file_name:
        try:
            return (Path(base_dir) / file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}.{keys}_file: cannot read {file_name}: {exc}") from exc
    raise ConfigError(f"{where}.{keys}_env: environment variable {env_name or '(unset)'} is not set")
