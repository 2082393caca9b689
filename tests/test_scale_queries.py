"""What was made cheap for ten years of mail (bench/bench_scale.py) gives what it gave before: `status`'s per-unit
counts are one GROUP BY instead of every message loaded as an object, and a digest previewed without its
workbook reads as the one sent with it."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.report.status import UnitStatus, build_status
from mailbot.store.db import transaction
from mailbot.store.models import Message, Unit

from reportfixtures import DAY_AFTER

AS_OF = datetime(2021, 6, 20, 17, 30, tzinfo=TZ)
_SHAS = count()


def _message(unit_id: int | None, kind: str, received_at: datetime, sender_known: bool = True) -> Message:
    return Message(
        sha256=f"{next(_SHAS):064x}",
        size=1,
        source="file",
        received_at=received_at,
        archived_at=received_at,
        status="processed",
        kind=kind,
        unit_id=unit_id,
        sender_known=sender_known,
    )


def _by_object(session: Session, as_of: datetime) -> list[UnitStatus]:
    """The per-unit status as it was computed before: every message of the active units, one by one."""
    units = {
        u.id: UnitStatus(u.name, u.category)
        for u in session.scalars(select(Unit).where(Unit.active).order_by(Unit.position))
    }
    for message in session.scalars(select(Message).where(Message.received_at <= as_of)):
        status = units.get(message.unit_id or -1)
        if status is None:
            continue
        status.messages += 1
        status.reports += message.kind in ("report", "nil_report")
        status.unconfirmed += not message.sender_known
        if status.last_received_at is None or message.received_at > status.last_received_at:
            status.last_received_at = message.received_at
    return list(units.values())


def test_it_counts_each_units_mail_as_the_message_by_message_walk_did(app: App) -> None:
    with transaction(app.sessions) as session:
        first, second, _, retired = session.scalars(select(Unit.id).order_by(Unit.position)).all()[:4]
        session.execute(update(Unit).where(Unit.id == retired).values(active=False))
        day = AS_OF - timedelta(days=3)
        session.add_all(
            [
                _message(first, "report", day),
                _message(first, "nil_report", day + timedelta(hours=2)),
                _message(first, "not_a_report", day + timedelta(hours=1)),
                _message(first, "report", day + timedelta(hours=3), sender_known=False),
                _message(first, "report", AS_OF + timedelta(seconds=1)),  # after the moment: not counted
                _message(second, "auto_or_bounce", day - timedelta(days=40)),
                _message(retired, "report", day),  # a unit no longer active is not listed
                _message(None, "unknown_sender", day),  # nobody's mail counts for no unit
            ]
        )
    with transaction(app.sessions, readonly=True) as session:
        shown = build_status(session, AS_OF, []).units
        assert shown == _by_object(session, AS_OF)
    mine = next(u for u in shown if u.name == shown[0].name)
    assert (mine.messages, mine.reports, mine.unconfirmed) == (4, 3, 1)
    assert mine.last_received_at == day + timedelta(hours=3) and mine.last_received_at.tzinfo is not None
    assert (shown[1].messages, shown[1].reports, shown[1].last_received_at) == (1, 0, day - timedelta(days=40))
    assert all(
        u.messages == 0 and u.last_received_at is None for u in shown if u.name not in (mine.name, shown[1].name)
    )
    assert len(shown) == len(app.config.units) - 1  # every active unit, those without mail too


def test_a_preview_digest_says_what_the_sent_one_says_without_building_its_workbook(demo_app: App) -> None:
    digests = demo_app.digests()
    sent, preview = digests.render(DAY_AFTER), digests.render(DAY_AFTER, attachment=False)
    assert sent.attachment is not None and preview.attachment is None
    assert preview.attachment_name == sent.attachment_name != ""
    assert (preview.rendered.subject, preview.rendered.text) == (sent.rendered.subject, sent.rendered.text)
    assert preview.rendered.html == sent.rendered.html
