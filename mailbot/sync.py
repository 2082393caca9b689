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
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Protocol

from mailbot.errors import AuthenticationError, MailServerError
from mailbot.fetch.imap import FetchedMessage
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
    def mark(self, uids: Sequence[int], action: str) -> None: ...


MailboxFactory = Callable[[], AbstractContextManager[Mailbox]]


@dataclass
class PollResult:
    fetched: int = 0  # messages downloaded
    new: int = 0  # ledger rows created
    relocated: int = 0  # known messages (same SHA-256) found again under a new UIDVALIDITY
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
    # One poller per folder (mailbot.store.poll_lock): held from the first fetch to the last stored message.
    hold_folder: Callable[[], AbstractContextManager[object]] = nullcontext

    def poll(self) -> PollResult:
        """Fetch everything new, then process it. Authentication failures are never retried."""
        result = PollResult()
        try:
            with self.hold_folder():
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
            last_uid = self._resync(result, first=state is None)
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
            new = ledger.record_arrivals(session, arrivals, now)
            ledger.save_mailbox_state(session, self.folder, uidvalidity, last_uid, now)
        result.new += new
        result.fetched += len(fetched)
        if result.uidvalidity_changed:
            result.relocated += len(fetched) - new

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

    def _resync(self, result: PollResult, first: bool) -> int:
        """Where fetching starts when the recorded UIDVALIDITY does not hold: UID 0, that is every message.

        After a UIDVALIDITY change nothing but a message's bytes can tell a known message from a look-alike (a
        re-sent copy, or a Date header edited to the same length, keeps the Message-ID and the size), so every
        message is downloaded again: record_arrivals moves a known SHA-256 to its new UID and records the rest,
        batch by batch, and last_uid never passes a message whose bytes were not seen. A crash in the middle
        resumes after the last recorded batch. Archiving the known ones again costs nothing (same name, same
        size: not rewritten)."""
        if not first:
            result.uidvalidity_changed = True
            log.warning("UIDVALIDITY of %s changed; downloading it again to match messages by SHA-256", self.folder)
        return 0

    def _apply_mailbox_action(self, mailbox: Mailbox, uidvalidity: int) -> None:
        action = self.pipeline.config.imap.after_ingest
        if action == "none":
            return
        self.pipeline.process_pending()  # the action only follows stored data
        with transaction(self.pipeline.sessions, readonly=True) as session:
            ids, uids = ledger.awaiting_mailbox_action(session, self.folder, uidvalidity)
        if not uids:
            return
        # The IMAP command runs outside any transaction: a write transaction would hold SQLite's lock for the
        # network round trip. A crash before the rows are marked repeats it next time, which changes nothing
        # (\Seen again; a UID already moved no longer exists in the folder).
        mailbox.mark(uids, action)
        with transaction(self.pipeline.sessions) as session:
            ledger.mark_mailbox_action(session, ids, self.pipeline.clock())


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
