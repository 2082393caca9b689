"""Console accounts: password hashing (argon2) and the decision on a login attempt, apart from the database.

Five wrong passwords in a row lock an account for 15 minutes; a locked or disabled account is refused even with
the right password, so that guessing on gains nothing while the lock lasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ROLES = ("staff", "viewer")  # staff act; viewers read
MAX_FAILURES = 5
LOCK_TIME = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 8

_HASHER = PasswordHasher()
# Checked against when the name is unknown, so that an unknown name costs the same time as a wrong password.
_UNKNOWN = _HASHER.hash("mailbot: no such user")

OK, WRONG, LOCKED, DISABLED = "ok", "wrong", "locked", "disabled"


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _UNKNOWN, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is refused, in Chinese; None when it will do."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"密码至少 {MIN_PASSWORD_LENGTH} 个字符"
    return None


@dataclass(frozen=True)
class Account:
    """What a login decision needs to know about an account."""

    failed_logins: int
    locked_until: datetime | None
    disabled: bool


@dataclass(frozen=True)
class Verdict:
    outcome: str  # OK | WRONG | LOCKED | DISABLED
    failed_logins: int  # what to store
    locked_until: datetime | None

    @property
    def ok(self) -> bool:
        return self.outcome == OK


def judge_login(account: Account, password_ok: bool, now: datetime) -> Verdict:
    """The outcome of one login attempt and the account's new counters."""
    if account.disabled:
        return Verdict(DISABLED, account.failed_logins, account.locked_until)
    if account.locked_until is not None and now < account.locked_until:
        return Verdict(LOCKED, account.failed_logins, account.locked_until)
    if password_ok:
        return Verdict(OK, 0, None)
    # A lock that has run out starts a fresh count.
    failed = (0 if account.locked_until is not None else account.failed_logins) + 1
    if failed >= MAX_FAILURES:
        return Verdict(LOCKED, 0, now + LOCK_TIME)
    return Verdict(WRONG, failed, None)
