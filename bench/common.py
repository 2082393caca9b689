"""Shared bits of the benchmarks: they reuse the tests' loopback servers and message builders."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def summary(samples: list[float]) -> str:
    """Median and spread of timings in milliseconds."""
    ms = sorted(s * 1000 for s in samples)
    return f"median {statistics.median(ms):.1f} ms (min {ms[0]:.1f}, max {ms[-1]:.1f}, n={len(ms)})"


def warm_server(env: dict[str, str], seconds: float = 60) -> Path:
    """The warm server of the console script (mailbot/warm.py) for `env`, started if none runs, once it listens."""
    from mailbot import warm

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the socket's name and folder come from the environment the commands run with
    try:
        path = warm.socket_path()
        if path is None:
            raise SystemExit("no private runtime folder for the warm server")
        if not path.exists():
            warm.start_server(path)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"the warm server did not start at {path}")
        time.sleep(0.05)
    return path
