"""One error hierarchy for the whole package.

Library code raises these; only the CLI edge turns them into a message and an exit code.
"""

from __future__ import annotations


class MailbotError(Exception):
    """Base of every error mailbot raises on purpose."""

    exit_code = 1


class ConfigError(MailbotError):
    """The configuration file is missing, malformed or invalid; the message names the key."""

    exit_code = 2


class DatabaseError(MailbotError):
    """The database is unreachable or not at the expected migration revision."""

    exit_code = 3


class MailServerError(MailbotError):
    """A mail server could not be reached or answered unexpectedly (worth retrying later)."""

    exit_code = 4


class AuthenticationError(MailServerError):
    """The server refused our credentials. Never retried automatically: 163 locks the account."""

    exit_code = 5


class InputError(MailbotError):
    """A file or argument given on the command line cannot be used."""

    exit_code = 6


class CalendarError(MailbotError):
    """The holiday calendar does not know a year mailbot is planning in (the Monday–Friday fallback is in use)."""


class WorkerLockError(MailbotError):
    """Another worker holds the database, or took it over from this one."""


class ArchiveCorruptError(MailbotError):
    """An archived message is missing, or its bytes no longer match the SHA-256 it is named by. The message says
    so in Chinese: it is stored as the failed message's error, for staff."""


class PollBusyError(MailbotError):
    """Another process is polling the same folder on this database (one poller per folder)."""
