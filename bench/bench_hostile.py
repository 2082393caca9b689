"""Peak RSS and time of `read_part` on each hostile file, each in a fresh process. Target: ≤ 200 MB each.

    .venv/bin/python bench/bench_hostile.py [--large]

The files are built by another process first (a forked child starts with its parent's resident pages), then each
is read by its own interpreter, whose own peak (ru_maxrss from os.wait4) is reported. `--large` adds an honest
workbook of a million cells (its sheet XML is about 40 MB, near the 50 MB member cap) for comparison; it takes a
minute to build.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import ROOT  # also puts tests/ on sys.path

SCRIPT = str(Path(__file__).resolve())
ROWS_4E9 = 4_000_000_000  # a DIMENSIONS claim no BIFF8 file can make


def hostile_files(large: bool) -> dict[str, tuple[str, Callable[[], bytes]]]:
    """Label -> (attachment name, builder)."""
    import tablegen as gen
    from mailgen import annex3_xlsx

    files: dict[str, tuple[str, Callable[[], bytes]]] = {
        "baseline: small annex 3 xlsx": ("附件3.xlsx", annex3_xlsx),
        "zip bomb, honest sizes (600 MB)": ("报表.zip", lambda: gen.zip_bomb(True)),
        "zip bomb, lying sizes (600 MB)": ("报表.zip", lambda: gen.zip_bomb(False)),
        "xlsx + bomb member, lying (300 MB)": ("附件3.xlsx", lambda: gen.xlsx_bomb(False)),
        "billion laughs in sheet XML": ("附件3.xlsx", gen.entity_bomb_xlsx),
        "sparse xlsx A1 + XFD1048576": ("附件3.xlsx", lambda: gen.sparse_xlsx("XFD1048576")),
        "sparse xls A1 + IV65536": ("附件3.xls", lambda: _xls(gen.sparse_xlsx("IV65536"))),
        "xls DIMENSIONS 4e9": ("附件3.xls", lambda: gen.xls_with_dimensions(_xls(gen.xlsx_bytes()), ROWS_4E9, 255)),
        "encrypted xlsx (CFB)": ("附件3.xlsx", gen.encrypted_xlsx),
        "zip of 2,001 members": ("报表.zip", lambda: gen.many_members_zip(2001)),
        "zip nested 3 deep": ("报表.zip", lambda: gen.nested_zip(3, annex3_xlsx())),
        "dense xlsx, 1 M cells (honest)": ("附件3.xlsx", lambda: _dense(1_000_000)),
    }
    if not large:
        del files["dense xlsx, 1 M cells (honest)"]
    return files


def _xls(xlsx: bytes) -> bytes:
    import tablegen as gen

    return gen.via_libreoffice(xlsx, "xlsx", "xls")


def _dense(cells: int) -> bytes:
    import io

    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("附件3")
    for row in range(cells // 10):
        sheet.append([f"单位{row}", "小米", "832平台", "线上", row, row * 1.5, "备注", None, 1, 2])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write_files(folder: Path, large: bool) -> None:
    manifest = {}
    for index, (label, (name, build)) in enumerate(hostile_files(large).items()):
        path = folder / f"file{index}"
        path.write_bytes(build())
        manifest[label] = {"path": str(path), "name": name}
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def read_one(path: str, name: str) -> None:
    """In the measured process: read the file once and print what came of it."""
    from mailbot.message.model import Part
    from mailbot.read.dispatch import read_part

    data = Path(path).read_bytes()
    start = time.perf_counter()
    result = read_part(Part(1, name, "application/octet-stream", data, ""), None)
    elapsed = time.perf_counter() - start
    codes = ",".join(f.code for f in result.findings) or f"{len(result.sheets)} sheet(s)"
    print(json.dumps({"outcome": codes, "seconds": elapsed}))


def measure(path: str, name: str) -> tuple[float, dict[str, object]]:
    """The child's own peak RSS in MB, and what it printed."""
    command = [sys.executable, SCRIPT, "--read", path, "--name", name]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return usage.ru_maxrss / 1024, {"outcome": f"CRASHED ({os.waitstatus_to_exitcode(status)})", "seconds": 0}
    return usage.ru_maxrss / 1024, json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--write", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--read", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        write_files(Path(args.write), args.large)
        return
    if args.read:
        read_one(args.read, args.name)
        return
    with tempfile.TemporaryDirectory() as folder:
        build = [sys.executable, SCRIPT, "--write", folder] + (["--large"] if args.large else [])
        subprocess.run(build, check=True, cwd=ROOT)
        manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
        print(f"{'file':38} {'size':>10} {'peak RSS':>9} {'time':>9}  outcome")
        for label, entry in manifest.items():
            rss, report = measure(entry["path"], entry["name"])
            size = Path(entry["path"]).stat().st_size
            seconds = float(str(report["seconds"]))
            print(f"{label:38} {size:>10,} {rss:>6.0f} MB {seconds * 1000:>6.0f} ms  {report['outcome']}")
        print("target: peak RSS <= 200 MB for every file")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
