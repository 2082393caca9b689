"""SQLAlchemy 2 models. The schema is created only by Alembic migrations (`mailbot db upgrade`).

Money columns are Numeric and map to Decimal. Times go through TZDateTime and always come back aware.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from mailbot.clock import TZ

# Stable constraint names so that migrations can refer to them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class TZDateTime(TypeDecorator[datetime]):
    """An aware datetime on every backend.

    SQLite has no time zones, so it stores Asia/Shanghai wall time (China has no DST, so order is kept);
    PostgreSQL stores timestamptz. Either way values come back aware, in Asia/Shanghai.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; mailbot only stores aware times")
        return value.astimezone(TZ) if dialect.name != "sqlite" else value.astimezone(TZ).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=TZ)
        return value.astimezone(TZ)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: TZDateTime(), dict[str, Any]: JSON()}


def core(model: type[Base]) -> Table:
    """A model's Core table: statements on it skip the ORM's per-statement work (bulk paths use this)."""
    return cast(Table, model.__table__)


class Unit(Base):
    """A registered sender organisation, mirrored from the config's [[units]] at every start."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    category: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)  # the registry's order, used by reports
    contact: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    aliases: Mapped[list[UnitAlias]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", order_by="UnitAlias.id"
    )
    addresses: Mapped[list[UnitAddress]] = relationship(back_populates="unit", cascade="all, delete-orphan")


class UnitAlias(Base):
    __tablename__ = "unit_aliases"
    __table_args__ = (UniqueConstraint("unit_id", "alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(200))
    unit: Mapped[Unit] = relationship(back_populates="aliases")


class UnitAddress(Base):
    """An address that belongs to a unit: from the config, or learned when staff confirmed it."""

    __tablename__ = "unit_addresses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320), unique=True)
    source: Mapped[str] = mapped_column(String(20))  # config | confirmed
    created_at: Mapped[datetime]
    # A bounce of mailbot's mail to it said it does not exist: mail to the unit goes to its other addresses (or
    # is held) and staff are asked to retire or replace it. Kept when it is retired, as history.
    undeliverable_at: Mapped[datetime | None]
    undeliverable_detail: Mapped[str] = mapped_column(Text, default="", server_default="")
    bounce_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    # Staff retired it (`units retire-address` / `replace-address`): still the unit's for attributing its mail,
    # never written to again. A column, not a deletion: the config would bring a deleted address back.
    retired_at: Mapped[datetime | None]
    unit: Mapped[Unit] = relationship(back_populates="addresses")

    @property
    def deliverable(self) -> bool:
        return self.undeliverable_at is None and self.retired_at is None


class SenderDecision(Base):
    """Staff said an unregistered address does NOT belong to the unit its mail named (`units reject`)."""

    __tablename__ = "sender_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    decision: Mapped[str] = mapped_column(String(20))  # rejected
    decided_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text, default="")


class MailboxState(Base):
    """How far a folder has been synced. UIDs mean nothing without their UIDVALIDITY."""

    __tablename__ = "mailbox_state"

    folder: Mapped[str] = mapped_column(String(200), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class Message(Base):
    """The ledger: one row per received message, created right after its raw bytes were archived.

    Keyed by its mailbox location (folder + UIDVALIDITY + UID) and, because locations change when the server
    renumbers, also by the SHA-256 of the raw bytes, which never changes.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("folder", "uidvalidity", "uid", name="uq_messages_location"),
        Index("ix_messages_message_id", "message_id"),
        # Each leads with what a query tests for equality and ends with the time it ranges over (migration 0010):
        # SQLite plans without statistics, and picks a one-column index on status or kind over a time range.
        Index("ix_messages_status_received", "status", "received_at"),  # receipts due: recent processed mail
        Index("ix_messages_kind_received", "kind", "received_at"),  # other mail since the last digest
        Index("ix_messages_kind_handled", "kind", "handled_at", "received_at"),  # letters not handled yet
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(20))  # imap | file
    source_ref: Mapped[str] = mapped_column(Text, default="")  # the file path for `ingest`
    folder: Mapped[str | None] = mapped_column(String(200))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[str] = mapped_column(String(998), default="")
    received_at: Mapped[datetime]
    # Where received_at came from: internaldate (IMAP) | received_header | date_header | ingest_time.
    received_source: Mapped[str] = mapped_column(String(20), default="internaldate")
    archived_at: Mapped[datetime]
    # Filled by processing; empty until then.
    status: Mapped[str] = mapped_column(String(20), default="archived")  # archived | processed | failed
    error: Mapped[str] = mapped_column(Text, default="")
    processed_at: Mapped[datetime | None]
    date_header: Mapped[datetime | None]
    from_address: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(20), default="")
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    sender_known: Mapped[bool] = mapped_column(Boolean, default=False)
    attributed_by: Mapped[str] = mapped_column(String(40), default="")  # address | subject | filename | body …
    # When the optional after-ingest action (flag / move) was applied in the mailbox; never by default.
    mailbox_action_at: Mapped[datetime | None]
    # Processing runs started on this message, counted before each run: a message that kills the process
    # (a native reader crashing) would otherwise be retried at every restart.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Why mailbot must never answer this message although a person sent it (a mailing list, a spam verdict,
    # a no-reply address); "" when a receipt may go back.
    no_reply: Mapped[str] = mapped_column(String(100), default="", server_default="")
    reply_references: Mapped[str] = mapped_column(Text, default="", server_default="")  # a reply's References
    # Staff dealt with what a unit wrote that is not a report (a question, a new phone number): `mailbot handled`.
    handled_at: Mapped[datetime | None]

    unit: Mapped[Unit | None] = relationship()
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="Attachment.position"
    )
    problems: Mapped[list[Problem]] = relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="Problem.id"
    )
    submissions: Mapped[list[Submission]] = relationship(
        cascade="all, delete-orphan", order_by="Submission.position", overlaps="message"
    )


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("message_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(Text, default="")  # decoded, for display only: never a path
    content_type: Mapped[str] = mapped_column(String(200), default="")
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    sniffed_type: Mapped[str] = mapped_column(String(40), default="")
    message: Mapped[Message] = relationship(back_populates="attachments")


class Submission(Base):
    """One table from one message for one unit and period (one activity for annex 2).

    Of the submissions of one unit for one period, the latest received is `current`, earlier ones are
    `superseded` (kept as history), and an identical re-send of the current one is a `duplicate`.
    """

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_unit_period", "unit_id", "period"),
        Index("ix_submissions_period", "period"),  # a period's tables: every report, planning
        Index("ix_submissions_received_at", "received_at"),  # the tables since the last digest
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id", ondelete="SET NULL"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # order within its message
    origin: Mapped[str] = mapped_column(Text, default="", server_default="")  # file and sheet, for people
    annex: Mapped[str] = mapped_column(String(20))
    period: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime]
    deadline: Mapped[datetime | None]
    on_time: Mapped[bool | None]
    nil: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    status: Mapped[str] = mapped_column(String(20), default="current")  # current | superseded | duplicate
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id", ondelete="SET NULL"))
    total_yuan: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    stated_total_yuan: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    content_sha256: Mapped[str] = mapped_column(String(64), default="")

    rows: Mapped[list[SubmissionRow]] = relationship(
        back_populates="submission", cascade="all, delete-orphan", order_by="SubmissionRow.position"
    )
    unit: Mapped[Unit | None] = relationship()


class SubmissionRow(Base):
    __tablename__ = "submission_rows"
    # A table's rows are read by their submission (reports, a unit's page); neither backend indexes a foreign key
    # by itself, and without this every small report scans all rows of ten years.
    __table_args__ = (Index("ix_submission_rows_submission_id", "submission_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    line: Mapped[int | None] = mapped_column(Integer)  # 0-based row in the sheet it was read from
    fields: Mapped[dict[str, Any]]  # canonical field names of GUIDE §3, values as strings
    amount_yuan: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    submission: Mapped[Submission] = relationship(back_populates="rows")


class Problem(Base):
    """Something a person should know about a message, an attachment or a submission (GUIDE §3 codes)."""

    __tablename__ = "problems"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id", ondelete="CASCADE"))
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[Message] = relationship(back_populates="problems")
    attachment: Mapped[Attachment | None] = relationship()
    submission: Mapped[Submission | None] = relationship()


class OutboxMail(Base):
    """Every mail mailbot sends, written here before any attempt: reminders, late notices, receipts, digests.

    `key` makes enqueueing idempotent (one reminder per unit, period and step; one receipt per message).
    status: pending → sending (claimed; nothing sent yet) → delivering (the message text is being handed to
    the server) → sent; or failed (permanent refusal, or too many temporary ones), cancelled (by staff), or
    uncertain (the sender died while the server had the text: it may have been delivered, so it is never sent
    again automatically and staff decide).  A sent mail whose bounce came back becomes bounced.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_kind_created", "kind", "created_at"),  # the last digest, among ten years of mail
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # reminder | late_notice | receipt | digest | alert
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    period: Mapped[str] = mapped_column(String(300), default="")
    source_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text, default="")
    attachment_name: Mapped[str] = mapped_column(String(300), default="")
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary)
    message_id: Mapped[str] = mapped_column(String(998))  # the Message-ID it is sent with, fixed when queued
    in_reply_to: Mapped[str] = mapped_column(String(998), default="")
    references: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    # host:pid of the sender that claimed it: a claim whose process is gone is taken back at once, not after
    # the lease, and a live one is never taken from it.
    claimed_by: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # One claim, told apart from any later claim of the same mail, even by the same process: every update after
    # the claim checks it, so a sender that stalled past the lease and lost the mail does not send it again.
    claim_token: Mapped[str] = mapped_column(String(32), default="", server_default="")
    sent_at: Mapped[datetime | None]
    unit: Mapped[Unit | None] = relationship()


class Flag(Base):
    """A named switch that outlives the process, e.g. sending paused after the server refused the login."""

    __tablename__ = "flags"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime]


# ---------------------------------------------------------------------------------------------------------
# The staff console


class User(Base):
    """A person who logs in to the console: staff act, viewers read. The password is an argon2 hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # staff | viewer
    password_hash: Mapped[str] = mapped_column(String(300))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class AuditEntry(Base):
    """One staff action: who, when, what, and the state before and after (JSON text), written in the
    transaction of the action itself."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    user_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(400), default="", server_default="")
    before: Mapped[str] = mapped_column(Text, default="", server_default="")
    after: Mapped[str] = mapped_column(Text, default="", server_default="")


class Exemption(Base):
    """A unit staff excused from one period (免报), with the reason: no reminders, no late notices."""

    __tablename__ = "exemptions"
    __table_args__ = (UniqueConstraint("unit_id", "period", name="uq_exemptions_unit_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    created_at: Mapped[datetime]
    unit: Mapped[Unit] = relationship()


class ProblemAcceptance(Base):
    """Staff accepted a data problem of a message with a note. Kept apart from `problems`, which a re-read
    replaces: an acceptance holds for the same code and detail whenever the message is read again."""

    __tablename__ = "problem_acceptances"
    __table_args__ = (Index("ix_problem_acceptances_message_id", "message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    accepted_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    accepted_at: Mapped[datetime]
