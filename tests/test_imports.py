"""What starting mailbot costs: the schema check needs no alembic, and building the App imports none of its parts.

The commands themselves are checked in test_cli.py (`test_it_answers_everyday_commands_without_heavy_libraries`).
"""

from __future__ import annotations

import subprocess
import sys

from mailbot.store import db

# Libraries and parts of mailbot that a command imports only when it uses them.
HEAVY = (
    "alembic",
    "openpyxl",
    "docx",
    "pandas",
    "apscheduler",
    "imap_tools",
    "jinja2",
    "mailbot.process",
    "mailbot.analyse",
    "mailbot.fetch.imap",
    "mailbot.send.smtp",
    "mailbot.digests",
    "mailbot.report.workbook",
)


def test_it_knows_the_newest_migration_without_reading_the_scripts() -> None:
    # A new migration must come with a new SCHEMA_HEAD, or every command would refuse the upgraded database.
    assert db.head_revision() == db.SCHEMA_HEAD


def test_it_builds_the_app_and_checks_the_schema_without_importing_its_parts(tmp_path) -> None:
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from mailbot.app import App\nfrom mailbot.config import load_config\n"
        f"app = App(load_config(Path({str(tmp_path / 'mailbot.toml')!r})))\n"
        "try:\n    app.current()\nexcept Exception as exc:\n    print(type(exc).__name__)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    (tmp_path / "mailbot.toml").write_text('data_dir = "."\n', encoding="utf-8")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.splitlines() == ["DatabaseError", "[]"]  # a new database: `mailbot db upgrade` first
