"""The IMAP adapter: the only module in mailbot that talks IMAP.

A session connects, logs in once, identifies itself with the IMAP ID command (163.com refuses SELECT from
clients that do not: ``NO SELECT Unsafe Login``), and opens one folder — read-only (EXAMINE) unless the
operator asked for an after-ingest action. Mail is fetched with ``BODY.PEEK[]``, which never sets ``\\Seen``:
staff read the same mailbox.

No retries here. Network trouble raises :class:`MailServerError` (the sync layer may reconnect later); a
refused login raises :class:`AuthenticationError`, which nobody retries automatically (163 locks accounts).

A session can also wait for new mail (mailbot.push): IDLE (RFC 2177) where the server offers it, NOOP where it
does not; each such call says whether the server announced new mail (an untagged EXISTS).
"""

from __future__ import annotations

import imaplib
import io
import logging
import re
import select
import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import metadata
from types import TracebackType
from typing import Any, Self, TypeAlias, cast

from imap_tools import BaseMailBox, MailBox, MailBoxUnencrypted
from imap_tools.errors import MailboxLoginError
from imap_tools.imap_utf7 import utf7_encode

from mailbot.clock import TZ
from mailbot.config import ImapConfig
from mailbot.errors import AuthenticationError, MailServerError

log = logging.getLogger(__name__)

RAW_ITEMS = "(UID INTERNALDATE RFC822.SIZE BODY.PEEK[])"
SIZE_ITEMS = "(UID RFC822.SIZE)"
# Response codes of a refused LOGIN that mean "the server is unwell", not "the credentials are wrong".
_TEMPORARY_LOGIN_CODES = (b"[UNAVAILABLE]", b"[SERVERBUG]", b"[LIMIT]", b"[INUSE]")
_LOGOUT_TIMEOUT_SECONDS = 5.0
_MAX_UID = 2**32 - 1  # RFC 3501: UIDs are 32-bit
_EXISTS = re.compile(rb"\* \d+ EXISTS\b", re.IGNORECASE)


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    internaldate: datetime  # aware, in Asia/Shanghai: when the server received the message
    size: int  # RFC822.SIZE as the server reports it
    raw: bytes


def mailbot_version() -> str:
    try:
        return metadata.version("mailbot")
    except metadata.PackageNotFoundError:
        return "0"


class ImapSession:
    """One IMAP connection with one folder open. Use as a context manager::

    with ImapSession(config.imap, password) as imap:
        uids = imap.uids_after(last_uid)
    """

    def __init__(self, config: ImapConfig, password: str) -> None:
        self.config = config
        self._password = password
        self._mailbox: BaseMailBox | None = None
        self._uidvalidity: int | None = None
        self._readonly = config.after_ingest == "none"
        self.id_answer: str | None = None  # the server's answer to ID, for `doctor` and logs
        self._idle_tag: bytes | None = None  # set while the connection is in IDLE
        self._idle_count = 0

    # -- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Connect, log in, send ID, open the folder. Raises AuthenticationError or MailServerError."""
        if self._mailbox is not None:
            return
        with self._errors("connect"):
            self._mailbox = self._open()
        try:
            self._login()
            self._identify()
            self._select(readonly=self._readonly)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Log out quietly; a connection that is already gone is simply dropped."""
        self._leave_idle_quietly()
        mailbox, self._mailbox = self._mailbox, None
        if mailbox is None:
            return
        client = mailbox.client
        try:
            client.sock.settimeout(min(_LOGOUT_TIMEOUT_SECONDS, self.config.timeout_seconds))
            client.logout()
        except (imaplib.IMAP4.error, OSError, EOFError) as exc:
            log.debug("IMAP logout from %s failed quietly: %s", self.config.host, exc)
            with suppress(OSError):
                client.shutdown()

    @property
    def client(self) -> imaplib.IMAP4:
        if self._mailbox is None:
            raise MailServerError(f"IMAP {self._where}: not connected")
        client: imaplib.IMAP4 = self._mailbox.client
        return client

    # -- queries --------------------------------------------------------------------------------------

    def uidvalidity(self) -> int:
        """The folder's UIDVALIDITY: UIDs mean nothing without it."""
        if self._uidvalidity is None:
            self._uidvalidity = self._status_uidvalidity()
        return self._uidvalidity

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs above ``last_uid``, ascending."""
        if last_uid >= _MAX_UID:
            return []
        with self._errors("UID SEARCH"):
            typ, data = self.client.uid("SEARCH", f"UID {max(last_uid, 0) + 1}:*")
        self._check(typ, data, "UID SEARCH")
        found = {int(token) for chunk in data if isinstance(chunk, bytes) for token in chunk.split()}
        # `n:*` always matches the highest UID, even when n is above it: filter ourselves.
        return sorted(uid for uid in found if uid > last_uid)

    def fetch_raw(self, uids: Sequence[int]) -> list[FetchedMessage]:
        """Whole messages with their INTERNALDATE and size, one round trip per batch; never sets \\Seen.

        A UID that no longer exists is simply absent from the result.
        """
        found: list[FetchedMessage] = []
        for batch in _batches(uids, self.config.batch_size):
            for items in self._fetch(batch, RAW_ITEMS):
                found.append(self._fetched_message(items))
        return sorted(found, key=lambda m: m.uid)

    def fetch_sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """RFC822.SIZE by UID: the cheapest FETCH, to plan batches before any body is downloaded."""
        sizes: dict[int, int] = {}
        for batch in _batches(uids, self.config.batch_size * 10):
            for items in self._fetch(batch, SIZE_ITEMS):
                sizes[_int(items, "UID")] = _int(items, "RFC822.SIZE")
        return sizes

    # -- changing the mailbox (only when the operator asked for it) ------------------------------------

    def mark(self, uids: Sequence[int], action: str) -> None:
        """Apply the after-ingest action: "none", "flag" (add \\Seen) or "move:<folder>". Never expunges
        anything but the moved messages themselves."""
        if action == "none" or not uids:
            return
        if action != "flag" and not (action.startswith("move:") and len(action) > len("move:")):
            raise ValueError(f"unknown after-ingest action {action!r}")
        if self._readonly:
            self._reopen_writable()
        uid_set = _uid_set(uids)
        if action == "flag":
            self._store(uid_set, "+FLAGS.SILENT", "(\\Seen)")
        else:
            self._move(uid_set, action[len("move:") :])

    # -- waiting for new mail (push: mailbot.push) -----------------------------------------------------

    def offers_idle(self) -> bool:
        """Whether the server offers IDLE (RFC 2177), from its capabilities after login."""
        return "IDLE" in self._capabilities()

    def idle_start(self) -> bool:
        """Enter IDLE; True when the server announced new mail on the way in (an EXISTS may precede the ``+``)."""
        self._idle_count += 1
        tag = f"MBIDLE{self._idle_count}".encode()
        with self._errors("IDLE"):
            self.client.send(tag + b" IDLE\r\n")
        lines = self._read_until(tag, continuation=True)
        self._idle_tag = tag
        return announces_mail(lines)

    def idle_wait(self, timeout: float) -> bool:
        """Wait in IDLE up to `timeout` seconds; True when the server announced new mail meanwhile."""
        if not self._buffered() and not self._readable(timeout):
            return False
        lines = [self._line()]  # the server sends whole lines: a blocking read of one ends at once
        while self._buffered():
            lines.append(self._line())
        return announces_mail(lines)

    def idle_done(self) -> bool:
        """Leave IDLE (DONE); True when the server announced new mail before it confirmed."""
        tag, self._idle_tag = self._idle_tag, None
        if tag is None:
            return False
        with self._errors("DONE"):
            self.client.send(b"DONE\r\n")
        return announces_mail(self._read_until(tag, continuation=False))

    def noop(self) -> bool:
        """NOOP, the way to hear of new mail from a server without IDLE; True when its answer announced some."""
        with self._errors("NOOP"):
            typ, data = self.client.noop()
        self._check(typ, data, "NOOP")
        # _select() dropped the EXISTS of its own answer: any EXISTS here is news.
        return bool(self.client.untagged_responses.pop("EXISTS", None))

    def _read_until(self, tag: bytes, continuation: bool) -> list[bytes]:
        """The untagged lines before the continuation (``+``, when `continuation`) or before the tagged answer
        to `tag`; a tagged answer other than OK, or one instead of the continuation, is a refusal."""
        lines: list[bytes] = []
        while True:
            line = self._line()
            if continuation and line.startswith(b"+"):
                return lines
            if line.startswith(tag + b" "):
                if continuation or not line[len(tag) + 1 :].upper().startswith(b"OK"):
                    raise MailServerError(f"IMAP {self._where}: IDLE refused: {_answer([line])}")
                return lines
            lines.append(line)

    def _line(self) -> bytes:
        with self._errors("IDLE"):
            line = self.client.readline()
        if not line:
            raise MailServerError(f"IMAP {self._where}: the server closed the connection")
        if line[:5].upper() == b"* BYE":
            raise MailServerError(f"IMAP {self._where}: the server ended the connection: {_answer([line])}")
        return line.rstrip(b"\r\n")

    def _readable(self, timeout: float) -> bool:
        with self._errors("IDLE"):
            ready, _, _ = select.select([self.client.sock], [], [], timeout)
        return bool(ready)

    def _buffered(self) -> bool:
        """Whether an answer already waits in imaplib's read buffer (or in TLS's), where select() cannot see it:
        a peek that must not block."""
        sock = self.client.sock
        reader = cast(io.BufferedReader, self.client.file)
        before = sock.gettimeout()
        sock.settimeout(0)
        try:
            return bool(reader.peek(1))  # b"" both for "nothing yet" and for a closed connection
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        except OSError as exc:
            raise MailServerError(f"IMAP {self._where}: IDLE failed: {_describe(exc)}") from exc
        finally:
            with suppress(OSError):
                sock.settimeout(before)

    def _leave_idle_quietly(self) -> None:
        """LOGOUT in IDLE is a protocol error: send DONE first, waiting only briefly for its answer."""
        if self._idle_tag is None or self._mailbox is None:
            return
        with suppress(MailServerError, OSError):
            self.client.sock.settimeout(min(_LOGOUT_TIMEOUT_SECONDS, self.config.timeout_seconds))
            self.idle_done()
        self._idle_tag = None

    # -- steps of connect() ---------------------------------------------------------------------------

    def _open(self) -> BaseMailBox:
        cfg = self.config
        mailbox: BaseMailBox
        if cfg.ssl:
            context = ssl.create_default_context()
            mailbox = MailBox(cfg.host, cfg.port, timeout=cfg.timeout_seconds, ssl_context=context)
        else:
            mailbox = MailBoxUnencrypted(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
        # Small commands wait for delayed ACKs (~40 ms each) without this.
        mailbox.client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return mailbox

    def _login(self) -> None:
        assert self._mailbox is not None
        try:
            self._mailbox.login(self.config.user, self._password, initial_folder=None)
        except MailboxLoginError as exc:
            answer = _answer(exc.command_result[1])
            if any(code in answer.encode().upper() for code in _TEMPORARY_LOGIN_CODES):
                raise MailServerError(f"IMAP {self._where}: login temporarily refused: {answer}") from exc
            raise self._auth_error(answer) from exc
        except imaplib.IMAP4.abort as exc:
            raise MailServerError(f"IMAP {self._where}: connection lost during login: {exc}") from exc
        except imaplib.IMAP4.error as exc:  # BAD: the server would not even take our LOGIN
            raise self._auth_error(str(exc)) from exc
        except (OSError, EOFError) as exc:
            raise MailServerError(f"IMAP {self._where}: login failed: {_describe(exc)}") from exc

    def _auth_error(self, answer: str) -> AuthenticationError:
        return AuthenticationError(
            f"IMAP {self._where} refused the login for {self.config.user!r}: {answer}. "
            "Check imap.user and the password (for 163.com: the authorization code 授权码, not the web "
            "password). mailbot will not retry the login by itself: repeated failed logins lock the account."
        )

    def _identify(self) -> None:
        """Send ID. Optional for most servers, so a BAD or NO answer is logged and tolerated."""
        imaplib.Commands["ID"] = ("NONAUTH", "AUTH", "SELECTED")  # imaplib does not know ID
        client = self.client
        try:
            typ, data = client.xatom("ID", self._id_arguments())
        except imaplib.IMAP4.abort as exc:
            raise MailServerError(f"IMAP {self._where}: connection lost after ID: {exc}") from exc
        except imaplib.IMAP4.error as exc:
            log.warning("IMAP %s answered BAD to ID (%s); going on without it", self._where, exc)
            return
        except (OSError, EOFError) as exc:
            raise MailServerError(f"IMAP {self._where}: ID failed: {_describe(exc)}") from exc
        finally:
            client.untagged_responses.pop("ID", None)
        if typ != "OK":
            log.warning("IMAP %s answered %s to ID (%s); going on without it", self._where, typ, _answer(data))
            return
        self.id_answer = _answer(data)

    def _id_arguments(self) -> str:
        fields = {"name": self.config.id_name, "version": mailbot_version(), "vendor": self.config.id_vendor}
        return "(" + " ".join(f"{_quote(k)} {_quote(v)}" for k, v in fields.items()) + ")"

    def _select(self, readonly: bool) -> None:
        folder = self.config.folder
        with self._errors(f"opening folder {folder!r}"):
            typ, data = self.client.select(_folder(folder), readonly)
        if typ != "OK":
            answer = _answer(data)
            hint = " (the server wants the IMAP ID command first)" if "unsafe login" in answer.lower() else ""
            raise MailServerError(f"IMAP {self._where} refused to open folder {folder!r}: {answer}{hint}")
        self._readonly = readonly
        found = self.client.untagged_responses.get("UIDVALIDITY", [])
        values = [int(v) for v in found if isinstance(v, bytes) and v.strip().isdigit()]
        self._uidvalidity = values[-1] if values else None
        # imaplib leaves SELECT's message count among the untagged answers, where noop() would take it for news.
        self.client.untagged_responses.pop("EXISTS", None)

    def _reopen_writable(self) -> None:
        before = self.uidvalidity()
        self._select(readonly=False)
        if self.uidvalidity() != before:
            raise MailServerError(
                f"IMAP {self._where}: UIDVALIDITY of {self.config.folder!r} changed from {before} to "
                f"{self.uidvalidity()}; not changing any message"
            )

    def _status_uidvalidity(self) -> int:
        with self._errors("STATUS"):
            typ, data = self.client.status(_folder(self.config.folder), "(UIDVALIDITY)")
        self._check(typ, data, "STATUS")
        match = re.search(rb"UIDVALIDITY (\d+)", b" ".join(d for d in data if isinstance(d, bytes)))
        if not match:
            raise MailServerError(f"IMAP {self._where}: no UIDVALIDITY in the STATUS answer: {data!r}")
        return int(match.group(1))

    # -- fetching and parsing -------------------------------------------------------------------------

    def _fetch(self, uids: Sequence[int], items: str) -> list[dict[str, _Value]]:
        with self._errors("UID FETCH"):
            typ, data = self.client.uid("FETCH", _uid_set(uids), items)
        self._check(typ, data, "UID FETCH")
        wanted = set(uids)
        responses = parse_fetch_responses(data)
        # Unsolicited FETCH responses (flag changes by other clients) carry no body: leave them out.
        return [r for r in responses if "UID" in r and _int(r, "UID") in wanted and _answers(r, items)]

    def _fetched_message(self, items: dict[str, _Value]) -> FetchedMessage:
        return FetchedMessage(
            uid=_int(items, "UID"),
            internaldate=parse_internaldate(_as_bytes(items.get("INTERNALDATE"))),
            size=_int(items, "RFC822.SIZE"),
            raw=_as_bytes(items.get("BODY[]")),
        )

    def _store(self, uid_set: str, how: str, flags: str) -> None:
        with self._errors("UID STORE"):
            typ, data = self.client.uid("STORE", uid_set, how, flags)
        self._check(typ, data, "UID STORE")

    def _move(self, uid_set: str, folder: str) -> None:
        capabilities = self._capabilities()
        if "MOVE" in capabilities:
            with self._errors("UID MOVE"):
                typ, data = self.client.uid("MOVE", uid_set, _folder(folder))
            self._check(typ, data, f"UID MOVE to {folder!r}")
            return
        with self._errors("UID COPY"):
            typ, data = self.client.uid("COPY", uid_set, _folder(folder))
        self._check(typ, data, f"UID COPY to {folder!r}")
        self._store(uid_set, "+FLAGS.SILENT", "(\\Deleted)")
        if "UIDPLUS" not in capabilities:
            # A plain EXPUNGE would also remove what staff marked \Deleted themselves.
            log.warning("IMAP %s has neither MOVE nor UIDPLUS: copied messages stay \\Deleted", self._where)
            return
        with self._errors("UID EXPUNGE"):
            typ, data = self.client.uid("EXPUNGE", uid_set)
        self._check(typ, data, "UID EXPUNGE")

    def _capabilities(self) -> set[str]:
        """Read afresh: servers announce more after login (MOVE among them) than in the greeting."""
        with self._errors("CAPABILITY"):
            typ, data = self.client.capability()
        self._check(typ, data, "CAPABILITY")
        return {token.upper() for chunk in data if isinstance(chunk, bytes) for token in chunk.decode().split()}

    # -- errors ---------------------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (imaplib.IMAP4.error, OSError, EOFError) as exc:  # abort, BAD, refused, reset, timeout, TLS
            raise MailServerError(f"IMAP {self._where}: {doing} failed: {_describe(exc)}") from exc

    def _check(self, typ: str, data: list[Any], doing: str) -> None:
        if typ != "OK":
            raise MailServerError(f"IMAP {self._where}: {doing} refused: {typ} {_answer(data)}")


# ---------------------------------------------------------------------------------------------------------
# Parsing FETCH responses. imaplib hands them over as a flat list: a response without literals is one
# bytes item; one with literals is a (text ending in {n}, literal) tuple per literal, then the bytes that
# follow the last literal. The order of items inside the parentheses differs between servers.

_Value: TypeAlias = "bytes | list[_Value] | None"
_LITERAL_AT_END = re.compile(rb"\{\d+\+?\}$")
_LITERAL_MARK = b"\x00"  # stands for the next literal in the joined response text
_MONTHS = {
    m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1)
}
_INTERNALDATE = re.compile(
    rb"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\s*", re.ASCII
)


def parse_fetch_responses(data: Sequence[Any]) -> list[dict[str, _Value]]:
    """One dict per message (merged by sequence number), keyed by upper-case item name.

    ``BODY[]`` holds the whole message, ``HEADER`` the result of any ``BODY[HEADER.FIELDS (…)]``.
    """
    merged: dict[int, dict[str, _Value]] = {}
    for text, literals in _join_responses(data):
        tokens = _Parser(text, literals).parse()
        if len(tokens) < 2 or not isinstance(tokens[0], bytes) or not isinstance(tokens[1], list):
            continue
        if not tokens[0].isdigit():
            continue
        merged.setdefault(int(tokens[0]), {}).update(_pairs(tokens[1]))
    return list(merged.values())


def _join_responses(data: Sequence[Any]) -> Iterator[tuple[bytes, list[bytes]]]:
    parts: list[bytes] | None = None
    literals: list[bytes] = []
    for item in data:
        if isinstance(item, tuple):
            if parts is None:
                parts, literals = [], []
            parts.append(_LITERAL_AT_END.sub(_LITERAL_MARK, item[0]))
            literals.append(item[1])
        elif isinstance(item, bytes):
            if parts is None:
                yield item, []
            else:
                yield b"".join([*parts, item]), literals
                parts = None
    if parts is not None:
        yield b"".join(parts), literals


def _pairs(items: list[_Value]) -> dict[str, _Value]:
    found: dict[str, _Value] = {}
    for name, value in zip(items[::2], items[1::2], strict=False):
        if isinstance(name, bytes):
            found[_item_name(name.decode("ascii", "replace").upper())] = value
    return found


def _item_name(name: str) -> str:
    if name.startswith("BODY["):
        section = name[len("BODY[") : name.rfind("]")]
        return "HEADER" if section.startswith("HEADER") else f"BODY[{section}]"
    return name


# One token of a response line: a parenthesis, a quoted string (unterminated: to the end), a literal's place, or
# the start of an atom, which runs to a space, a parenthesis or a literal. An atom with brackets goes on in
# `_Parser._atom`: inside them those end nothing (BODY[HEADER.FIELDS (A B)]).
_TOKEN = re.compile(
    rb"[ \r\n]*+(?:(?P<open>\()|(?P<close>\))"
    rb'|"(?P<quoted>(?:[^"\\]|\\.|\\\Z)*)"?'
    rb"|(?P<literal>" + re.escape(_LITERAL_MARK) + rb")"
    rb"|(?P<atom>[^ ()\[" + re.escape(_LITERAL_MARK) + rb"]*+))",
    re.DOTALL,
)
_ESCAPED = re.compile(rb"\\(.)", re.DOTALL)
_ATOM_ENDS = (b" ", b"(", b")", _LITERAL_MARK)


class _Parser:
    """Tokens of one response line: atoms and strings as bytes, NIL as None, parentheses as lists."""

    def __init__(self, text: bytes, literals: list[bytes]) -> None:
        self.text = text
        self.pos = 0
        self.literals = iter(literals)

    def parse(self) -> list[_Value]:
        return self._list()

    def _list(self) -> list[_Value]:
        items: list[_Value] = []
        while (match := _TOKEN.match(self.text, self.pos)) is not None:
            self.pos = match.end()
            kind = match.lastgroup
            if kind == "close":
                return items
            if kind == "open":
                items.append(self._list())
            elif kind == "quoted":
                quoted = match.group("quoted")
                items.append(_ESCAPED.sub(rb"\1", quoted) if b"\\" in quoted else quoted)
            elif kind == "literal":
                items.append(next(self.literals, b""))
            elif (start := match.start("atom")) < len(self.text):
                items.append(self._atom(start))
            else:
                break  # only blanks were left
        return items

    def _atom(self, start: int) -> bytes | None:
        """The atom from `start`: the match ended it unless brackets follow, which it goes on through."""
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos : self.pos + 1]
            if char == b"[":
                depth += 1
            elif char == b"]":
                depth = max(depth - 1, 0)
            elif depth == 0 and char in _ATOM_ENDS:
                break
            self.pos += 1
        atom = self.text[start : self.pos]
        return None if atom.upper() == b"NIL" else atom


def announces_mail(lines: Sequence[bytes]) -> bool:
    """Whether untagged responses announce new mail: an EXISTS, sent when the folder's size changed."""
    return any(_EXISTS.match(line) for line in lines)


def parse_internaldate(value: bytes) -> datetime:
    """``"17-Jul-1996 02:44:25 -0700"`` → an aware datetime in Asia/Shanghai."""
    match = _INTERNALDATE.fullmatch(value)
    if not match or match.group(2).upper().decode() not in _MONTHS:
        raise MailServerError(f"unexpected INTERNALDATE from the IMAP server: {value!r}")
    day, month, year, hour, minute, second, sign, off_h, off_m = match.groups()
    offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == b"-" else 1)
    moment = datetime(
        int(year),
        _MONTHS[month.upper().decode()],
        int(day),
        int(hour),
        int(minute),
        int(second),
        tzinfo=timezone(offset),
    )
    return moment.astimezone(TZ)


def _answers(items: dict[str, _Value], wanted: str) -> bool:
    if "BODY.PEEK[]" in wanted:
        return "BODY[]" in items
    return "HEADER" in items if "HEADER" in wanted else "RFC822.SIZE" in items


def _int(items: dict[str, _Value], name: str) -> int:
    value = items.get(name)
    if not isinstance(value, bytes) or not value.isdigit():
        raise MailServerError(f"IMAP FETCH answer has no usable {name}: {value!r}")
    return int(value)


def _as_bytes(value: _Value) -> bytes:
    return value if isinstance(value, bytes) else b""


# ---------------------------------------------------------------------------------------------------------
# Small helpers


def _batches(uids: Sequence[int], size: int) -> Iterator[list[int]]:
    ordered = sorted(set(uids))
    for start in range(0, len(ordered), max(size, 1)):
        yield ordered[start : start + max(size, 1)]


def _uid_set(uids: Sequence[int]) -> str:
    """``[1, 2, 3, 7, 9, 10]`` → ``"1:3,7,9:10"``."""
    ranges: list[str] = []
    ordered = sorted(set(uids))
    start = prev = ordered[0]
    for uid in [*ordered[1:], None]:
        if uid is not None and uid == prev + 1:
            prev = uid
            continue
        ranges.append(str(start) if start == prev else f"{start}:{prev}")
        if uid is not None:
            start = prev = uid
    return ",".join(ranges)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _folder(name: str) -> str:
    """A folder name as IMAP wants it: modified UTF-7 (RFC 3501 §5.1.3), quoted."""
    return _quote(utf7_encode(name).decode("ascii"))


def _answer(data: Sequence[Any]) -> str:
    texts = [d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data if d is not None]
    return " ".join(texts).strip() or "(no text)"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out ({exc})" if str(exc) else "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
