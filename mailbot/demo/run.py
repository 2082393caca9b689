"""`mailbot demo`: the whole job on embedded servers, from an empty folder to an export.

It starts pymap (IMAP) and aiosmtpd (SMTP) on loopback, fills the mailbox with the sample mail of the 2021
附件3 period (mailbot.demo.samples), and runs the real pipeline through App.poller() into a SQLite database
in the folder, as of 2021-06-18 12:00 (three days after the deadline). Then it does what the worker does that
day: queues a receipt (回执) for every mail a unit sent, the day's late notices for units still missing and the
staff's digest, and sends them through the outbox to the embedded SMTP server. It leaves behind ``mailbot.toml`` (so
``mailbot --config <folder>/mailbot.toml status`` works on the same database afterwards; the servers are gone by
then), ``mailbot.db``, ``archive/``, ``sent/`` (every mail mailbot sent, as .eml), ``export.json`` and
``export.xlsx``, and what staff read: ``digest.html``, ``汇总表.xlsx`` (the consolidated workbook) and
``通报草稿.docx`` (the draft circular). For the staff console it adds a staff account ``demo`` with a fresh
password (printed) and ``web-secret.txt``, the session-signing secret ``[web] secret_file`` names, so that
``mailbot --config <folder>/mailbot.toml web`` serves the console on the demo's data.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from mailbot.clock import TZ, Clock, as_local
from mailbot.config import Config, UnitConfig, config_from_dict
from mailbot.console import mail_kind, with_code, worded
from mailbot.defaults import load_default_units
from mailbot.demo.samples import DEADLINE, PERIOD, SampleMessage, build_mailbox
from mailbot.demo.servers import DEMO_PASSWORD, DEMO_USER, DemoImapServer, DemoSmtpServer
from mailbot.errors import InputError
from mailbot.mails import Templates
from mailbot.report.facts import wan_text
from mailbot.words import KIND_WORDS, MAIL_WORDS, STATUS_WORDS

IMAP_PASSWORD_ENV = "MAILBOT_DEMO_IMAP_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
SMTP_PASSWORD_ENV = "MAILBOT_DEMO_SMTP_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
MARKER = ".mailbot-demo"  # says "the demo made this folder": only then does a re-run delete its files
DIGEST_FILE, WORKBOOK_FILE, CIRCULAR_FILE = "digest.html", "汇总表.xlsx", "通报草稿.docx"
SECRET_FILE = "web-secret.txt"  # noqa: S105 - a file name: the console signs sessions with what it holds
OWN_FILES = ("mailbot.toml", "mailbot.db", "mailbot.db-wal", "mailbot.db-shm", "mailbot.db-journal",
             "export.json", "export.xlsx", DIGEST_FILE, WORKBOOK_FILE, CIRCULAR_FILE, SECRET_FILE)  # fmt: skip
CONSOLE_USER = "demo"  # a staff account on the demo's database; its password is made afresh on each run
CONSOLE_URL = "http://127.0.0.1:8080"  # where `mailbot web` serves with the demo's [web] settings
OWN_DIRS = ("archive", "sent")
# The demo's "now": the Friday after the 06-15 deadline, when the last sample mail has come in.
AS_OF = datetime(2021, 6, 18, 12, 0, tzinfo=TZ)
COUNTED_KINDS = ("report", "nil_report")
VERDICTS = ("on_time", "late", "nil", "missing")


@dataclass(frozen=True)
class DemoResult:
    folder: Path
    config_path: Path
    database: Path
    mailbox_count: int  # messages put into the demo mailbox
    recorded: int  # ledger rows after the poll
    by_kind: dict[str, int]
    verdicts: dict[str, str]  # unit → on_time | late | nil | missing, in registry order
    totals: dict[str, Decimal]  # unit → the yuan its current submission for the period counts
    messages: list[dict[str, Any]]  # the JSON export's messages
    submissions: list[dict[str, Any]]  # the JSON export's submissions
    smtp_received: int  # mail mailbot sent through the demo SMTP server
    seconds: float
    sent: list[dict[str, str]] = dataclasses.field(default_factory=list)  # kind, unit, to, subject, status
    console_password: str = ""  # of CONSOLE_USER


def run_demo(folder: Path, clock: Clock | None = None, console: Console | None = None) -> DemoResult:
    """Run the demo into `folder` (created if needed; a previous demo's files there are replaced)."""
    started = time.perf_counter()
    out = console or Console()
    folder = folder.resolve()
    _prepare_folder(folder)
    units = load_default_units()
    samples = build_mailbox(units)
    out.print(f"mailbot demo: {len(samples)} sample messages for period {PERIOD} (due {DEADLINE:%Y-%m-%d %H:%M:%S})")
    with DemoImapServer() as imap, DemoSmtpServer() as smtp, _secrets():
        raw_config = demo_config_dict(units, imap.port, smtp.port)
        (folder / "mailbot.toml").write_text(to_toml(raw_config, _TOML_HEADER), encoding="utf-8")
        _write_secret(folder / SECRET_FILE)
        config = config_from_dict(raw_config, base_dir=str(folder))
        imap.append([(s.raw, s.received) for s in samples])
        data, recorded, sent = _poll_and_export(config, clock or demo_clock)
        password = _console_account(config, clock or demo_clock)
        smtp_received = len(smtp.messages)
        _save_sent(folder / "sent", smtp.messages)
    result = DemoResult(
        folder=folder,
        config_path=folder / "mailbot.toml",
        database=config.data_path / "mailbot.db",
        mailbox_count=len(samples),
        recorded=recorded,
        by_kind=dict(sorted(Counter(m["kind"] or "(unprocessed)" for m in data["messages"]).items())),
        verdicts=unit_verdicts(units, data["submissions"], PERIOD),
        totals=unit_totals(data["submissions"], PERIOD),
        messages=data["messages"],
        submissions=data["submissions"],
        smtp_received=smtp_received,
        seconds=time.perf_counter() - started,
        sent=sent,
        console_password=password,
    )
    _print_report(out, result, units)
    return result


# ---------------------------------------------------------------------------------------------------------
# The folder


def _prepare_folder(folder: Path) -> None:
    """Create the folder, or clear what an earlier demo left there; never touch a folder the demo did not make."""
    folder.mkdir(parents=True, exist_ok=True)
    ours = [folder / name for name in (*OWN_FILES, *OWN_DIRS) if (folder / name).exists()]
    if ours and not (folder / MARKER).exists():
        raise InputError(
            f"{folder} already holds {ours[0].name} but was not made by `mailbot demo`; "
            "choose another folder with --dir"
        )
    for path in ours:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    (folder / MARKER).write_text("made by `mailbot demo`; a re-run replaces its files here\n", encoding="utf-8")


@contextmanager
def _secrets() -> Iterator[None]:
    """The demo password in the environment variables the config names, for the duration of the run."""
    saved = {name: os.environ.get(name) for name in (IMAP_PASSWORD_ENV, SMTP_PASSWORD_ENV)}
    os.environ.update(dict.fromkeys(saved, DEMO_PASSWORD))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ---------------------------------------------------------------------------------------------------------
# Config


_TOML_HEADER = """\
# Written by `mailbot demo`. The IMAP and SMTP servers below lived only while the demo ran, but the database
# stays: try `mailbot --config <this file> status` or `... export --format json`, or open the staff console
# with `mailbot --config <this file> web` (account `demo`, the password the demo printed).
"""


def demo_config_dict(units: Sequence[UnitConfig], imap_port: int, smtp_port: int) -> dict[str, Any]:
    """The demo's config, as parsed TOML: everything in the folder the config file is in."""
    return {
        "data_dir": ".",
        "imap": {
            "host": "127.0.0.1", "port": imap_port, "ssl": False, "user": DEMO_USER,
            "password_env": IMAP_PASSWORD_ENV, "folder": "INBOX",
        },
        "smtp": {
            "host": "127.0.0.1", "port": smtp_port, "ssl": False, "starttls": False, "user": DEMO_USER,
            "password_env": SMTP_PASSWORD_ENV, "from": DEMO_USER,
        },
        "staff": {"digest_to": ["staff@example.cn"]},
        # The demo answers all of June's sample mail at once, and its SMTP server has no spam filter to spare.
        "reminders": {"receipt_max_age_days": 30},
        "outbox": {"per_minute": 200},
        # No secret_env: the demo's console always signs with the file beside this one, whatever is exported.
        "web": {"host": "127.0.0.1", "port": 8080, "base_url": CONSOLE_URL, "secret_env": "",
                "secret_file": SECRET_FILE},
        "units": [_unit_dict(unit) for unit in units],
    }  # fmt: skip


def _unit_dict(unit: UnitConfig) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(unit).items()}


def to_toml(raw: Mapping[str, Any], header: str = "") -> str:
    """Enough TOML for a config: top-level scalars, tables of scalars and lists, arrays of such tables."""
    lines = [header.rstrip("\n")] if header else []
    lines += [f"{key} = {_toml_value(value)}" for key, value in raw.items() if not isinstance(value, dict | list)]
    lines += [f"{key} = {_toml_value(value)}" for key, value in raw.items() if _is_scalar_list(value)]
    for key, value in raw.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]", *(f"{k} = {_toml_value(v)}" for k, v in value.items())]
        elif isinstance(value, list) and not _is_scalar_list(value):
            for item in value:
                lines += ["", f"[[{key}]]", *(f"{k} = {_toml_value(v)}" for k, v in item.items())]
    return "\n".join(lines) + "\n"


def _is_scalar_list(value: Any) -> bool:
    return isinstance(value, list) and not any(isinstance(item, dict) for item in value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


# ---------------------------------------------------------------------------------------------------------
# The run


def demo_clock() -> datetime:
    return AS_OF


def _poll_and_export(config: Config, clock: Clock) -> tuple[dict[str, Any], int, list[dict[str, str]]]:
    from sqlalchemy import func, select

    from mailbot.app import App
    from mailbot.periods import periods_of
    from mailbot.report.export import data_years, export_data, write_xlsx
    from mailbot.store.db import transaction
    from mailbot.store.models import Message

    app = App(config, clock)
    try:
        app.upgrade()
        app.poller().poll()
        app.queue_receipts()  # what the worker does after each poll
        app.reminders().queue(clock())  # and in its 09:00 round on a working day
        app.digests().queue(clock())  # staff's digest (the worker sends it at 17:30; `mailbot digest` at once)
        app.outbox().drain()
        _staff_files(app, config.data_path)
        with transaction(app.sessions) as session:
            data = export_data(session, periods=periods_of(data_years(session), config.deadlines, app.calendar))
            recorded = session.scalar(select(func.count()).select_from(Message)) or 0
            sent = _sent(session)
    finally:
        app.close()
    folder = config.data_path
    (folder / "export.json").write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    write_xlsx(data, folder / "export.xlsx")
    return data, recorded, sent


def _write_secret(path: Path) -> None:
    """A fresh session-signing secret that only the folder's owner can read."""
    path.touch(mode=0o600)
    path.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")


def _console_account(config: Config, clock: Clock) -> str:
    """A staff account for the console on the demo's data; its password, made afresh, for the report to print."""
    from mailbot.app import App
    from mailbot.store.db import transaction
    from mailbot.store.users import add_user

    password = secrets.token_urlsafe(12)
    app = App(config, clock)
    try:
        with transaction(app.sessions) as session:
            add_user(session, CONSOLE_USER, "staff", password, clock())
    finally:
        app.close()
    return password


def _staff_files(app: Any, folder: Path) -> None:
    """What staff read, as files: the digest as sent, the consolidated workbook and the draft circular."""
    from mailbot.report.circular import circular_docx
    from mailbot.report.facts import find_period
    from mailbot.report.workbook import consolidated_workbook
    from mailbot.store.db import transaction
    from mailbot.store.reports import period_report

    now = app.clock()
    (folder / DIGEST_FILE).write_text(app.digests().render(now).rendered.html, encoding="utf-8")
    period = find_period(PERIOD, app.config.deadlines, app.calendar)
    with transaction(app.sessions) as session:
        report = period_report(session, period, now)
    (folder / WORKBOOK_FILE).write_bytes(consolidated_workbook(report, app.templates))
    (folder / CIRCULAR_FILE).write_bytes(circular_docx(report, app.templates, app.config))


def _sent(session: Any) -> list[dict[str, str]]:
    from sqlalchemy import select

    from mailbot.store.models import OutboxMail, Unit

    rows = session.execute(
        select(OutboxMail, Unit.name).outerjoin(Unit, OutboxMail.unit_id == Unit.id).order_by(OutboxMail.id)
    )
    return [
        {"kind": mail.kind, "unit": unit or "", "to": mail.to_address, "subject": mail.subject, "status": mail.status}
        for mail, unit in rows
    ]


def _save_sent(folder: Path, messages: Sequence[Any]) -> None:
    """Every mail the SMTP server got, as .eml: open one in a mail client to see what a unit receives."""
    folder.mkdir(exist_ok=True)
    for number, mail in enumerate(messages, start=1):
        (folder / f"{number:03d}.eml").write_bytes(mail.data)


def unit_verdicts(units: Sequence[UnitConfig], submissions: Sequence[Mapping[str, Any]], period: str) -> dict[str, str]:
    """on_time | late | nil | missing per unit, from its current submission for the period."""
    current = _current(submissions, period)
    verdicts: dict[str, str] = {}
    for unit in units:
        found = current.get(unit.name)
        if found is None:
            verdicts[unit.name] = "missing"
        elif found["nil"]:
            verdicts[unit.name] = "nil"
        else:
            verdicts[unit.name] = "on_time" if found["on_time"] else "late"
    return verdicts


def unit_totals(submissions: Sequence[Mapping[str, Any]], period: str) -> dict[str, Decimal]:
    return {unit: Decimal(s["total_yuan"] or 0) for unit, s in _current(submissions, period).items()}


def _current(submissions: Sequence[Mapping[str, Any]], period: str) -> dict[str, Mapping[str, Any]]:
    return {s["unit"]: s for s in submissions if s["period"] == period and s["status"] == "current" and s["unit"]}


# ---------------------------------------------------------------------------------------------------------
# Printing


_TEMPLATES = Templates()  # the demo's staff have edited no template
WIDE_TERMINAL = 140  # narrower terminals get fewer message columns (see _messages_table)
_VERDICT_STYLE = {"on_time": "green", "late": "yellow", "nil": "cyan", "missing": "bold red"}


def _print_report(out: Console, result: DemoResult, units: Sequence[UnitConfig]) -> None:
    out.print(_messages_table(result.messages, out.width))
    out.print(_units_table(result, units, out.width >= WIDE_TERMINAL))
    counts = Counter(result.verdicts.values())
    out.print("units: " + ", ".join(f"{counts[v]} {worded(STATUS_WORDS, v)}" for v in VERDICTS))
    total = sum(result.totals.values(), Decimal(0))
    out.print(f"read from {len(result.submissions)} tables: {wan_text(total)} 万元 counted for {PERIOD}")
    out.print("messages by kind: " + ", ".join(f"{worded(KIND_WORDS, k)} {n}" for k, n in result.by_kind.items()))
    out.print(_sent_table(result.sent))
    out.print(
        f"\nrecorded {result.recorded} of {result.mailbox_count} messages in {result.seconds:.1f} s\n"
        f"database: {result.database}\n"
        f"raw mail: {result.folder / 'archive'}\n"
        f"sent:     {result.folder / 'sent'} ({result.smtp_received} mails as .eml)\n"
        f"exports:  {result.folder / 'export.json'}, {result.folder / 'export.xlsx'}\n"
        f"digest:   {result.folder / DIGEST_FILE} (as mailed to staff)\n"
        f"workbook: {result.folder / WORKBOOK_FILE} (the consolidated table of {PERIOD})\n"
        f"circular: {result.folder / CIRCULAR_FILE} (the draft 通报, for staff to edit)\n"
        f"config:   {result.config_path}\n"
        f"next:     mailbot --config {result.config_path} status\n"
        f"console:  mailbot --config {result.config_path} web\n"
        f"          then open {CONSOLE_URL} and log in as {CONSOLE_USER}, password {result.console_password}"
    )


def _sent_table(sent: Sequence[Mapping[str, str]]) -> Table:
    """What mailbot sent as of the demo's day: receipts counted, every other mail listed."""
    counts = Counter(mail["kind"] for mail in sent)
    title = f"mails sent as of {AS_OF:%Y-%m-%d %H:%M}: " + ", ".join(
        f"{n} {mail_kind(kind)}" for kind, n in sorted(counts.items())
    )
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("kind", "unit", "subject", "status"):
        table.add_column(name, overflow="fold")
    shown = [mail for mail in sent if mail["kind"] != "receipt"] + [m for m in sent if m["kind"] == "receipt"][:3]
    for mail in shown:
        table.add_row(mail_kind(mail["kind"]), mail["unit"], mail["subject"], worded(MAIL_WORDS, mail["status"]))
    if counts["receipt"] > 3:
        table.add_row("…", f"{counts['receipt'] - 3} more receipts", "", "")
    return table


def _messages_table(messages: Sequence[Mapping[str, Any]], width: int) -> Table:
    """Received time, sender, unit, kind, problems. A narrow terminal gets one "sender" column instead of
    subject, from and unit: the unit when the address is registered, else the address (and the unit it named)."""
    wide = width >= WIDE_TERMINAL
    table = Table(title="messages", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("received", no_wrap=True)
    names = ("from", "subject", "unit") if wide else ("sender",)
    for name in names:
        table.add_column(name, no_wrap=name == "subject", max_width=30 if name == "subject" else None)
    table.add_column("kind", no_wrap=True)
    table.add_column("problems")
    for message in messages:
        received = as_local(datetime.fromisoformat(message["received_at"]))
        problems = "\n".join(dict.fromkeys(_problem(p["code"]) for p in message["problems"])) or "-"
        kind = worded(KIND_WORDS, message["kind"]) if message["kind"] else "-"
        table.add_row(f"{received:%m-%d %H:%M}", *_who(message, wide), kind, problems)
    return table


def _who(message: Mapping[str, Any], wide: bool) -> list[str]:
    unit = message["unit"] or "-"
    if wide:
        return [message["from"], message["subject"], unit]
    if message["sender_known"]:
        return [unit]
    return [message["from"] if unit == "-" else f"{unit}\n({message['from']})"]


def _units_table(result: DemoResult, units: Sequence[UnitConfig], wide: bool) -> Table:
    """One row per unit; a narrow terminal drops the category so that names and problems stay readable."""
    table = Table(
        title=f"units, period {PERIOD}, due {DEADLINE:%Y-%m-%d %H:%M:%S} (times +08:00)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("#", no_wrap=True)
    table.add_column("unit", overflow="fold", max_width=None if wide else 16)
    for name in ("category", "verdict", "received", "mails") if wide else ("verdict", "received", "mails"):
        table.add_column(name, no_wrap=True)
    table.add_column("万元", justify="right", no_wrap=True)
    table.add_column("note", overflow="fold", min_width=16)
    for position, unit in enumerate(units, start=1):
        mine = [m for m in result.messages if m["unit"] == unit.name]
        counted = [m for m in mine if m["kind"] in COUNTED_KINDS]
        first = min((as_local(datetime.fromisoformat(m["received_at"])) for m in counted), default=None)
        verdict = result.verdicts[unit.name]
        note = "unregistered sender" if any(not m["sender_known"] for m in counted) else ""
        total = result.totals.get(unit.name)
        amount = wan_text(total) if total is not None else "-"
        note = ", ".join(filter(None, [note, *_problem_codes(result.submissions, unit.name)]))
        category = [unit.category] if wide else []
        shown = f"[{_VERDICT_STYLE[verdict]}]{worded(STATUS_WORDS, verdict)}[/]"
        table.add_row(str(position), unit.name, *category, shown,
                      f"{first:%m-%d %H:%M}" if first else "-", str(len(mine)), amount, note)  # fmt: skip
    return table


def _problem_codes(submissions: Sequence[Mapping[str, Any]], unit: str) -> list[str]:
    current = _current(submissions, PERIOD).get(unit)
    return list(dict.fromkeys(_problem(p["code"]) for p in current["problems"])) if current else []


def _problem(code: str) -> str:
    """合计与明细不符 (sum_mismatch): the digest's name for it, from the shipped templates."""
    return with_code(_TEMPLATES.problem_name(code), code)


__all__ = ["DemoResult", "SampleMessage", "demo_config_dict", "run_demo", "to_toml", "unit_totals", "unit_verdicts"]
