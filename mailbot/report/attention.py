"""What needs a person, computed in one place: `mailbot status` and the daily digest list exactly these items.

Each item stays until it is settled — an unknown sender confirmed or rejected (`units confirm-address` /
`reject`), a dead address retired or replaced (`units retire-address` / `replace-address`), a unit's letter or
any other message marked handled (`mailbot handled`), a failed mail retried or cancelled, sending resumed —
except information (a bounce about an address mailbot never wrote to), which is shown for `info_days` days.
The data problems of the tables that count (合计与明细不符 …) are items of the periods in focus, as long as the
table with them is the one that counts: a corrected table settles them, and so does staff accepting one with a
note (`problems accept`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from mailbot.bounces import FORMER_ADDRESS, UNMATCHED
from mailbot.errors import ArchiveCorruptError
from mailbot.message.decode import html_to_text
from mailbot.message.split import parse_message
from mailbot.problems import ARCHIVE_CORRUPT, NO_OPEN_PERIOD
from mailbot.receipts import STAFF_ONLY
from mailbot.report.facts import PeriodReport
from mailbot.store.archive import Archive
from mailbot.store.models import Flag, Message, OutboxMail, Problem, ProblemAcceptance, Unit, UnitAddress
from mailbot.store.outbox import PAUSED, undeliverable, unit_addresses

# Groups, in the order staff see them.
PAUSED_GROUP = "paused"  # sending stopped after a refused login
MAILS = "mails"  # mails that failed or may have gone out
UNDELIVERABLE = "undeliverable"  # a unit address a bounce showed dead
UNIT_WROTE = "unit_wrote"  # 单位来信: a unit wrote something that is not a report
SENDERS = "senders"  # mail a person must attribute
UNREADABLE = "unreadable"  # mail or files that could not be read
UNCOUNTED = "uncounted"  # tables the configured deadlines have no period for: counted nowhere, never guessed
DATA = "data"  # 数据问题: the problems of the tables that count in the periods in focus (合计与明细不符 …)
INFO = "info"  # information only: a bounce about a former address
GROUPS = (PAUSED_GROUP, MAILS, UNDELIVERABLE, UNIT_WROTE, SENDERS, UNREADABLE, UNCOUNTED, DATA, INFO)

SENDER_CODES = ("unknown_sender", "ambiguous_unit", "rejected_sender")
UNREADABLE_CODES = (
    *("encrypted", "corrupt", "empty_file", "unsafe_xml", "archive_bomb", "unsupported_format"),
    *("oversized", "malformed_message", "unrecognised_table", "no_table"),
)
UNCOUNTED_CODES = (NO_OPEN_PERIOD,)
INFO_CODES = (FORMER_ADDRESS, UNMATCHED)
EXCERPT_LINES = 3
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class Item:
    """One thing a person must do (or, `info`, should know)."""

    group: str
    code: str  # a problem code, "failed", "unit_wrote", "undeliverable", a mail's status, "paused"
    detail: str
    message: int | None = None  # the ledger id, for `mailbot handled`
    received_at: datetime | None = None
    sender: str = ""
    subject: str = ""
    unit: str | None = None
    address: str = ""  # the undeliverable address, or where a failed mail went
    mail: int | None = None  # the outbox id
    excerpt: str = ""  # the first lines of what a unit wrote
    kind: str = ""  # a mail's kind (reminder, late_notice, receipt, digest)
    held: bool = False  # the unit has no deliverable address left: its mail is held
    info: bool = False
    period: str = ""  # the period whose counted table has this data problem

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "code": self.code,
            "detail": self.detail,
            "message": self.message,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "from": self.sender,
            "subject": self.subject,
            "unit": self.unit,
            "address": self.address,
            "mail": self.mail,
            "excerpt": self.excerpt,
            "kind": self.kind,
            "held": self.held,
            "info": self.info,
            "period": self.period,
        }


def needs_a_person(
    session: Session,
    as_of: datetime,
    info_days: int,
    archive: Archive | None = None,
    reports: Sequence[PeriodReport] = (),
) -> list[Item]:
    """Every item, grouped in GROUPS order, oldest first within a group. `archive`: where the first lines of a
    unit's letter are read from (without it, the letter shows its subject only). `reports`: the periods in focus
    (`Digests.focus`), whose counted tables' data problems are items too."""
    items = [
        *_paused(session),
        *_mails(session),
        *_undeliverable(session, as_of),
        *_unit_wrote(session, as_of, archive),
        *_failed(session, as_of),
        *_problems(session, as_of, (*SENDER_CODES, *UNREADABLE_CODES, *UNCOUNTED_CODES)),
        *_unaccepted(data_problems(reports), accepted(session)),
        *_problems(session, as_of, INFO_CODES, as_of - timedelta(days=info_days)),
    ]
    return sorted(items, key=lambda item: GROUPS.index(item.group))  # stable: each query's order is kept


def to_do(items: Sequence[Item]) -> int:
    """How many items need doing (information does not)."""
    return sum(not item.info for item in items)


def data_problems(reports: Sequence[PeriodReport]) -> list[Item]:
    """The problems of each unit's counted table (its latest version) in these periods, in the registry's order.
    The sender and date questions are left out: they are listed once, under senders."""
    return [
        Item(
            DATA,
            issue.code,
            issue.detail,
            message=issue.message,
            unit=unit.name,
            subject=issue.origin,
            period=report.period.id,
        )
        for report in reports
        for unit, issue in report.issues()
        if issue.code not in STAFF_ONLY
    ]


def accepted(session: Session) -> frozenset[tuple[int, str, str]]:
    """(message, code, detail) of every data problem staff accepted with a note (`problems accept`)."""
    rows = session.execute(select(ProblemAcceptance.message_id, ProblemAcceptance.code, ProblemAcceptance.detail))
    return frozenset((message, code, detail) for message, code, detail in rows)


def _unaccepted(items: Sequence[Item], done: frozenset[tuple[int, str, str]]) -> list[Item]:
    """An accepted problem is settled for that message; the same problem in a corrected table is news again."""
    return [item for item in items if item.message is None or (item.message, item.code, item.detail) not in done]


def _paused(session: Session) -> list[Item]:
    flag = session.get(Flag, PAUSED)
    return [] if flag is None else [Item(PAUSED_GROUP, "paused", flag.value, received_at=flag.updated_at)]


def _mails(session: Session) -> list[Item]:
    # A bounced mail to a unit shows as its undeliverable address; one to staff (a digest) shows here.
    staff_bounce = (OutboxMail.status == "bounced") & OutboxMail.unit_id.is_(None)
    mails = session.scalars(
        select(OutboxMail).where(OutboxMail.status.in_(("failed", "uncertain")) | staff_bounce).order_by(OutboxMail.id)
    )
    return [
        Item(
            MAILS,
            m.status,
            m.last_error,
            unit=m.unit.name if m.unit else None,
            address=m.to_address,
            mail=m.id,
            kind=m.kind,
        )
        for m in mails
    ]


def _undeliverable(session: Session, as_of: datetime) -> list[Item]:
    bounce = aliased(Message)
    rows = session.execute(
        select(UnitAddress, Unit.name, bounce)
        .join(Unit, UnitAddress.unit_id == Unit.id)
        .outerjoin(bounce, UnitAddress.bounce_message_id == bounce.id)
        .where(
            UnitAddress.undeliverable_at.is_not(None),
            UnitAddress.undeliverable_at <= as_of,
            UnitAddress.retired_at.is_(None),
        )
        .order_by(UnitAddress.undeliverable_at)
    ).all()
    addresses, dead = unit_addresses(session), undeliverable(session)
    return [
        Item(
            UNDELIVERABLE,
            "undeliverable",
            address.undeliverable_detail,
            message=message.id if message else None,
            received_at=address.undeliverable_at,
            sender=message.from_address if message else "",
            subject=message.subject if message else "",
            unit=unit,
            address=address.address,
            held=all(a in dead for a in addresses.get(address.unit_id, [])),
        )
        for address, unit, message in rows
    ]


def _unit_wrote(session: Session, as_of: datetime, archive: Archive | None) -> list[Item]:
    """Mail from a unit's registered address that is no report (a question, a new phone number)."""
    rows = session.execute(
        select(Message, Unit.name)
        .join(Unit, Message.unit_id == Unit.id)
        .where(
            Message.kind == "not_a_report",
            Message.sender_known,
            Message.no_reply == "",  # a newsletter sent from a unit's address is no letter
            Message.handled_at.is_(None),
            Message.received_at <= as_of,
        )
        .order_by(Message.received_at, Message.id)
    ).all()
    return [
        Item(
            UNIT_WROTE,
            "unit_wrote",
            "",
            message=m.id,
            received_at=m.received_at,
            sender=m.from_address,
            subject=m.subject,
            unit=unit,
            excerpt=_excerpt(archive, m.sha256),
        )
        for m, unit in rows
    ]


def _failed(session: Session, as_of: datetime) -> list[Item]:
    """Messages whose processing failed; one whose archived copy is damaged or missing is named so (its
    archive_corrupt problem is this item: it is not listed again)."""
    damaged = exists().where(Problem.message_id == Message.id, Problem.code == ARCHIVE_CORRUPT)
    failed = session.execute(
        select(Message, damaged)
        .where(Message.status == "failed", Message.received_at <= as_of, Message.handled_at.is_(None))
        .order_by(Message.received_at, Message.id)
    )
    return [_message_item(UNREADABLE, m, ARCHIVE_CORRUPT if corrupt else "failed", m.error) for m, corrupt in failed]


def _problems(session: Session, as_of: datetime, codes: tuple[str, ...], since: datetime | None = None) -> list[Item]:
    query = (
        select(Message, Problem.code, Problem.detail)
        .join(Problem, Problem.message_id == Message.id)
        .where(Problem.code.in_(codes), Message.received_at <= as_of, Message.handled_at.is_(None))
        .order_by(Message.received_at, Message.id, Problem.id)
    )
    if since is not None:
        query = query.where(Message.received_at >= since)
    return [_message_item(_group(code), m, code, detail) for m, code, detail in session.execute(query)]


def _group(code: str) -> str:
    groups = {**dict.fromkeys(SENDER_CODES, SENDERS), **dict.fromkeys(UNCOUNTED_CODES, UNCOUNTED)}
    return INFO if code in INFO_CODES else groups.get(code, UNREADABLE)


def _message_item(group: str, message: Message, code: str, detail: str) -> Item:
    return Item(
        group,
        code,
        detail,
        message=message.id,
        received_at=message.received_at,
        sender=message.from_address,
        subject=message.subject,
        unit=message.unit.name if message.unit else None,
        info=group == INFO,
    )


def _excerpt(archive: Archive | None, sha256: str) -> str:
    """The first few non-empty lines of the body, for staff to see what the unit asked without opening it."""
    if archive is None:
        return ""
    try:
        parsed = parse_message(archive.load(sha256))
    except (OSError, ArchiveCorruptError):  # a damaged copy is listed as such; the letter shows its subject
        return ""
    body = parsed.text_body if parsed.text_body.strip() else html_to_text(parsed.html_body)
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    return "\n".join(lines[:EXCERPT_LINES])[:EXCERPT_CHARS]
