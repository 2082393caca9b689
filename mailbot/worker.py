"""`mailbot run`: the worker that polls the mailbox, queues reminders and sends the outbox on a schedule.

The scheduler (APScheduler 3, in memory) only says *when*; every decision lives in the database — the ledger
knows what was fetched, the outbox's keys what was queued — so each job is safe to run late, twice, or after a
restart. A worker that was down catches up once at start (poll, then the reminders if 09:00 has passed, the
digest if 17:30 has passed on a working day, then the outbox) and within its run APScheduler coalesces missed
runs into one.

One worker per database: it holds a row in `flags` and refreshes it (its heartbeat); a second worker refuses to
start while that heartbeat is fresh, and takes the row over when it is stale or names a dead process of this
machine.

SIGTERM or SIGINT stops it: the signal handler only sets a flag and writes a byte to a pipe (mailbot.stopping);
the main thread, waiting on that pipe, shuts the scheduler down (the running job finishes, every outbox step
being its own transaction) and releases the lock. Nothing that takes a lock runs inside the handler, so it
cannot deadlock. `mailbot run` installs the handler before anything slow, and a worker asked to stop before it
has started starts no job.

The jobs run in one thread and the heartbeat in another, each with its own connection: every write transaction
begins IMMEDIATE (mailbot.store.db), so each waits for the other's few milliseconds instead of failing.

Push (mailbot.push, `worker.idle`): a third thread waits on an IMAP connection of its own for the server to
announce new mail (IDLE, or NOOP without it) and then runs the `push` round — the scheduled poll's path (the
folder's poll lock, skipped while a `mailbot poll` holds it), the receipts, the outbox — so that a unit's receipt
goes out within seconds. Jobs and rounds run one at a time: a round that comes during a scheduled poll waits for
it rather than being skipped by the poll lock, which could leave the new mail to the next poll. The scheduled
poll stays as the safety net.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mailbot.clock import TZ, as_local
from mailbot.errors import AuthenticationError, MailbotError, PollBusyError, WorkerLockError
from mailbot.processes import Holder, pid_alive
from mailbot.push import PushWatcher
from mailbot.report.digest import is_due
from mailbot.stopping import StopSignal
from mailbot.store import db
from mailbot.store import lock as store
from mailbot.store.db import transaction

if TYPE_CHECKING:
    from mailbot.app import App

log = logging.getLogger(__name__)

# Fixed job ids: replace_existing=True then means "this job", never a second copy of it.
STARTUP, POLL, REMIND, DRAIN, HEARTBEAT = "startup", "poll", "remind", "drain", "heartbeat"
DIGEST, PUSH = "digest", "push"
REMIND_AT = time(9, 0)
# A run that comes late (the machine slept, a long poll held the only work thread) still runs, once, within
# this; APScheduler's default of 1 s would silently drop it.
GRACE_SECONDS = 3600
LOCK = "worker"
STALE_BEATS = 4  # a heartbeat older than this many periods belongs to a worker that is gone
PUSH_STOP_SECONDS = 120.0  # the push thread notices a stop within a second, or finishes its round first


# ---------------------------------------------------------------------------------------------------------
# Decisions (pure)


def due_at_startup(now: datetime, digest_at: time = time(17, 30)) -> tuple[str, ...]:
    """The jobs a starting worker runs at once, in this order: poll first so that a unit whose table arrived
    while the worker was down is not reminded, the reminders only once today's 09:00 has passed (before it
    the cron job runs them), today's digest once its time has passed (its key stops a second one), the outbox
    last so that what was just queued goes out."""
    moment = as_local(now).time()
    jobs = (POLL, REMIND) if moment >= REMIND_AT else (POLL,)
    return (*jobs, DIGEST, DRAIN) if moment >= digest_at else (*jobs, DRAIN)


def takeover_reason(
    row: store.LockRow, me: Holder, now: datetime, stale_after: timedelta, alive: Callable[[int], bool]
) -> str | None:
    """Why `me` may take the lock `row` over, or None while its holder may still be running."""
    age = now - row.updated_at
    if age > stale_after:
        return f"its last heartbeat is {int(age.total_seconds())} s old"
    holder = Holder.parse(row.holder)
    if holder is None or holder.host != me.host:
        return None  # another machine's process cannot be asked: only its heartbeat can tell
    if holder.pid == me.pid:
        return "it is an earlier process with this process's id (a restarted container)"
    return None if alive(holder.pid) else f"process {holder.pid} no longer runs"


# ---------------------------------------------------------------------------------------------------------
# The lock


@dataclass
class WorkerLock:
    sessions: sessionmaker[Session]
    me: Holder
    stale_after: timedelta
    alive: Callable[[int], bool] = pid_alive

    def acquire(self, now: datetime) -> None:
        """Hold the lock or raise WorkerLockError. Each round inserts, or judges the row it finds; a row that
        changes under us (released, or taken by a faster starter) is judged again."""
        for _ in range(3):
            if self._insert(now) or self._take_over(now):
                return
        raise WorkerLockError("another mailbot worker is starting on this database at the same time")

    def _insert(self, now: datetime) -> bool:
        try:  # a transaction of its own: on PostgreSQL a failed INSERT spoils the transaction it is in
            with transaction(self.sessions) as session:
                store.insert(session, LOCK, str(self.me), now)
        except IntegrityError:
            return False
        return True

    def _take_over(self, now: datetime) -> bool:
        with transaction(self.sessions) as session:
            row = store.read(session, LOCK)
            if row is None:
                return False  # released meanwhile: insert again
            reason = takeover_reason(row, self.me, now, self.stale_after, self.alive)
            if reason is None:
                raise WorkerLockError(_held_message(row, now, self.stale_after))
            taken = store.take_over(session, LOCK, row, str(self.me), now)
        if taken:
            log.warning("took the worker lock over from %s: %s", row.holder, reason)
        return taken

    def beat(self, now: datetime) -> bool:
        """Refresh the heartbeat; False when another worker has taken the lock over."""
        with transaction(self.sessions) as session:
            return store.beat(session, LOCK, str(self.me), now)

    def release(self) -> None:
        with transaction(self.sessions) as session:
            store.release(session, LOCK, str(self.me))


def _held_message(row: store.LockRow, now: datetime, stale_after: timedelta) -> str:
    age = int((now - row.updated_at).total_seconds())
    return (
        f"another mailbot worker is running on this database ({row.holder}, last heartbeat {age} s ago); "
        f"stop it first; if it died, a new worker takes over once that heartbeat is "
        f"{int(stale_after.total_seconds())} s old"
    )


# ---------------------------------------------------------------------------------------------------------
# The worker


class Worker:
    """Thin wiring: jobs call the library, APScheduler says when, the lock keeps it the only one."""

    def __init__(self, app: App, me: Holder | None = None, stop: StopSignal | None = None) -> None:
        """`stop`: a request the caller's signal handlers may have set already (`mailbot run` installs them
        first thing); the caller closes it. Without it the worker has its own, stopped by stop()."""
        self.app = app
        beat = app.config.worker.heartbeat_seconds
        self.lock = WorkerLock(app.sessions, me or Holder.current(), timedelta(seconds=beat * STALE_BEATS))
        self.lost_lock = False
        self._own_stop = stop is None
        self._stop = StopSignal() if stop is None else stop
        self._login_refused = False
        self._paused: str | None = None
        self._one_job = threading.RLock()  # reentrant: the startup job runs the others inside itself

    def run(self) -> None:
        """Take the lock, run the jobs until stop(), let the running job finish, let the lock go. Asked to stop
        before its jobs have started (a SIGTERM while it was starting), it starts none."""
        if self._stopped_before_start():
            return
        db.require_current(self.app.engine)
        self.lock.acquire(self.app.clock())
        try:
            if not self._stopped_before_start():
                self._warn_about_the_calendar()
                self._serve(self.scheduler())
        finally:
            self.lock.release()
            log.info("worker %s stopped", self.lock.me)
        if self.lost_lock:
            raise WorkerLockError("another mailbot worker took this database over; this one stopped")

    def _stopped_before_start(self) -> bool:
        if self.stopping:
            log.info("stopping (%s) before any job started", _signal_name(self._stop.signum))
        return self.stopping

    def _warn_about_the_calendar(self) -> None:
        year = as_local(self.app.clock()).year
        for missing in self.app.calendar.uncovered([year, year + 1]):
            log.warning(
                "the holidays of %d are unknown: Monday to Friday count as working days there "
                "(upgrade chinesecalendar or fill [calendar]; see `mailbot doctor`)",
                missing,
            )

    def _serve(self, scheduler: BackgroundScheduler) -> None:
        scheduler.start()
        settings = self.app.config.worker
        log.info(
            "worker %s started: poll every %d min, reminders at %s, digest at %s on working days, outbox every minute, "
            "heartbeat every %d s",
            self.lock.me,
            settings.poll_minutes,
            f"{REMIND_AT:%H:%M}",
            f"{self._digest_at:%H:%M}",
            settings.heartbeat_seconds,
        )
        push = self._start_push()
        try:
            signum = self._stop.wait()
            log.info("stopping (%s): letting the running job finish", _signal_name(signum))
        finally:
            if push is not None:
                push[0].stop()
            # Outside any signal handler: waiting here for the running job cannot deadlock.
            scheduler.shutdown(wait=True)
            if push is not None:
                _join(push[1])

    def _start_push(self) -> tuple[PushWatcher, threading.Thread] | None:
        if not self.app.config.worker.idle:
            log.info("push is off (worker.idle = false): new mail waits for the scheduled poll")
            return None
        watcher = self.push_watcher()
        # A daemon: a thread stuck on a dead connection must not keep the process alive after the stop.
        thread = threading.Thread(target=watcher.run, name="mailbot-push", daemon=True)
        thread.start()
        return watcher, thread

    def push_watcher(self) -> PushWatcher:
        """The watcher that runs the push round when the server announces new mail, on its own connection."""
        settings, imap = self.app.config.worker, self.app.config.imap
        return PushWatcher(
            open_session=self.app.open_mailbox,
            on_mail=self._guarded(PUSH, self.push),
            renew_seconds=settings.idle_minutes * 60,
            noop_seconds=settings.noop_seconds,
            where=f"{imap.host}:{imap.port} {imap.folder}",
        )

    def stop(self, signum: int = 0) -> None:
        """Ask the worker to stop; safe from a signal handler and from any thread."""
        self._stop.set(signum)

    @property
    def stopping(self) -> bool:
        return self._stop.requested

    def close(self) -> None:
        if self._own_stop:
            self._stop.close()

    def scheduler(self) -> BackgroundScheduler:
        """The schedule, not started. One work thread runs poll, remind, digest and drain one after another (their order
        at startup matters, and SQLite likes one writer); the heartbeat has its own thread, so that a long first
        sync cannot make this worker look dead."""
        scheduler = BackgroundScheduler(
            timezone=TZ,
            executors={"default": ThreadPoolExecutor(1), HEARTBEAT: ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "misfire_grace_time": GRACE_SECONDS, "max_instances": 1},
        )
        settings = self.app.config.worker
        jobs = (
            (STARTUP, self.catch_up, None),  # no trigger: once, now
            (POLL, self.poll, IntervalTrigger(minutes=settings.poll_minutes, timezone=TZ)),
            (REMIND, self.remind, CronTrigger(hour=REMIND_AT.hour, minute=REMIND_AT.minute, timezone=TZ)),
            (DIGEST, self.digest, CronTrigger(hour=self._digest_at.hour, minute=self._digest_at.minute, timezone=TZ)),
            (DRAIN, self.drain, IntervalTrigger(minutes=1, timezone=TZ)),
        )
        for job_id, job, trigger in jobs:
            scheduler.add_job(self._guarded(job_id, job), trigger, id=job_id, name=job_id, replace_existing=True)
        heartbeat = IntervalTrigger(seconds=settings.heartbeat_seconds, timezone=TZ)
        # However late, a heartbeat must run: it is how this worker learns that another one took over.
        scheduler.add_job(
            self._guarded(HEARTBEAT, self.heartbeat, alone=False),
            heartbeat,
            id=HEARTBEAT,
            name=HEARTBEAT,
            executor=HEARTBEAT,
            misfire_grace_time=None,
            replace_existing=True,
        )
        return scheduler

    def _guarded(self, name: str, job: Callable[[], None], alone: bool = True) -> Callable[[], None]:
        """A job that never lets an exception out (a mailbox that is down must not end the worker), that does
        nothing once the worker is stopping (a run queued behind the last one), and that runs `alone`: one job
        or push round at a time. Only the heartbeat runs beside them, so that a long poll cannot make this
        worker look dead."""

        def run() -> None:
            one_at_a_time: AbstractContextManager[object] = self._one_job if alone else nullcontext()
            with one_at_a_time:
                if self.stopping:
                    return
                try:
                    job()
                except MailbotError as exc:
                    log.error("%s failed: %s", name, exc)  # expected trouble: a message, no traceback
                except Exception:
                    log.exception("%s failed", name)

        return run

    # -----------------------------------------------------------------------------------------------------
    # Jobs

    def catch_up(self) -> None:
        """What a worker that was down has missed, once, in order; one failing step does not stop the next."""
        steps = {POLL: self.poll, REMIND: self.remind, DIGEST: self.digest, DRAIN: self.drain}
        for name in due_at_startup(self.app.clock(), self._digest_at):
            self._guarded(name, steps[name])()

    def poll(self) -> None:
        if self._login_refused:
            return
        try:
            result = self.app.poller().poll()
        except AuthenticationError as exc:
            # 163.com locks the account after repeated failed logins: no retry every few minutes.
            self._login_refused = True
            log.error("IMAP login refused (%s): polling stops until the worker is restarted", exc)
            return
        except PollBusyError as exc:  # a `mailbot poll` typed meanwhile is fetching: it will store the mail
            log.info("poll skipped this round: %s", exc)
            return
        receipts = self.app.queue_receipts()  # as `mailbot poll` does: receipts answer mail at once, any day
        if result.fetched or result.outcomes or receipts:
            log.info(
                "poll: fetched %d, new %d, processed %d, receipts queued %d",
                result.fetched,
                result.new,
                len(result.outcomes),
                receipts,
            )

    def push(self) -> None:
        """The server announced new mail: the scheduled poll's path at once, then the outbox, so that the receipt
        goes out within seconds (still at most outbox.per_minute mails a minute)."""
        self.poll()
        self.drain()

    def remind(self) -> None:
        queued = self.app.reminders().queue(self.app.clock())
        if queued:
            log.info("remind: queued %d mail(s)", len(queued))

    @property
    def _digest_at(self) -> time:
        return time.fromisoformat(self.app.config.staff.digest_time)

    def digest(self) -> None:
        """Today's digest for staff, on working days only; the outbox job sends it within the minute."""
        now = self.app.clock()
        if not self.app.config.staff.digest_to or not is_due(now, self._digest_at, self.app.calendar):
            return
        queued = self.app.digests().queue(now)
        if queued:
            log.info("digest: queued %d mail(s)", len(queued))

    def drain(self) -> None:
        result = self.app.outbox().drain()
        if result.paused != self._paused:
            self._paused = result.paused
            if result.paused is not None:
                log.error("sending is paused: %s (fix the password, then `mailbot outbox resume`)", result.paused)
        counts = (result.sent, result.retrying, result.failed, result.uncertain)
        if any(counts):
            log.info("outbox: sent %d, retrying %d, failed %d, uncertain %d", *counts)

    def heartbeat(self) -> None:
        if not self.lock.beat(self.app.clock()):
            log.error("another worker has taken the database over (this one looked dead): stopping")
            self.lost_lock = True
            self.stop()


def _join(thread: threading.Thread) -> None:
    thread.join(timeout=PUSH_STOP_SECONDS)
    if thread.is_alive():
        log.warning("the push thread has not stopped after %g s; leaving it behind", PUSH_STOP_SECONDS)


def _signal_name(signum: int) -> str:
    return signal.Signals(signum).name if signum else "asked"
