"""A large database for the benchmarks: 300 units, ten years of mail (2012-01 to 2021-11-26), ≈ 60,000 messages
with their tables, as the pipeline would have stored them.

Every year has the 2021 scheme's periods (附件1 04-15, 附件3 06-15 and 11-25) and annex-2 activities; 2016–2020
also have the 2020 monthly scheme's months (`2016-monthly-05`), as a deployment that reported monthly then. Units
send on time or late (some never), correct their tables (superseded versions), re-send them (duplicates), say
they have nothing (nil reports), write questions, bounce; some mail comes from unregistered addresses; tables
carry problems. The outbox holds a receipt for every report and the reminders and late notices of each period.

Rows go in through Core INSERTs (as `mailbot.process` and `mailbot.store.submissions` write them), with statuses
settled as `store.submissions.settle` would (checked on a sample); the archive holds no .eml for these. Then a few
real messages with attachments, received just before AS_OF, go through the real pipeline (`ingest_paths`): those
are the ones a benchmark opens. Seeded: the same seed gives the same database. A database built by the same
generator version and seed is reused; `--fresh` rebuilds it.

.venv/bin/python bench/largedb.py [--folder /tmp/mailbot-large] [--database-url URL] [--seed 15] [--fresh]

Without --database-url the database is an SQLite file in the folder; with one (postgresql://…) the database must
exist (createdb) and is emptied when rebuilt.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.config import UNIT_CATEGORIES, DeadlinesConfig, UnitConfig, config_from_dict
from mailbot.demo.run import demo_config_dict
from mailbot.ingest import ingest_paths
from mailbot.periods import Period, end_of, monthly_period, year_periods
from mailbot.store import submissions as stored
from mailbot.store.db import transaction
from mailbot.store.models import (
    Attachment,
    AuditEntry,
    Base,
    Exemption,
    Flag,
    Message,
    OutboxMail,
    Problem,
    Submission,
    SubmissionRow,
    UnitAddress,
    core,
)
from mailbot.workdays import WorkCalendar

import common  # noqa: F401 - puts tests/ on the path
from mailgen import make_message
from tablegen import xlsx_bytes

VERSION = "largedb-2"  # bump when the generated data changes: a database built by another version is rebuilt
FLAG = "bench_largedb"
AS_OF = datetime(2021, 11, 26, 17, 30, tzinfo=TZ)  # the day after the year's last deadline, after the 09:00 round
UNITS = 300
YEARS = range(2012, 2022)
MONTHLY_YEARS = range(2016, 2021)  # the 2020 monthly scheme's months, as if reported monthly those years
ACTIVITIES = ("春节送温暖", "职工消费帮扶月", "金秋助学")  # annex 2: one period per activity and year
SOURCES = ("832平台", "农户", "合作社", "扶贫基地", "驻村第一书记推荐", "农购网")
CATEGORY_SHARES = (("县市区", 10), ("产业工会", 30), ("市直", 140), ("直属企业", 119), ("市总", 1))
CHUNK = 5000  # rows per executemany
# Staff deal with 待处理 as it comes: what arrived before this is resolved (senders confirmed, mail handled).
RESOLVED = AS_OF - timedelta(days=30)
SAMPLE_UNITS = 6  # units whose last mail is real (an .eml in the archive, through the real pipeline)


# ---------------------------------------------------------------------------------------------------------
# The registry and the config


def large_units() -> list[UnitConfig]:
    """300 units, 第N工会, in the categories' proportions; every tenth has a second address."""
    categories = [name for name, share in CATEGORY_SHARES for _ in range(share)]
    assert len(categories) == UNITS and set(categories) <= set(UNIT_CATEGORIES)
    return [
        UnitConfig(
            name=f"第{n}工会",
            category=categories[n - 1],
            aliases=(f"第{n}基层工会",),
            emails=(f"u{n:03d}@example.cn", *((f"u{n:03d}.backup@example.cn",) if n % 10 == 0 else ())),
            contact=f"联系人{n}",
            phone=f"0375-29{n:05d}",
        )
        for n in range(1, UNITS + 1)
    ]


def large_config_dict(folder: Path, database_url: str) -> dict[str, Any]:
    raw = demo_config_dict(large_units(), 1, 1)
    raw["data_dir"] = str(folder)
    raw["database"] = {"url": database_url}
    raw["web"] = {**raw["web"], "secret_file": ""}
    return raw


def large_app(folder: Path, database_url: str) -> App:
    return App(config_from_dict(large_config_dict(folder, database_url)), clock=lambda: AS_OF)


# ---------------------------------------------------------------------------------------------------------
# What the units send


@dataclass
class Sheet:
    annex: str
    period: str
    deadline: datetime | None
    content: int  # equal contents: a re-send (duplicate); a new one: a correction
    rows: list[dict[str, Any]]
    nil: bool = False
    codes: list[tuple[str, str]] = field(default_factory=list)  # problems of this table
    stated: Decimal | None = None


@dataclass
class Mail:
    received_at: datetime
    unit: int | None  # index into the registry
    sender: str
    subject: str
    kind: str
    attributed_by: str = "address"
    sender_known: bool = True
    tables: list[Sheet] = field(default_factory=list)
    filenames: list[str] = field(default_factory=list)
    codes: list[tuple[str, str]] = field(default_factory=list)  # problems of the message
    handled: bool = False
    confirmed: bool = False  # an unregistered sender staff confirmed (its mail was read again as the unit's)


@dataclass(frozen=True)
class Slot:
    """One period of the data, with the window units send their tables in."""

    id: str
    annex: str
    deadline: datetime
    opens: datetime
    closes: datetime
    form: str  # annex1 | annex2 | annex3 | monthly


def slots(calendar: WorkCalendar) -> list[Slot]:
    found: list[Slot] = []
    for year in YEARS:
        for p in year_periods(year, DeadlinesConfig(), calendar):
            found.append(_slot(p, "annex1" if p.annex == "1" else "annex3", 25))
        if year in MONTHLY_YEARS:
            monthly = DeadlinesConfig(annex3=(), monthly=True)
            found += [_slot(monthly_period(year, m, monthly, calendar), "monthly", 12) for m in range(1, 13)]
        for i, activity in enumerate(ACTIVITIES):
            ended = end_of(date(year, 2 + 4 * i, 20))
            deadline = ended + timedelta(days=7)
            found.append(
                Slot(f"annex2:{year}年{activity}", "2", deadline, ended, deadline + timedelta(days=20), "annex2")
            )
    return [slot for slot in found if slot.opens < AS_OF]


def _slot(period: Period, form: str, days: int) -> Slot:
    return Slot(period.id, period.annex, period.deadline, period.deadline - timedelta(days=days), period.closes, form)


class Generator:
    """The mail of ten years, deterministic in the seed."""

    def __init__(self, seed: int, units: Sequence[UnitConfig]) -> None:
        self.rng = random.Random(seed)
        self.units = units
        self.contents = 0
        self.exempt: list[tuple[int, str, datetime]] = []
        self.confirmed: set[str] = set()
        # Some units are slow: they send late more often, and sometimes not at all.
        self.slowness = [self.rng.choice((0.05, 0.1, 0.1, 0.2, 0.45)) for _ in units]

    def mails(self, calendar: WorkCalendar) -> list[Mail]:
        found: list[Mail] = []
        for slot in slots(calendar):
            for unit in range(len(self.units)):
                found += self.period_mail(slot, unit)
        for year in YEARS:
            for unit in range(len(self.units)):
                found += self.other_mail(year, unit)
        found += self.strangers()
        return sorted((m for m in found if m.received_at <= AS_OF), key=lambda m: (m.received_at, m.sender))

    def period_mail(self, slot: Slot, unit: int) -> list[Mail]:
        rng, slow = self.rng, self.slowness[unit]
        if slot.form == "annex2" and rng.random() < 0.45:
            return []  # not every unit holds every activity
        if rng.random() < 0.004:
            self.exempt.append((unit, slot.id, slot.opens))
            return []
        if rng.random() < slow / 3:
            return []  # never sent
        late = rng.random() < slow
        first = self.moment(slot.deadline + timedelta(days=rng.randint(1, 12)) if late else self.before(slot))
        mails = [self.report(slot, unit, first, self.table(slot, unit))]
        if rng.random() < 0.25:  # a correction a few days later
            mails.append(
                self.report(
                    slot, unit, self.moment(first + timedelta(days=rng.randint(1, 6))), self.table(slot, unit), True
                )
            )
        if rng.random() < 0.03:  # the same file again
            again = mails[-1].tables[0]
            mails.append(self.report(slot, unit, self.moment(mails[-1].received_at + timedelta(hours=3)), again))
        return [m for m in mails if m.received_at <= slot.closes]

    def before(self, slot: Slot) -> datetime:
        return slot.opens + (slot.deadline - slot.opens) * self.rng.random()

    def moment(self, day: datetime) -> datetime:
        """A working hour of that day."""
        return day.replace(
            hour=self.rng.randint(8, 17), minute=self.rng.randint(0, 59), second=self.rng.randint(0, 59), microsecond=0
        )

    def report(self, slot: Slot, unit: int, received: datetime, table: Sheet, correction: bool = False) -> Mail:
        name, rng = self.units[unit].name, self.rng
        stranger = rng.random() < 0.03
        sender = f"u{unit + 1:03d}.staff{rng.randint(1, 40)}@qq.com" if stranger else self.units[unit].emails[0]
        confirmed = stranger and (received < RESOLVED or sender in self.confirmed)
        if confirmed:
            self.confirmed.add(sender)
        mail = Mail(
            received,
            unit,
            sender,
            f"{name}{_title(slot.form)}" + ("（更正）" if correction else ""),
            "nil_report" if table.nil else "report",
            "subject" if stranger and not confirmed else "address",
            not stranger or confirmed,
        )
        mail.tables = [table]
        mail.confirmed = confirmed
        if stranger and not confirmed:
            mail.codes.append(("unknown_sender", f"发件地址 {sender} 未登记，按邮件内容归属于 {name}，请工作人员确认"))
        if rng.random() < 0.01:
            mail.codes.append(("wrong_date_header", "邮件的发送时间与收到时间相差超过 48 小时"))
        if not table.nil:
            mail.filenames = [f"{name}{_title(slot.form)}.{rng.choice(('xlsx', 'xlsx', 'xlsx', 'xls', 'docx'))}"]
        return mail  # fmt: skip

    def table(self, slot: Slot, unit: int) -> Sheet:
        self.contents += 1
        rng, name = self.rng, self.units[unit].name
        deadline = slot.deadline
        table = Sheet(slot.annex, slot.id, deadline, self.contents, [])
        if slot.form in ("annex3", "monthly") and rng.random() < 0.07:
            table.nil = True
            return table
        make = {"annex1": _annex1_row, "annex2": _annex2_row, "annex3": _annex3_row, "monthly": _monthly_row}[slot.form]
        count = {"annex1": (2, 5), "annex2": (1, 2), "annex3": (3, 14), "monthly": (2, 8)}[slot.form]
        table.rows = [make(rng, name, i, slot) for i in range(rng.randint(*count))]
        if slot.annex == "3" and rng.random() < 0.05:
            table.stated = _total(table) + Decimal(rng.randint(1, 500))
            table.codes.append(("sum_mismatch", f"合计栏为 {table.stated}元，各行相加为 {_total(table)}元"))
        if rng.random() < 0.03:
            table.codes.append(("unmapped_value", f"第 {rng.randint(4, 9)} 行的产品来源“消费帮扶馆”不在对照表中"))
        return table

    def other_mail(self, year: int, unit: int) -> list[Mail]:
        """A unit's year of mail that is not a table: questions (handled by staff) and auto-replies."""
        rng, u = self.rng, self.units[unit]
        found = []
        for _ in range(rng.choice((4, 5, 6, 7, 8, 9))):
            at = self.moment(datetime(year, rng.randint(1, 12), rng.randint(1, 28), tzinfo=TZ))
            mail = Mail(
                at,
                unit,
                u.emails[0],
                rng.choice(("请问本期报表模板", "联系人变更", "关于报送时间的询问")),
                "not_a_report",
                handled=at < RESOLVED,
            )
            found.append(mail)
        at = self.moment(datetime(year, rng.randint(1, 12), rng.randint(1, 28), tzinfo=TZ))
        found.append(Mail(at, unit, u.emails[0], "自动回复：休假中", "auto_or_bounce"))
        return found  # fmt: skip

    def strangers(self) -> list[Mail]:
        """Mail no unit could be found for: unknown senders, and encrypted files refused."""
        rng, found = self.rng, []
        for n in range(400):
            at = self.moment(datetime(rng.choice(YEARS), rng.randint(1, 12), rng.randint(1, 28), tzinfo=TZ))
            kind = "unknown_sender" if n % 4 else "rejected_input"
            mail = Mail(
                at,
                None,
                f"someone{n}@163.com",
                "报表",
                kind,
                "",
                False,
                filenames=["统计表.xlsx"],
                handled=at < RESOLVED,
            )
            code = ("unknown_sender", f"发件地址 someone{n}@163.com 未登记，也未能从邮件内容判断单位")
            mail.codes.append(code if kind == "unknown_sender" else ("encrypted", "统计表.xlsx 设有打开密码，无法读取"))
            found.append(mail)
        return found


def _title(form: str) -> str:
    return {"annex1": "优质农副产品推荐表", "annex2": "消费帮扶活动统计表", "annex3": "消费惠农统计表"}.get(
        form, "消费扶贫月度统计表"
    )


def _money(rng: random.Random) -> str:
    return f"{rng.randint(200, 90000)}.{rng.randint(0, 99):02d}"


def _annex1_row(rng: random.Random, unit: str, i: int, slot: Slot) -> dict[str, Any]:
    return {"product": f"{unit}推荐产品{i}", "recommender": "张三", "phone": "0375-2900000", "remark": ""}


def _annex2_row(rng: random.Random, unit: str, i: int, slot: Slot) -> dict[str, Any]:
    return {
        "activity": slot.id.removeprefix("annex2:"),
        "mode": rng.choice(("线上", "线下")),
        "platform": "832平台",
        "partners": "合作社",
        "participants": str(rng.randint(10, 800)),
        "invested_yuan": _money(rng),
        "consumption_yuan": _money(rng),
        "ended_on": (slot.opens.date()).isoformat(),
    }


def _annex3_row(rng: random.Random, unit: str, i: int, slot: Slot) -> dict[str, Any]:
    source, channel = SOURCES[i % len(SOURCES)], "线上" if i < len(SOURCES) else "线下"
    return {"product": f"产品{i}", "source": source, "source_raw": source, "channel": channel,
            "channel_raw": channel, "amount_yuan": _money(rng)}  # fmt: skip


def _monthly_row(rng: random.Random, unit: str, i: int, slot: Slot) -> dict[str, Any]:
    day = slot.deadline.date().replace(day=rng.randint(1, 28)).isoformat()
    extra = {"purchased_on": day, "purchased_from": day, "purchased_to": day, "quantity_tonnes": "0.5"}
    return {**_annex3_row(rng, unit, i, slot), **extra}


def _amount(row: dict[str, Any]) -> Decimal | None:
    value = row.get("amount_yuan") or row.get("consumption_yuan")
    return Decimal(value) if value else None


def _total(table: Sheet) -> Decimal:
    return sum((_amount(row) or Decimal(0) for row in table.rows), Decimal(0))


# ---------------------------------------------------------------------------------------------------------
# Rows, as the pipeline stores them


@dataclass
class Rows:
    """Every table's rows, with explicit ids so that the links are known before inserting."""

    tables: dict[type[Base], list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, model: type[Base], values: dict[str, Any]) -> int:
        found = self.tables.setdefault(model, [])
        values["id"] = len(found) + 1
        found.append(values)
        return len(found)


def rows_of(mails: Sequence[Mail], units: Sequence[UnitConfig], unit_ids: dict[str, int]) -> Rows:
    rows = Rows()
    keys: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for uid, mail in enumerate(mails, start=1):
        unit_id = unit_ids[units[mail.unit].name] if mail.unit is not None else None
        message_id = rows.add(Message, _message(uid, mail, unit_id))
        attachments = [rows.add(Attachment, _attachment(message_id, i, name)) for i, name in enumerate(mail.filenames)]
        for code, detail in mail.codes:
            rows.add(Problem, _problem(message_id, code, detail, attachments))
        for position, table in enumerate(mail.tables):
            submission = _submission(message_id, position, mail, table, unit_id, attachments)
            submission_id = rows.add(Submission, submission)
            keys.setdefault((unit_id or 0, table.period), []).append(submission)
            for i, fields in enumerate(table.rows):
                values = {"submission_id": submission_id, "position": i, "line": 3 + i, "fields": fields}
                rows.add(SubmissionRow, {**values, "amount_yuan": _amount(fields)})
            for code, detail in table.codes:
                rows.add(Problem, {"message_id": message_id, "attachment_id": attachments[0] if attachments else None,
                                   "submission_id": submission_id, "code": code, "detail": detail})  # fmt: skip
    for history in keys.values():
        _settle(history)
    return rows


def _message(uid: int, mail: Mail, unit_id: int | None) -> dict[str, Any]:
    digest = hashlib.sha256(f"{VERSION}:{uid}:{mail.sender}:{mail.received_at}".encode()).hexdigest()
    header = f"<{digest[:24]}@{mail.sender.partition('@')[2]}>"
    processed = mail.received_at + timedelta(seconds=40)
    return {
        "sha256": digest, "size": 9000 + uid % 30000, "source": "imap", "source_ref": "", "folder": "INBOX",
        "uidvalidity": 1, "uid": uid, "message_id": header, "received_at": mail.received_at,
        "received_source": "internaldate", "archived_at": processed, "status": "processed", "error": "",
        "processed_at": processed, "date_header": mail.received_at - timedelta(seconds=5),
        "from_address": mail.sender, "from_name": "", "subject": mail.subject, "kind": mail.kind, "unit_id": unit_id,
        "sender_known": mail.sender_known, "attributed_by": mail.attributed_by, "attempts": 1,
        "no_reply": "auto_reply" if mail.kind == "auto_or_bounce" else "", "reply_references": header,
        "handled_at": processed + timedelta(days=2) if mail.handled else None,
    }  # fmt: skip


def _attachment(message_id: int, position: int, name: str) -> dict[str, Any]:
    sniffed = name.rpartition(".")[2]
    return {
        "message_id": message_id, "position": position, "filename": name, "content_type": "application/octet-stream",
        "size": 6000 + message_id % 40000, "sha256": hashlib.sha256(f"a{message_id}.{position}".encode()).hexdigest(),
        "sniffed_type": sniffed,
    }  # fmt: skip


def _problem(message_id: int, code: str, detail: str, attachments: list[int]) -> dict[str, Any]:
    attachment = attachments[0] if attachments and code == "encrypted" else None
    return {
        "message_id": message_id,
        "attachment_id": attachment,
        "submission_id": None,
        "code": code,
        "detail": detail,
    }


def _submission(
    message_id: int, position: int, mail: Mail, table: Sheet, unit_id: int | None, attachments: list[int]
) -> dict[str, Any]:
    total = Decimal(0) if table.nil else _total(table) if table.annex != "1" else None
    return {
        "message_id": message_id, "attachment_id": attachments[0] if attachments else None, "unit_id": unit_id,
        "position": position, "origin": f"{mail.filenames[0]}（Sheet1）" if mail.filenames else "邮件正文",
        "annex": table.annex, "period": table.period, "received_at": mail.received_at, "deadline": table.deadline,
        "on_time": None if table.deadline is None else mail.received_at <= table.deadline, "nil": table.nil,
        "status": "current", "supersedes_id": None, "total_yuan": total, "stated_total_yuan": table.stated,
        "content_sha256": hashlib.sha256(f"c{table.content}".encode()).hexdigest(),
    }  # fmt: skip


def _settle(history: list[dict[str, Any]]) -> None:
    """`store.submissions._walk` on rows not stored yet: received order, re-sends are duplicates."""
    current: dict[str, Any] | None = None
    for row in sorted(history, key=lambda r: (r["received_at"], r["message_id"], r["position"])):
        if current is not None and row["content_sha256"] == current["content_sha256"]:
            row["status"], row["supersedes_id"] = "duplicate", current["id"]
            continue
        if current is not None:
            current["status"] = "superseded"
            row["supersedes_id"] = current["id"]
        current = row


# ---------------------------------------------------------------------------------------------------------
# The outbox, exemptions and the audit log


STEPS = ((-7, "before-7", "reminder"), (-3, "before-3", "reminder"), (-1, "before-1", "reminder"),
         (1, "after-1", "late_notice"), (3, "after-3", "late_notice"), (7, "after-7", "late_notice"))  # fmt: skip


def outbox_rows(
    rows: Rows, units: Sequence[UnitConfig], ids: dict[str, int], slots_: Sequence[Slot], exempt: set[tuple[int, str]]
) -> None:
    """A receipt for every report, then each fixed period's reminders to the units without a table by then."""
    names = {ids[unit.name]: unit for unit in units}
    for message in rows.tables[Message]:
        if message["kind"] in ("report", "nil_report") and message["unit_id"] is not None:
            rows.add(OutboxMail, _receipt(message, names[message["unit_id"]].name))
    first: dict[tuple[int, str], datetime] = {}
    for s in rows.tables[Submission]:
        key = (s["unit_id"], s["period"])
        first[key] = min(first.get(key, s["received_at"]), s["received_at"])
    for slot in (s for s in slots_ if s.annex != "2"):
        for days, step, kind in STEPS:
            at = slot.deadline.replace(hour=9, minute=0, second=0) + timedelta(days=days)
            if at > AS_OF:
                continue
            for unit_id, unit in names.items():
                sent = first.get((unit_id, slot.id))
                if (sent is None or sent > at) and (unit_id, slot.id) not in exempt:
                    rows.add(OutboxMail, _reminder(slot, step, kind, at, unit_id, unit))


def _receipt(message: dict[str, Any], unit: str) -> dict[str, Any]:
    at = message["processed_at"]
    body = (
        f"{unit}：\n\n我们于{at:%Y年%m月%d日 %H:%M}收到贵单位的报表，已登记如下。\n\n1. 工会消费惠农统计表\n"
        "   按时报送\n\n如有疑问，请回复本邮件。\n\n平顶山市总工会统计机器人\n（本邮件由系统自动发送）\n"
    )
    subject = f"【回执】已收到报表（{unit}） Re: {message['subject']}"
    mail = _mail(
        f"receipt:{message['sha256']}", "receipt", message["unit_id"], "", message["from_address"], subject, body, at
    )
    header = message["message_id"]
    return {**mail, "source_message_id": message["id"], "in_reply_to": header, "references": header}


def _reminder(slot: Slot, step: str, kind: str, at: datetime, unit_id: int, unit: UnitConfig) -> dict[str, Any]:
    body = (
        f"{unit.name}：\n\n{_title(slot.form)}（{slot.deadline:%Y年%m月%d日}截止）尚未收到贵单位的报表，"
        "请按时报送。空白表见附件。\n\n平顶山市总工会统计机器人\n"
    )
    return _mail(f"{kind}:{slot.id}:{step}:{unit.name}", kind, unit_id, slot.id, unit.emails[0],
                 f"【催报】{_title(slot.form)}（{slot.deadline:%m月%d日}截止）", body, at)  # fmt: skip


def _mail(
    key: str, kind: str, unit_id: int, period: str, to: str, subject: str, body: str, at: datetime
) -> dict[str, Any]:
    recent = at > AS_OF - timedelta(hours=10)
    header = f"<mailbot.{hashlib.sha256(key.encode()).hexdigest()[:16]}@163.com>"
    return {
        "key": key, "kind": kind, "unit_id": unit_id, "period": period, "source_message_id": None, "to_address": to,
        "subject": subject, "body_text": body, "body_html": f"<div><p>{body.replace(chr(10), '<br>')}</p></div>",
        "attachment_name": "", "attachment": None, "message_id": header,
        "in_reply_to": "", "references": "", "status": "pending" if recent else "sent", "attempts": 0 if recent else 1,
        "next_attempt_at": at, "last_error": "", "created_at": at, "claimed_at": None if recent else at,
        "sent_at": None if recent else at + timedelta(minutes=3),
    }  # fmt: skip


def exemption_rows(rows: Rows, exempt: Sequence[tuple[int, str, datetime]]) -> None:
    """(unit id, period, when) → the exemption and its audit entry."""
    for unit_id, period, at in exempt:
        values = {
            "unit_id": unit_id,
            "period": period,
            "reason": "单位撤并，本期免报",
            "created_by": "王维",
            "created_at": at,
        }
        rows.add(Exemption, values)
        rows.add(AuditEntry, {"at": at, "user_name": "王维", "action": "exempt", "target": f"{unit_id} {period}",
                              "before": "", "after": f'{{"period": "{period}"}}'})  # fmt: skip


def audit_rows(rows: Rows, mails: Sequence[Mail]) -> None:
    """Staff's everyday actions: every handled question and confirmed sender is audited."""
    for message in rows.tables[Message]:
        if message["handled_at"] is not None:
            target = f"邮件 {message['id']}"
            rows.add(AuditEntry, {"at": message["handled_at"], "user_name": "王维", "action": "handled",
                                  "target": target, "before": "", "after": ""})  # fmt: skip
    for mail in mails:
        if mail.confirmed:
            values = {"at": mail.received_at + timedelta(days=1), "user_name": "王维", "action": "confirm_sender"}
            rows.add(AuditEntry, {**values, "target": f"address:{mail.sender}", "before": "", "after": ""})
    rows.tables[AuditEntry].sort(key=lambda e: e["at"])
    for i, entry in enumerate(rows.tables[AuditEntry], start=1):
        entry["id"] = i


# ---------------------------------------------------------------------------------------------------------
# Building


@dataclass(frozen=True)
class Built:
    app: App
    seconds: float | None  # None: reused
    counts: dict[str, int]


def ensure(folder: Path, database_url: str, seed: int = 15, fresh: bool = False) -> Built:
    """The large database at `database_url` (archive in `folder`), built unless this version and seed are there."""
    folder.mkdir(parents=True, exist_ok=True)
    app = large_app(folder, database_url)
    app.upgrade()
    mark = f"{VERSION} seed={seed}"
    with transaction(app.sessions) as session:
        found = session.get(Flag, FLAG)
    if found is not None and found.value == mark and not fresh:
        return Built(app, None, counts(app))
    started = time.perf_counter()
    app = start_over(app, folder, database_url)
    build(app, seed)
    with transaction(app.sessions) as session:
        session.merge(Flag(name=FLAG, value=mark, updated_at=AS_OF))
    return Built(app, time.perf_counter() - started, counts(app))


def start_over(app: App, folder: Path, database_url: str) -> App:
    """An empty database and archive: a new SQLite file, or PostgreSQL's schema dropped (far faster than DELETEs)."""
    url = app.engine.url
    if url.get_backend_name() == "postgresql":
        with app.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    app.close()
    if url.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{url.database}{suffix}").unlink(missing_ok=True)
    for made in ("archive", "real-mail"):
        shutil.rmtree(folder / made, ignore_errors=True)
    app = large_app(folder, database_url)
    app.upgrade()
    return app


ORDER = (Message, Attachment, Submission, SubmissionRow, Problem, OutboxMail, Exemption, AuditEntry)


def build(app: App, seed: int) -> None:
    units = large_units()
    generator = Generator(seed, units)
    mails = generator.mails(app.calendar)
    with transaction(app.sessions) as session:
        unit_ids: dict[str, int] = dict(session.execute(text("SELECT name, id FROM units")).all())
        rows = rows_of(mails, units, unit_ids)
        exempt = {(unit_ids[units[unit].name], period) for unit, period, _ in generator.exempt}
        outbox_rows(rows, units, unit_ids, slots(app.calendar), exempt)
        exemption_rows(rows, [(unit_ids[units[unit].name], period, at) for unit, period, at in generator.exempt])
        audit_rows(rows, mails)
        for model in ORDER:
            _insert(session, core(model), rows.tables.get(model, []))
        _confirmed_addresses(session, mails, units, unit_ids)
        _reset_sequences(session)
    _check_settled(app, seed)
    _real_mail(app, units)


def _insert(session: Session, table: Table, values: list[dict[str, Any]]) -> None:
    for start in range(0, len(values), CHUNK):
        session.connection().execute(insert(table), values[start : start + CHUNK])


def _confirmed_addresses(
    session: Session, mails: Sequence[Mail], units: Sequence[UnitConfig], ids: dict[str, int]
) -> None:
    """The unregistered senders staff confirmed, from the day after their first mail."""
    seen: dict[str, tuple[int, datetime]] = {}
    for mail in mails:
        if mail.unit is not None and mail.confirmed and mail.sender not in seen:
            seen[mail.sender] = (ids[units[mail.unit].name], mail.received_at + timedelta(days=1))
    values = [
        {"unit_id": unit_id, "address": sender, "source": "confirmed", "created_at": at, "undeliverable_detail": ""}
        for sender, (unit_id, at) in seen.items()
    ]
    _insert(session, core(UnitAddress), values)


def _reset_sequences(session: Session) -> None:
    """PostgreSQL: explicit ids do not move the sequences; the real pipeline inserts after this."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for model in (*ORDER, UnitAddress):
        name = core(model).name
        session.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"))


def _check_settled(app: App, seed: int, sample: int = 300) -> None:
    """The statuses are what `settle` makes: walking a sample of histories changes nothing."""
    with transaction(app.sessions) as session:
        keys = session.execute(
            select(Submission.unit_id, Submission.period).distinct().where(Submission.unit_id.is_not(None))
        ).all()
        changes: dict[int, dict[str, Any]] = {}
        for unit_id, period in random.Random(seed).sample(sorted(keys), min(sample, len(keys))):
            stored._walk(session, unit_id or 0, period, changes)
        assert not changes, f"generated statuses differ from settle's: {list(changes.items())[:3]}"


def _real_mail(app: App, units: Sequence[UnitConfig]) -> list[int]:
    """A few units correct their 11-25 table the morning of AS_OF: real messages, archived and processed."""
    folder = Path(app.config.data_dir) / "real-mail"
    folder.mkdir(exist_ok=True)
    paths = []
    for n, unit in enumerate(units[:SAMPLE_UNITS]):
        received = AS_OF.replace(hour=8, minute=10 + n)
        raw = make_message(sender=unit.emails[0], subject=f"{unit.name}消费惠农统计表（更正）",
                           attachments=[("附件3.xlsx", _annex3_xlsx(unit.name, n))], received=received)  # fmt: skip
        paths.append(folder / f"{n}.eml")
        paths[-1].write_bytes(raw)
    pipeline = app.ready_pipeline()
    try:
        ingest_paths(pipeline, paths)
    finally:
        pipeline.close()
    app.queue_receipts()  # as the worker does right after processing
    return real_message_ids(app)


def _annex3_xlsx(unit: str, seed: int) -> bytes:
    rows: list[list[object]] = [["附件3"], [f"{unit}消费惠农统计表"]]
    rows.append(["单位名称", "产品名称", "产品来源", "采购方式", "金额（元）", "合计（元）"])
    for i in range(12):
        rows.append(
            [unit if i == 0 else None, f"产品{i}", SOURCES[i % 6], "线上" if i < 6 else "线下", 1000 + seed * 7 + i]
        )
    made: bytes = xlsx_bytes(rows)
    return made


def real_message_ids(app: App) -> list[int]:
    """The messages with a real .eml in the archive (the source the pipeline gives files it ingests)."""
    with transaction(app.sessions, readonly=True) as session:
        return list(session.scalars(select(Message.id).where(Message.source == "file").order_by(Message.id)))


def counts(app: App) -> dict[str, int]:
    with transaction(app.sessions, readonly=True) as session:
        return {core(m).name: session.scalar(select(func.count()).select_from(core(m))) or 0 for m in ORDER}


def size_text(app: App) -> str:
    url = app.engine.url
    if url.get_backend_name() == "sqlite":
        return f"{Path(url.database or '').stat().st_size / 1e6:.0f} MB (SQLite file)"
    with app.engine.connect() as connection:
        size = connection.scalar(text("SELECT pg_database_size(current_database())"))
    return f"{(size or 0) / 1e6:.0f} MB (pg_database_size)"


def describe(built: Built) -> Iterator[str]:
    how = "reused" if built.seconds is None else f"built in {built.seconds:.1f} s"
    yield f"large database {how}: {size_text(built.app)}"
    yield "  " + ", ".join(f"{name} {n:,}" for name, n in built.counts.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/mailbot-large"))
    parser.add_argument("--database-url", default="", help="default: an SQLite file in the folder")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--fresh", action="store_true", help="rebuild even when a database of this seed is there")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{args.folder / 'large.sqlite'}"
    built = ensure(args.folder, url, args.seed, args.fresh)
    for line in describe(built):
        print(line)
    built.app.close()


if __name__ == "__main__":
    main()
