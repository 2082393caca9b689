"""Terminal rendering with rich: tables and progress bars. Only the CLI and the demo import this.

Codes are shown in the words staff read in the digest and the console (逾期, 回执, 合计与明细不符), the code in
brackets after them for whoever writes a script or a `--status` option. Nothing is cut: at a terminal a long
value folds onto the next line; piped or redirected, lines are as long as their values (`--json` is for scripts).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from mailbot.words import KIND_WORDS, MAIL_KINDS, MAIL_WORDS

if TYPE_CHECKING:  # the commands that print these have built them; `units list` needs no status queries
    from mailbot.registry import Registry
    from mailbot.report.status import Status

ProblemName = Callable[[str], str]

# Piped, rich would wrap at 80 columns (or $COLUMNS) and cut what does not fit: make every line fit instead.
PIPE_WIDTH = 100_000


def out() -> Console:
    """Where tables go: sized to the terminal, or, piped, wide enough that no value is cut."""
    return Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)


def worded(words: Mapping[str, str], code: str) -> str:
    """回执 (receipt): the Chinese word with the code a script or an option uses; an unknown code as itself."""
    return with_code(words.get(code, ""), code)


def mail_kind(code: str) -> str:
    """催报提醒 (reminder)."""
    return worded(MAIL_KINDS, code)


def with_code(word: str, code: str) -> str:
    return f"{word} ({code})" if word and word != code else code


def _table(*headers: str, title: str, numbers: Sequence[str] = (), whole: Sequence[str] = ()) -> Table:
    """A table that folds long values (an address, a problem) instead of cutting them with "…"; `numbers` and
    `whole` (a phone) are wrapped last, as other columns narrow first."""
    table = Table(title=title)
    for header in headers:
        justify: Literal["left", "right"] = "right" if header in numbers else "left"
        table.add_column(header, justify=justify, overflow="fold", no_wrap=header in (*numbers, *whole))
    return table


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


def print_status(status: Status, problem_name: ProblemName) -> None:
    """`problem_name`: `Templates.problem_name`, the digest's words for problem codes."""
    console = out()
    console.print(f"as of {status.as_of:%Y-%m-%d %H:%M %Z}: {status.total_messages} messages")
    kinds = _table("kind", "count", title="messages by kind", numbers=("count",))
    for kind, count in sorted(status.by_kind.items()):
        kinds.add_row(_message_kind(kind), str(count))
    console.print(kinds)
    numbers = ("messages", "reports", "last received", "unconfirmed")
    units = _table("unit", "category", *numbers, title="units", numbers=numbers)
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
        todo = _table("message", "unit / from", "subject", "problem", title="needs a person (also in the digest)")
        for item in status.attention:
            todo.add_row(*_attention_row(item, problem_name))
        console.print(todo)
    if status.other_mail:
        console.print(f"other mail (spam, newsletters; never answered): {status.other_mail}")


def _message_kind(kind: str) -> str:
    """status counts a message not processed yet as "(unprocessed)"; the console calls it 尚未处理."""
    return f"{KIND_WORDS['']} {kind}" if kind == "(unprocessed)" else worded(KIND_WORDS, kind)


def _attention_row(item: dict[str, Any], problem_name: ProblemName) -> tuple[str, str, str, str]:
    """One needs-a-person item: a message (`mailbot handled ID`), an address or a mail."""
    ref = str(item["message"] or (f"mail {item['mail']}" if item["mail"] else ""))
    who = " ".join(part for part in (item["unit"] or "", item["address"] or item["from"]) if part)
    problem = f"{_problem(item, problem_name)}: {item['detail']}" + (
        "  [held: no other address]" if item["held"] else ""
    )
    if item["group"] == "paused":
        problem += " (fix the password, then `mailbot outbox resume`)"
    if item["excerpt"]:
        problem += "\n" + item["excerpt"]
    subject = f"{item['period']} {item['subject']}" if item["period"] else item["subject"]  # a data problem
    return ref, who, subject, ("供参考 (info) " if item["info"] else "") + problem


def _problem(item: dict[str, Any], problem_name: ProblemName) -> str:
    """A failed mail's code is its outbox status (发送失败); a mail's kind says which mail (催报提醒)."""
    if item["mail"]:
        return f"{mail_kind(item['kind'])} {worded(MAIL_WORDS, item['code'])}"
    return with_code(problem_name(item["code"]), item["code"])


def print_units(registry: Registry) -> None:
    headers = ("unit", "category", "emails", "aliases", "contact", "phone")
    table = _table(*headers, title=f"{len(registry.units)} units", whole=("phone",))
    for unit in registry.units:
        table.add_row(
            unit.name,
            unit.category,
            "\n".join(sorted(unit.addresses)),
            "、".join(unit.aliases),
            unit.contact,
            unit.phone,
        )
    out().print(table)


def print_outbox(mails: Sequence[Mapping[str, Any]]) -> None:
    """`mailbot outbox list`: one row a mail, its last error under its subject."""
    table = _table("id", "status", "kind", "to", "subject", title=f"{len(mails)} mails", numbers=("id",))
    for mail in mails:
        subject = mail["subject"] + (f"\n{mail['last_error']}" if mail["last_error"] else "")
        table.add_row(str(mail["id"]), worded(MAIL_WORDS, mail["status"]), mail_kind(mail["kind"]),
                      mail["to"], subject)  # fmt: skip
    out().print(table)
