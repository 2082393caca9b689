"""What staff decide, from the console or the command line: one function per action, over the store.

Each action writes its audit entry (who, what, the state before and after) in the transaction of the change
itself, so that the log never shows a change that did not happen, nor misses one. An action that changes how
mail is attributed (a confirmed sender, a message assigned to a unit) then re-reads the messages concerned,
after that commit: the unit's table counts at once, without a manual `reprocess`.

Errors a person can fix (an unknown unit, period or id) are InputError, naming what is known; the CLI turns
them into exit code 6 and the console into a message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot import units
from mailbot.analyse import STAFF
from mailbot.app import App
from mailbot.errors import InputError
from mailbot.periods import Period, periods_of
from mailbot.process import Pipeline
from mailbot.reprocess import reprocess
from mailbot.store import exemptions, ledger
from mailbot.store import outbox as mails
from mailbot.store.db import transaction
from mailbot.store.models import Message, OutboxMail, Problem, ProblemAcceptance, SenderDecision, Unit, UnitAddress
from mailbot.store.users import audit

# What staff may do to a mail in each status (the store enforces the same; this names it for the console).
RETRYABLE = ("failed", "cancelled", "uncertain")
CANCELLABLE = ("pending", "failed", "bounced")
MARKABLE_SENT = ("failed", "uncertain")  # staff found it in the server's sent folder


@dataclass(frozen=True)
class Done:
    """What an action changed: a sentence for the person who acted, and the ids it touched."""

    summary: str  # Chinese: the console shows it as is
    ids: tuple[int, ...] = ()  # messages re-read, or mails changed
    changed: int = 0  # of the messages re-read, how many came out differently
    unit: str = ""  # the unit concerned, when there is one


# ---------------------------------------------------------------------------------------------------------
# Senders and addresses


def confirm_sender(app: App, user: str, address: str, unit: str, now: datetime) -> Done:
    """`address` belongs to `unit`: learn it, and count its mail for the unit now."""
    with transaction(app.sessions) as session:
        before = _sender(session, address)
        ids = units.confirm_address(session, address, unit, now)
        audit(session, user, "confirm_sender", f"address:{address}", before, {"unit": unit}, now)
    changed = _reread(app, ids)
    return Done(f"已确认 {address} 属于 {unit}，重新读取 {len(ids)} 封邮件", tuple(ids), changed, unit)


def reject_sender(app: App, user: str, address: str, note: str, now: datetime) -> Done:
    """`address` is not the unit its mail named: its mail counts for no unit."""
    with transaction(app.sessions) as session:
        before = _sender(session, address)
        ids = units.reject_address(session, address, now, note)
        audit(session, user, "reject_sender", f"address:{address}", before, {"decision": "rejected", "note": note}, now)
    changed = _reread(app, ids)
    return Done(f"已拒绝 {address}，其邮件不再计入任何单位", tuple(ids), changed)


def retire_address(app: App, user: str, address: str, now: datetime) -> Done:
    """Never write to `address` again; mail from it still counts for its unit."""
    with transaction(app.sessions) as session:
        before = _sender(session, address)
        unit = units.retire_address(session, address, now)
        audit(session, user, "retire_address", f"address:{address}", before, {"unit": unit, "retired": True}, now)
    return Done(f"已停用 {address}（{unit}），今后不再向其发信", unit=unit)


def replace_address(app: App, user: str, old: str, new: str, now: datetime) -> Done:
    """Retire `old` and give its unit `new`: held mail goes to `new` from the next round."""
    with transaction(app.sessions) as session:
        before = {"old": _sender(session, old), "new": _sender(session, new)}
        ids = units.replace_address(session, old, new, now)
        unit = _sender(session, new)["unit"]
        after = {"old": {"unit": unit, "retired": True}, "new": {"unit": unit}}
        audit(session, user, "replace_address", f"address:{old}", before, after, now)
    changed = _reread(app, ids)
    return Done(f"已停用 {old}，{unit} 今后使用 {new}", tuple(ids), changed, str(unit))


def _sender(session: Session, address: str) -> dict[str, Any]:
    """What is known about an address, for the audit log."""
    address = address.strip().lower()
    row = session.scalar(select(UnitAddress).where(UnitAddress.address == address))
    decision = session.scalar(select(SenderDecision.decision).where(SenderDecision.address == address))
    return {
        "unit": row.unit.name if row else None,
        "source": row.source if row else None,
        "retired": bool(row and row.retired_at),
        "undeliverable": bool(row and row.undeliverable_at),
        "decision": decision,
    }


# ---------------------------------------------------------------------------------------------------------
# Messages


def assign_message(app: App, user: str, message_id: int, unit: str, now: datetime) -> Done:
    """Staff say which unit a message is from. Stored on the message itself (attributed_by = staff): every
    later re-read keeps it (`process` hands it to `analyse`), and the sender's address is not learned — one
    forwarded mail says nothing about the next one from that address."""
    with transaction(app.sessions) as session:
        message = _message(session, message_id)
        target = _unit(session, unit)
        before = {"unit": message.unit.name if message.unit else None, "attributed_by": message.attributed_by}
        message.unit_id, message.attributed_by = target.id, STAFF
        after = {"unit": target.name, "attributed_by": STAFF}
        audit(session, user, "assign_message", f"message:{message_id}", before, after, now)
    changed = _reread(app, [message_id])
    return Done(f"邮件 #{message_id} 已归属于 {unit}", (message_id,), changed, unit)


def mark_handled(app: App, user: str, references: Sequence[str], now: datetime) -> Done:
    """Staff dealt with these messages (a unit's question answered): they leave needs-a-person."""
    with transaction(app.sessions) as session:
        marked = ledger.mark_handled(session, references, now)
        if not marked:
            raise InputError(f"没有这封邮件：{' '.join(references)}（no such message）")
        audit(session, user, "handled", _targets("message", marked), {"handled": False}, {"handled": True}, now)
    return Done(f"已标记为处理完毕：{_ids(marked)}", tuple(marked))


def accept_problem(app: App, user: str, message_id: int, code: str, note: str, now: datetime) -> Done:
    """Staff accept the data problems `code` of a message, with a note saying why: they leave needs-a-person
    for that message. Keyed by code and detail, so a re-read that finds the same problem keeps it accepted."""
    if not note.strip():
        raise InputError("接受数据问题需要填写说明")
    with transaction(app.sessions) as session:
        _message(session, message_id)
        details = _problem_details(session, message_id, code)
        taken = set(session.scalars(_accepted(message_id, code)))
        for detail in details:
            if detail not in taken:
                session.add(_acceptance(message_id, code, detail, note, user, now))
        after = {"accepted": details, "note": note.strip()}
        audit(session, user, "accept_problem", f"message:{message_id}:{code}", {"accepted": sorted(taken)}, after, now)
    return Done(f"已接受邮件 #{message_id} 的问题“{code}”（{len(details)} 处）", (message_id,))


def _problem_details(session: Session, message_id: int, code: str) -> list[str]:
    found = session.execute(select(Problem.code, Problem.detail).where(Problem.message_id == message_id)).all()
    details = list(dict.fromkeys(detail for found_code, detail in found if found_code == code))
    if not details:
        codes = ", ".join(sorted({c for c, _ in found})) or "none"
        raise InputError(f"邮件 {message_id} 没有“{code}”这个问题（它的问题：{codes}）")
    return details


def _accepted(message_id: int, code: str) -> Any:
    return select(ProblemAcceptance.detail).where(
        ProblemAcceptance.message_id == message_id, ProblemAcceptance.code == code
    )


def _acceptance(message_id: int, code: str, detail: str, note: str, user: str, now: datetime) -> ProblemAcceptance:
    return ProblemAcceptance(
        message_id=message_id, code=code, detail=detail, note=note.strip(), accepted_by=user, accepted_at=now
    )


def _message(session: Session, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None:
        raise InputError(f"没有编号为 {message_id} 的邮件")
    return message


def _reread(app: App, message_ids: Sequence[int]) -> int:
    """Re-read messages whose attribution changed; how many came out differently."""
    if not message_ids:
        return 0
    pipeline = Pipeline(app.config, app.sessions, app.archive, app.clock, app.table_rules)
    try:
        return len(reprocess(pipeline, message_ids)[1])
    finally:
        pipeline.close()


# ---------------------------------------------------------------------------------------------------------
# The outbox


def retry_mails(app: App, user: str, mail_ids: Sequence[int], now: datetime) -> Done:
    """Send failed, cancelled or uncertain mails again."""
    return _change_mails(app, user, "retry_mail", mail_ids, lambda s: mails.retry(s, mail_ids, now), now)


def cancel_mails(app: App, user: str, mail_ids: Sequence[int], now: datetime) -> Done:
    """Never send these pending, failed or bounced mails (again)."""
    return _change_mails(app, user, "cancel_mail", mail_ids, lambda s: mails.cancel(s, mail_ids), now)


def mark_sent(app: App, user: str, mail_ids: Sequence[int], now: datetime) -> Done:
    """Staff found a failed or uncertain mail in the server's sent folder: it went out, and is never sent again."""

    def change(session: Session) -> list[int]:
        found = session.scalars(_mails_in(mail_ids, MARKABLE_SENT)).all()
        for mail in found:
            mails.set_status(session, mail.id, "sent", now, "工作人员核对已发送邮件后确认已发出")
        return sorted(mail.id for mail in found)

    return _change_mails(app, user, "mark_sent", mail_ids, change, now)


def resume_sending(app: App, user: str, now: datetime) -> Done:
    """Sending resumes after a refused login, once the password is fixed."""
    with transaction(app.sessions) as session:
        reason = mails.paused(session)
        if reason is None:
            return Done("发信并未暂停")
        mails.resume(session)
        audit(session, user, "resume_sending", "outbox", {"paused": reason}, {"paused": None}, now)
    return Done("已恢复发信", changed=1)


_SUMMARIES = {"retry_mail": "已重新排队", "cancel_mail": "已取消", "mark_sent": "已标记为已发送"}


def _change_mails(
    app: App, user: str, action: str, mail_ids: Sequence[int], change: Callable[[Session], list[int]], now: datetime
) -> Done:
    with transaction(app.sessions) as session:
        before = {str(mail.id): mail.status for mail in session.scalars(_mails_in(mail_ids))}
        changed = change(session)
        if changed:
            session.flush()  # the changes made on ORM objects (retry, cancel) are written first …
            session.expire_all()  # … then every copy is read again: set_status is a plain UPDATE
            after = {str(mail.id): mail.status for mail in session.scalars(_mails_in(changed))}
            before = {key: value for key, value in before.items() if key in after}
            audit(session, user, action, _targets("mail", changed), before, after, now)
    if not changed:
        return Done(f"没有可{_SUMMARIES[action].removeprefix('已')}的邮件（编号不存在，或状态不允许）")
    return Done(f"{_SUMMARIES[action]}：{_ids(changed)}", tuple(changed))


def _mails_in(mail_ids: Sequence[int], statuses: Sequence[str] = ()) -> Any:
    query = select(OutboxMail).where(OutboxMail.id.in_(mail_ids)).order_by(OutboxMail.id)
    return query.where(OutboxMail.status.in_(statuses)) if statuses else query


# ---------------------------------------------------------------------------------------------------------
# Exemptions (免报)


def exempt_unit(app: App, user: str, unit: str, period: str, reason: str, now: datetime) -> Done:
    """Excuse a unit from a period: no reminders, no late notices; shown as 免报."""
    if not reason.strip():
        raise InputError("免报需要填写原因")
    known_period(app, period, now)
    with transaction(app.sessions) as session:
        target = _unit(session, unit)
        made = exemptions.add(session, target.id, period, reason.strip(), user, now)
        if made is None:
            return Done(f"{unit} 本期（{period}）已是免报", unit=unit)
        audit(session, user, "exempt", f"unit:{unit}:{period}", None, {"reason": made.reason}, now)
    return Done(f"{unit} 已免报 {period}", unit=unit)


def lift_exemption(app: App, user: str, unit: str, period: str, now: datetime) -> Done:
    """The unit owes the period a table again (reminders and late notices resume)."""
    with transaction(app.sessions) as session:
        target = _unit(session, unit)
        lifted = exemptions.lift(session, target.id, period)
        if lifted is None:
            return Done(f"{unit} 在 {period} 并未免报", unit=unit)
        before = {"reason": lifted.reason, "by": lifted.created_by}
        audit(session, user, "unexempt", f"unit:{unit}:{period}", before, None, now)
    return Done(f"已取消 {unit} 在 {period} 的免报", unit=unit)


def exemptable_periods(app: App, now: datetime) -> list[Period]:
    """The periods staff may exempt a unit from: last year's, this year's and next year's, latest first."""
    year = now.year
    found = periods_of((year - 1, year, year + 1), app.config.deadlines, app.calendar)
    return sorted(found, key=lambda p: p.deadline, reverse=True)


def known_period(app: App, period_id: str, now: datetime) -> Period:
    """The period with this id, in any year the config's deadlines define; else an error naming that year's."""
    head = period_id.split("-", 1)[0]
    year = int(head) if head.isdigit() and len(head) == 4 else now.year
    periods = periods_of((year,), app.config.deadlines, app.calendar)
    for period in periods:
        if period.id == period_id:
            return period
    raise InputError(f"没有这一期：{period_id}（unknown period）；{year} 年的期次：{'、'.join(p.id for p in periods)}")


def _unit(session: Session, name: str) -> Unit:
    unit = ledger.unit_by_name(session, name)
    if unit is None or not unit.active:
        known = "、".join(session.scalars(select(Unit.name).where(Unit.active).order_by(Unit.position, Unit.id)))
        raise InputError(f"没有名为“{name}”的单位；现有单位：{known}")
    return unit


def _targets(kind: str, ids: Sequence[int]) -> str:
    return ",".join(f"{kind}:{i}" for i in ids)


def _ids(ids: Sequence[int]) -> str:
    return "、".join(f"#{i}" for i in ids)
