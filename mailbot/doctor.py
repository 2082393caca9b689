"""`mailbot doctor`: one check per external dependency, each reported, none stopping the others."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mailbot.app import App
from mailbot.config import Config, read_secret
from mailbot.errors import CalendarError, ConfigError, DatabaseError, MailbotError
from mailbot.read.office import LibreOffice


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(app: App) -> Iterator[Check]:
    for name, probe in (
        ("config", lambda: _config(app)),
        ("tables", lambda: _tables(app)),
        ("database", lambda: _database(app)),
        ("imap", lambda: _imap(app)),
        ("smtp", lambda: _smtp(app)),
        ("calendar", lambda: _calendar(app)),
        ("commands", _warm_state),
    ):
        yield _run(name, probe)


def _run(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except MailbotError as exc:
        return Check(name, False, str(exc))


def _warm_state() -> str:
    from mailbot import warm

    return warm.state()


def _config(app: App) -> str:
    config = app.config
    gaps = config_gaps(config)
    if gaps:
        raise ConfigError("; ".join(gaps))
    return f"{len(config.units)} units, data in {config.data_path}"


def config_gaps(config: Config) -> list[str]:
    """What a config that loads can still lack for the job: a mailbox to read, a server to send with, units.
    Every key has a default, so a missing [imap] or [smtp] shows as an empty user."""
    gaps = []
    if not config.imap.user:
        gaps.append("no [imap] section (imap.user is empty): mailbot cannot read the mailbox")
    if not config.smtp.user:
        gaps.append("no [smtp] section (smtp.user is empty): mailbot cannot send receipts, reminders or the digest")
    if not config.units:
        gaps.append("no [[units]]: no mail can be attributed and nobody is reminded")
    return gaps


def _tables(app: App) -> str:
    """The staff's spelling mapping must load; LibreOffice is optional but its absence changes what is read."""
    rules = app.table_rules
    spellings = len(rules.mapping.source.spellings) + len(rules.mapping.channel.spellings)
    mapping = f"mapping {app.config.tables.mapping_file or '(shipped)'} with {spellings} spellings"
    if not isinstance(rules.convert, LibreOffice):
        return f"{mapping}; LibreOffice not found: .doc and .wps files will be reported as unsupported_format"
    return f"{mapping}; LibreOffice at {rules.convert.program} converts .doc and .wps files"


def _database(app: App) -> str:
    from mailbot.store import db

    if db.head_revision() != db.SCHEMA_HEAD:  # the commands check databases against the constant, not the scripts
        raise DatabaseError(
            f"the migrations of this installation end at {db.head_revision()} but mailbot expects {db.SCHEMA_HEAD} "
            "(store/db.py SCHEMA_HEAD): reinstall mailbot"
        )
    db.require_current(app.engine)
    return f"{db.current_revision(app.engine)} (newest) at {app.engine.url.render_as_string(hide_password=True)}"


def _imap(app: App) -> str:
    if not app.config.imap.user:
        raise ConfigError("not configured: add an [imap] section with host, user and password_env")
    with app.open_mailbox() as mailbox:
        count = len(mailbox.uids_after(0))
        push = _push_mode(app.config, mailbox.offers_idle())
        return f"login, ID and SELECT {app.config.imap.folder} ok on {app.config.imap.host}; {count} messages; {push}"


def _push_mode(config: Config, offers_idle: bool) -> str:
    """How `mailbot run` will hear of new mail on this server (its log says the same when it connects)."""
    from mailbot.push import push_mode

    poll = f"new mail waits for the poll every {config.worker.poll_minutes} min"
    if not config.worker.idle:
        return f"push off (worker.idle = false): {poll}"
    return {
        "idle": "IDLE offered: the worker is told of new mail at once (push)",
        "noop": f"no IDLE: the worker asks with NOOP every {config.worker.noop_seconds} s",
        "poll": f"no IDLE and worker.noop_seconds = 0: {poll}",
    }[push_mode(offers_idle, config.worker.noop_seconds)]


def _smtp(app: App) -> str:
    from mailbot.send.smtp import check_login

    smtp = app.config.smtp
    if not smtp.user:  # never try to log in to the default host with no user
        raise ConfigError("not configured: add an [smtp] section with host, user, from and password_env")
    return check_login(smtp, read_secret(smtp.password_env, smtp.password_file, "smtp", app.config.base_dir))


def _calendar(app: App) -> str:
    """This year's and next year's holidays must be known, or reminders may fall on a holiday."""
    from importlib.metadata import version

    from mailbot.clock import as_local
    from mailbot.workdays import WorkCalendar

    year = as_local(app.clock()).year
    years = [year, year + 1]
    library = f"chinesecalendar {version('chinesecalendar')}"
    missing = WorkCalendar.from_config(app.config.calendar).uncovered(years)
    if missing:
        raise CalendarError(
            f"{library} does not know the holidays of {', '.join(map(str, missing))}: Monday to Friday are "
            "taken as working days there. Upgrade chinesecalendar (new years arrive each November) or enter "
            "the official holidays and make-up working days in [calendar] days_off / workdays"
        )
    return f"holidays of {years[0]} and {years[1]} known ({library} and [calendar])"
