"""`mailbot poll`: bring the ledger up to date with the mailbox, then process what arrived.

Order matters for "nothing lost, nothing doubled": raw bytes are archived first, then one transaction per
batch records the ledger rows *and* advances last_uid, so a crash anywhere leaves either the whole batch or
none of it recorded; a restart fetches again from last_uid and the SHA-256 absorbs any re-archived bytes.
The mailbox itself is changed only after the data is stored, and only if configured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from mailbot.errors import AuthenticationError, MailServerError
from mailbot.fetch.imap import FetchedMessage, HeaderInfo
from mailbot.message.headers import message_id_of
from mailbot.process import Outcome, Pipeline
from mailbot.store import ledger
from mailbot.store.db import transaction
from mailbot.store.ledger import Arrival

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)


class Mailbox(Protocol):
    """What sync needs from an IMAP session (mailbot.fetch.imap.ImapSession provides it)."""

    def uidvalidity(self) -> int: ...
    def uids_after(self, last_uid: int) -> list[int]: ...
    def fetch_raw(self, uids: Sequence[int]) -> list[FetchedMessage]: ...
    def fetch_sizes(self, uids: Sequence[int]) -> dict[int, int]: ...
    def fetch_headers(self, uids: Sequence[int]) -> list[HeaderInfo]: ...
    def mark(self, uids: Sequence[int], action: str) -> None: ...


MailboxFactory = Callable[[], AbstractContextManager[Mailbox]]


@dataclass
class PollResult:
    fetched: int = 0  # messages downloaded
    new: int = 0  # ledger rows created
    relocated: int = 0  # known messages found under a new UIDVALIDITY
    reconnects: int = 0
    uidvalidity_changed: bool = False
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass
class Poller:
    pipeline: Pipeline
    open_mailbox: MailboxFactory
    max_reconnects: int = 3
    sleep: Callable[[float], None] = time.sleep
    progress: Progress | None = None

    def poll(self) -> PollResult:
        """Fetch everything new, then process it. Authentication failures are never retried."""
        result = PollResult()
        try:
            self._sync_with_retries(result)
            result.outcomes = self.pipeline.process_pending()
        finally:
            self.pipeline.close()
        return result

    def _sync_with_retries(self, result: PollResult) -> None:
        for attempt in range(self.max_reconnects + 1):
            try:
                with self.open_mailbox() as mailbox:
                    self._sync(mailbox, result)
                break
            except AuthenticationError:
                raise
            except MailServerError as exc:
                if attempt == self.max_reconnects:
                    raise
                result.reconnects += 1
                log.warning("IMAP connection lost (%s); reconnecting", exc)
                self.sleep(min(2.0**attempt, 30.0))

    @property
    def folder(self) -> str:
        return self.pipeline.config.imap.folder

    def _sync(self, mailbox: Mailbox, result: PollResult) -> None:
        uidvalidity = mailbox.uidvalidity()
        with transaction(self.pipeline.sessions) as session:
            state = ledger.mailbox_state(session, self.folder)
            last_uid = state.last_uid if state and state.uidvalidity == uidvalidity else None
        if last_uid is None:
            last_uid = self._resync(mailbox, uidvalidity, result, first=state is None)
        self._fetch_new(mailbox, uidvalidity, mailbox.uids_after(last_uid), result)
        self._apply_mailbox_action(mailbox, uidvalidity)

    def _fetch_new(self, mailbox: Mailbox, uidvalidity: int, uids: list[int], result: PollResult) -> None:
        if not uids:
            return
        self.pipeline.begin_streaming(len(uids))
        # Sizes first (a cheap FETCH), so that a batch never holds more than BATCH_BYTES of mail in memory.
        sizes = mailbox.fetch_sizes(uids)
        done = 0
        for batch in _sized_batches(uids, sizes, self.pipeline.config.imap.batch_size):
            fetched = mailbox.fetch_raw(batch)
            self._record_batch(fetched, uidvalidity, last_uid=max(batch), result=result)
            self.pipeline.feed_pending()  # analysed in the workers while the next batch downloads
            done += len(batch)
            if self.progress is not None:
                self.progress(done, len(uids))

    def _record_batch(self, fetched: list[FetchedMessage], uidvalidity: int, last_uid: int, result: PollResult) -> None:
        archive, now = self.pipeline.archive, self.pipeline.clock()
        digests = archive.store_many([item.raw for item in fetched])  # archived before anything else
        arrivals = [self._arrival(item, digest, uidvalidity) for item, digest in zip(fetched, digests, strict=True)]
        with transaction(self.pipeline.sessions) as session:
            result.new += ledger.record_arrivals(session, arrivals, now)
            ledger.save_mailbox_state(session, self.folder, uidvalidity, last_uid, now)
        result.fetched += len(fetched)

    def _arrival(self, item: FetchedMessage, digest: str, uidvalidity: int) -> Arrival:
        return Arrival(
            sha256=digest,
            size=len(item.raw),
            source="imap",
            received_at=item.internaldate,
            message_id=message_id_of(item.raw),
            folder=self.folder,
            uidvalidity=uidvalidity,
            uid=item.uid,
        )

    def _resync(self, mailbox: Mailbox, uidvalidity: int, result: PollResult, first: bool) -> int:
        """A first sync starts at UID 0. After a UIDVALIDITY change, find known messages by Message-ID and
        size from their headers alone, move their location, and leave the rest to be fetched in full."""
        if first:
            return 0
        result.uidvalidity_changed = True
        log.warning("UIDVALIDITY of %s changed; re-syncing by Message-ID and SHA-256", self.folder)
        uids = mailbox.uids_after(0)
        unknown: list[int] = []
        for batch in _chunks(uids, self.pipeline.config.imap.batch_size * 10):
            unknown += self._relocate_known(mailbox.fetch_headers(batch), uidvalidity, result)
        self._fetch_new(mailbox, uidvalidity, unknown, result)
        last = max(uids, default=0)
        with transaction(self.pipeline.sessions) as session:
            ledger.save_mailbox_state(session, self.folder, uidvalidity, last, self.pipeline.clock())
        return last

    def _relocate_known(self, headers: list[HeaderInfo], uidvalidity: int, result: PollResult) -> list[int]:
        unknown: list[int] = []
        with transaction(self.pipeline.sessions) as session:
            for info in headers:
                row = ledger.find_by_message_id_and_size(session, info.message_id, info.size)
                # A row already moved to this UIDVALIDITY was claimed by another UID with the same
                # Message-ID and size: only the full bytes can tell them apart.
                if row is None or row.uidvalidity == uidvalidity:
                    unknown.append(info.uid)
                    continue
                ledger.relocate(session, row, self.folder, uidvalidity, info.uid)
                result.relocated += 1
        return unknown

    def _apply_mailbox_action(self, mailbox: Mailbox, uidvalidity: int) -> None:
        action = self.pipeline.config.imap.after_ingest
        if action == "none":
            return
        self.pipeline.process_pending()  # the action only follows stored data
        with transaction(self.pipeline.sessions) as session:
            _mark_rows(session, mailbox, self.folder, uidvalidity, action, self.pipeline.clock())


def _mark_rows(session: Session, mailbox: Mailbox, folder: str, uidvalidity: int, action: str, now: datetime) -> None:
    rows = ledger.awaiting_mailbox_action(session, folder, uidvalidity)
    uids = [row.uid for row in rows if row.uid is not None]
    if not uids:
        return
    mailbox.mark(uids, action)
    for row in rows:
        row.mailbox_action_at = now


BATCH_BYTES = 32 * 1024 * 1024


def _sized_batches(uids: Sequence[int], sizes: dict[int, int], count: int) -> Iterator[list[int]]:
    """Batches of at most `count` messages and BATCH_BYTES (a bigger message goes alone)."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if batch and (len(batch) == count or total + size > BATCH_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
