"""Shared bits of the benchmarks: they reuse the tests' loopback servers and message builders."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def summary(samples: list[float]) -> str:
    """Median and spread of timings in milliseconds."""
    ms = sorted(s * 1000 for s in samples)
    return f"median {statistics.median(ms):.1f} ms (min {ms[0]:.1f}, max {ms[-1]:.1f}, n={len(ms)})"
