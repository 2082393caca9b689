"""Push: a thread of the worker waits on its own IMAP connection for the server to announce new mail, and runs
the worker's poll path at once, so that a unit's receipt goes out within seconds instead of after the next
scheduled poll.

With IDLE (RFC 2177, announced in CAPABILITY) the server pushes ``* n EXISTS`` to a waiting client; the watcher
ends IDLE (DONE), has the worker poll, and waits again. Without IDLE it sends NOOP every
``worker.noop_seconds``, whose answer carries the same EXISTS. The scheduled poll stays as the safety net either
way: a dropped connection is reconnected with growing pauses (1 s, 2 s, 4 s … 5 min) while the schedule carries
on, and a refused login ends push for good (163.com locks accounts after repeated failed logins).

The decisions — which mode, when to re-issue IDLE, how long to wait before reconnecting — are pure functions of
their arguments; the IMAP conversation itself is in mailbot.fetch.imap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol

from mailbot.errors import AuthenticationError, ConfigError, MailbotError

log = logging.getLogger(__name__)

Mode = Literal["idle", "noop", "poll"]
WAIT_SECONDS = 1.0  # one wait inside IDLE: how soon a stop request is noticed
BACKOFF_CAP_SECONDS = 300.0
STEADY_SECONDS = 60.0  # a connection that lasted this long worked: the next drop starts the pauses over


class Watchable(Protocol):
    """What the watcher needs from an IMAP session (mailbot.fetch.imap.ImapSession provides it). Each call
    that can see untagged answers says whether they announced new mail."""

    def offers_idle(self) -> bool: ...
    def idle_start(self) -> bool: ...
    def idle_wait(self, timeout: float) -> bool: ...
    def idle_done(self) -> bool: ...
    def noop(self) -> bool: ...


# ---------------------------------------------------------------------------------------------------------
# Decisions (pure)


def push_mode(offers_idle: bool, noop_seconds: float) -> Mode:
    """IDLE when the server offers it; else NOOP now and then, unless that is switched off (0): then nothing
    but the scheduled poll."""
    if offers_idle:
        return "idle"
    return "noop" if noop_seconds > 0 else "poll"


def renewal_due(entered: float, now: float, every_seconds: float) -> bool:
    """Whether an IDLE entered at `entered` is to be ended and issued again (seconds of a monotonic clock).
    RFC 2177: a server may log off a client idle for 30 minutes, so clients re-issue IDLE within 29."""
    return now - entered >= every_seconds


def backoff_seconds(failures: int) -> float:
    """The pause before reconnecting after `failures` failures in a row: 1 s, 2 s, 4 s … at most 5 minutes."""
    return min(BACKOFF_CAP_SECONDS, 2.0 ** max(failures - 1, 0))


def failures_after(failures: int, lasted: float) -> int:
    """The count of failures in a row once a connection that lasted `lasted` seconds has dropped: a drop after a
    steady connection is a first failure again, a connection that keeps dropping at once pauses longer each time."""
    return 1 if lasted >= STEADY_SECONDS else failures + 1


# ---------------------------------------------------------------------------------------------------------
# The watcher


@dataclass
class PushWatcher:
    """Runs in a thread of its own until stop(); `on_mail` (the worker's poll, receipts and outbox) runs in it."""

    open_session: Callable[[], AbstractContextManager[Watchable]]
    on_mail: Callable[[], None]
    renew_seconds: float
    noop_seconds: float
    where: str = ""  # host and folder, for the log
    monotonic: Callable[[], float] = time.monotonic
    _halt: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        self._halt.set()

    @property
    def stopped(self) -> bool:
        return self._halt.is_set()

    def run(self) -> None:
        """Watch, reconnecting after a drop, until stop(); return early when the server gives nothing to watch
        with, or refused the login."""
        failures = 0
        while not self.stopped:
            started = self.monotonic()
            try:
                if not self._watch(reconnected=failures > 0):
                    return
            except (AuthenticationError, ConfigError) as exc:
                log.error("push stopped: %s; new mail waits for the scheduled poll", exc)
                return
            except Exception as exc:  # a drop, or anything else: the schedule goes on, and so do we, later
                failures = failures_after(failures, self.monotonic() - started)
                pause = backoff_seconds(failures)
                bug = not isinstance(exc, MailbotError)  # not the network: show where it happened
                log.warning(
                    "push: connection to %s lost (%s); reconnecting in %g s", self.where, exc, pause, exc_info=bug
                )
                self._halt.wait(pause)

    def _watch(self, reconnected: bool) -> bool:
        """One connection's watch, until stop() or an error; False when there is nothing to watch with."""
        with self.open_session() as session:
            mode = push_mode(session.offers_idle(), self.noop_seconds)
            if mode == "poll":
                log.info(
                    "push: %s does not offer IMAP IDLE and worker.noop_seconds is 0: new mail waits for the "
                    "scheduled poll",
                    self.where,
                )
                return False
            self._announce(mode)
            if reconnected:
                self.on_mail()  # what came while the connection was down
            if mode == "idle":
                self._idle(session)
            else:
                self._noop(session)
        return True

    def _announce(self, mode: Mode) -> None:
        if mode == "idle":
            minutes = self.renew_seconds / 60
            log.info("push: waiting for new mail in IMAP IDLE on %s (re-issued every %g min)", self.where, minutes)
        else:
            log.info("push: %s does not offer IMAP IDLE; asking with NOOP every %g s", self.where, self.noop_seconds)

    def _idle(self, session: Watchable) -> None:
        while not self.stopped:
            new = session.idle_start()
            entered = self.monotonic()
            while not (new or self.stopped or renewal_due(entered, self.monotonic(), self.renew_seconds)):
                new = session.idle_wait(WAIT_SECONDS)
            if self.stopped:
                return  # closing the session ends IDLE
            if session.idle_done() or new:
                self.on_mail()

    def _noop(self, session: Watchable) -> None:
        while not self._halt.wait(self.noop_seconds):
            if session.noop():
                self.on_mail()
