"""Record what a bounce says, inside processing's transaction: the outbox mail it returns becomes `bounced`, its
address undeliverable for its unit, and mail queued to that address goes to the unit's next one.

Idempotent, so that `reprocess` may run it again: a returned mail stays bounced, and an address already marked
(or retired by staff meanwhile) is left as it is.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from mailbot.bounces import BOUNCED, FORMER_ADDRESS, UNMATCHED, Bounce, SentMail, match
from mailbot.problems import Finding
from mailbot.store.models import OutboxMail, UnitAddress
from mailbot.store.outbox import redirect_pending

# Statuses of a mail the server took (or may have taken): only those can come back.
HANDED_OVER = ("sent", "uncertain", "delivering", "bounced")
KIND_NAMES = {"reminder": "催报提醒", "late_notice": "逾期通知", "receipt": "回执", "digest": "每日汇总"}


def apply_bounce(session: Session, message_id: int, received_at: datetime, bounce: Bounce) -> tuple[Finding, ...]:
    """Mark what the bounce (ledger id `message_id`) returns; the findings that describe it for staff."""
    returned = match(bounce, _handed_over(session, bounce), received_at)
    findings = [_bounced(session, mail.id, message_id, received_at, bounce) for mail in returned.mails]
    findings += [_former(address, bounce) for address in returned.strangers]
    if not findings:
        findings.append(Finding(UNMATCHED, "退信中未找到本系统发出的邮件或收件地址，仅供参考"))
    return tuple(findings)


def _handed_over(session: Session, bounce: Bounce) -> list[SentMail]:
    ids = [*bounce.message_ids, *(f"<{i}>" for i in bounce.message_ids)]
    rows = session.execute(
        select(OutboxMail.id, OutboxMail.message_id, OutboxMail.to_address, OutboxMail.sent_at, OutboxMail.claimed_at)
        .where(OutboxMail.status.in_(HANDED_OVER))
        .where(or_(OutboxMail.message_id.in_(ids), func.lower(OutboxMail.to_address).in_(bounce.recipients)))
    )
    return [
        SentMail(row.id, row.message_id, row.to_address, sent)
        for row in rows
        if (sent := row.sent_at or row.claimed_at) is not None
    ]


def _bounced(session: Session, mail_id: int, message_id: int, received_at: datetime, bounce: Bounce) -> Finding:
    row = session.get_one(OutboxMail, mail_id)
    reason = bounce.diagnostic or "收件地址无法投递"
    row.status, row.last_error = "bounced", f"退信：{reason}"
    address = session.scalar(select(UnitAddress).where(UnitAddress.address == row.to_address.lower()))
    if address is not None and address.deliverable:
        address.undeliverable_at, address.undeliverable_detail = received_at, reason
        address.bounce_message_id = message_id
        session.flush()
        redirect_pending(session, address.address)
    kind = KIND_NAMES.get(row.kind, row.kind)
    return Finding(BOUNCED, f"发往 {row.to_address} 的{kind}（发件箱第 {row.id} 封）被退回：{reason}")


def _former(address: str, bounce: Bounce) -> Finding:
    reason = f"：{bounce.diagnostic}" if bounce.diagnostic else ""
    return Finding(FORMER_ADDRESS, f"退信涉及的地址 {address} 本系统从未向其发信（可能是旧地址），仅供参考{reason}")
