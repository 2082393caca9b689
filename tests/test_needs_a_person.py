"""Bounces, units' letters and spam, end to end through the commands: a late notice goes out through a real
SMTP server, its bounce comes back, and `status`, the digest and `remind --dry-run` say the same true thing
until staff retire or replace the address; a unit's question reaches staff until it is marked handled."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from click.testing import CliRunner
from sqlalchemy import select

from mailbot.app import App
from mailbot.cli import cli
from mailbot.clock import TZ
from mailbot.errors import InputError
from mailbot.notices import RECEIPT
from mailbot.report.attention import needs_a_person
from mailbot.store.db import transaction
from mailbot.store.models import Message

from dbfixtures import ingest_raws, server_section, write_config
from mailgen import dsn_bounce, make_message, netease_bounce, plain_550_bounce
from smtpservers import PASSWORD, USER, ScriptedSmtp

JIAXIAN = {
    "name": "郏县总工会",
    "category": "县市区",
    "aliases": ["郏县"],
    "emails": ["jiaxian@example.cn", "jiaxian2@example.cn"],
}
BAOFENG = {"name": "宝丰县总工会", "category": "县市区", "aliases": ["宝丰"], "emails": ["baofeng@example.cn"]}
NOTICE_DAY = datetime(2021, 6, 16, 9, 0, tzinfo=TZ)  # the first late notice of the 06-15 period
BOUNCED_AT = datetime(2021, 6, 16, 9, 10, tzinfo=TZ)
LATER = "2021-06-16T12:00"


@pytest.fixture
def config(tmp_path: Path, smtp: ScriptedSmtp, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    section = server_section(smtp, "TEST_SMTP_PASSWORD", user=USER, **{"from": USER})
    path = write_config(
        tmp_path, units=[JIAXIAN, BAOFENG], smtp=section, imap={"user": USER}, deadlines={"annex1_close": ["04-30"]}
    )
    assert _run(path, "db", "upgrade")[0] == 0
    return path


def _run(config: Path, *args: str, at: datetime | None = None) -> tuple[int, str]:
    with time_machine.travel(at or BOUNCED_AT, tick=False):
        result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    return result.exit_code, result.output


def _json(config: Path, *args: str) -> Any:
    code, out = _run(config, *args)
    assert code == 0, out
    return json.loads(out)


def _ingest(config: Path, folder: Path, *raws: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for raw in raws:
        (folder / f"{len(list(folder.iterdir()))}.eml").write_bytes(raw)
    code, out = _run(config, "ingest", str(folder), at=datetime(2021, 6, 16, 11, 0, tzinfo=TZ))
    assert code == 0, out


def _attention(config: Path, as_of: str = LATER) -> list[dict[str, Any]]:
    return list(_json(config, "status", "--json", "--as-of", as_of)["attention"])


def _due(config: Path, as_of: str) -> dict[str, dict[str, Any]]:
    planned = _json(config, "remind", "--dry-run", "--json", "--as-of", as_of)
    return {p["unit"]: p for p in planned if p["kind"] != RECEIPT}


def _bounced_notices(config: Path, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    """The late notices of 06-16 go out; 郏县's first address and 宝丰's only one bounce; a 系统退信 names an
    address mailbot never wrote to."""
    assert _run(config, "remind", at=NOTICE_DAY)[0] == 0
    sent = {d.rcpt_tos[0]: d.message for d in smtp.delivered}
    assert set(sent) == {"jiaxian@example.cn", "baofeng@example.cn"}
    _ingest(
        config,
        tmp_path / "bounces",
        dsn_bounce(sent["jiaxian@example.cn"].as_bytes(), "jiaxian@example.cn", BOUNCED_AT),
        plain_550_bounce("baofeng@example.cn", BOUNCED_AT),  # no Message-ID: matched by the recipient
        netease_bounce("old_wugang@163.com", "【提醒】", BOUNCED_AT),
    )


def test_a_bounced_late_notice_stops_mail_to_that_address_until_staff_replace_it(
    config: Path, smtp: ScriptedSmtp, tmp_path: Path
) -> None:
    _bounced_notices(config, smtp, tmp_path)
    mails = {m["to"]: m for m in _json(config, "outbox", "list", "--json")["mails"]}
    assert mails["jiaxian@example.cn"]["status"] == "bounced" and mails["baofeng@example.cn"]["status"] == "bounced"
    assert "550 5.1.1" in mails["jiaxian@example.cn"]["last_error"]
    messages = _json(config, "export", "--format", "json")["messages"]
    assert {m["kind"] for m in messages} == {"auto_or_bounce"}  # the bounces themselves are never answered

    items = _attention(config)
    dead = {i["address"]: i for i in items if i["code"] == "undeliverable"}
    assert set(dead) == {"jiaxian@example.cn", "baofeng@example.cn"}
    assert dead["jiaxian@example.cn"]["unit"] == "郏县总工会" and not dead["jiaxian@example.cn"]["held"]
    assert dead["baofeng@example.cn"]["held"]  # 宝丰 has no other address
    [former] = [i for i in items if i["code"] == "bounce_former_address"]
    assert former["info"] and "old_wugang@163.com" in former["detail"]

    code, digest = _run(config, "digest", "--dry-run", "--as-of", LATER)
    assert code == 0 and "单位地址无法投递" in digest
    assert "郏县总工会　jiaxian@example.cn" in digest and "宝丰县总工会　baofeng@example.cn" in digest
    assert "暂停发送" in digest and "供参考" in digest and "old_wugang@163.com" in digest

    due = _due(config, "2021-06-18T09:00")  # the next late notice
    assert due["郏县总工会"]["to"] == "jiaxian2@example.cn" and not due["郏县总工会"]["held"]
    assert due["宝丰县总工会"]["held"] and due["宝丰县总工会"]["to"] == ""

    assert _run(config, "units", "retire-address", "jiaxian@example.cn")[0] == 0
    assert _run(config, "units", "replace-address", "baofeng@example.cn", "baofeng_new@example.cn")[0] == 0
    assert not [i for i in _attention(config) if i["code"] == "undeliverable"]
    assert "单位地址无法投递" not in _run(config, "digest", "--dry-run", "--as-of", LATER)[1]
    due = _due(config, "2021-06-18T09:00")
    assert due["郏县总工会"]["to"] == "jiaxian2@example.cn" and due["宝丰县总工会"]["to"] == "baofeng_new@example.cn"


def test_it_says_no_to_retiring_an_address_no_unit_has(config: Path) -> None:
    with pytest.raises(InputError, match="不是任何单位的地址"):
        _run(config, "units", "retire-address", "nobody@example.cn")


# ---------------------------------------------------------------------------------------------------------
# A unit's letter and spam


QUESTION = make_message(
    subject="咨询：附件3怎么填",
    body="您好：\n附件3中的产品来源是否按平台分别填写？\n另：我单位联系电话改为 0375-1234567。\n谢谢！\n郏县总工会",
    received=datetime(2021, 6, 10, 10, 0, tzinfo=TZ),
    message_id="<question-1@example.cn>",
)
SPAM = make_message(
    sender="promo@shop.example.com",
    subject="618大促，全场五折",
    body="点击领取优惠券",
    received=datetime(2021, 6, 10, 11, 0, tzinfo=TZ),
)


def test_a_units_question_shows_with_its_first_lines_until_handled_and_spam_is_only_counted(
    config: Path, tmp_path: Path
) -> None:
    _ingest(config, tmp_path / "in", QUESTION, SPAM)
    status = _json(config, "status", "--json", "--as-of", LATER)
    assert status["by_kind"] == {"not_a_report": 2} and status["other_mail"] == 1
    [letter] = status["attention"]  # the spam is no item
    assert (letter["code"], letter["unit"], letter["subject"]) == ("unit_wrote", "郏县总工会", "咨询：附件3怎么填")
    assert letter["excerpt"].splitlines()[1] == "附件3中的产品来源是否按平台分别填写？"
    digest = _run(config, "digest", "--dry-run", "--as-of", "2021-06-10T17:30")[1]  # that day's digest
    assert "单位来信" in digest and "“咨询：附件3怎么填”" in digest and "0375-1234567" in digest
    assert "promo@shop.example.com" not in digest and "另有其他邮件 1 封" in digest

    assert _run(config, "handled", str(letter["message"]))[0] == 0
    assert _json(config, "status", "--json", "--as-of", LATER)["attention"] == []
    assert "单位来信" not in _run(config, "digest", "--dry-run", "--as-of", LATER)[1]


def test_handled_takes_a_message_id_and_refuses_an_unknown_one(config: Path, tmp_path: Path) -> None:
    _ingest(config, tmp_path / "in", QUESTION)
    assert _run(config, "handled", "<question-1@example.cn>")[0] == 0
    assert _attention(config) == []
    with pytest.raises(InputError, match="no such message"):
        _run(config, "handled", "999")


def test_a_units_question_gets_no_receipt(mailer: App, smtp: ScriptedSmtp, tmp_path: Path) -> None:
    ingest_raws(mailer, tmp_path / "in", QUESTION)
    now = datetime(2021, 6, 10, 10, 5, tzinfo=TZ)
    mailer.clock.moment = now  # type: ignore[attr-defined]
    assert mailer.reminders().queue(now, kinds={RECEIPT}) == []
    mailer.outbox().drain()
    assert smtp.delivered == []
    with transaction(mailer.sessions) as session:
        assert session.scalar(select(Message.kind)) == "not_a_report"
        assert [i.code for i in needs_a_person(session, now, 14)] == ["unit_wrote"]


def test_a_bounced_digest_to_staff_shows_until_staff_cancel_it(
    tmp_path: Path, smtp: ScriptedSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    section = server_section(smtp, "TEST_SMTP_PASSWORD", user=USER, **{"from": USER})
    staff = {"digest_to": ["wangwei@example.cn"]}
    config = write_config(tmp_path, units=[JIAXIAN], smtp=section, imap={"user": USER}, staff=staff)
    assert _run(config, "db", "upgrade")[0] == 0
    evening = datetime(2021, 6, 16, 17, 30, tzinfo=TZ)
    assert _run(config, "digest", at=evening)[0] == 0
    [digest] = smtp.delivered
    _ingest(config, tmp_path / "bounces", dsn_bounce(digest.message.as_bytes(), "wangwei@example.cn", evening))
    [item] = [i for i in _attention(config, "2021-06-17T09:00") if i["group"] == "mails"]
    assert (item["code"], item["kind"], item["address"]) == ("bounced", "digest", "wangwei@example.cn")
    preview = tmp_path / "digest.txt"
    assert _run(config, "digest", "--dry-run", "-o", str(preview), at=evening.replace(day=17))[0] == 0
    assert f"！邮件 {item['mail']}（每日汇总，发往 wangwei@example.cn）被退回" in preview.read_text(encoding="utf-8")
    assert _run(config, "outbox", "cancel", str(item["mail"]))[0] == 0
    assert [i for i in _attention(config, "2021-06-17T09:00") if i["group"] == "mails"] == []
