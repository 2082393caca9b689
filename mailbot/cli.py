"""The command line: a thin layer over the library. Errors become messages and exit codes only here.

Imports of heavy modules (SQLAlchemy, openpyxl, pandas, rich) happen inside the commands, so that
`mailbot --help` starts fast.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mailbot.errors import InputError  # a small module of exception classes: cheap enough for `--help`

if TYPE_CHECKING:
    from mailbot.app import App
    from mailbot.errors import MailbotError
    from mailbot.outbox import DrainResult
    from mailbot.periods import Period

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CONFIG = "mailbot.toml"


class Context:
    """Lazily builds the App: `--help` and `demo` never read a config file."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._app: App | None = None

    @property
    def app(self) -> App:
        if self._app is None:
            from mailbot.app import App
            from mailbot.config import load_config

            self._app = App(load_config(self._resolve()))
        return self._app

    def _resolve(self) -> Path:
        from mailbot.errors import ConfigError

        path = Path(self.config_path or os.environ.get("MAILBOT_CONFIG") or DEFAULT_CONFIG)
        if not path.exists():
            raise ConfigError(
                f"config file not found: {path} (copy config.example.toml to {DEFAULT_CONFIG}, or pass --config)"
            )
        return path


pass_context = click.make_pass_decorator(Context)


def _parse_time(value: str | None) -> datetime | None:
    """--as-of: an ISO date or date-time, taken as Asia/Shanghai when it has no offset."""
    if value is None:
        return None
    from mailbot.clock import as_local

    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO date or time: {value!r} (e.g. 2021-06-16 or 2021-06-16T09:00)") from exc
    if len(value) <= len("2021-06-16"):
        moment = moment.replace(hour=23, minute=59, second=59)  # a bare date means the end of that day
    return as_local(moment)


def _as_of(help_text: str) -> Callable[[F], F]:
    """The --as-of option (ISO 8601, Asia/Shanghai unless an offset is given), as every command takes it."""
    return click.option("--as-of", "as_of", metavar="TIME", callback=_check_time, help=help_text)


def _check_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """--as-of is checked while the command line is parsed: a typo is a usage error before any config is read."""
    _parse_time(value)
    return value


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


class _Commands(click.Group):
    """The top-level group. click exits 2 on a usage error (an unknown option, a bad --as-of), which the
    README's table says is "config": here every usage error is bad input, the one exit code for it."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        with _usage_is_bad_input():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        # Subcommands parse their arguments inside this call, and --as-of is parsed in the command itself.
        with _usage_is_bad_input():
            return super().invoke(ctx)


class BadUsage(click.UsageError):
    """A usage error as mailbot reports it: click's message and usage line, the bad-input exit code."""

    exit_code = InputError.exit_code


class _NoCommand(click.exceptions.NoArgsIsHelpError):
    """A group called without its command: click prints the group's help; a usage error all the same."""

    exit_code = InputError.exit_code


@contextmanager
def _usage_is_bad_input() -> Iterator[None]:
    try:
        yield
    except (BadUsage, _NoCommand):
        raise  # a nested group already turned it
    except click.exceptions.NoArgsIsHelpError as error:
        raise _NoCommand(error.ctx) from error
    except click.UsageError as error:
        raise BadUsage(error.format_message(), error.ctx) from error


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config_path", metavar="PATH", help="Config file (default ./mailbot.toml or $MAILBOT_CONFIG)."
)
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
@click.version_option(package_name="mailbot")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """mailbot collects the statistics tables units email to one mailbox.

    \b
    Example:
      mailbot demo                      # the whole job on embedded servers
      mailbot --config mailbot.toml poll
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config_path)


# ---------------------------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema commands.

    \b
    Example:
      mailbot db upgrade
    """


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Create or migrate the database schema to the newest revision and load the units from the config.

    \b
    Example:
      mailbot --config mailbot.toml db upgrade
    """
    from mailbot.store import db as store_db

    ctx.app.upgrade()
    click.echo(f"database at revision {store_db.current_revision(ctx.app.engine)}")


# A poll typed while the worker polls waits for it (usually seconds); a first sync may take longer than anyone
# wants to wait, and then the command leaves with a message instead.
POLL_WAIT_SECONDS = 120


@cli.command()
@pass_context
def poll(ctx: Context) -> None:
    """Fetch new mail from the IMAP mailbox once and ingest it. The mailbox is left as it was.

    Receipts for what came in are queued in the outbox (`mailbot outbox send` or the worker sends them).
    One poller per folder: while another one (the worker) is polling, this waits up to 120 s for it.

    \b
    Example:
      MAILBOT_IMAP_PASSWORD=授权码 mailbot poll
    """
    from mailbot.console import progress_bar

    with progress_bar("fetching") as progress:
        result = ctx.app.poller(progress=progress, wait_seconds=POLL_WAIT_SECONDS).poll()
    click.echo(
        f"fetched {result.fetched}, new {result.new}, relocated {result.relocated}, processed {len(result.outcomes)}"
        + (", UIDVALIDITY changed" if result.uidvalidity_changed else "")
        + f", receipts queued {ctx.app.queue_receipts()}"
    )


@cli.command()
@pass_context
def run(ctx: Context) -> None:
    """Run the worker until SIGTERM: poll, remind and send on a schedule (Asia/Shanghai), logging to stdout.

    Polls the mailbox every worker.poll_minutes minutes, queues the reminders due at 09:00 (nothing on days off)
    and sends the outbox every minute. A worker that was down catches up once at start. One worker per
    database: a second `mailbot run` refuses to start. SIGTERM or Ctrl-C lets the running job finish, then
    exits 0. See docs/deployment.md for a systemd unit.

    \b
    Example:
      mailbot --config /etc/mailbot/mailbot.toml run
    """
    from contextlib import closing

    from mailbot.stopping import StopSignal, stop_on_signals

    # First of all, before the slow imports and the config: from here on a SIGTERM asks for the same clean stop
    # (exit 0) as later on, instead of killing a worker that is still starting (exit -15).
    with closing(StopSignal()) as stop, stop_on_signals(stop):
        from mailbot.worker import Worker

        _log_to_stdout()
        app = ctx.app
        try:
            with closing(Worker(app, stop=stop)) as worker:
                worker.run()
        finally:
            app.close()


def _log_to_stdout() -> None:
    """A service's log: every line timestamped on stdout (journald keeps it); info unless -vv asked for more.
    The libraries' info lines (APScheduler's "Running job …", Alembic's revision check) come several times a
    minute, so only at -vv."""
    level = min(logging.INFO, logging.getLogger().level)
    logging.basicConfig(
        stream=sys.stdout, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    for chatty in ("apscheduler", "alembic"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_context
def ingest(ctx: Context, paths: tuple[Path, ...]) -> None:
    """Ingest .eml files, folders of them, or mbox files, without IMAP.

    The received time is taken from each message's topmost Received header. Receipts are queued only for
    mail received in the last `reminders.receipt_max_age_days` days.

    A file that is not an email (no header block: a picture, an empty file), a folder without .eml or .mbox
    files, or a missing path is named on stderr and nothing of it is kept; the messages among the other paths
    are ingested, and the exit code is 6 (bad input) whenever something was refused.

    \b
    Example:
      mailbot ingest backfill/2021-06/ old-mail.mbox one.eml
    """
    from mailbot.console import progress_bar
    from mailbot.fetch.files import plan_paths
    from mailbot.ingest import ingest_plan

    plan = plan_paths(list(paths))  # before the database is opened: refusing everything must record nothing
    for refused in plan.refused:
        click.echo(f"refused {refused.ref}: {refused.reason}", err=True)
    if not plan.files:
        raise InputError(f"nothing to ingest: {len(plan.refused)} path(s) refused, nothing recorded")
    with progress_bar("reading") as progress:
        result = ingest_plan(ctx.app.ready_pipeline(), plan, progress=lambda done: progress(done, 0))
    queued = ctx.app.queue_receipts()
    click.echo(f"read {result.read}, new {result.new}, processed {len(result.outcomes)}, receipts queued {queued}")
    if plan.refused:
        raise InputError(f"{len(plan.refused)} path(s) refused (named above); the rest was ingested")


@cli.command()
@_as_of("Show the state as of this day or time (ISO 8601).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@pass_context
def status(ctx: Context, as_of: str | None, as_json: bool) -> None:
    """Show what has arrived, per unit, and what needs a person — the same items as the daily digest: senders to
    confirm, unreadable mail, what units wrote (单位来信), undeliverable addresses, tables counted for no
    period, data problems of the counted tables, mails that failed.

    \b
    Example:
      mailbot status --as-of 2021-06-16 --json
    """
    from mailbot.report.status import attention, build_status
    from mailbot.store.db import transaction

    app = ctx.app
    moment = _parse_time(as_of) or app.clock()
    with transaction(app.ready(), readonly=True) as session:
        result = build_status(session, moment, attention(session, moment, app.config, app.calendar, app.archive))
    if as_json:
        _echo_json(result.to_json())
    else:
        from mailbot.console import print_status

        print_status(result, app.templates.problem_name)


@cli.command()
@_as_of("Decide as of this day or time (ISO 8601) instead of now.")
@click.option("--dry-run", is_flag=True, help="Only list the mails that are due; queue and send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the mails as JSON.")
@pass_context
def remind(ctx: Context, as_of: str | None, dry_run: bool, as_json: bool) -> None:
    """Queue the reminders, late notices and receipts due today, then send what the outbox holds.

    Only units that have not sent the table are reminded, each step once; running it twice on a day sends
    nothing new. Reminders and late notices never go out on a day off; receipts answer mail on any day.

    \b
    Example:
      mailbot remind --as-of 2021-06-08 --dry-run --json
    """
    from mailbot.clock import as_local

    app = ctx.app
    moment = _parse_time(as_of) or app.clock()
    reminders = app.reminders()
    for year in reminders.calendar.uncovered([as_local(moment).year]):
        click.echo(f"warning: the holidays of {year} are unknown; Monday to Friday count as working days "
                   "(see `mailbot doctor`)", err=True)  # fmt: skip
    planned = reminders.planned(moment, attachments=False) if dry_run else reminders.queue(moment)
    if as_json:
        _echo_json([p.to_json() for p in planned])
    else:
        from mailbot.console import mail_kind

        for item in planned:
            to = item.notice.to or "HELD: no deliverable address (see `mailbot status`)"
            click.echo(f"{mail_kind(item.notice.kind)}\t{item.notice.unit}\t{item.mail.period}\t{to}")
        click.echo(f"{len(planned)} mail(s) {'due' if dry_run else 'queued'} as of {moment:%Y-%m-%d %H:%M}")
    if not dry_run:
        _report_drain(app.outbox().drain(), as_json)


@cli.command()
@_as_of("The digest as of this day or time (ISO 8601) instead of now.")
@click.option("--dry-run", is_flag=True, help="Print the digest's text; queue and send nothing.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Also write the digest to FILE (.html or .txt).")
@pass_context
def digest(ctx: Context, as_of: str | None, dry_run: bool, output: Path | None) -> None:
    """Send staff the daily digest now (the worker does it at 17:30 on working days), or preview it.

    Per period: who is in, who is late, who is missing with their phone, the days left; what came in since
    the last digest; what needs a person; running totals. The consolidated workbook of the period nearest
    its deadline is attached. One digest per address and day: running it twice sends nothing new.

    \b
    Example:
      mailbot digest --as-of 2021-06-16T17:30 --dry-run -o digest.html
      mailbot digest
    """
    from mailbot.errors import ConfigError

    app = ctx.app
    moment = _parse_time(as_of) or app.clock()
    digests = app.digests()
    if output is not None or dry_run:
        # The text only: queueing builds the attached workbook itself, and a preview never shows it.
        made = digests.render(moment, attachment=False)
        if output is not None:
            page = made.rendered.text if output.suffix.lower() == ".txt" else made.rendered.html
            output.write_text(page, encoding="utf-8")
            click.echo(f"wrote {output}", err=True)
        if dry_run:
            click.echo(made.rendered.subject + "\n\n" + made.rendered.text, nl=False)
            return
    if not app.config.staff.digest_to:
        raise ConfigError("staff.digest_to is empty: nobody to send the digest to (use --dry-run to preview)")
    queued = digests.queue(moment)
    click.echo(f"{len(queued)} digest(s) queued as of {moment:%Y-%m-%d %H:%M}"
               + ("" if queued else " (already queued today)"))  # fmt: skip
    _report_drain(app.outbox().drain(), False)


def _report_drain(result: DrainResult, quiet: bool) -> None:
    if quiet and result.paused is None:
        return
    click.echo(
        f"sent {result.sent}, retrying {result.retrying}, failed {result.failed}, uncertain {result.uncertain}"
        + (" (throttled: the rest goes out in the next minutes)" if result.throttled else ""),
        err=quiet,
    )
    if result.claim_lost:
        click.echo("stopped: this sender stalled past outbox.lease_seconds and another took its mail over", err=True)
    if result.paused is not None:  # refused now or before: what was queued waits, and the exit code says why (5)
        from mailbot.errors import AuthenticationError

        raise AuthenticationError(_paused(result.paused))


def _paused(reason: str) -> str:
    return f"sending is paused: {reason} (fix the password, then `mailbot outbox resume`)"


@cli.group()
def outbox() -> None:
    """Every mail mailbot sends: list it, send it, retry or cancel a mail, resume after a refused login.

    \b
    Example:
      mailbot outbox list --status failed
    """


@outbox.command("list")
@click.option("--status", "statuses", multiple=True, help="Only mails with this status (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def outbox_list(ctx: Context, statuses: tuple[str, ...], as_json: bool) -> None:
    """List queued and sent mails.

    \b
    Example:
      mailbot outbox list --status pending --status failed
    """
    from mailbot.store import outbox as store
    from mailbot.store.db import transaction

    with transaction(ctx.app.current(), readonly=True) as session:
        rows = [_mail_json(row) for row in store.listing(session, statuses)]
        paused = store.paused(session)
    if as_json:
        _echo_json({"paused": paused, "mails": rows})
        return
    from mailbot.console import print_outbox

    print_outbox(rows)
    if paused:
        click.echo(f"sending is paused: {paused}", err=True)


def _mail_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": row.key,
        "kind": row.kind,
        "to": row.to_address,
        "unit": row.unit.name if row.unit else None,
        "period": row.period,
        "subject": row.subject,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at.isoformat(),
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "last_error": row.last_error,
    }


@outbox.command("send")
@pass_context
def outbox_send(ctx: Context) -> None:
    """Send what is due now (the worker does this every minute). Exits 5 while a refused login (535) pauses
    sending (as `remind` and `digest` do after queueing).

    \b
    Example:
      mailbot outbox send
    """
    _report_drain(ctx.app.outbox().drain(), False)


@outbox.command("retry")
@click.argument("mail_ids", nargs=-1, type=int, required=True)
@pass_context
def outbox_retry(ctx: Context, mail_ids: tuple[int, ...]) -> None:
    """Send failed, cancelled or uncertain mails again (check an uncertain one was not delivered first).

    \b
    Example:
      mailbot outbox retry 12 13
    """
    _change_mails(ctx, "retry_mails", mail_ids, "queued again")


@outbox.command("cancel")
@click.argument("mail_ids", nargs=-1, type=int, required=True)
@pass_context
def outbox_cancel(ctx: Context, mail_ids: tuple[int, ...]) -> None:
    """Cancel pending, failed or bounced mails: they are never sent (again) and leave needs a person.

    \b
    Example:
      mailbot outbox cancel 12
    """
    _change_mails(ctx, "cancel_mails", mail_ids, "cancelled")


@outbox.command("resume")
@pass_context
def outbox_resume(ctx: Context) -> None:
    """Resume sending after the server refused the login (535), once the password is fixed.

    \b
    Example:
      mailbot outbox resume
    """
    from mailbot.actions import resume_sending

    app = _acting(ctx)
    done = resume_sending(app, CLI_USER, app.clock())
    click.echo("sending resumed" if done.changed else "sending was not paused")


@outbox.command("mark-sent")
@click.argument("mail_ids", nargs=-1, type=int, required=True)
@pass_context
def outbox_mark_sent(ctx: Context, mail_ids: tuple[int, ...]) -> None:
    """Mark failed or uncertain mails as sent: you found them in the server's sent folder, so they went out and
    are never sent again (audited).

    \b
    Example:
      mailbot outbox mark-sent 12
    """
    _change_mails(ctx, "mark_sent", mail_ids, "marked sent")


def _change_mails(ctx: Context, action: str, mail_ids: tuple[int, ...], done: str) -> None:
    from mailbot import actions

    app = _acting(ctx)
    changed = getattr(actions, action)(app, CLI_USER, mail_ids, app.clock()).ids
    click.echo(f"{done}: {', '.join(map(str, changed)) or 'none (unknown ids, or not in a state that allows it)'}")


def _acting(ctx: Context) -> App:
    """The App, on a database at the newest revision that knows the config's units: staff act on it."""
    app = ctx.app
    app.ready()
    return app


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "xlsx"]), default="json", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to FILE (required for xlsx).")
@click.option(
    "--period",
    metavar="ID",
    help="Only submissions of this period, e.g. 2021-annex3-06-15; with xlsx: that period's consolidated workbook.",
)
@click.option(
    "--what",
    type=click.Choice(["messages", "submissions", "rows"]),
    default="messages",
    show_default=True,
    help="For csv: which table to write (rows: every table row read, with its submission's unit and period).",
)
@click.option(
    "--amounts",
    type=click.Choice(["wan", "yuan"]),
    default="wan",
    show_default=True,
    help="万元 (as the circular) or 元, for the consolidated workbook.",
)
@pass_context
def export(ctx: Context, fmt: str, output: Path | None, period: str | None, what: str, amounts: str) -> None:
    """Export messages and submissions as JSON, CSV or an xlsx workbook.

    With --format xlsx and --period, the xlsx is the consolidated workbook of that period as of now (the table
    of the circular, the status of every unit, data problems, totals by kind, a chart); without --period, it
    holds the raw messages, submissions and rows. The JSON also lists `periods`: every period the config
    defines for the years that have mail (id, annex, deadline, closes). An unknown --period is refused with the
    list of known ones (exit code 6).

    \b
    Example:
      mailbot export --format json -o export.json
      mailbot export --format xlsx -o 汇总.xlsx --period 2021-annex3-06-15
      mailbot export --format xlsx -o 汇总-元.xlsx --period 2021-annex3-06-15 --amounts yuan
      mailbot export --format xlsx -o 全部数据.xlsx
    """
    from mailbot.periods import periods_of
    from mailbot.report.export import data_years, export_data, write_csv, write_xlsx
    from mailbot.store.db import transaction

    if fmt == "xlsx" and output is None:
        raise InputError("--format xlsx needs -o FILE")
    app = ctx.app
    with transaction(app.ready(), readonly=True) as session:
        periods = periods_of(data_years(session), app.config.deadlines, app.calendar)
        if period is not None:
            _require_period(app, session, period, periods)
        workbook = _period_workbook(app, session, period, amounts) if fmt == "xlsx" and period else None
        data = export_data(session, period, periods) if workbook is None else {}
    if workbook is not None and output is not None:
        output.write_bytes(workbook)
    elif fmt == "xlsx" and output is not None:
        write_xlsx(data, output)
    elif fmt == "csv":
        _write_text(write_csv(data, what), output)
    else:
        _write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", output)
    if output is not None:
        click.echo(f"wrote {output}", err=True)


def _require_period(app: App, session: Any, period_id: str, periods: list[Period]) -> None:
    """An unknown --period is bad input that names the known ones: the config's periods of the years with data
    and any other a submission counts for. A period the config defines for another year is not unknown."""
    from mailbot.report.export import check_period, known_period_ids
    from mailbot.report.facts import find_period

    try:
        find_period(period_id, app.config.deadlines, app.calendar)
    except InputError:
        check_period(period_id, known_period_ids(session, periods))


def _period_workbook(app: App, session: Any, period_id: str, amounts: str) -> bytes:
    from mailbot.report.facts import money_period
    from mailbot.report.workbook import consolidated_workbook
    from mailbot.store.reports import period_report

    report = period_report(session, money_period(period_id, app.config), app.clock())
    return consolidated_workbook(report, app.templates, amounts)


def _write_text(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@cli.command()
@click.option("--message", "message_ids", type=int, multiple=True, help="Only this ledger id (repeatable).")
@click.option("--failed", is_flag=True, help="Only messages whose processing failed (e.g. after a fix).")
@pass_context
def reprocess(ctx: Context, message_ids: tuple[int, ...], failed: bool) -> None:
    """Re-read archived messages after a config, mapping or parser change, and report what changed.

    \b
    Example:
      mailbot reprocess
      mailbot reprocess --failed
      mailbot reprocess --message 12 --message 15
    """
    from mailbot.reprocess import describe_change, failed_message_ids
    from mailbot.reprocess import reprocess as run

    pipeline = ctx.app.ready_pipeline()
    chosen = list(message_ids) or None
    if failed:
        chosen = [i for i in failed_message_ids(pipeline) if chosen is None or i in chosen]
    count, changes = run(pipeline, chosen)
    for change in changes:
        click.echo(describe_change(change))
    click.echo(f"reprocessed {count} messages, {len(changes)} changed")


@cli.group("archive")
def archive_group() -> None:
    """The raw archive of every received message (data_dir/archive): check it.

    \b
    Example:
      mailbot archive verify
    """


@archive_group.command("verify")
@pass_context
def archive_verify(ctx: Context) -> None:
    """Check every archived message the ledger knows: missing, or its size or SHA-256 not what was recorded.
    Prints each damaged one (in Chinese, with its ledger id and Message-ID) and exits 1 when there is any, 0
    when the archive is intact. Temporary files left by a killed process are removed on the way.

    \b
    Example:
      mailbot archive verify
      mailbot --config /etc/mailbot/mailbot.toml archive verify || echo "restore from the backup"
    """
    from mailbot.verify import verify_archive

    app = ctx.app
    result = verify_archive(app.ready(), app.archive)
    for damage in result.damaged:
        click.echo(damage.describe())
    if result.swept:
        click.echo(f"已清理 {len(result.swept)} 个中断写入遗留的临时文件")
    click.echo(f"存档检查：{result.checked} 封邮件，{len(result.damaged)} 个原件缺失或损坏")
    if result.damaged:
        click.echo(
            "请从备份恢复这些文件（或用 mailbot ingest 重新导入原邮件），再运行 mailbot reprocess --message 编号",
            err=True,
        )
        sys.exit(1)


# ---------------------------------------------------------------------------------------------------------


@cli.group()
def units() -> None:
    """The unit registry: list units, settle unknown senders and dead addresses, exempt a unit from a period.

    \b
    Example:
      mailbot units list
      mailbot units confirm-address jiaxian@qq.com 郏县总工会
    """


@units.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def units_list(ctx: Context, as_json: bool) -> None:
    """List registered units with their addresses.

    \b
    Example:
      mailbot units list --json
    """
    from mailbot.store import ledger
    from mailbot.store.db import transaction

    app = ctx.app
    with transaction(app.ready(), readonly=True) as session:
        registry = ledger.load_registry(session, app.config.staff, app.config.own_addresses)
    if as_json:
        _echo_json(
            [
                {
                    "name": u.name,
                    "category": u.category,
                    "aliases": list(u.aliases),
                    "emails": sorted(u.addresses),
                    "contact": u.contact,
                    "phone": u.phone,
                }
                for u in registry.units
            ]
        )
    else:
        from mailbot.console import print_units

        print_units(registry)


@units.command("confirm-address")
@click.argument("address")
@click.argument("unit")
@pass_context
def units_confirm(ctx: Context, address: str, unit: str) -> None:
    """Confirm that ADDRESS belongs to UNIT: learn it and re-attribute its mail.

    \b
    Example:
      mailbot units confirm-address jiaxian_gh@qq.com 郏县总工会
    """
    from mailbot.actions import confirm_sender

    app = _acting(ctx)
    _report_reread(confirm_sender(app, CLI_USER, address, unit, app.clock()))
    click.echo(f"{address} now belongs to {unit}")


@units.command("reject")
@click.argument("address")
@click.option("--note", default="", help="Why (kept for the record).")
@pass_context
def units_reject(ctx: Context, address: str, note: str) -> None:
    """Reject ADDRESS: its mail no longer counts for the unit it named.

    \b
    Example:
      mailbot units reject stranger@example.com --note "not a unit"
    """
    from mailbot.actions import reject_sender

    app = _acting(ctx)
    _report_reread(reject_sender(app, CLI_USER, address, note, app.clock()))
    click.echo(f"{address} rejected")


@units.command("retire-address")
@click.argument("address")
@pass_context
def units_retire(ctx: Context, address: str) -> None:
    """Never write to ADDRESS again (it bounced, or the unit gave it up); its unit's mail goes to its other
    addresses. Mail from ADDRESS still counts for the unit.

    \b
    Example:
      mailbot units retire-address old_jiaxian@163.com
    """
    from mailbot.actions import retire_address

    app = _acting(ctx)
    done = retire_address(app, CLI_USER, address, app.clock())
    click.echo(f"{address} retired for {done.unit}")


@units.command("replace-address")
@click.argument("old")
@click.argument("new")
@pass_context
def units_replace(ctx: Context, old: str, new: str) -> None:
    """Retire OLD and give its unit NEW instead: mail that was held for the unit goes to NEW from the next round.

    \b
    Example:
      mailbot units replace-address old_jiaxian@163.com jiaxian_gh@163.com
    """
    from mailbot.actions import replace_address

    app = _acting(ctx)
    _report_reread(replace_address(app, CLI_USER, old, new, app.clock()))
    click.echo(f"{old} retired, {new} now receives the unit's mail")


@units.command("exempt")
@click.argument("unit")
@click.argument("period")
@click.option("--reason", required=True, help="Why the unit need not report this period (kept for the record).")
@pass_context
def units_exempt(ctx: Context, unit: str, period: str, reason: str) -> None:
    """Exempt UNIT from PERIOD (免报): it gets no reminders or late notices for it, and shows as exempt in
    `status`, the digest, the workbook and the circular. A table it sends anyway still counts.

    \b
    Example:
      mailbot units exempt 郏县总工会 2021-annex3-06-15 --reason "机构调整，本期不报"
    """
    from mailbot.actions import exempt_unit

    app = _acting(ctx)
    click.echo(exempt_unit(app, CLI_USER, unit, period, reason, app.clock()).summary)


@units.command("unexempt")
@click.argument("unit")
@click.argument("period")
@pass_context
def units_unexempt(ctx: Context, unit: str, period: str) -> None:
    """Lift UNIT's exemption from PERIOD: it owes the period a table again.

    \b
    Example:
      mailbot units unexempt 郏县总工会 2021-annex3-06-15
    """
    from mailbot.actions import lift_exemption

    app = _acting(ctx)
    click.echo(lift_exemption(app, CLI_USER, unit, period, app.clock()).summary)


def _report_reread(done: Any) -> None:
    if done.ids:
        click.echo(f"re-processed {len(done.ids)} messages, {done.changed} changed")


@cli.command()
@click.argument("messages", nargs=-1, required=True)
@pass_context
def handled(ctx: Context, messages: tuple[str, ...]) -> None:
    """Mark messages as dealt with: they leave "needs a person" in `status` and the digest. MESSAGES are the
    ledger ids `mailbot status` shows (or Message-IDs) — typically a unit's letter (单位来信): a question answered,
    a new phone number noted.

    \b
    Example:
      mailbot handled 42
      mailbot handled '<abc@qq.com>'
    """
    from mailbot.actions import mark_handled

    app = _acting(ctx)
    marked = mark_handled(app, CLI_USER, messages, app.clock()).ids
    click.echo(f"handled: {', '.join(map(str, marked))}")


@cli.group()
def messages() -> None:
    """Settle one received message by hand.

    \b
    Example:
      mailbot messages assign 42 郏县总工会
    """


@messages.command("assign")
@click.argument("message_id", type=int)
@click.argument("unit")
@pass_context
def messages_assign(ctx: Context, message_id: int, unit: str) -> None:
    """Count message MESSAGE_ID (the ledger id `mailbot status` shows) for UNIT, whoever sent it: its tables
    count for UNIT at once, and every later re-read keeps the assignment. The sender's address is not learned
    (use `units confirm-address` for that).

    \b
    Example:
      mailbot messages assign 42 郏县总工会
    """
    from mailbot.actions import assign_message

    app = _acting(ctx)
    done = assign_message(app, CLI_USER, message_id, unit, app.clock())
    _report_reread(done)
    click.echo(f"message {message_id} now counts for {unit}")


@cli.group()
def problems() -> None:
    """Data problems staff looked at.

    \b
    Example:
      mailbot problems accept 42 total_mismatch --note "单位电话确认合计以明细为准"
    """


@problems.command("accept")
@click.argument("message_id", type=int)
@click.argument("code")
@click.option("--note", required=True, help="Why it is acceptable (kept for the record).")
@pass_context
def problems_accept(ctx: Context, message_id: int, code: str, note: str) -> None:
    """Accept the problems CODE of message MESSAGE_ID with a note: they leave "needs a person" (a corrected
    table with a new problem is news again).

    \b
    Example:
      mailbot problems accept 42 total_mismatch --note "单位电话确认合计以明细为准"
    """
    from mailbot.actions import accept_problem

    app = _acting(ctx)
    click.echo(accept_problem(app, CLI_USER, message_id, code, note, app.clock()).summary)


# ---------------------------------------------------------------------------------------------------------


@cli.command()
@pass_context
def doctor(ctx: Context) -> None:
    """Check the config, the IMAP login (with the ID command), the SMTP login and the database revision.

    \b
    Example:
      mailbot --config /etc/mailbot/mailbot.toml doctor
    """
    from mailbot.doctor import run_checks

    failed = 0
    for check in run_checks(ctx.app):
        mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark} {check.name}: {check.detail}")
        failed += not check.ok
    if failed:
        sys.exit(1)


@cli.group("report")
def report_group() -> None:
    """Documents for staff made from the database: the draft circular (通报) of a period.

    \b
    Example:
      mailbot report circular --period 2021-annex3-06-15 -o 通报.docx
    """


@report_group.command("circular")
@click.option("--period", "period_id", required=True, metavar="ID", help="The period, e.g. 2021-annex3-06-15.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Write the .docx to FILE.")
@_as_of("Count what had arrived by this day or time (ISO 8601).")
@pass_context
def report_circular(ctx: Context, period_id: str, output: Path, as_of: str | None) -> None:
    """Write the draft circular of a period as a Word document, for staff to edit before issuing.

    It follows the 2020 circular: the total in 万元, the units that reported on time, late or never, the data
    problems by kind, and the statistics table, every figure from the database. The wording is the template
    circular.txt (copy it into outbox.templates_dir to change it); 【】 marks what staff must fill in.
    Only 附件3 and monthly periods have amounts to report.

    \b
    Example:
      mailbot report circular --period 2021-annex3-06-15 -o 通报.docx
      mailbot report circular --period 2021-monthly-05 --as-of 2021-06-01T09:00 -o 五月通报.docx
    """
    from mailbot.report.circular import circular_docx
    from mailbot.report.facts import money_period
    from mailbot.store.db import transaction
    from mailbot.store.reports import period_report

    app = ctx.app
    period = money_period(period_id, app.config)  # before touching the database: a typo fails fast
    moment = _parse_time(as_of) or app.clock()
    with transaction(app.ready(), readonly=True) as session:
        facts = period_report(session, period, moment)
    output.write_bytes(circular_docx(facts, app.templates, app.config))
    click.echo(f"wrote {output}", err=True)


@cli.command()
@click.option("--dir", "folder", type=click.Path(path_type=Path), help="Where to leave the database and outputs.")
def demo(folder: Path | None) -> None:
    """Run the whole job on embedded servers: IMAP and SMTP on loopback, sample mail, SQLite.

    \b
    Example:
      mailbot demo
      mailbot demo --dir /tmp/mailbot-demo
    """
    from mailbot.demo.run import run_demo

    run_demo(folder or Path("mailbot-demo"))


# ---------------------------------------------------------------------------------------------------------
# The staff console


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: [web] host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default: [web] port, 8080).")
@pass_context
def web(ctx: Context, host: str | None, port: int | None) -> None:
    """Serve the staff console: who has reported, what needs a person, with buttons, behind a login.

    The session-signing secret comes from the environment variable named by [web] secret_env
    (MAILBOT_WEB_SECRET by default) or the file [web] secret_file. Add accounts with `mailbot users add`.

    \b
    Example:
      MAILBOT_WEB_SECRET=$(openssl rand -hex 32) mailbot web --port 8080
    """
    import uvicorn

    from mailbot.config import read_secret
    from mailbot.web.app import create_app

    app = ctx.app
    settings = app.config.web
    secret = read_secret(settings.secret_env, settings.secret_file, "web", app.config.base_dir, keys="secret")
    _log_to_stdout()
    try:
        uvicorn.run(create_app(app, secret), host=host or settings.host, port=port or settings.port, log_level="info")
    finally:
        app.close()


@cli.group()
def users() -> None:
    """Console accounts: staff act, viewers only read.

    \b
    Example:
      mailbot users add 王维 --role staff
      mailbot users list
    """


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["staff", "viewer"]), default="staff", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@pass_context
def users_add(ctx: Context, name: str, role: str, password_stdin: bool) -> None:
    """Add a console account NAME; the password is asked for twice, or read from stdin.

    \b
    Example:
      mailbot users add 王维 --role staff
      echo 'a long password' | mailbot users add 张敏 --role viewer --password-stdin
    """
    from mailbot.store import users as store

    password = _new_password(password_stdin)
    _change_users(ctx, "user_add", name, lambda session, now: store.add_user(session, name, role, password, now))
    click.echo(f"added {role} {name}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def users_list(ctx: Context, as_json: bool) -> None:
    """List console accounts: role, locked or disabled.

    \b
    Example:
      mailbot users list
    """
    from mailbot.store import users as store
    from mailbot.store.db import transaction

    app = ctx.app
    with transaction(app.ready(), readonly=True) as session:
        rows = [
            {
                "name": u.name,
                "role": u.role,
                "disabled": u.disabled_at is not None,
                "locked_until": u.locked_until.isoformat() if u.locked_until else None,
            }
            for u in store.listing(session)
        ]
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        state = "disabled" if row["disabled"] else f"locked until {row['locked_until']}" if row["locked_until"] else ""
        click.echo(f"{row['name']}\t{row['role']}\t{state}".rstrip())


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@pass_context
def users_passwd(ctx: Context, name: str, password_stdin: bool) -> None:
    """Set a new password for NAME (this also lifts a lock after wrong passwords).

    \b
    Example:
      mailbot users passwd 王维
    """
    from mailbot.store import users as store

    password = _new_password(password_stdin)
    _change_users(ctx, "user_passwd", name, lambda session, _now: store.set_password(session, name, password))
    click.echo(f"password of {name} changed")


@users.command("disable")
@click.argument("name")
@pass_context
def users_disable(ctx: Context, name: str) -> None:
    """Refuse every later login of NAME; a console session it has open ends at its next click.

    \b
    Example:
      mailbot users disable 张敏
    """
    from mailbot.store import users as store

    _change_users(ctx, "user_disable", name, lambda session, now: store.disable(session, name, now))
    click.echo(f"{name} disabled")


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("password", hide_input=True, confirmation_prompt=True))


def _change_users(ctx: Context, action: str, name: str, change: Callable[[Any, datetime], object]) -> None:
    """Run a change to the accounts with its audit entry, in one transaction (the console's log shows it)."""
    from mailbot.store import users as store
    from mailbot.store.db import transaction

    app = ctx.app
    sessions = app.ready()
    now = app.clock()
    with transaction(sessions) as session:
        change(session, now)
        store.audit(session, CLI_USER, action, f"user:{name}", None, {"user": name}, now)


CLI_USER = "命令行"  # who the audit log names for a change made with `mailbot` in a terminal


# ---------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Console entry point: library errors become one line on stderr and the error's exit code."""
    try:
        cli.main(args=argv, prog_name="mailbot", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:
        error = _known_error(exc)
        if error is None:
            raise
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)


def _known_error(exc: Exception) -> MailbotError | None:
    """Our own errors as they are; a database failure (locked, unreachable) as a DatabaseError."""
    from sqlalchemy.exc import SQLAlchemyError

    from mailbot.errors import DatabaseError, MailbotError

    if isinstance(exc, MailbotError):
        return exc
    if isinstance(exc, SQLAlchemyError):
        return DatabaseError(f"database error: {str(exc).splitlines()[0]}")
    return None


if __name__ == "__main__":
    main()
