"""`mailbot --help` cold start, each run a fresh interpreter. Target: ≤ 300 ms.

.venv/bin/python bench/bench_cli.py [--runs 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from common import summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    mailbot = [str(Path(sys.executable).parent / "mailbot"), "--help"]  # the installed console script
    bare = [sys.executable, "-c", "pass"]
    for label, command in (("python -c pass (interpreter alone)", bare), ("mailbot --help", mailbot)):
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # warm the OS file cache once
        samples = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            samples.append(time.perf_counter() - start)
        print(f"{label}: {summary(samples)}")


if __name__ == "__main__":
    main()
