"""Run the fault suite's reproductions of issue 14 several times over (on SQLite and, when
MAILBOT_TEST_DATABASE_URL is set, PostgreSQL) and print, per reproduction, how many rounds passed. Each test
asserts the invariants itself: every message in the ledger once, no derived row twice, each mail delivered at
most once and none lost, the mailbox untouched.

    export MAILBOT_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/repeat_faults.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPRODUCTIONS = {
    "1 UIDVALIDITY change with look-alikes": ["tests/test_faults_poll.py", "-k", "look_alike"],
    "2 two polls / two storers at once": ["tests/test_faults_poll.py", "-k", "not look_alike"],
    "3 stalled, killed and concurrent senders": [
        "tests/test_faults_outbox.py",
        "tests/test_outbox.py",
        "-k",
        "lease or sender",
    ],
    "4 corrupted and truncated archive": ["tests/test_archive_faults.py"],
    "5 database held 30 s, drain beside heartbeat": ["tests/test_faults_locking.py"],
    "  SIGTERM early in run": ["tests/test_worker.py", "-k", "sigterm"],
    "  SIGKILL of a first sync at 10+ points": ["tests/test_crash.py"],
}


def run(arguments: list[str]) -> tuple[bool, float, str]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return done.returncode == 0, time.monotonic() - start, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    rounds = parser.parse_args().rounds
    for name, arguments in REPRODUCTIONS.items():
        results = [run(arguments) for _ in range(rounds)]
        passed = sum(ok for ok, _, _ in results)
        seconds = sum(elapsed for _, elapsed, _ in results) / rounds
        print(
            f"{name:<46} {passed}/{rounds} rounds green, {seconds:5.1f} s a round; last: {results[-1][2]}", flush=True
        )
        for ok, _, last in results:
            if not ok:
                print(f"    failed round: {last}", flush=True)


if __name__ == "__main__":
    main()
