"""`mailbot ingest`: the same pipeline as `poll`, fed from files instead of IMAP (backfill and testing).

Paths that hold no message (a picture, an empty folder) are refused before anything is archived, and the
result names them; the messages among the rest are ingested. Whether a refusal is an error is the CLI's call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailbot.fetch.files import FileMessage, Plan, Refused, plan_paths, read_files
from mailbot.message.headers import message_id_of, received_time_of
from mailbot.process import Outcome, Pipeline
from mailbot.store import ledger
from mailbot.store.db import transaction
from mailbot.store.ledger import Arrival

BATCH = 100
BATCH_BYTES = 32 * 1024 * 1024


@dataclass
class IngestResult:
    read: int = 0
    new: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)  # paths that held no message: nothing of them is kept


def ingest_paths(pipeline: Pipeline, paths: list[Path], progress: Callable[[int], None] | None = None) -> IngestResult:
    return ingest_plan(pipeline, plan_paths(paths), progress)


def ingest_plan(pipeline: Pipeline, plan: Plan, progress: Callable[[int], None] | None = None) -> IngestResult:
    """Archive, record and process the messages of a plan made by `plan_paths`."""
    result = IngestResult(refused=list(plan.refused))
    try:
        _archive_and_record(pipeline, plan, result, progress)
        result.outcomes = pipeline.process_pending()
    finally:
        pipeline.close()
    return result


def _archive_and_record(
    pipeline: Pipeline, plan: Plan, result: IngestResult, progress: Callable[[int], None] | None
) -> None:
    # A function of its own so that the last batch's raw bytes are freed before processing starts.
    pipeline.begin_streaming(plan.named)  # many files named; a folder or an mbox is processed after reading
    for batch in _batches(read_files(plan.files)):
        _record(pipeline, batch, result)
        pipeline.feed_pending()
        if progress is not None:
            progress(result.read)


def _batches(messages: Iterable[FileMessage]) -> Iterator[list[FileMessage]]:
    """At most BATCH messages and BATCH_BYTES at a time (a bigger message goes alone)."""
    batch: list[FileMessage] = []
    total = 0
    for message in messages:
        if batch and (len(batch) == BATCH or total + len(message.raw) > BATCH_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(message)
        total += len(message.raw)
    if batch:
        yield batch


def _record(pipeline: Pipeline, batch: Iterable[FileMessage], result: IngestResult) -> None:
    items = list(batch)
    digests = pipeline.archive.store_many([item.raw for item in items])  # archived before the ledger sees them
    arrivals = [_arrival(pipeline, item, digest) for item, digest in zip(items, digests, strict=True)]
    with transaction(pipeline.sessions) as session:
        result.new += ledger.record_arrivals(session, arrivals, pipeline.clock())
    result.read += len(arrivals)


def _arrival(pipeline: Pipeline, item: FileMessage, digest: str) -> Arrival:
    received, source = received_time_of(item.raw)
    if received is None:  # no Received and no usable Date header: the best we know is "now"
        received, source = pipeline.clock(), "ingest_time"
    return Arrival(
        sha256=digest,
        size=len(item.raw),
        source="file",
        source_ref=item.ref,
        received_at=received,
        received_source=source,
        message_id=message_id_of(item.raw),
    )
