"""Time to read one small (≈5 KB) annex 3 xlsx through `read_part`, checks included. Target: median ≤ 2 ms.

    .venv/bin/python bench/bench_read.py [--runs 2000]

Also prints the parts (sniffing, zip check, XML check, extent scan, calamine) so a regression can be placed.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import python_calamine

from mailbot.read import extent, guard
from mailbot.read.dispatch import read_part
from mailbot.read.sniff import sniff_type

from common import summary  # also puts tests/ on sys.path
from mailgen import annex3_xlsx
from tablegen import part


def timings(action: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def calamine_only(data: bytes) -> None:
    with python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data)) as workbook:
        workbook.get_sheet_by_name(workbook.sheet_names[0]).to_python()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    data = annex3_xlsx()
    attachment = part(data, "附件3.xlsx")
    result = read_part(attachment, None)
    assert result.sheets and not result.findings, result
    print(f"annex 3 xlsx of {len(data):,} bytes, {sum(len(row) for row in result.sheets[0].rows)} cells")
    timings(lambda: read_part(attachment, None), 200)  # warm up
    print(f"read_part (target <= 2 ms): {summary(timings(lambda: read_part(attachment, None), args.runs))}")
    parts: dict[str, Callable[[], object]] = {
        "  sniff_type": lambda: sniff_type(data, "附件3.xlsx"),
        "  check_zip (sizes only)": lambda: guard.check_zip(data),
        "  check_zip + DTDs": lambda: guard.check_xml(data),
        "  check_zip + DTDs + extent scan": lambda: guard.check_zip(
            data, xml=True, scans=extent.XlsxCells(1_000_000).scans
        ),
        "  calamine alone": lambda: calamine_only(data),
    }
    for label, action in parts.items():
        print(f"{label}: {summary(timings(action, args.runs // 4))}")


if __name__ == "__main__":
    main()
