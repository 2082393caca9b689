"""Staff settle unknown senders (`units confirm-address` learns an address, `units reject` refuses it) and dead
addresses (`units retire-address`, `units replace-address`) after a bounce."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailbot.errors import InputError
from mailbot.store import ledger
from mailbot.store.models import Message, SenderDecision, UnitAddress


def confirm_address(session: Session, address: str, unit_name: str, now: datetime) -> list[int]:
    """Learn that `address` belongs to `unit_name`. Returns the ids of its messages, to be re-processed."""
    address = _normalise(address)
    unit = ledger.unit_by_name(session, unit_name)
    if unit is None:
        raise InputError(f"没有名为“{unit_name}”的单位")
    existing = session.scalar(select(UnitAddress).where(UnitAddress.address == address))
    if existing is not None and existing.unit_id != unit.id:
        owner = existing.unit.name
        raise InputError(f"{address} 已是 {owner} 的登记地址；要改归属，请修改配置文件")
    if existing is None:
        session.add(UnitAddress(address=address, unit_id=unit.id, source="confirmed", created_at=now))
    else:  # staff vouch for it again: a bounce or a retirement is over
        existing.undeliverable_at, existing.retired_at = None, None
    session.execute(delete(SenderDecision).where(SenderDecision.address == address))
    return _messages_from(session, address)


def reject_address(session: Session, address: str, now: datetime, note: str = "") -> list[int]:
    """Record that `address` is not the unit its mail named; its mail is no longer counted for any unit."""
    address = _normalise(address)
    learned = session.scalar(select(UnitAddress).where(UnitAddress.address == address))
    if learned is not None and learned.source == "config":
        raise InputError(f"{address} 在配置文件中登记为 {learned.unit.name} 的地址，请先在配置文件中删除")
    if learned is not None:
        session.delete(learned)
    decision = session.scalar(select(SenderDecision).where(SenderDecision.address == address))
    if decision is None:
        session.add(SenderDecision(address=address, decision="rejected", decided_at=now, note=note))
    return _messages_from(session, address)


def retire_address(session: Session, address: str, now: datetime) -> str:
    """Never write to `address` again (a bounce showed it dead, or the unit said so); mail from it still counts
    for its unit. Returns the unit's name."""
    row = _unit_address(session, _normalise(address))
    if row.retired_at is None:
        row.retired_at = now
    return row.unit.name


def replace_address(session: Session, old: str, new: str, now: datetime) -> list[int]:
    """Retire `old` and give its unit `new` instead. Returns the ids of mail from `new`, to be re-processed."""
    unit_name = retire_address(session, old, now)
    session.flush()
    return confirm_address(session, new, unit_name, now)


def _unit_address(session: Session, address: str) -> UnitAddress:
    row = session.scalar(select(UnitAddress).where(UnitAddress.address == address))
    if row is None:
        raise InputError(f"{address} 不是任何单位的地址")
    return row


def _messages_from(session: Session, address: str) -> list[int]:
    return list(session.scalars(select(Message.id).where(Message.from_address == address).order_by(Message.id)))


def _normalise(address: str) -> str:
    address = address.strip().lower()
    if "@" not in address:
        raise InputError(f"不是有效的邮件地址：{address}")
    return address
