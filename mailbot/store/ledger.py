"""Queries on the ledger and the registry. Every function takes the caller's Session: the caller owns the
transaction, so a stage's writes commit together or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session, selectinload

from mailbot.config import StaffConfig, UnitConfig
from mailbot.message.decode import normalise_message_id
from mailbot.registry import Registry, RegistryUnit
from mailbot.store.models import MailboxState, Message, SenderDecision, Unit, UnitAddress, UnitAlias, core

# ---------------------------------------------------------------------------------------------------------
# Registry


def sync_units(session: Session, units: Sequence[UnitConfig], now: datetime) -> None:
    """Mirror the config's units into the database. Addresses staff confirmed are kept; the config wins
    when it names an address for another unit."""
    existing = {u.name: u for u in session.scalars(select(Unit).options(selectinload(Unit.aliases)))}
    for position, unit_config in enumerate(units):
        unit = existing.get(unit_config.name) or Unit(name=unit_config.name)
        _update_unit(unit, unit_config, position)
        session.add(unit)
    configured = {u.name for u in units}
    for name, unit in existing.items():
        unit.active = name in configured
    session.flush()
    _sync_config_addresses(session, units, now)


def units_in_sync(session: Session, units: Sequence[UnitConfig]) -> bool:
    """Whether `sync_units` would change nothing, from three plain SELECTs (no ORM objects: with 300 units the
    dry run costs ~0.2 s, and nearly every command start finds the config unchanged). False when unsure."""
    wanted_units = {(u.name, u.category, i, u.contact, u.phone, True) for i, u in enumerate(units)}
    columns = (Unit.name, Unit.category, Unit.position, Unit.contact, Unit.phone, Unit.active)
    stored_units = {tuple(row) for row in session.execute(select(*columns))}
    if stored_units != wanted_units:  # also a unit to retire (active, but no longer configured)
        return False
    aliases = session.execute(select(Unit.name, UnitAlias.alias).join(UnitAlias, UnitAlias.unit_id == Unit.id))
    if sorted(tuple(row) for row in aliases) != sorted({(u.name, a) for u in units for a in dict.fromkeys(u.aliases)}):
        return False
    stored = session.execute(select(UnitAddress.address, Unit.name, UnitAddress.source).join(Unit))
    config = {(address, name) for address, name, source in stored if source == "config"}
    return config == {(e.strip().lower(), u.name) for u in units for e in u.emails}


def _update_unit(unit: Unit, config: UnitConfig, position: int) -> None:
    unit.category = config.category
    unit.position = position
    unit.contact = config.contact
    unit.phone = config.phone
    unit.active = True
    # A diff, not a replacement: the unit's aliases are unique, and a flush inserts before it deletes.
    wanted = list(dict.fromkeys(config.aliases))
    current = {a.alias: a for a in unit.aliases}
    for alias, row in current.items():
        if alias not in wanted:
            unit.aliases.remove(row)
    unit.aliases.extend(UnitAlias(alias=alias) for alias in wanted if alias not in current)


def _sync_config_addresses(session: Session, units: Sequence[UnitConfig], now: datetime) -> None:
    ids = dict(session.execute(select(Unit.name, Unit.id)).all())
    wanted = {e.strip().lower(): ids[u.name] for u in units for e in u.emails}
    rows = {a.address: a for a in session.scalars(select(UnitAddress))}
    for address, row in rows.items():
        if row.source == "config" and address not in wanted:
            session.delete(row)
    for address, unit_id in wanted.items():
        found = rows.get(address)
        if found is None:
            session.add(UnitAddress(address=address, unit_id=unit_id, source="config", created_at=now))
        elif found.unit_id != unit_id or found.source != "config":
            found.unit_id, found.source = unit_id, "config"
    session.flush()


def load_registry(session: Session, staff: StaffConfig, own_addresses: frozenset[str]) -> Registry:
    units = session.scalars(
        select(Unit)
        .where(Unit.active)
        .order_by(Unit.position)
        .options(selectinload(Unit.aliases), selectinload(Unit.addresses))
    ).all()
    rejected = frozenset(session.scalars(select(SenderDecision.address).where(SenderDecision.decision == "rejected")))
    return Registry(
        units=tuple(_registry_unit(u) for u in units),
        rejected_addresses=rejected,
        addressee_names=staff.addressee_names,
        own_addresses=own_addresses,
    )


def _registry_unit(unit: Unit) -> RegistryUnit:
    return RegistryUnit(
        name=unit.name,
        category=unit.category,
        aliases=tuple(a.alias for a in unit.aliases),
        addresses=frozenset(a.address for a in unit.addresses),
        contact=unit.contact,
        phone=unit.phone,
    )


def unit_by_name(session: Session, name: str) -> Unit | None:
    return session.scalar(select(Unit).where(Unit.name == name))


# ---------------------------------------------------------------------------------------------------------
# Mailbox state and the ledger


def mailbox_state(session: Session, folder: str) -> MailboxState | None:
    return session.get(MailboxState, folder)


def save_mailbox_state(session: Session, folder: str, uidvalidity: int, last_uid: int, now: datetime) -> None:
    state = session.get(MailboxState, folder)
    if state is None:
        session.add(MailboxState(folder=folder, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now))
        return
    state.uidvalidity, state.last_uid, state.updated_at = uidvalidity, last_uid, now


@dataclass(frozen=True)
class Arrival:
    """A message whose raw bytes are in the archive, about to enter the ledger."""

    sha256: str
    size: int
    source: str  # imap | file
    received_at: datetime
    received_source: str = "internaldate"
    message_id: str = ""
    source_ref: str = ""
    folder: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None


def _new_row(arrival: Arrival, now: datetime) -> dict[str, object]:
    return {
        "sha256": arrival.sha256,
        "size": arrival.size,
        "source": arrival.source,
        "source_ref": arrival.source_ref,
        "folder": arrival.folder,
        "uidvalidity": arrival.uidvalidity,
        "uid": arrival.uid,
        "message_id": arrival.message_id,
        "received_at": arrival.received_at,
        "received_source": arrival.received_source,
        "archived_at": now,
        "status": "archived",
    }


def record_arrivals(session: Session, arrivals: Sequence[Arrival], now: datetime) -> int:
    """Insert ledger rows, or, for bytes already recorded, only refresh their mailbox location.

    One look-up for the whole batch; returns how many rows are new. The SHA-256 is what makes a message
    "the same" across UIDVALIDITY changes, re-ingested files and a crash between archiving and recording.
    """
    known = {
        row.sha256: row
        for row in session.scalars(select(Message).where(Message.sha256.in_({a.sha256 for a in arrivals})))
    }
    new: dict[str, dict[str, object]] = {}
    for arrival in arrivals:
        row = known.get(arrival.sha256)
        if row is None:
            new.setdefault(arrival.sha256, _new_row(arrival, now))  # the same bytes twice in a batch: one row
        elif arrival.source == "imap":
            relocate(session, row, arrival.folder, arrival.uidvalidity, arrival.uid)
    session.flush()
    if new:  # a plain INSERT for the batch: a first sync records thousands, and the ORM's bookkeeping is slow
        session.execute(insert(core(Message)), list(new.values()))
    return len(new)


def relocate(session: Session, row: Message, folder: str | None, uidvalidity: int | None, uid: int | None) -> None:
    """Record where known bytes now sit in the mailbox (a re-fetch, or new UIDs after a UIDVALIDITY change)."""
    if (row.folder, row.uidvalidity, row.uid) == (folder, uidvalidity, uid):
        return
    # Another row may still claim this location under the same UIDVALIDITY only if the server reused a UID,
    # which IMAP forbids; clear it rather than fail the whole batch.
    clash = session.scalar(
        select(Message).where(
            Message.folder == folder, Message.uidvalidity == uidvalidity, Message.uid == uid, Message.id != row.id
        )
    )
    if clash is not None:
        clash.uid = None
        session.flush()
    row.folder, row.uidvalidity, row.uid = folder, uidvalidity, uid
    if row.source == "file":
        row.source = "imap"


def pending_message_ids(session: Session, limit: int | None = None) -> list[int]:
    query = select(Message.id).where(Message.status == "archived").order_by(Message.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def awaiting_mailbox_action(session: Session, folder: str, uidvalidity: int) -> tuple[list[int], list[int]]:
    """(ledger ids, UIDs) of the stored messages of this folder that the after-ingest action has not reached."""
    rows = session.execute(
        select(Message.id, Message.uid).where(
            Message.folder == folder,
            Message.uidvalidity == uidvalidity,
            Message.uid.is_not(None),
            Message.status != "archived",
            Message.mailbox_action_at.is_(None),
        )
    ).all()
    return [row.id for row in rows], [row.uid for row in rows]


def mark_mailbox_action(session: Session, message_ids: Sequence[int], now: datetime) -> None:
    session.execute(update(Message).where(Message.id.in_(message_ids)).values(mailbox_action_at=now))


def mark_handled(session: Session, references: Sequence[str], now: datetime) -> list[int]:
    """Staff dealt with these messages (a unit's question, a note): they leave the needs-a-person list. A
    reference is a ledger id (as `mailbot status` shows it) or a Message-ID. Returns the ledger ids marked."""
    ids = {int(ref) for ref in references if ref.strip().isdigit()}
    message_ids = [normalise_message_id(ref) for ref in references if not ref.strip().isdigit()]
    found = session.scalars(select(Message).where(or_(Message.id.in_(ids), Message.message_id.in_(message_ids))))
    marked = []
    for message in found:
        message.handled_at = message.handled_at or now
        marked.append(message.id)
    return sorted(marked)
