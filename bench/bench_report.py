"""What staff read, for a full year: the digest with its workbook, and the circular. Target: digest + workbook ≤ 1 s.

A year of real mail is ingested through the real pipeline first (not timed): the 29 default units each send
附件1 (04-15), 附件3 (06-15 and 11-25) and, on 11-15, 附件3 again in its 2020 layout (采购时间, 数量, 万元), which
supersedes the 11-25 table; every third unit corrects each table once (resubmission history), 12 rows per money
table. Then, as of the day after the 11-25 deadline:

.venv/bin/python bench/bench_report.py [--runs 10] [--backend sqlite|postgresql]

PostgreSQL: a fresh database on the server of $MAILBOT_TEST_DATABASE_URL, dropped afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.config import UnitConfig, config_from_dict
from mailbot.defaults import load_default_units
from mailbot.demo.run import demo_config_dict
from mailbot.ingest import ingest_paths
from mailbot.report.circular import circular_docx
from mailbot.report.facts import find_period
from mailbot.store.db import transaction
from mailbot.store.models import Submission
from mailbot.store.reports import period_report

from common import summary
from dbfixtures import backend_database
from mailgen import make_message
from tablegen import xlsx_bytes

AS_OF = datetime(2021, 11, 26, 17, 30, tzinfo=TZ)
SOURCES = ("832平台", "农户", "合作社", "扶贫基地", "驻村第一书记推荐", "农购网")
ROWS = 12


def _kind(row: int, seed: int) -> tuple[str, str]:
    """Every (产品来源, 采购方式) once per table, as a careful unit fills it in (no unmerged items)."""
    return SOURCES[(row + seed) % len(SOURCES)], "线上" if row < len(SOURCES) else "线下"


def _annex3(unit: str, seed: int) -> bytes:
    rows: list[list[object]] = [["附件3"], [f"{unit}消费惠农统计表"]]
    rows.append(["单位名称", "产品名称", "产品来源", "采购方式", "金额（元）", "合计（元）"])
    for i in range(ROWS):
        source, channel = _kind(i, seed)
        rows.append([unit if i == 0 else None, f"产品{i}", source, channel, 1000 + seed * 7 + i])
    return xlsx_bytes(rows)


def _old_layout(unit: str, seed: int) -> bytes:
    rows: list[list[object]] = [[f"{unit}消费扶贫月度统计表"]]
    rows.append(
        ["单位名称", "产品名称", "产品来源", "采购方式", "采购时间", "数量（吨）", "金额（万元）", "合计（万元）"]
    )
    for i in range(ROWS):
        source, channel = _kind(i, seed)
        amount = Decimal(seed + i + 1) / 100
        rows.append([unit if i == 0 else None, f"产品{i}", source, channel, f"2021-11-{i + 1:02d}", 0.5, amount])
    return xlsx_bytes(rows)


def _annex1(unit: str, seed: int) -> bytes:
    rows: list[list[object]] = [
        ["附件1"],
        ["工会优质农副产品推荐统计表"],
        ["序号", "推荐产品", "推荐人", "联系电话", "备注"],
    ]
    rows += [[i + 1, f"{unit}推荐产品{i}", "张三", "0375-2900000", ""] for i in range(3 + seed % 3)]
    return xlsx_bytes(rows)


# (make the table, the day tables of this period arrive from, the file name)
PERIODS = (
    (_annex1, datetime(2021, 4, 1, 9, 0, tzinfo=TZ), "附件1.xlsx"),
    (_annex3, datetime(2021, 6, 1, 9, 0, tzinfo=TZ), "附件3.xlsx"),
    (_annex3, datetime(2021, 11, 10, 9, 0, tzinfo=TZ), "附件3.xlsx"),
    (_old_layout, datetime(2021, 11, 15, 9, 0, tzinfo=TZ), "消费扶贫统计表.xlsx"),
)


def year_of_mail(units: list[UnitConfig]) -> Iterator[bytes]:
    for make, start, filename in PERIODS:
        for index, unit in enumerate(units):
            versions = 2 if index % 3 == 0 else 1
            for version in range(versions):
                received = start + timedelta(days=index % 10, hours=version * 30, minutes=index)
                yield make_message(
                    sender=unit.emails[0],
                    subject=f"{unit.name}统计表" + ("（更正）" if version else ""),
                    attachments=[(filename, make(unit.name, index + version * 5))],
                    received=received,
                )


def build(folder: Path, database_url: str) -> App:
    units = list(load_default_units())
    raw = demo_config_dict(units, 1, 1)
    raw["data_dir"] = str(folder)
    raw["database"] = {"url": database_url}
    app = App(config_from_dict(raw), clock=lambda: AS_OF)
    app.upgrade()
    paths = []
    for number, mail in enumerate(year_of_mail(units)):
        paths.append(folder / "mail" / f"{number:04d}.eml")
        paths[-1].parent.mkdir(exist_ok=True)
        paths[-1].write_bytes(mail)
    started = time.perf_counter()
    ingest_paths(app.ready_pipeline(), paths)
    with app.sessions() as session:
        stored = session.query(Submission).count()
    print(
        f"ingested {len(paths)} messages ({stored} tables) in {time.perf_counter() - started:.1f} s (not timed below)"
    )
    return app


def timed(runs: int, work: object) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        work()  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, backend_database(args.backend, Path(folder)) as url:
        app = build(Path(folder), url)
        digests = app.digests()
        made = digests.render(AS_OF)
        shown = ", ".join(p.period.id for p in made.facts.periods)
        print(f"as of {AS_OF:%Y-%m-%d %H:%M}: digest covers {shown}; attachment {len(made.attachment or b''):,} bytes")
        period = find_period("2021-annex3-11-25", app.config.deadlines, digests.calendar)

        def circular() -> None:
            with transaction(app.sessions) as session:
                circular_docx(period_report(session, period, AS_OF), app.templates)

        print(f"digest facts (database reads): {summary(timed(args.runs, lambda: digests.facts(AS_OF)))}")
        print(f"digest + workbook (target <= 1 s): {summary(timed(args.runs, lambda: digests.render(AS_OF)))}")
        print(f"circular (docx): {summary(timed(args.runs, circular))}")
        app.close()


if __name__ == "__main__":
    main()
