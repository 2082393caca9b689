"""Wiring: turns a Config into the objects the commands use. The CLI and the demo both build an App.

Every part is built on first use, and its module imported there: `mailbot status` must not pay for importing
the pipeline, the readers, IMAP, SMTP or the report writers it never uses (see tests/test_cli.py).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mailbot.clock import Clock, system_clock
from mailbot.config import Config, read_secret
from mailbot.store import db

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from mailbot.analyse import TableRules
    from mailbot.digests import Digests
    from mailbot.fetch.imap import ImapSession
    from mailbot.mails import Templates
    from mailbot.outbox import Outbox
    from mailbot.process import Pipeline
    from mailbot.remind import Reminders
    from mailbot.send.smtp import SmtpSender
    from mailbot.store.archive import Archive
    from mailbot.sync import Poller, Progress
    from mailbot.workdays import WorkCalendar


@dataclass
class App:
    config: Config
    clock: Clock = field(default=system_clock)

    @cached_property
    def engine(self) -> Engine:
        return db.make_engine(self.config.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return db.make_sessionmaker(self.engine)

    @cached_property
    def archive(self) -> Archive:
        from mailbot.store.archive import Archive

        return Archive(self.config.archive_path)

    def upgrade(self) -> None:
        """Migrate the schema, then mirror the config's units into it."""
        db.upgrade(self.engine)
        self.sync_units()

    def sync_units(self) -> None:
        """Mirror the config's units. An unchanged config (nearly every command) costs a few reads and never
        waits for the write lock a worker's batch may hold."""
        from mailbot.store import ledger

        with db.transaction(self.sessions, readonly=True) as session:
            if ledger.units_in_sync(session, self.config.units):
                return
        db.change_if_needed(self.sessions, lambda session: ledger.sync_units(session, self.config.units, self.clock()))

    def current(self) -> sessionmaker[Session]:
        """Sessions on a database whose schema is at the newest revision (one query)."""
        db.require_current(self.engine)
        return self.sessions

    def ready(self) -> sessionmaker[Session]:
        """Sessions on a database at the newest revision that knows the config's units: what a command that
        reads or acts needs, without building the pipeline."""
        sessions = self.current()
        self.sync_units()
        return sessions

    @cached_property
    def table_rules(self) -> TableRules:
        from mailbot.analyse import TableRules

        return TableRules.from_config(self.config)

    def ready_pipeline(self) -> Pipeline:
        """A pipeline on a database that is at the newest revision and knows the config's units."""
        from mailbot.process import Pipeline

        return Pipeline(self.config, self.ready(), self.archive, self.clock, self.table_rules)

    @contextmanager
    def open_mailbox(self) -> Iterator[ImapSession]:
        from mailbot.fetch.imap import ImapSession

        password = read_secret(
            self.config.imap.password_env, self.config.imap.password_file, "imap", self.config.base_dir
        )
        with ImapSession(self.config.imap, password) as session:
            yield session

    def poller(self, progress: Progress | None = None, wait_seconds: float = 0.0) -> Poller:
        """A poller that first takes its folder's lock, waiting up to `wait_seconds` for another poller."""
        from mailbot.store import poll_lock
        from mailbot.sync import Poller

        hold = functools.partial(poll_lock.hold, self.engine, self.config.imap.folder, wait_seconds)
        return Poller(self.ready_pipeline(), self.open_mailbox, progress=progress, hold_folder=hold)

    @cached_property
    def templates(self) -> Templates:
        from mailbot.mails import Templates

        folder = self.config.outbox.templates_dir
        return Templates(Path(self.config.base_dir) / folder if folder else None)

    @cached_property
    def calendar(self) -> WorkCalendar:
        from mailbot.workdays import WorkCalendar

        # One per App: period tables are cached per calendar object (see periods.year_periods).
        return WorkCalendar.from_config(self.config.calendar)

    def reminders(self) -> Reminders:
        from mailbot.remind import Reminders

        return Reminders(self.ready(), self.config, self.templates, self.calendar)

    def queue_receipts(self) -> int:
        """Queue the receipts due for what was just processed (receipts answer mail at once, on any day)."""
        from mailbot.notices import RECEIPT

        return len(self.reminders().queue(self.clock(), kinds={RECEIPT}))

    def digests(self) -> Digests:
        from mailbot.digests import Digests

        return Digests(self.ready(), self.config, self.templates, self.calendar, self.archive)

    def outbox(self) -> Outbox:
        from mailbot.outbox import Outbox

        return Outbox(self.current(), self.config, self.clock, self._smtp_sender)

    def _smtp_sender(self) -> SmtpSender:
        from mailbot.send.smtp import SmtpSender

        smtp = self.config.smtp
        return SmtpSender(smtp, read_secret(smtp.password_env, smtp.password_file, "smtp", self.config.base_dir))

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "table_rules" in self.__dict__:  # built, so its module is imported already
            from mailbot.read.office import LibreOffice

            if isinstance(self.table_rules.convert, LibreOffice):
                self.table_rules.convert.close()
