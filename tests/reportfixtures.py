"""The demo's database, made once per test session, for the tests of what staff read (digest, workbook,
circular): 29 units, the 2021 附件3 period with on-time, late, nil and missing units, corrections and problems."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime

import pytest
from rich.console import Console

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.config import load_config
from mailbot.demo.run import DemoResult, run_demo
from mailbot.demo.samples import PERIOD

# The day after the demo period's deadline (2021-06-15): the moment the "done means" is about.
DAY_AFTER = datetime(2021, 6, 16, 17, 30, tzinfo=TZ)
DEMO_PERIOD = PERIOD


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return run_demo(tmp_path_factory.mktemp("report") / "demo", console=Console(file=io.StringIO(), width=200))


@pytest.fixture
def demo_app(demo_run: DemoResult) -> Iterator[App]:
    """An App on the demo's database (its mail servers are gone: only the database and templates are used)."""
    app = App(load_config(demo_run.config_path), clock=lambda: DAY_AFTER)
    try:
        yield app
    finally:
        app.close()
