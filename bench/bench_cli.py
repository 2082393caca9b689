"""Cold start of the command line, each run a fresh `mailbot` process (the OS file cache warmed by one run first).

Targets: `mailbot --help` ≤ 300 ms; the everyday commands that open the database (`status`, `outbox list`,
`units list`, `export --format json`) each within 4× `mailbot --help` (issue 17).

.venv/bin/python bench/bench_cli.py [--runs 20] [--config PATH]

Without --config the commands run on a fresh demo (`mailbot demo` in a temporary folder, about 10 s first).
Each command is timed twice: run in its own process from scratch (MAILBOT_WARM=0, as the first command after a
boot, an upgrade or 15 idle minutes runs), and handed to the warm server (mailbot/warm.py), as every later one
is; the target is for the second. Each line gives the median wall time and, for a process that does its own
work, the median CPU time (user + system): on a machine shared with other work the CPU time moves less. A served
command's CPU is spent in the server's fork, not in the process timed, so only its wall time is compared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import summary, warm_server

MAILBOT = str(Path(sys.executable).parent / "mailbot")  # the installed console script
COMMANDS = (("status",), ("outbox", "list"), ("units", "list"), ("export", "--format", "json"))
RATIO_TARGET = 4.0
# An installed mailbot has its bytecode compiled (pip does it at install). With PYTHONDONTWRITEBYTECODE set, as
# in some shells, every start would compile mailbot's modules again and this would measure the compiler.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command)
    return wall, usage.ru_utime + usage.ru_stime


def timings(command: list[str], runs: int, env: dict[str, str] = ENV) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `runs` fresh processes, after one run that warms the caches."""
    run_once(command, env)
    walls, cpus = zip(*(run_once(command, env) for _ in range(runs)), strict=True)
    return list(walls), list(cpus)


def report(label: str, walls: list[float], cpus: list[float] | None, baseline: float | None) -> None:
    line = f"{label}: {summary(walls)}"
    if cpus is not None:
        line += f"; CPU median {statistics.median(cpus) * 1000:.1f} ms"
    if baseline is not None:
        ratio = statistics.median(walls) / baseline
        line += f"; {ratio:.1f}× --help"
    print(line)


def measure(config: Path, runs: int) -> None:
    report("python -c pass (interpreter alone)", *timings([sys.executable, "-c", "pass"], runs), None)
    walls, cpus = timings([MAILBOT, "--help"], runs)
    report("mailbot --help", walls, cpus, None)
    baseline = statistics.median(walls)
    cold = {**ENV, "MAILBOT_WARM": "0"}
    print("each in a process of its own (MAILBOT_WARM=0):")
    for args in COMMANDS:
        report(f"  mailbot {' '.join(args)}", *timings([MAILBOT, "--config", str(config), *args], runs, cold), baseline)
    warm_server(ENV)
    print(f"handed to the warm server (target ≤ {RATIO_TARGET:g}× --help):")
    for args in COMMANDS:
        walls, _ = timings([MAILBOT, "--config", str(config), *args], runs)
        verdict = "ok" if statistics.median(walls) <= RATIO_TARGET * baseline else "SLOW"
        report(f"  mailbot {' '.join(args)} [{verdict}]", walls, None, baseline)


def make_demo(folder: Path) -> Path:
    subprocess.run([MAILBOT, "demo", "--dir", str(folder)], check=True, stdout=subprocess.DEVNULL, env=ENV)
    return folder / "mailbot.toml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--config", type=Path, help="A config whose database is upgraded (default: a new demo).")
    args = parser.parse_args()
    if args.config is not None:
        measure(args.config, args.runs)
        return
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        measure(make_demo(Path(folder)), args.runs)


if __name__ == "__main__":
    main()
