"""The IMAP adapter against real servers (dovecot when installed, pymap always) and a 163.com look-alike."""

from __future__ import annotations

import imaplib
import socket
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailbot.clock import TZ
from mailbot.config import ImapConfig
from mailbot.errors import AuthenticationError, MailServerError
from mailbot.fetch.imap import (
    FetchedMessage,
    ImapSession,
    _uid_set,
    mailbot_version,
    parse_fetch_responses,
    parse_internaldate,
)

from mailservers import PASSWORD, IdRequiredProxy, MailServer, free_port

WHEN = datetime(2021, 4, 15, 23, 59, 58, tzinfo=TZ)


def config_for(host: str, port: int, **overrides: object) -> ImapConfig:
    values: dict[str, object] = {
        "host": host,
        "port": port,
        "ssl": False,
        "user": "mailbot@example.test",
        "timeout_seconds": 5,
        **overrides,
    }
    return ImapConfig(**values)  # type: ignore[arg-type]


def session(target: MailServer | IdRequiredProxy, password: str = PASSWORD, **overrides: object) -> ImapSession:
    return ImapSession(config_for(target.host, target.port, **overrides), password)


def mail(n: int, message_id: str | None = None, body: bytes = b"") -> bytes:
    header = f"Message-ID: <{message_id}>\r\n" if message_id is not None else ""
    return (
        f"From: unit{n}@example.test\r\nTo: mailbot@example.test\r\nSubject: report {n}\r\n{header}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=gbk\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + (body or f"line {n}\r\n".encode())


# Bytes that trip naive FETCH parsers: 8-bit GBK, a literal-looking "{12}", parentheses, a line with ")".
AWKWARD_BODY = "郏县总工会 报送 附件3\r\n".encode("gbk") + b'{12}\r\n) BODY[] (UID 7)\r\n"quoted" \\ NIL\r\n'


# ---------------------------------------------------------------------------------------------------------
# Login, ID and SELECT


def test_it_sends_id_before_select_so_a_163_like_server_lets_it_in(id_proxy: IdRequiredProxy) -> None:
    with session(id_proxy) as imap:
        assert imap.uids_after(0) == []
    assert id_proxy.stats.refused_selects == 0
    commands = [c for c in id_proxy.stats.commands if c != "CAPABILITY"]  # imaplib asks on connect
    assert commands[:3] == ["LOGIN", "ID", "EXAMINE"]
    params = id_proxy.stats.id_params[0]
    assert '"name" "mailbot"' in params
    assert f'"version" "{mailbot_version()}"' in params
    assert '"vendor" "mailbot"' in params


def test_it_proves_the_proxy_refuses_select_without_id(id_proxy: IdRequiredProxy, imap_server: MailServer) -> None:
    client = imaplib.IMAP4(id_proxy.host, id_proxy.port, timeout=5)
    try:
        client.login(imap_server.user, imap_server.password)
        typ, data = client.select("INBOX")
        assert typ == "NO"
        assert data == [b"SELECT Unsafe Login. Please contact kefu@188.com for help"]
    finally:
        client.logout()


def test_it_reports_a_refused_select_naming_the_answer(imap_server: MailServer) -> None:
    # A server that rejects our ID and then refuses SELECT, as 163.com does for clients it does not know.
    proxy = IdRequiredProxy(imap_server.host, imap_server.port, id_answer=b"BAD Unknown command")
    with proxy, pytest.raises(MailServerError, match="Unsafe Login") as caught:
        session(proxy).connect()
    assert not isinstance(caught.value, AuthenticationError)


def test_it_tolerates_a_server_that_answers_bad_to_id(imap_server: MailServer) -> None:
    imap_server.append([mail(1)])
    proxy = IdRequiredProxy(imap_server.host, imap_server.port, require_id=False, id_answer=b"BAD Unknown")
    with proxy, session(proxy) as imap:
        assert len(imap.uids_after(0)) == 1
        assert imap.id_answer is None


def test_it_refuses_a_folder_that_does_not_exist(imap_server: MailServer) -> None:
    with pytest.raises(MailServerError, match="Nowhere"):
        session(imap_server, folder="Nowhere").connect()


def test_it_gives_the_uidvalidity_of_the_folder(imap_server: MailServer) -> None:
    with session(imap_server) as first, session(imap_server, after_ingest="flag") as second:
        assert first.uidvalidity() > 0
        assert first.uidvalidity() == second.uidvalidity()


# ---------------------------------------------------------------------------------------------------------
# Errors


def test_it_raises_authentication_error_after_one_login_attempt(id_proxy: IdRequiredProxy) -> None:
    with pytest.raises(AuthenticationError, match="will not retry") as caught:
        session(id_proxy, password="wrong").connect()
    assert "mailbot@example.test" in str(caught.value)
    assert id_proxy.stats.logins == 1


def test_it_raises_server_error_when_nothing_listens() -> None:
    with pytest.raises(MailServerError) as caught:
        ImapSession(config_for("127.0.0.1", free_port()), "secret").connect()
    assert not isinstance(caught.value, AuthenticationError)


def test_it_raises_server_error_when_the_server_never_answers() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog) but never greets
        config = config_for("127.0.0.1", silent.getsockname()[1], timeout_seconds=1)
        with pytest.raises(MailServerError, match="timed out"):
            ImapSession(config, PASSWORD).connect()


def test_it_raises_server_error_when_tls_meets_a_plain_server(imap_server: MailServer) -> None:
    with pytest.raises(MailServerError) as caught:
        session(imap_server, ssl=True).connect()
    assert not isinstance(caught.value, AuthenticationError)


def test_it_refuses_calls_after_close(imap_server: MailServer) -> None:
    imap = session(imap_server)
    with imap:
        pass
    imap.close()
    with pytest.raises(MailServerError, match="not connected"):
        imap.uids_after(0)


def test_it_raises_server_error_when_the_connection_drops(id_proxy: IdRequiredProxy, imap_server: MailServer) -> None:
    imap_server.append([mail(1)])
    imap = session(id_proxy)
    with imap:
        assert len(imap.uids_after(0)) == 1
        id_proxy.cut()
        with pytest.raises(MailServerError) as caught:
            imap.fetch_raw([1, 2, 101])
        assert not isinstance(caught.value, AuthenticationError)
    # close() after a dropped connection is quiet


# ---------------------------------------------------------------------------------------------------------
# Searching and fetching


def test_it_lists_only_uids_above_the_last_one_despite_the_n_star_quirk(imap_server: MailServer) -> None:
    uids = imap_server.append([mail(1), mail(2), mail(3)])
    with session(imap_server) as imap:
        assert imap.uids_after(0) == uids
        assert imap.uids_after(uids[0]) == uids[1:]
        assert imap.uids_after(uids[-1]) == []
        assert imap.uids_after(uids[-1] + 1000) == []


def test_it_fetches_raw_bytes_unchanged_with_the_internaldate_set_at_append(imap_server: MailServer) -> None:
    raws = [mail(1, "a@x"), mail(2, "b@x", AWKWARD_BODY), mail(3, None, b"x" * 70_000 + b"\r\n")]
    dates = [WHEN, datetime(2021, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-7))), WHEN.replace(day=3)]
    uids = imap_server.append(raws, internaldates=dates)
    with session(imap_server) as imap:
        fetched = imap.fetch_raw(list(reversed(uids)))
    assert [m.uid for m in fetched] == uids
    for message, raw, date in zip(fetched, raws, dates, strict=True):
        assert isinstance(message, FetchedMessage)
        assert message.raw == raw
        assert message.size == len(raw)
        assert message.internaldate == date
        assert message.internaldate.tzinfo is TZ


def test_it_fetches_in_batches_of_the_configured_size(id_proxy: IdRequiredProxy, imap_server: MailServer) -> None:
    uids = imap_server.append([mail(n) for n in range(5)])
    with session(id_proxy, batch_size=2) as imap:
        assert [m.uid for m in imap.fetch_raw(uids)] == uids
    assert id_proxy.stats.commands.count("UID FETCH") == 3


def test_it_skips_uids_that_no_longer_exist(imap_server: MailServer) -> None:
    uids = imap_server.append([mail(1)])
    with session(imap_server) as imap:
        assert [m.uid for m in imap.fetch_raw([uids[0], uids[0] + 50])] == uids
        assert imap.fetch_raw([]) == []


def test_it_leaves_flags_unchanged_when_fetching(imap_server: MailServer) -> None:
    uids = imap_server.append([mail(1), mail(2)])
    imap_server.append([mail(3)], flags=["\\Flagged"])
    before = imap_server.flags()
    with session(imap_server) as imap:
        imap.fetch_raw(imap.uids_after(0))
        imap.fetch_sizes(imap.uids_after(0))
    after = imap_server.flags()
    assert after == before
    assert all("\\Seen" not in flags for flags in after.values())
    assert after[uids[-1] + 1] == {"\\Flagged"}


def test_it_fetches_sizes_without_bodies(imap_server: MailServer) -> None:
    raws = [mail(1, "one@example.test"), mail(2, None), mail(4, "four@x", AWKWARD_BODY)]
    uids = imap_server.append(raws)
    with session(imap_server) as imap:
        sizes = imap.fetch_sizes([*uids, uids[-1] + 50])  # a UID that does not exist is left out
    assert sizes == {uid: len(raw) for uid, raw in zip(uids, raws, strict=True)}


# ---------------------------------------------------------------------------------------------------------
# After-ingest actions


def test_it_flags_seen_without_expunging_anything(imap_server: MailServer) -> None:
    uids = imap_server.append([mail(1), mail(2)])
    deleted = imap_server.append([mail(3)], flags=["\\Deleted"])[0]  # staff's own, must survive
    with session(imap_server, after_ingest="flag") as imap:
        imap.mark(uids[:1], "flag")
    flags = imap_server.flags()
    assert flags[uids[0]] == {"\\Seen"}
    assert flags[uids[1]] == set()
    assert flags[deleted] == {"\\Deleted"}
    assert imap_server.count() == 3


def test_it_reopens_a_read_only_folder_to_mark(imap_server: MailServer) -> None:
    uids = imap_server.append([mail(1)])
    with session(imap_server) as imap:
        imap.mark(uids, "flag")
        imap.mark(uids, "none")
    assert imap_server.flags()[uids[0]] == {"\\Seen"}


def test_it_moves_only_the_given_messages(imap_server: MailServer) -> None:
    imap_server.create_folder("已处理")
    uids = imap_server.append([mail(1), mail(2)])
    deleted = imap_server.append([mail(3)], flags=["\\Deleted"])[0]
    with session(imap_server, after_ingest="move:已处理") as imap:
        imap.mark(uids[:1], "move:已处理")
    assert set(imap_server.flags()) == {uids[1], deleted}
    assert imap_server.count("已处理") == 1


def test_it_moves_with_copy_and_uid_expunge_without_the_move_capability(
    imap_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    imap_server.create_folder("Done")
    uids = imap_server.append([mail(1), mail(2)])
    deleted = imap_server.append([mail(3)], flags=["\\Deleted"])[0]
    with session(imap_server, after_ingest="move:Done") as imap:
        monkeypatch.setattr(imap, "_capabilities", lambda: {"IMAP4REV1", "UIDPLUS"})
        imap.mark(uids[:1], "move:Done")
    assert set(imap_server.flags()) == {uids[1], deleted}
    assert imap_server.count("Done") == 1


def test_it_reports_a_move_to_a_missing_folder(imap_server: MailServer) -> None:
    uids = imap_server.append([mail(1)])
    with session(imap_server, after_ingest="move:Missing") as imap, pytest.raises(MailServerError, match="Missing"):
        imap.mark(uids, "move:Missing")
    assert imap_server.count() == 1


# ---------------------------------------------------------------------------------------------------------
# Parsing, without a server


def test_it_parses_fetch_items_in_any_order_with_unsolicited_responses() -> None:
    data = [
        b"1 (FLAGS (\\Recent))",
        (b'1 (UID 101 INTERNALDATE "13-Sep-2020 12:26:40 +0000" RFC822.SIZE 5 BODY[] {5}', b"hello"),
        b")",
        (b"2 (RFC822.SIZE 21 BODY[HEADER.FIELDS (MESSAGE-ID)] {21}", b"Message-ID: <a@b>\r\n\r\n"),
        b" UID 102)",
        b"3 (UID 103 FLAGS (\\Seen))",
        None,
    ]
    parsed = parse_fetch_responses(data)
    assert parsed[0]["UID"] == b"101"
    assert parsed[0]["BODY[]"] == b"hello"
    assert parsed[0]["FLAGS"] == [b"\\Recent"]
    assert parsed[1]["HEADER"] == b"Message-ID: <a@b>\r\n\r\n"
    assert parsed[1]["UID"] == b"102"
    assert parsed[2] == {"UID": b"103", "FLAGS": [b"\\Seen"]}


def test_it_tokenises_strings_brackets_and_nil_as_imap_writes_them() -> None:
    data = [
        (b"7 (UID 9 BODY[HEADER.FIELDS (MESSAGE-ID [X] DATE)] {4}", b"head"),
        b' X-NAME "a \\"quoted\\" \\\\ name" X-NIL NIL X-LOWER nil X-EMPTY "" X-LIST (A (B NIL) "C D")\r\n)',
        b'8 (UID 10 X-CUT "runs to the end',
    ]
    first, second = parse_fetch_responses(data)
    assert first["UID"] == b"9"
    assert first["HEADER"] == b"head"  # the section's spaces, parentheses and inner brackets belong to its name
    assert first["X-NAME"] == b'a "quoted" \\ name'
    assert first["X-NIL"] is None and first["X-LOWER"] is None and first["X-EMPTY"] == b""
    assert first["X-LIST"] == [b"A", [b"B", None], b"C D"]
    assert second == {"UID": b"10", "X-CUT": b"runs to the end"}


def test_it_parses_internaldates_with_padded_days_and_offsets() -> None:
    moment = parse_internaldate(b" 3-Feb-2021 01:02:03 -0700")
    assert moment == datetime(2021, 2, 3, 8, 2, 3, tzinfo=UTC)
    assert moment.tzinfo is TZ
    with pytest.raises(MailServerError):
        parse_internaldate(b"yesterday")


def test_it_compresses_uid_sets() -> None:
    assert _uid_set([10, 9, 1, 2, 3, 7]) == "1:3,7,9:10"
    assert _uid_set([5]) == "5"
