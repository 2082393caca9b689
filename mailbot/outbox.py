"""Sending what the outbox holds, at most `outbox.per_minute` mails a minute, each exactly once.

Every step is its own committed transaction: claim (pending → sending), hand over (→ delivering, committed just
before the message text goes to the server), result (→ sent / pending again / failed / uncertain). A crash
between any two leaves a row that says what is known: `sending` was never handed over and is safely sent again;
`delivering` may have arrived, so it becomes `uncertain` for staff instead of being sent twice.

A sender that is not dead but stalled (SIGSTOP, a suspended VM) past `outbox.lease_seconds` has its mail taken
back the same way while it sleeps. Each claim therefore carries a token, and every later step is an UPDATE
conditional on that token and the expected status; the hand-over runs just before DATA, so a sender that woke
up to find its mail taken does not send the text, and stops draining.

A refused login (535) pauses all sending until staff run `mailbot outbox resume`: 163.com locks an account
after repeated failed logins, so there is no retry loop against it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from mailbot import processes
from mailbot.clock import Clock
from mailbot.config import Config
from mailbot.errors import AuthenticationError
from mailbot.mails import Envelope, compose
from mailbot.send.smtp import FAILED, LOST, RETRY, SENT, Delivery
from mailbot.store import outbox as store
from mailbot.store.db import transaction
from mailbot.store.models import OutboxMail

log = logging.getLogger(__name__)

BACKOFF_MINUTES = (1, 5, 15, 30, 60, 120, 240)
# Under its own token, these statuses mean nobody took the mail from this sender: `sending` and `delivering`
# are its own steps, and `uncertain` is what recover_stale made of a `delivering` mail while this sender
# stalled. The sender's own answer from the server (sent, refused, broken) is better knowledge than that
# guess, so it replaces it: a mail we know went out is `sent`, not left for staff to check. `pending` under
# its token means the mail was taken back to be sent again: lost.
HELD = ("sending", "delivering", "uncertain")


class Sender(Protocol):
    def send(self, message: EmailMessage, to: str, handing_over: Callable[[], bool]) -> Delivery: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Claim:
    """A mail this sender took, and the token that tells this claim apart from any later one."""

    mail_id: int
    token: str


@dataclass
class DrainResult:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    uncertain: int = 0
    requeued: int = 0  # mails a crashed sender had claimed and never handed over
    paused: str | None = None  # why sending stopped (a refused login)
    throttled: bool = False  # mails were due but this minute's quota was used
    claim_lost: bool = False  # this sender stalled past the lease and its mail was taken back: it stopped


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt after `attempts` temporary failures: 1, 5, 15, 30 minutes … 4 hours."""
    return timedelta(minutes=BACKOFF_MINUTES[min(max(attempts, 1), len(BACKOFF_MINUTES)) - 1])


def quota(sent_last_minute: int, per_minute: int) -> int:
    return max(per_minute - sent_last_minute, 0)


def outcome(delivery: Delivery, attempts: int, max_attempts: int, now: datetime) -> tuple[str, str, dict[str, object]]:
    """The status, error and further column values one delivery leads to: a temporary failure waits its
    backoff until `max_attempts` are used up, then fails like a permanent one."""
    if delivery.outcome == SENT:
        return "sent", "", {}
    if delivery.outcome == RETRY and attempts < max_attempts:
        return "pending", delivery.detail, {"next_attempt_at": now + backoff(attempts)}
    if delivery.outcome in (RETRY, FAILED):
        return "failed", delivery.detail, {}
    return "uncertain", delivery.detail, {}


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
            lease = timedelta(seconds=self.config.outbox.lease_seconds)
            result.requeued, result.uncertain = store.recover_stale(session, now - lease, gone)
            result.paused = store.paused(session)
        if result.paused is not None:
            return result
        sender: Sender | None = None
        try:
            while (claim := self._claim_next(result)) is not None:
                sender = sender or self._open_sender(claim)
                self._send_one(claim, sender, result)
                if result.paused is not None or result.claim_lost:
                    break
        finally:
            if sender is not None:
                sender.close()
        return result

    def _claim_next(self, result: DrainResult) -> Claim | None:
        now = self.clock()
        with transaction(self.sessions) as session:
            if quota(store.sent_since(session, now - timedelta(minutes=1)), self.config.outbox.per_minute) == 0:
                result.throttled = store.next_due(session, now) is not None
                return None
            while (mail_id := store.next_due(session, now)) is not None:
                claim = Claim(mail_id, uuid.uuid4().hex)
                if store.claim(session, mail_id, now, str(processes.Holder.current()), claim.token):
                    return claim
        return None

    def _open_sender(self, claim: Claim) -> Sender:
        """The connection, opened once there is a mail to send; if it cannot be (no password), the claimed
        mail goes straight back to pending instead of waiting out the lease."""
        try:
            return self.sender()
        except Exception:
            self._advance(claim, ("sending",), "pending", attempts=OutboxMail.attempts - 1)
            raise

    def _send_one(self, claim: Claim, sender: Sender, result: DrainResult) -> None:
        with transaction(self.sessions) as session:
            row = session.get_one(OutboxMail, claim.mail_id)
            envelope, attempts = _envelope(row), row.attempts
        message = compose(envelope, self.config.smtp.from_address, self.config.smtp.from_name, self.clock())
        try:
            delivery = sender.send(message, envelope.to, lambda: self._advance(claim, ("sending",), "delivering"))
        except AuthenticationError as exc:
            self._pause(claim, str(exc), result)
            return
        if delivery.outcome == LOST or not self._record(claim, attempts, delivery, result):
            _lost(claim, delivery, result)

    def _advance(self, claim: Claim, expected: tuple[str, ...], status: str, error: str = "", **more: object) -> bool:
        """One step of a claimed mail, in its own transaction; False when this sender no longer holds it."""
        with transaction(self.sessions) as session:
            return store.advance(session, claim.mail_id, claim.token, expected, status, self.clock(), error, **more)

    def _record(self, claim: Claim, attempts: int, delivery: Delivery, result: DrainResult) -> bool:
        """Store what became of the mail; False when it was no longer this sender's to record."""
        now = self.clock()
        status, error, more = outcome(delivery, attempts, self.config.outbox.max_attempts, now)
        with transaction(self.sessions) as session:
            if not store.advance(session, claim.mail_id, claim.token, HELD, status, now, error, **more):
                return False
        if status == "sent":
            result.sent += 1
        elif status == "pending":
            result.retrying += 1
        elif status == "failed":
            log.error("mail %s failed: %s", claim.mail_id, delivery.detail)
            result.failed += 1
        else:
            log.error("mail %s may or may not have been delivered: %s", claim.mail_id, delivery.detail)
            result.uncertain += 1
        return True

    def _pause(self, claim: Claim, reason: str, result: DrainResult) -> None:
        log.error("sending paused: %s", reason)
        now = self.clock()
        with transaction(self.sessions) as session:
            # Not this mail's fault: it waits, its attempt uncounted, until staff fix the login. The login was
            # refused whether or not this sender still holds the mail, so the pause stands either way.
            store.advance(
                session,
                claim.mail_id,
                claim.token,
                ("sending",),
                "pending",
                now,
                reason,
                attempts=OutboxMail.attempts - 1,
            )
            store.pause(session, reason, now)
        result.paused = reason


def _lost(claim: Claim, delivery: Delivery, result: DrainResult) -> None:
    """Stalled past the lease, this sender found its mail taken back (and maybe sent) by another. It stops
    draining rather than carry on from a stale moment; the next drain starts afresh."""
    log.error(
        "mail %s was taken back while this sender stalled (%s: %s): stopping",
        claim.mail_id,
        delivery.outcome,
        delivery.detail,
    )
    result.claim_lost = True


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
