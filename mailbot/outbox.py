"""Sending what the outbox holds, at most `outbox.per_minute` mails a minute, each exactly once.

Every step is its own committed transaction: claim (pending → sending), hand over (→ delivering, committed just
before the message text goes to the server), result (→ sent / pending again / failed / uncertain). A crash
between any two leaves a row that says what is known: `sending` was never handed over and is safely sent again;
`delivering` may have arrived, so it becomes `uncertain` for staff instead of being sent twice.

A refused login (535) pauses all sending until staff run `mailbot outbox resume`: 163.com locks an account
after repeated failed logins, so there is no retry loop against it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from mailbot import processes
from mailbot.clock import Clock
from mailbot.config import Config
from mailbot.errors import AuthenticationError
from mailbot.mails import Envelope, compose
from mailbot.send.smtp import FAILED, RETRY, SENT, Delivery
from mailbot.store import outbox as store
from mailbot.store.db import transaction
from mailbot.store.models import OutboxMail

log = logging.getLogger(__name__)

# A claim older than this belongs to a sender that died (an SMTP conversation never takes this long).
LEASE = timedelta(minutes=10)
BACKOFF_MINUTES = (1, 5, 15, 30, 60, 120, 240)


class Sender(Protocol):
    def send(self, message: EmailMessage, to: str, handing_over: Callable[[], None]) -> Delivery: ...
    def close(self) -> None: ...


@dataclass
class DrainResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    uncertain: int = 0
    requeued: int = 0  # mails a crashed sender had claimed and never handed over
    paused: str | None = None  # why sending stopped (a refused login)
    throttled: bool = False  # mails were due but this minute's quota was used


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt after `attempts` temporary failures: 1, 5, 15, 30 minutes … 4 hours."""
    return timedelta(minutes=BACKOFF_MINUTES[min(max(attempts, 1), len(BACKOFF_MINUTES)) - 1])


def quota(sent_last_minute: int, per_minute: int) -> int:
    return max(per_minute - sent_last_minute, 0)


@dataclass
class Outbox:
    sessions: sessionmaker[Session]
    config: Config
    clock: Clock
    sender: Callable[[], Sender]  # opens a connection lazily; called only when there is something to send

    def drain(self) -> DrainResult:
        result = DrainResult()
        now = self.clock()
        with transaction(self.sessions) as session:
            gone = {claimer for claimer in store.claimers(session) if processes.gone(claimer)}
            result.requeued, result.uncertain = store.recover_stale(session, now - LEASE, gone)
            result.paused = store.paused(session)
        if result.paused is not None:
            return result
        sender: Sender | None = None
        try:
            while (mail_id := self._claim_next(result)) is not None:
                sender = sender or self._open_sender(mail_id)
                self._send_one(mail_id, sender, result)
                if result.paused is not None:
                    break
        finally:
            if sender is not None:
                sender.close()
        return result

    def _claim_next(self, result: DrainResult) -> int | None:
        now = self.clock()
        with transaction(self.sessions) as session:
            if quota(store.sent_since(session, now - timedelta(minutes=1)), self.config.outbox.per_minute) == 0:
                result.throttled = store.next_due(session, now) is not None
                return None
            while (mail_id := store.next_due(session, now)) is not None:
                if store.claim(session, mail_id, now, str(processes.Holder.current())):
                    return mail_id
        return None

    def _open_sender(self, mail_id: int) -> Sender:
        """The connection, opened once there is a mail to send; if it cannot be (no password), the claimed
        mail goes straight back to pending instead of waiting out the lease."""
        try:
            return self.sender()
        except Exception:
            with transaction(self.sessions) as session:
                store.set_status(session, mail_id, "pending", self.clock(), attempts=OutboxMail.attempts - 1)
            raise

    def _send_one(self, mail_id: int, sender: Sender, result: DrainResult) -> None:
        with transaction(self.sessions) as session:
            row = session.get_one(OutboxMail, mail_id)
            envelope, attempts = _envelope(row), row.attempts
        message = compose(envelope, self.config.smtp.from_address, self.config.smtp.from_name, self.clock())
        try:
            delivery = sender.send(message, envelope.to, lambda: self._handing_over(mail_id))
        except AuthenticationError as exc:
            self._pause(mail_id, str(exc), result)
            return
        self._record(mail_id, attempts, delivery, result)

    def _handing_over(self, mail_id: int) -> None:
        with transaction(self.sessions) as session:
            store.set_status(session, mail_id, "delivering", self.clock())

    def _record(self, mail_id: int, attempts: int, delivery: Delivery, result: DrainResult) -> None:
        now = self.clock()
        with transaction(self.sessions) as session:
            if delivery.outcome == SENT:
                store.set_status(session, mail_id, "sent", now)
                result.sent += 1
            elif delivery.outcome == RETRY and attempts < self.config.outbox.max_attempts:
                store.set_status(
                    session, mail_id, "pending", now, delivery.detail, next_attempt_at=now + backoff(attempts)
                )
                result.retrying += 1
            elif delivery.outcome in (RETRY, FAILED):
                log.error("mail %s failed: %s", mail_id, delivery.detail)
                store.set_status(session, mail_id, "failed", now, delivery.detail)
                result.failed += 1
            else:
                log.error("mail %s may or may not have been delivered: %s", mail_id, delivery.detail)
                store.set_status(session, mail_id, "uncertain", now, delivery.detail)
                result.uncertain += 1

    def _pause(self, mail_id: int, reason: str, result: DrainResult) -> None:
        log.error("sending paused: %s", reason)
        now = self.clock()
        with transaction(self.sessions) as session:
            # Not this mail's fault: it waits, its attempt uncounted, until staff fix the login.
            store.set_status(session, mail_id, "pending", now, reason, attempts=OutboxMail.attempts - 1)
            store.pause(session, reason, now)
        result.paused = reason


def _envelope(row: OutboxMail) -> Envelope:
    return Envelope(
        to=row.to_address,
        subject=row.subject,
        text=row.body_text,
        html=row.body_html,
        message_id=row.message_id,
        kind=row.kind,
        attachment_name=row.attachment_name,
        attachment=row.attachment,
        in_reply_to=row.in_reply_to,
        references=row.references,
    )
