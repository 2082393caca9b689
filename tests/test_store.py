"""Storage on SQLite and PostgreSQL: migrations, the registry mirror, the ledger's dedupe, types."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text, update

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.config import UnitConfig
from mailbot.errors import DatabaseError
from mailbot.store import db, ledger
from mailbot.store.db import transaction
from mailbot.store.ledger import Arrival
from mailbot.store.models import Base, Message, Submission, SubmissionRow, Unit, UnitAddress

from dbfixtures import ingest_raws, make_config
from mailgen import annex3_xlsx, make_message

NOW = datetime(2021, 6, 20, 10, 0, tzinfo=TZ)


def test_it_creates_every_table_at_the_head_revision(app: App) -> None:
    assert db.current_revision(app.engine) == db.head_revision()
    for table in (
        "units",
        "unit_addresses",
        "messages",
        "attachments",
        "submissions",
        "submission_rows",
        "problems",
        "mailbox_state",
        "sender_decisions",
    ):
        assert table in db.table_names(app.engine)


def test_the_migrations_build_exactly_the_schema_of_the_models(app: App) -> None:
    with app.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert {"outbox", "flags"} <= set(db.table_names(app.engine))


def test_it_refuses_a_database_that_is_not_migrated(tmp_path, database_url) -> None:
    fresh = App(make_config(tmp_path / "d", database_url))
    with pytest.raises(DatabaseError, match="mailbot db upgrade"):
        fresh.ready_pipeline()
    fresh.close()


def test_the_upgrade_re_reads_what_the_old_rules_misread(app: App, tmp_path) -> None:
    """Migration 0006: a table filed under an invented monthly period is read again by the next poll."""
    raw = make_message(attachments=[("附件3.xlsx", annex3_xlsx())], received=datetime(2021, 6, 12, 9, 0, tzinfo=TZ))
    ingest_raws(app, tmp_path / "in", raw)
    with transaction(app.sessions) as session:  # what the old rules stored
        session.execute(update(Submission).values(annex="monthly", period="2021-monthly-03", on_time=False))
    from alembic import command

    command.downgrade(db._alembic_config(app.engine), "0005")  # back to before 0006, undoing later migrations
    app.upgrade()
    with transaction(app.sessions) as session:
        assert session.execute(select(Message.status, Message.attempts)).all() == [("archived", 0)]
    app.ready_pipeline().process_pending()
    with transaction(app.sessions) as session:
        found = session.execute(select(Submission.annex, Submission.period, Submission.on_time)).all()
        assert found == [("3", "2021-annex3-06-15", True)]
        assert session.scalar(select(Message.status)) == "processed"


def test_it_runs_sqlite_in_wal_mode_with_foreign_keys(tmp_path) -> None:
    application = App(make_config(tmp_path / "d", f"sqlite:///{tmp_path / 'x.db'}"))
    application.upgrade()
    with application.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    application.close()


def test_it_mirrors_config_units_in_order_with_aliases_and_addresses(app: App) -> None:
    with transaction(app.sessions) as session:
        units = session.scalars(select(Unit).order_by(Unit.position)).all()
        assert [u.name for u in units][:2] == ["郏县总工会", "宝丰县总工会"]
        assert [a.alias for a in units[0].aliases] == ["郏县", "郟县"]
        address = session.scalar(select(UnitAddress).where(UnitAddress.address == "jiaxian@example.cn"))
        assert address is not None and address.unit.name == "郏县总工会" and address.source == "config"


def test_it_keeps_confirmed_addresses_and_deactivates_removed_units(app: App) -> None:
    with transaction(app.sessions) as session:
        unit = ledger.unit_by_name(session, "宝丰县总工会")
        assert unit is not None
        session.add(UnitAddress(address="bf@qq.com", unit_id=unit.id, source="confirmed", created_at=NOW))
    smaller = (UnitConfig(name="宝丰县总工会", category="县市区", emails=("baofeng@example.cn",)),)
    with transaction(app.sessions) as session:
        ledger.sync_units(session, smaller, NOW)
    with transaction(app.sessions) as session:
        registry = ledger.load_registry(session, app.config.staff, frozenset())
        assert [u.name for u in registry.units] == ["宝丰县总工会"]
        assert registry.units[0].addresses == frozenset({"baofeng@example.cn", "bf@qq.com"})
        assert registry.unit_for_address("JIAXIAN@example.cn") is None


def test_it_tells_from_plain_reads_whether_the_units_are_mirrored_already(app: App) -> None:
    """Every command start asks this instead of a dry run of sync_units: it must say False for any change the
    sync would write, and True only when it would write nothing."""
    units = app.config.units
    first = units[0]
    with transaction(app.sessions, readonly=True) as session:
        assert ledger.units_in_sync(session, units)
        changed = [
            (replace(first, phone="0375-1"), *units[1:]),  # a field of a unit
            (replace(first, aliases=(*first.aliases, "新名")), *units[1:]),  # an alias
            (replace(first, emails=("new@example.cn",)), *units[1:]),  # an address
            (units[1], first, *units[2:]),  # the order
            units[1:],  # a unit to retire
            (*units, UnitConfig(name="新单位", category="县市区")),  # a new unit
        ]
        assert [ledger.units_in_sync(session, variant) for variant in changed] == [False] * len(changed)
    with transaction(app.sessions) as session:
        unit = ledger.unit_by_name(session, first.name)
        assert unit is not None
        session.add(UnitAddress(address="staff-confirmed@qq.com", unit_id=unit.id, source="confirmed", created_at=NOW))
    with transaction(app.sessions, readonly=True) as session:
        assert ledger.units_in_sync(session, units)  # an address staff confirmed is no change of the config's


def _arrival(sha: str, uid: int | None, uidvalidity: int = 7) -> Arrival:
    return Arrival(
        sha256=sha,
        size=10,
        source="imap",
        received_at=NOW,
        message_id=f"{sha}@x",
        folder="INBOX",
        uidvalidity=uidvalidity,
        uid=uid,
    )


def test_it_records_the_same_bytes_once_and_moves_their_location(app: App) -> None:
    with transaction(app.sessions) as session:
        # The same bytes twice in one batch (a server that lists a message twice) and once more later.
        assert ledger.record_arrivals(session, [_arrival("a" * 64, 1), _arrival("a" * 64, 1)], NOW) == 1
        assert ledger.record_arrivals(session, [_arrival("a" * 64, 5, uidvalidity=8), _arrival("d" * 64, 6)], NOW) == 1
    with transaction(app.sessions) as session:
        row = session.scalars(select(Message).where(Message.sha256 == "a" * 64)).one()
        assert (row.uidvalidity, row.uid) == (8, 5)
        assert len(session.scalars(select(Message)).all()) == 2


def _file_arrival(sha: str, received_at: datetime) -> Arrival:
    return Arrival(sha256=sha, size=1, source="file", received_at=received_at)


def test_it_keeps_times_aware_in_shanghai_and_money_decimal(app: App) -> None:
    in_utc = datetime(2021, 6, 15, 7, 59, 59, tzinfo=UTC)
    with transaction(app.sessions) as session:
        ledger.record_arrivals(session, [_file_arrival("b" * 64, in_utc)], NOW)
        row = session.scalars(select(Message)).one()
        submission = Submission(
            message_id=row.id,
            annex="3",
            period="2021-annex3-06-15",
            received_at=NOW,
            total_yuan=Decimal("33415700.00"),
        )
        submission.rows = [SubmissionRow(position=1, fields={"product": "大米"}, amount_yuan=Decimal("0.10"))]
        session.add(submission)
    with transaction(app.sessions) as session:
        stored = session.scalars(select(Message)).one()
        assert stored.received_at == in_utc
        assert stored.received_at.utcoffset() == timedelta(hours=8)
        assert stored.received_at.hour == 15
        saved = session.scalars(select(Submission)).one()
        assert saved.total_yuan == Decimal("33415700.00") and isinstance(saved.total_yuan, Decimal)
        assert saved.rows[0].amount_yuan == Decimal("0.10")


def test_it_refuses_naive_datetimes(app: App) -> None:
    with pytest.raises(Exception, match="naive"), transaction(app.sessions) as session:
        ledger.record_arrivals(session, [_file_arrival("c" * 64, datetime(2021, 1, 1))], NOW)
