"""Terminal rendering with rich: tables and progress bars. Only the CLI and the demo import this."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from mailbot.registry import Registry
from mailbot.report.status import Status

console = Console()

# A first sync of a big mailbox shows a bar; a routine poll of a few messages stays quiet.
PROGRESS_THRESHOLD = 50


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """Yield a (done, total) callback that draws a bar once the work is large enough; total 0 means unknown.

    The bar goes to stderr, so a command's output stays clean when piped.
    """
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    task: list[TaskID] = []

    def update(done: int, total: int) -> None:
        if (total or done) < PROGRESS_THRESHOLD:
            return
        if not task:
            bar.start()
            task.append(bar.add_task(label, total=total or None))
        bar.update(task[0], completed=done, total=total or None)

    try:
        yield update
    finally:
        bar.stop()


def print_status(status: Status) -> None:
    console.print(f"as of {status.as_of:%Y-%m-%d %H:%M %Z}: {status.total_messages} messages")
    kinds = Table("kind", "count", title="messages by kind")
    for kind, count in sorted(status.by_kind.items()):
        kinds.add_row(kind, str(count))
    console.print(kinds)
    units = Table("unit", "category", "messages", "reports", "last received", "unconfirmed", title="units")
    for unit in status.units:
        last = f"{unit.last_received_at:%Y-%m-%d %H:%M}" if unit.last_received_at else "-"
        units.add_row(unit.name, unit.category, str(unit.messages), str(unit.reports), last, str(unit.unconfirmed))
    console.print(units)
    for state in status.mailbox:
        console.print(
            f"mailbox {state['folder']}: UIDVALIDITY {state['uidvalidity']}, last UID {state['last_uid']}, "
            f"synced {state['updated_at']}"
        )
    if status.attention:
        todo = Table("message", "unit / from", "subject", "problem", title="needs a person (also in the digest)")
        for item in status.attention:
            todo.add_row(*_attention_row(item))
        console.print(todo)
    if status.other_mail:
        console.print(f"other mail (spam, newsletters; never answered): {status.other_mail}")


def _attention_row(item: dict[str, Any]) -> tuple[str, str, str, str]:
    """One needs-a-person item: a message (`mailbot handled ID`), an address or a mail."""
    ref = str(item["message"] or (f"mail {item['mail']}" if item["mail"] else ""))
    who = " ".join(part for part in (item["unit"] or "", item["address"] or item["from"]) if part)
    problem = f"{item['code']}: {item['detail']}" + ("  [held: no other address]" if item["held"] else "")
    if item["group"] == "paused":
        problem += " (fix the password, then `mailbot outbox resume`)"
    if item["excerpt"]:
        problem += "\n" + item["excerpt"]
    subject = f"{item['period']} {item['subject']}" if item["period"] else item["subject"]  # a data problem
    return ref, who, subject, ("(info) " if item["info"] else "") + problem


def print_units(registry: Registry) -> None:
    table = Table("unit", "category", "emails", "aliases", "contact", "phone", title=f"{len(registry.units)} units")
    for unit in registry.units:
        table.add_row(
            unit.name,
            unit.category,
            "\n".join(sorted(unit.addresses)),
            "、".join(unit.aliases),
            unit.contact,
            unit.phone,
        )
    console.print(table)
