"""Queries on the outbox and what planning needs to know. Every function takes the caller's Session.

Rows are claimed with a conditional UPDATE (`… WHERE id = ? AND status = 'pending'`): the row count says who
won, so two senders (the worker and a `mailbot remind` typed meanwhile) never send one mail twice. The claim
writes a token, and every later step of that sender is conditional on it (`advance`): one that stalled past
the lease, and lost the mail to `recover_stale`, learns so from the row count instead of sending it again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from mailbot.clock import as_local
from mailbot.notices import HOLD_LIMIT, ReceiptDue, Recipient, State, route
from mailbot.store import exemptions
from mailbot.store.models import Flag, Message, OutboxMail, Submission, Unit, UnitAddress

ACCEPTED = ("current", "superseded", "duplicate")  # a unit that sent any accepted table has reported
RECEIPT_KINDS = ("report", "nil_report", "rejected_input")
PAUSED = "smtp_paused"
IN_FLIGHT = ("sending", "delivering")
UNCERTAIN_DETAIL = "发送进程在投递过程中中断，邮件可能已发出；为避免重复，未自动重发，请人工确认"


@dataclass(frozen=True)
class Outgoing:
    """A rendered mail, ready to be queued."""

    key: str
    kind: str
    to: str
    subject: str
    text: str
    html: str
    message_id: str
    unit: str | None = None
    period: str = ""
    source_message: int | None = None
    attachment_name: str = ""
    attachment: bytes | None = None
    in_reply_to: str = ""
    references: str = ""


def planning_state(
    session: Session,
    now: datetime,
    receipt_max_age: timedelta,
    receipts: bool,
    periods: Collection[str] | None = None,
    queued: bool = True,
) -> State:
    """What planning at `now` needs to know. `periods`: the ids of the periods being planned, when the caller
    knows them: `submitted` then holds those periods' pairs only, which is all `plan` asks about, instead of
    ten years of them. `queued=False` leaves the outbox keys out: the caller asks `existing_keys` about the
    keys `plan` comes up with (ten years of keys are ~90,000 rows for a few hundred candidates)."""
    accepted = [Submission.status.in_(ACCEPTED), Submission.received_at <= now]
    if periods is not None:
        accepted.append(Submission.period.in_(list(periods)))
    submitted = select(Unit.name, Submission.period).join(Unit, Submission.unit_id == Unit.id).where(*accepted)
    return State(
        recipients=_recipients(session),
        submitted=frozenset((name, period) for name, period in session.execute(submitted.distinct())),
        queued=frozenset(session.scalars(select(OutboxMail.key))) if queued else frozenset(),
        receipts=_receipts_due(session, now, receipt_max_age) if receipts else (),
        annex2_months=_annex2_months(session, now),
        undeliverable=undeliverable(session),
        exempt=exemptions.pairs(session),
    )


def existing_keys(session: Session, keys: Sequence[str]) -> frozenset[str]:
    """Which of `keys` the outbox holds already (any status)."""
    found: set[str] = set()
    for start in range(0, len(keys), 500):  # bound the IN list: SQLite caps bound parameters per statement
        found.update(session.scalars(select(OutboxMail.key).where(OutboxMail.key.in_(keys[start : start + 500]))))
    return frozenset(found)


def _annex2_months(session: Session, now: datetime) -> frozenset[tuple[str, str]]:
    """(unit, "YYYY-MM") for the month of `now`, when the unit sent an annex-2 table in it by `now`: the monthly
    nudge asks only about the current month."""
    month_start = as_local(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    found = session.execute(
        select(Unit.name, Submission.received_at)
        .join(Unit, Submission.unit_id == Unit.id)
        .where(
            Submission.annex == "2",
            Submission.status.in_(ACCEPTED),
            Submission.received_at <= now,
            Submission.received_at >= month_start,
        )
    )
    return frozenset((name, f"{as_local(received):%Y-%m}") for name, received in found)


def _recipients(session: Session) -> tuple[Recipient, ...]:
    addresses = unit_addresses(session)
    units = session.execute(select(Unit.id, Unit.name).where(Unit.active).order_by(Unit.position, Unit.id))
    return tuple(_recipient(name, addresses.get(unit_id, [])) for unit_id, name in units)


def _recipient(name: str, addresses: Sequence[str]) -> Recipient:
    return Recipient(name, addresses[0], tuple(addresses[1:])) if addresses else Recipient(name, "")


def unit_addresses(session: Session) -> dict[int, list[str]]:
    """Each unit's addresses in the order mail tries them: the config's (its own list order), then those staff
    confirmed (oldest first)."""
    found: dict[int, list[str]] = {}
    rows = session.execute(
        select(UnitAddress.unit_id, UnitAddress.address).order_by((UnitAddress.source != "config"), UnitAddress.id)
    )
    for unit_id, address in rows:
        found.setdefault(unit_id, []).append(address)
    return found


def undeliverable(session: Session) -> frozenset[str]:
    """Unit addresses mail must not go to: a bounce showed them dead, or staff retired them."""
    dead = or_(UnitAddress.undeliverable_at.is_not(None), UnitAddress.retired_at.is_not(None))
    return frozenset(session.scalars(select(UnitAddress.address).where(dead)))


def redirect_pending(session: Session, address: str) -> tuple[int, int]:
    """Mails queued but not yet sent to an address that just became undeliverable go to the unit's next address;
    when it has none they are dropped (never attempted), and planning holds them until staff give the unit a
    working address. Returns (redirected, dropped)."""
    rows = session.scalars(
        select(OutboxMail).where(OutboxMail.status == "pending", OutboxMail.to_address == address)
    ).all()
    addresses, dead = unit_addresses(session), undeliverable(session)
    redirected = dropped = 0
    for row in rows:
        if row.unit_id is None:
            continue  # a digest to staff: not a unit's address
        to, _ = route(addresses.get(row.unit_id, []), dead)
        if to:
            row.to_address, redirected = to, redirected + 1
        else:
            session.delete(row)
            dropped += 1
    return redirected, dropped


def _receipts_due(session: Session, now: datetime, max_age: timedelta) -> tuple[ReceiptDue, ...]:
    """Recent messages that deserve a receipt, with whether their sender is registered for their unit. Those
    up to HOLD_LIMIT older are read too: a receipt held for its sender counts its age from the confirmation."""
    address = UnitAddress.address == func.lower(Message.from_address)
    rows = session.execute(
        select(
            Message.id,
            Message.sha256,
            Unit.name,
            Message.from_address,
            Message.received_at,
            UnitAddress.source,
            UnitAddress.created_at,
        )
        .join(Unit, Message.unit_id == Unit.id)
        .outerjoin(UnitAddress, and_(address, UnitAddress.unit_id == Message.unit_id))
        .where(
            Message.status == "processed",
            Message.kind.in_(RECEIPT_KINDS),
            Message.no_reply == "",
            Message.received_at >= now - max_age - HOLD_LIMIT,
            Message.received_at <= now,
        )
        .order_by(Message.received_at, Message.id)
    )
    return tuple(_receipt_due(*row) for row in rows)


def _receipt_due(
    message: int, sha256: str, unit: str, sender: str, received: datetime, source: str | None, since: datetime | None
) -> ReceiptDue:
    confirmed = since if source == "confirmed" else None
    return ReceiptDue(message, sha256, unit, sender, received, registered=source is not None, confirmed_at=confirmed)


def enqueue(session: Session, mails: Sequence[Outgoing], now: datetime) -> list[str]:
    """Queue the mails whose key is new; returns the keys queued. A key already there is left alone.

    Two processes may plan the same mail at once (the worker's receipts and a `mailbot poll` typed meanwhile,
    or two `remind`s): the INSERT skips a key that another transaction committed first instead of failing on
    the unique key, and RETURNING says which keys this one queued."""
    if not mails:
        return []
    known = set(session.scalars(select(OutboxMail.key).where(OutboxMail.key.in_([m.key for m in mails]))))
    unit_ids: dict[str, int] = {name: unit_id for name, unit_id in session.execute(select(Unit.name, Unit.id))}
    fresh: dict[str, dict[str, object]] = {}
    for mail in mails:  # the same key twice in `mails`: the first one
        if mail.key not in known:
            fresh.setdefault(mail.key, _values(mail, unit_ids.get(mail.unit or ""), now))
    if not fresh:
        return []
    # Imported here: the dialects cost ~50 ms at start, and only queueing (not `status` or `outbox list`) needs them.
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(OutboxMail).on_conflict_do_nothing(index_elements=["key"]).returning(OutboxMail.key)
    queued = set(session.scalars(statement, list(fresh.values())))
    return [key for key in fresh if key in queued]


def _values(mail: Outgoing, unit_id: int | None, now: datetime) -> dict[str, object]:
    return {
        "key": mail.key,
        "kind": mail.kind,
        "unit_id": unit_id,
        "period": mail.period,
        "source_message_id": mail.source_message,
        "to_address": mail.to,
        "subject": mail.subject,
        "body_text": mail.text,
        "body_html": mail.html,
        "attachment_name": mail.attachment_name,
        "attachment": mail.attachment,
        "message_id": mail.message_id,
        "in_reply_to": mail.in_reply_to,
        "references": mail.references,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
        "created_at": now,
    }


def next_due(session: Session, now: datetime) -> int | None:
    return session.scalar(
        select(OutboxMail.id)
        .where(OutboxMail.status == "pending", OutboxMail.next_attempt_at <= now)
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
        .limit(1)
    )


def claim(session: Session, mail_id: int, now: datetime, claimer: str = "", token: str = "") -> bool:
    """Take a pending mail for sending under `token` (unique to this claim); False when another sender was
    faster. `claimer` (host:pid) lets `recover_stale` see that the sender died."""
    result = session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == mail_id, OutboxMail.status == "pending")
        .values(
            status="sending", claimed_at=now, claimed_by=claimer, claim_token=token, attempts=OutboxMail.attempts + 1
        )
    )
    return bool(getattr(result, "rowcount", 0))


def advance(
    session: Session,
    mail_id: int,
    token: str,
    expected: Collection[str],
    status: str,
    now: datetime,
    error: str = "",
    **more: object,
) -> bool:
    """A claimed mail's next step, only while the claim `token` still holds it in one of the `expected`
    statuses; False when it does not (the lease ran out and the mail was taken back): the caller has lost it."""
    result = session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == mail_id, OutboxMail.claim_token == token, OutboxMail.status.in_(list(expected)))
        .values(**_status_values(status, now, error, more))
    )
    return bool(getattr(result, "rowcount", 0))


def set_status(session: Session, mail_id: int, status: str, now: datetime, error: str = "", **more: object) -> None:
    """Set a mail's status whoever holds it: for staff's decisions and tests, never for a sender's steps."""
    session.execute(
        update(OutboxMail).where(OutboxMail.id == mail_id).values(**_status_values(status, now, error, more))
    )


def _status_values(status: str, now: datetime, error: str, more: dict[str, object]) -> dict[str, object]:
    values: dict[str, object] = {"status": status, "last_error": error, **more}
    if status == "sent":
        values["sent_at"] = now
    return values


def sent_since(session: Session, since: datetime) -> int:
    """Mails handed to the server since `since` (sent, or possibly sent): what the throttle counts."""
    return (
        session.scalar(
            select(func.count()).where(
                OutboxMail.claimed_at >= since, OutboxMail.status.in_(("sent", "delivering", "uncertain"))
            )
        )
        or 0
    )


def claimers(session: Session) -> set[str]:
    """The senders (host:pid) holding mails right now."""
    return set(
        session.scalars(
            select(OutboxMail.claimed_by)
            .where(OutboxMail.status.in_(IN_FLIGHT), OutboxMail.claimed_by != "")
            .distinct()
        )
    )


def recover_stale(session: Session, before: datetime, gone: Collection[str] = ()) -> tuple[int, int]:
    """After a crash: a mail claimed but never handed over goes back to pending; one whose text the server
    may have received becomes uncertain. A claim is over when it is older than `before` (the lease) or its
    sender is known to be gone. The claim token stays: should the sender be alive after all (stalled), it
    finds a requeued mail no longer `sending` under its token and stops, while the server's answer about a
    mail it had handed over still replaces `uncertain` (see `mailbot.outbox.HELD`). Returns (requeued,
    uncertain)."""
    over = or_(OutboxMail.claimed_at < before, OutboxMail.claimed_by.in_(list(gone)))
    requeued = session.execute(
        update(OutboxMail)
        .where(OutboxMail.status == "sending", over)
        .values(status="pending", last_error="发送进程中断，尚未发出，将重试")
    )
    uncertain = session.execute(
        update(OutboxMail)
        .where(OutboxMail.status == "delivering", over)
        .values(status="uncertain", last_error=UNCERTAIN_DETAIL)
    )
    return getattr(requeued, "rowcount", 0), getattr(uncertain, "rowcount", 0)


def paused(session: Session) -> str | None:
    """Why sending is paused (the server refused the login), or None."""
    flag = session.get(Flag, PAUSED)
    return flag.value if flag is not None else None


def pause(session: Session, reason: str, now: datetime) -> None:
    flag = session.get(Flag, PAUSED)
    if flag is None:
        session.add(Flag(name=PAUSED, value=reason, updated_at=now))
    else:
        flag.value, flag.updated_at = reason, now


def resume(session: Session) -> bool:
    flag = session.get(Flag, PAUSED)
    if flag is None:
        return False
    session.delete(flag)
    return True


def listing(session: Session, statuses: Sequence[str] = ()) -> list[OutboxMail]:
    query = select(OutboxMail).order_by(OutboxMail.id)
    if statuses:
        query = query.where(OutboxMail.status.in_(statuses))
    return list(session.scalars(query))


def retry(session: Session, mail_ids: Sequence[int], now: datetime) -> list[int]:
    """Staff send a failed, cancelled or uncertain mail again (an uncertain one only because they checked)."""
    rows = session.scalars(
        select(OutboxMail).where(
            OutboxMail.id.in_(mail_ids), OutboxMail.status.in_(("failed", "cancelled", "uncertain"))
        )
    ).all()
    for row in rows:
        row.status, row.next_attempt_at, row.attempts, row.last_error = "pending", now, 0, ""
    return sorted(row.id for row in rows)


def cancel(session: Session, mail_ids: Sequence[int]) -> list[int]:
    """Staff decide a mail is never to be sent (again): pending, failed, or bounced back from a staff address."""
    rows = session.scalars(
        select(OutboxMail).where(OutboxMail.id.in_(mail_ids), OutboxMail.status.in_(("pending", "failed", "bounced")))
    ).all()
    for row in rows:
        row.status = "cancelled"
    return sorted(row.id for row in rows)
