"""Analysing archived messages on several cores, while the parent process keeps the database.

`analyse` is pure and CPU-bound (MIME parsing, unzipping, XML scans, calamine), so a first sync or a backlog is
spread over worker processes: each loads the raw bytes from the archive itself and sends back the Analysis,
without the attachment bytes, which the store does not need. A small batch is analysed in this process, because
starting workers costs more than it saves.

A worker that dies (a native reader aborting, LibreOffice taking its process down) no longer takes mailbot with
it: the batch it held is analysed again one message per fresh worker, and the message that kills its worker
again is reported as failed, its raw bytes kept for a person.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.util import Finalize
from typing import ParamSpec, TypeVar

from mailbot.analyse import Analysis, Opened, TableRules, conclude, open_message, read_files
from mailbot.config import Config, LimitsConfig
from mailbot.errors import ArchiveCorruptError
from mailbot.problems import ARCHIVE_CORRUPT
from mailbot.read.office import LibreOffice
from mailbot.registry import Registry
from mailbot.store.archive import Archive

log = logging.getLogger(__name__)

MAX_AUTO_WORKERS = 4  # beyond this the parent, storing one batch at a time, cannot keep up
# Fewer messages than this are analysed in the parent: starting the fork server (≈0.2 s of CPU) would cost more.
MIN_PARALLEL_MESSAGES = 100
GC_THRESHOLD = 7_000  # allocations between young collections in a worker (Python's default: 700)
STEP_BYTES = 1024 * 1024  # mail parsed before its files are read (see run_jobs)
STEP_CELLS = 100_000  # cells of tables read before they are decided (a few MB)
CRASHED = "分析此邮件的进程异常退出（可能是文件触发了读取程序的缺陷），已暂停处理此邮件，请人工查看原件"


@dataclass(frozen=True)
class Job:
    """One archived message to analyse; everything `analyse` needs besides the registry and the config."""

    message_id: int
    sha256: str
    received_at: datetime
    received_from_header: bool
    assigned: str | None = None  # the unit staff assigned the message to (`messages assign`): it overrides


@dataclass(frozen=True)
class Failure:
    """Analysis raised: the message is stored as failed with this error, and the traceback is logged."""

    error: str
    traceback: str = ""
    code: str = ""  # a problem code when the failure has a name (archive_corrupt): recorded as a problem too


Result = tuple[int, Analysis | Failure]
_T = TypeVar("_T")
_P = ParamSpec("_P")


@dataclass(frozen=True)
class Context:
    """What analysing needs in any process: the archive to load from, the limits and the table rules."""

    archive: Archive
    limits: LimitsConfig
    rules: TableRules


def run_jobs(jobs: Sequence[Job], registry: Registry, context: Context) -> list[Result]:
    """Analyse each message; an exception becomes a Failure, so one bad message never costs its batch.

    A few messages at a time are parsed, then their files read, then decided: each step's code stays in the
    processor's caches instead of being pushed out by the next one's, which saves a fifth of the CPU a report
    costs. What is held meanwhile is bounded: at most STEP_BYTES of mail (one bigger message goes alone), and
    tables of at most STEP_CELLS cells read ahead of their deciding."""
    done: dict[int, Analysis | Failure] = {}
    group: list[tuple[Job, Opened]] = []
    size = 0
    for job in jobs:
        opened = _attempt(_open, job, registry, context)
        if isinstance(opened, Failure):
            done[job.message_id] = opened
            continue
        group.append((job, opened))
        size += len(opened.raw)
        if size >= STEP_BYTES:
            done.update(_read_and_decide(group, registry, context))
            group, size = [], 0
    done.update(_read_and_decide(group, registry, context))
    return [(job.message_id, done[job.message_id]) for job in jobs]


def _read_and_decide(
    group: Sequence[tuple[Job, Opened]], registry: Registry, context: Context
) -> dict[int, Analysis | Failure]:
    done: dict[int, Analysis | Failure] = {}
    read: list[tuple[Job, Opened]] = []
    cells = 0
    for job, opened in group:
        result = _attempt(read_files, opened, context.rules)
        if isinstance(result, Failure):
            done[job.message_id] = result
            continue
        read.append((job, result))
        cells += result.cells
        if cells >= STEP_CELLS:
            done.update(_decide_all(read, registry, context))
            read, cells = [], 0
    return done | _decide_all(read, registry, context)


def _decide_all(
    read: Sequence[tuple[Job, Opened]], registry: Registry, context: Context
) -> dict[int, Analysis | Failure]:
    return {job.message_id: _attempt(_decide, job, opened, registry, context) for job, opened in read}


def _open(job: Job, registry: Registry, context: Context) -> Opened:
    return open_message(context.archive.load(job.sha256), registry, context.limits)


def _decide(job: Job, opened: Opened, registry: Registry, context: Context) -> Analysis:
    limits, rules = context.limits, context.rules
    return conclude(opened, registry, limits, job.received_at, job.received_from_header, rules, job.assigned)


def _attempt(step: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T | Failure:
    try:
        return step(*args, **kwargs)
    except ArchiveCorruptError as exc:  # no bug to trace: the file on disk is damaged or gone
        return Failure(str(exc), code=ARCHIVE_CORRUPT)
    except Exception as exc:  # any bug in a stage must not stop the worker
        return Failure(f"{type(exc).__name__}: {exc}", traceback.format_exc())


def worker_count(config: Config) -> int:
    configured = config.tables.workers
    return configured if configured > 0 else min(os.cpu_count() or 1, MAX_AUTO_WORKERS)


class Analyser:
    """Runs jobs in this process, or in a pool of worker processes started on first use."""

    def __init__(self, context: Context, workers: int) -> None:
        self.context = context
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self.remote_batches = 0  # batches sent to worker processes: shows whether a run used them
        self._starting: threading.Thread | None = None
        self._start_error: Exception | None = None

    @property
    def window(self) -> int:
        """Batches in flight: enough to keep every worker busy while the parent stores a finished one."""
        return 2 * self.workers if self.workers > 1 else 0

    def parallel_for(self, count: int) -> bool:
        return self.workers > 1 and count >= MIN_PARALLEL_MESSAGES

    def start(self) -> None:
        """Start the workers in the background: a first sync calls this before fetching and fetches on while
        the fork server imports the analysing modules; `ready` says when the workers can take messages."""
        if self._pool is not None or self.workers <= 1:
            return
        try:
            pool = _new_pool(self.context, self.workers)
        except (OSError, ImportError, NotImplementedError) as error:  # no process support (no /dev/shm)
            self._without_workers(error)
            return
        self._pool = pool
        self._starting = threading.Thread(target=self._launch, args=(pool,), name="worker-start", daemon=True)
        self._starting.start()

    def _launch(self, pool: ProcessPoolExecutor) -> None:
        # Each submit starts a process while fewer are running than jobs wait; the first one waits for the
        # fork server to finish its imports, which is why this runs in its own thread.
        try:
            for _ in range(self.workers):
                pool.submit(_run_in_worker, [], Registry(()))
        except Exception as error:  # whatever keeps processes from starting: `settle` falls back to none
            self._start_error = error

    @property
    def ready(self) -> bool:
        """Whether the workers are up, or there are none to wait for."""
        return self._starting is None or not self._starting.is_alive()

    def settle(self) -> None:
        """Wait until the workers are up; if they could not start, analyse in this process from now on."""
        starting, self._starting = self._starting, None
        if starting is None:
            return
        starting.join()
        error, self._start_error = self._start_error, None
        if error is not None:
            self.close()
            self._without_workers(error)

    def _without_workers(self, error: BaseException) -> None:
        log.warning("cannot start worker processes (%s); analysing in mailbot's own process", error)
        self.workers = 1

    def submit(self, jobs: Sequence[Job], registry: Registry, parallel: bool) -> Future[list[Result]]:
        if parallel:
            self.start()
            self.settle()
        if not parallel or self.workers <= 1:
            done: Future[list[Result]] = Future()
            done.set_result(run_jobs(jobs, registry, self.context))
            return done
        self.remote_batches += 1
        return self._started().submit(_run_in_worker, list(jobs), registry)

    def collect(self, jobs: Sequence[Job], registry: Registry, pending: Future[list[Result]]) -> list[Result]:
        """The results of a submitted batch; if a worker died on the way, each message again on its own."""
        try:
            return pending.result()
        except BrokenProcessPool:
            log.error("a worker process died while analysing messages %s", [job.message_id for job in jobs])
            self.close()
        except Exception:  # e.g. a result that could not be sent back: find its message, keep the others
            log.exception("analysing messages %s in a worker failed", [job.message_id for job in jobs])
        return [result for job in jobs for result in self._alone(job, registry)]

    def _alone(self, job: Job, registry: Registry) -> list[Result]:
        self.start()
        self.settle()
        if self._pool is None:  # no workers configured, or they cannot start here
            return run_jobs([job], registry, self.context)
        try:
            return self._pool.submit(_run_in_worker, [job], registry).result()
        except BrokenProcessPool:
            self.close()
        except Exception as exc:
            return [(job.message_id, Failure(f"{type(exc).__name__}: {exc}", traceback.format_exc()))]
        if self._pool_works(registry):
            log.error("message %s killed its worker process again; set aside", job.message_id)
            return [(job.message_id, Failure(CRASHED))]
        # Not the message: no worker can run here at all (a broken installation). Such a message is then
        # guarded by the attempts counter, like every message in mailbot's own process.
        log.error("worker processes cannot run here; analysing in mailbot's own process")
        self.workers = 1
        return run_jobs([job], registry, self.context)

    def _pool_works(self, registry: Registry) -> bool:
        try:
            self._started().submit(_run_in_worker, [], registry).result()
        except (BrokenProcessPool, RuntimeError):  # RuntimeError: start() fell back to no pool
            self.close()
            return False
        return True

    def _started(self) -> ProcessPoolExecutor:
        self.start()
        self.settle()
        if self._pool is None:
            raise RuntimeError("no worker processes")
        return self._pool

    def close(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting, self._start_error = None, None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _new_pool(context: Context, workers: int) -> ProcessPoolExecutor:
    # Workers are forked by a fork server that imported the analysing modules once, when mailbot first needed
    # workers: each then starts in milliseconds instead of importing them again (0.2 s of CPU each; for two
    # workers, a tenth of what a first sync of 2,000 reports cost). Not a plain fork of mailbot: it may be
    # running scheduler and database threads, which fork would copy mid-lock.
    server = multiprocessing.get_context("forkserver")
    server.set_forkserver_preload([__name__])
    # The parent's own rules, so that every message of a run is read with the same mapping even if staff
    # edit the file meanwhile; only LibreOffice is the worker's own (a profile folder per process).
    convert = context.rules.convert
    office = (convert.program, convert.timeout_seconds) if isinstance(convert, LibreOffice) else None
    shared = dataclasses.replace(context, rules=dataclasses.replace(context.rules, convert=None))
    return ProcessPoolExecutor(workers, mp_context=server, initializer=_start_worker, initargs=(shared, office))


_worker_context: Context | None = None


def _start_worker(context: Context, office: tuple[str | None, int] | None) -> None:
    global _worker_context  # one per worker process, built once
    _exit_with_parent()
    _fewer_collections()
    if office is not None:
        converter = LibreOffice(*office)
        # Workers end through os._exit, which skips atexit: remove LibreOffice's profile folder explicitly.
        Finalize(converter, converter.close, exitpriority=10)
        context = dataclasses.replace(context, rules=dataclasses.replace(context.rules, convert=converter))
    _worker_context = context


def _fewer_collections() -> None:
    """Analysing allocates many short-lived objects and few cycles: by default the collector runs every 700
    allocations and walks every imported module's objects at each full collection. The modules are frozen out
    of its sight and it runs a tenth as often: analysing a report costs 1.58–1.62 ms of CPU instead of
    1.74–1.78 ms (2 × 600 messages of bench_first_sync's kind, in one process)."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 10, 10)


def _exit_with_parent() -> None:
    """A worker blocked on its queue outlives a parent killed with SIGKILL (it holds both ends of its queues),
    and the fork server waits for every worker to let go of it. So the worker watches the pipe that only mailbot
    holds open: it reads as ended the moment mailbot is gone, and the worker exits, whatever it was doing (its
    results have nowhere to go); the fork server then follows."""
    parent = multiprocessing.parent_process()
    if parent is None:  # not started by multiprocessing: nothing to watch
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="orphan-check", daemon=True).start()


def _run_in_worker(jobs: list[Job], registry: Registry) -> list[Result]:
    assert _worker_context is not None, "the pool's initializer builds the context"
    return [(message_id, _slim(result)) for message_id, result in run_jobs(jobs, registry, _worker_context)]


def _slim(result: Analysis | Failure) -> Analysis | Failure:
    """The Analysis without the attachments' bytes: the parent stores their names, sizes and digests only."""
    if isinstance(result, Failure):
        return result
    parts = tuple(dataclasses.replace(part, data=b"", size=part.byte_size) for part in result.parsed.attachments)
    return dataclasses.replace(result, parsed=dataclasses.replace(result.parsed, attachments=parts))
