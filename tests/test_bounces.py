"""The bounce parser on the three shapes bounces of mailbot's mail arrive in: a DSN as Postfix and 163's MTA
write it, 163's 系统退信, and a bare "550 user unknown" text."""

from __future__ import annotations

from datetime import datetime

from mailbot.bounces import Bounce, SentMail, is_bounce, match, parse_bounce
from mailbot.clock import TZ
from mailbot.message.split import parse_message

from mailgen import dsn_bounce, make_message, netease_bounce, plain_550_bounce

OWN = frozenset({"pingqf163@example.cn"})
AT = datetime(2021, 6, 16, 9, 5, tzinfo=TZ)
NOTICE = make_message(
    sender="pingqf163@example.cn",
    subject="【逾期通知】请尽快报送消费惠农统计表",
    body="郏县总工会：截至今天尚未收到贵单位的报表。",
    message_id="<mailbot.0123456789abcdef.1623805200@example.cn>",
)


def test_it_reads_the_returned_message_id_and_the_failed_recipient_of_a_dsn() -> None:
    raw = dsn_bounce(NOTICE, "old@qq.com", AT)
    assert is_bounce(parse_message(raw))
    bounce = parse_bounce(raw, OWN)
    assert bounce.message_ids == ("mailbot.0123456789abcdef.1623805200@example.cn",)
    assert bounce.recipients == ("old@qq.com",)
    assert bounce.diagnostic.startswith("550 5.1.1 <old@qq.com>: Recipient address rejected")


def test_it_reads_a_dsn_that_returns_only_the_headers() -> None:
    bounce = parse_bounce(dsn_bounce(NOTICE, "old@qq.com", AT, headers_only=True), OWN)
    assert bounce.message_ids == ("mailbot.0123456789abcdef.1623805200@example.cn",)
    assert bounce.recipients == ("old@qq.com",)


def test_a_delay_notice_names_no_failed_recipient() -> None:
    bounce = parse_bounce(dsn_bounce(NOTICE, "old@qq.com", AT, action="delayed"), OWN)
    assert bounce.recipients == ()


def test_it_reads_163s_system_bounce() -> None:
    raw = netease_bounce("old@qq.com", "【逾期通知】请尽快报送消费惠农统计表", AT, NOTICE)
    assert is_bounce(parse_message(raw))
    bounce = parse_bounce(raw, OWN)
    assert bounce.recipients == ("old@qq.com",)  # not mailbot's own address, which it names as 发件人
    assert bounce.message_ids == ("mailbot.0123456789abcdef.1623805200@example.cn",)
    assert "550 Mailbox not found" in bounce.diagnostic


def test_it_reads_163s_system_bounce_without_the_original() -> None:
    bounce = parse_bounce(netease_bounce("old@qq.com", "【逾期通知】", AT), OWN)
    assert (bounce.message_ids, bounce.recipients) == ((), ("old@qq.com",))


def test_it_reads_a_bare_550_user_unknown() -> None:
    raw = plain_550_bounce("old@qq.com", AT)
    assert is_bounce(parse_message(raw))
    bounce = parse_bounce(raw, OWN)
    assert bounce.recipients == ("old@qq.com",)  # "合计 550 元" in the quoted copy is no failure
    assert bounce.diagnostic == "550 user unknown"


def test_an_auto_reply_is_no_bounce() -> None:
    reply = make_message(subject="自动回复：消费惠农统计表", headers={"Auto-Submitted": "auto-replied"})
    assert not is_bounce(parse_message(reply))
    assert parse_bounce(reply, OWN).empty


def _sent(mail_id: int, to: str, day: int, message_id: str = "") -> SentMail:
    return SentMail(mail_id, message_id or f"<m{mail_id}@example.cn>", to, datetime(2021, 6, day, 9, 0, tzinfo=TZ))


def test_it_matches_by_the_returned_message_id_first() -> None:
    sent = [_sent(1, "old@qq.com", 8), _sent(2, "old@qq.com", 16), _sent(3, "new@qq.com", 16)]
    returned = match(Bounce(("m1@example.cn",), ("old@qq.com",)), sent, AT)
    assert [m.id for m in returned.mails] == [1] and returned.strangers == ()


def test_else_it_matches_the_latest_mail_to_the_failed_recipient_before_the_bounce() -> None:
    sent = [_sent(1, "old@qq.com", 8), _sent(2, "old@qq.com", 16), _sent(4, "old@qq.com", 17)]
    returned = match(Bounce((), ("old@qq.com", "former@qq.com")), sent, AT)
    assert [m.id for m in returned.mails] == [2]  # the mail of the 17th was sent after the bounce came
    assert returned.strangers == ("former@qq.com",)  # mailbot never wrote there
