"""Wiring: turns a Config into the objects the commands use. The CLI and the demo both build an App."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailbot.analyse import TableRules
from mailbot.clock import Clock, system_clock
from mailbot.config import Config, read_secret
from mailbot.digests import Digests
from mailbot.fetch.imap import ImapSession
from mailbot.mails import Templates
from mailbot.notices import RECEIPT
from mailbot.outbox import Outbox
from mailbot.process import Pipeline
from mailbot.read.office import LibreOffice
from mailbot.remind import Reminders
from mailbot.send.smtp import SmtpSender
from mailbot.store import db, ledger, poll_lock
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
        return Archive(self.config.archive_path)

    def upgrade(self) -> None:
        """Migrate the schema, then mirror the config's units into it."""
        db.upgrade(self.engine)
        self.sync_units()

    def sync_units(self) -> None:
        with db.transaction(self.sessions) as session:
            ledger.sync_units(session, self.config.units, self.clock())

    @cached_property
    def table_rules(self) -> TableRules:
        return TableRules.from_config(self.config)

    def ready_pipeline(self) -> Pipeline:
        """A pipeline on a database that is at the newest revision and knows the config's units."""
        db.require_current(self.engine)
        self.sync_units()
        return Pipeline(self.config, self.sessions, self.archive, self.clock, self.table_rules)

    @contextmanager
    def open_mailbox(self) -> Iterator[ImapSession]:
        password = read_secret(
            self.config.imap.password_env, self.config.imap.password_file, "imap", self.config.base_dir
        )
        with ImapSession(self.config.imap, password) as session:
            yield session

    def poller(self, progress: Progress | None = None, wait_seconds: float = 0.0) -> Poller:
        """A poller that first takes its folder's lock, waiting up to `wait_seconds` for another poller."""
        hold = functools.partial(poll_lock.hold, self.engine, self.config.imap.folder, wait_seconds)
        return Poller(self.ready_pipeline(), self.open_mailbox, progress=progress, hold_folder=hold)

    @cached_property
    def templates(self) -> Templates:
        folder = self.config.outbox.templates_dir
        return Templates(Path(self.config.base_dir) / folder if folder else None)

    @cached_property
    def calendar(self) -> WorkCalendar:
        # One per App: period tables are cached per calendar object (see periods.year_periods).
        return WorkCalendar.from_config(self.config.calendar)

    def reminders(self) -> Reminders:
        self.ready_pipeline()  # the schema is current and the units mirrored
        return Reminders(self.sessions, self.config, self.templates, self.calendar)

    def queue_receipts(self) -> int:
        """Queue the receipts due for what was just processed (receipts answer mail at once, on any day)."""
        return len(self.reminders().queue(self.clock(), kinds={RECEIPT}))

    def digests(self) -> Digests:
        self.ready_pipeline()  # the schema is current and the units mirrored
        return Digests(self.sessions, self.config, self.templates, self.calendar, self.archive)

    def outbox(self) -> Outbox:
        db.require_current(self.engine)
        return Outbox(self.sessions, self.config, self.clock, self._smtp_sender)

    def _smtp_sender(self) -> SmtpSender:
        smtp = self.config.smtp
        return SmtpSender(smtp, read_secret(smtp.password_env, smtp.password_file, "smtp", self.config.base_dir))

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "table_rules" in self.__dict__ and isinstance(self.table_rules.convert, LibreOffice):
            self.table_rules.convert.close()
