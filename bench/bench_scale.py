"""The staff commands on the large database (bench/largedb.py): status, the digest, the consolidated workbook, the
circular and `remind --dry-run`, target ≤ 1 s each.

Each operation is timed in this process (`--runs` times after one warm-up; the median) as the command runs it,
then as a `mailbot` command (the console script, with a mailbot.toml written beside the database and `--as-of`
at the generator's AS_OF): once in a process of its own from scratch (MAILBOT_WARM=0: the interpreter's start and
mailbot's imports come on top, as for the first command after a boot, an upgrade or 15 idle minutes), and
`--runs` times handed to the warm server (mailbot/warm.py) as every later command is, after one warm-up. `digest` is the
digest as the 17:30 job makes it, workbook attached (no command makes it without sending it); `digest-dry` is
`digest --dry-run`, which shows the text only. In brackets: CPU seconds, less sensitive to a shared machine's load.

.venv/bin/python bench/bench_scale.py [--runs 5] [--folder /tmp/mailbot-large] [--database-url URL] [--fresh]
                                      [--no-cli] [--only NAME]

PostgreSQL: createdb -h 127.0.0.1 -U postgres mailbot_bench_large, then
  --database-url postgresql://postgres@127.0.0.1:5432/mailbot_bench_large --folder /tmp/mailbot-large-pg
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import largedb

from mailbot.app import App
from mailbot.demo.run import to_toml
from mailbot.report.circular import circular_docx
from mailbot.report.facts import money_period
from mailbot.report.status import attention, build_status
from mailbot.report.workbook import consolidated_workbook
from mailbot.store.db import transaction
from mailbot.store.reports import period_report

from common import warm_server

TARGET_S = 1.0
PERIOD = "2021-annex3-11-25"  # the period that closed the day before AS_OF: the one staff report on
AS_OF_TEXT = largedb.AS_OF.isoformat()
MAILBOT = Path(sys.executable).with_name("mailbot")


@dataclass(frozen=True)
class Operation:
    name: str
    run: Callable[[App], object]  # in this process, as the command does it
    argv: tuple[str, ...]  # the command's arguments ({out}: a scratch folder for what it writes); () for none


def status(app: App) -> object:
    """`mailbot status --json`: the per-unit table and what needs a person (the digest's list)."""
    with transaction(app.ready(), readonly=True) as session:
        items = attention(session, largedb.AS_OF, app.config, app.calendar, app.archive)
        return build_status(session, largedb.AS_OF, items).to_json()


def digest(app: App) -> object:
    """The digest as the 17:30 job queues it: the facts, the rendered mail and its attached workbook."""
    return app.digests().render(largedb.AS_OF)


def digest_preview(app: App) -> object:
    """`mailbot digest --dry-run`: the digest's text only; nothing shows the attachment, so it is not built."""
    return app.digests().render(largedb.AS_OF, attachment=False)


def workbook(app: App) -> object:
    """`mailbot export --format xlsx --period …`: the period's consolidated workbook."""
    with transaction(app.ready_pipeline().sessions, readonly=True) as session:
        report = period_report(session, money_period(PERIOD, app.config), largedb.AS_OF)
    return consolidated_workbook(report, app.templates, "wan")


def circular(app: App) -> object:
    """`mailbot report circular --period …`: the draft circular as .docx."""
    with transaction(app.ready_pipeline().sessions, readonly=True) as session:
        facts = period_report(session, money_period(PERIOD, app.config), largedb.AS_OF)
    return circular_docx(facts, app.templates, app.config)


def remind(app: App) -> object:
    """`mailbot remind --dry-run`: the reminders, late notices and receipts that would be queued."""
    return app.reminders().planned(largedb.AS_OF, attachments=False)


OPERATIONS = (
    Operation("status", status, ("status", "--as-of", AS_OF_TEXT, "--json")),
    Operation("digest", digest, ()),  # no command makes it without queueing and sending it
    Operation("digest-dry", digest_preview, ("digest", "--as-of", AS_OF_TEXT, "--dry-run", "-o", "{out}/digest.html")),
    # export has no --as-of: it reports as of now, which on this database is the same data as at AS_OF.
    Operation("workbook", workbook, ("export", "--format", "xlsx", "--period", PERIOD, "-o", "{out}/汇总.xlsx")),
    Operation(
        "circular", circular, ("report", "circular", "--period", PERIOD, "--as-of", AS_OF_TEXT, "-o", "{out}/通报.docx")
    ),
    Operation("remind", remind, ("remind", "--as-of", AS_OF_TEXT, "--dry-run")),
)


def write_config(folder: Path, database_url: str) -> Path:
    """A mailbot.toml beside the database, so that the console script opens the very same App."""
    path = folder / "mailbot.toml"
    path.write_text(to_toml(largedb.large_config_dict(folder, database_url)), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Timing:
    """Seconds waited, and seconds of CPU this process (or the child) used: on a machine shared with other
    work the wall time grows with the load, the CPU time much less (PostgreSQL's own work is not in it)."""

    wall: float
    cpu: float

    def text(self) -> str:
        return f"{self.wall:6.3f} s ({self.cpu:5.3f})"


def in_process(app: App, operation: Operation, runs: int) -> Timing:
    operation.run(app)  # warm-up: imports, templates, the connection pool
    walls, cpus = [], []
    for _ in range(runs):
        started, used = time.perf_counter(), time.process_time()
        operation.run(app)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - used)
    return Timing(statistics.median(walls), statistics.median(cpus))


def as_process(config: Path, operation: Operation, env: dict[str, str]) -> Timing:
    """One `mailbot --config … <command>`: what a person typing it waits."""
    with tempfile.TemporaryDirectory() as scratch:
        argv = [str(MAILBOT), "--config", str(config), *(arg.format(out=scratch) for arg in operation.argv)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Timing(elapsed, cpu)


def served(config: Path, operation: Operation, runs: int) -> Timing:
    """The median of `runs` commands handed to the warm server, after one warm-up. The CPU is the client's only:
    the command's own is spent in the server's fork."""
    env = dict(os.environ)
    warm_server(env)
    as_process(config, operation, env)
    timings = [as_process(config, operation, env) for _ in range(runs)]
    return Timing(statistics.median(t.wall for t in timings), statistics.median(t.cpu for t in timings))


Row = tuple[str, Timing, Timing | None, Timing | None]


def table(rows: list[Row], backend: str, runs: int) -> Iterator[str]:
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    yield f"{backend}: median of {runs} runs after a warm-up, in-process and served; one cold process (load {load})"
    columns = f"{'in-process (cpu)':>19} {'cold process (cpu)':>19} {'served':>9}"
    yield f"{'operation':11} {columns}  target ≤ {TARGET_S:.0f} s"
    for name, inside, cold, warm in rows:
        worst = max(inside.wall, warm.wall if warm else 0.0)
        mark = "met" if worst <= TARGET_S else "NOT MET"
        cold_text = cold.text() if cold else "-"
        warm_text = f"{warm.wall:6.3f} s" if warm else "-"
        yield f"{name:11} {inside.text():>19} {cold_text:>19} {warm_text:>9}  {mark}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/mailbot-large"))
    parser.add_argument("--database-url", default="", help="default: an SQLite file in the folder")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--no-cli", action="store_true", help="only the in-process timings")
    parser.add_argument("--only", default="", help="only the operations whose name contains this text")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{args.folder / 'large.sqlite'}"
    built = largedb.ensure(args.folder, url, args.seed, args.fresh)
    for line in largedb.describe(built):
        print(line)
    config = write_config(args.folder, url)
    rows = []
    for operation in (op for op in OPERATIONS if args.only in op.name):
        inside = in_process(built.app, operation, args.runs)
        if args.no_cli or not operation.argv:
            rows.append((operation.name, inside, None, None))
            continue
        cold = as_process(config, operation, {**os.environ, "MAILBOT_WARM": "0"})
        rows.append((operation.name, inside, cold, served(config, operation, args.runs)))
    for line in table(rows, built.app.engine.url.get_backend_name(), args.runs):
        print(line)
    built.app.close()


if __name__ == "__main__":
    main()
