"""Reminders through the outbox to a real SMTP server on loopback: once each, one recipient, marked
auto-generated; 4xx retried later, 5xx failed, 535 pauses everything; a crashed sender never sends twice."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select, update

from mailbot.app import App
from mailbot.cli import main
from mailbot.clock import TZ
from mailbot.config import load_config
from mailbot.errors import ConfigError
from mailbot.notices import plan
from mailbot.outbox import DrainResult
from mailbot.report.attention import needs_a_person
from mailbot.report.status import build_status
from mailbot.store import outbox as store
from mailbot.store.db import transaction
from mailbot.store.models import OutboxMail

from dbfixtures import MORNING, UNITS, FixedClock, make_config, server_section, write_config
from smtpservers import PASSWORD, USER, ScriptedSmtp


def statuses(app: App) -> list[str]:
    with transaction(app.sessions) as session:
        return list(session.scalars(select(OutboxMail.status).order_by(OutboxMail.id)))


def test_it_reminds_every_unit_once_even_when_run_twice(mailer: App, smtp: ScriptedSmtp) -> None:
    for _ in range(2):
        mailer.reminders().queue(MORNING)
        mailer.outbox().drain()
    assert sorted(d.rcpt_tos[0] for d in smtp.delivered) == sorted(unit["emails"][0] for unit in UNITS)
    assert all(len(d.rcpt_tos) == 1 for d in smtp.delivered)
    first = next(d.message for d in smtp.delivered if d.rcpt_tos == ["jiaxian@example.cn"])
    assert first["Auto-Submitted"] == "auto-generated" and first["X-Auto-Response-Suppress"] == "All"
    assert first["Subject"] == "【提醒】请于6月15日前报送2021年上半年工会消费惠农统计表（郏县总工会）"
    text = first.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("郏县总工会：") and "还有7天" in text
    [attachment] = list(first.iter_attachments())
    sheet = openpyxl.load_workbook(io.BytesIO(attachment.get_content())).active
    assert [c.value for c in sheet[3]] == ["单位名称", "产品名称", "产品来源", "采购方式", "金额（元）", "合计（元）"]
    assert statuses(mailer) == ["sent"] * len(UNITS)


@pytest.mark.parametrize("days", [0, 8, 22])  # a reminder, a late notice, a weekly one
def test_it_plans_the_same_mails_with_or_without_their_attachments(mailer: App, days: int) -> None:
    """`remind --dry-run` and the console's outbox list the mails without building their blank tables."""
    at = MORNING + timedelta(days=days)
    built = mailer.reminders().planned(at, attachments=True)
    listed = mailer.reminders().planned(at, attachments=False)
    assert built and all(p.mail.attachment for p in built if p.mail.attachment_name)
    assert all(p.mail.attachment is None for p in listed)
    assert [p.to_json() for p in listed] == [p.to_json() for p in built]
    assert [(p.notice, replace(p.mail, attachment=None)) for p in built] == [(p.notice, p.mail) for p in listed]


def test_planning_reads_only_what_the_planned_periods_need_and_plans_the_same_mails(mailer: App) -> None:
    """`planned` reads the submitted pairs of the periods being planned and asks the outbox about its candidate
    keys only; the mails are those that planning with every pair and every key of the outbox gives."""
    reminders = mailer.reminders()
    for days in (0, 8):  # a round queued and partly sent, then the next one beside it
        reminders.queue(MORNING + timedelta(days=days))
        mailer.outbox().drain()
    planned_somewhere = False
    for days in (8, 9, 15, 22):
        at = MORNING + timedelta(days=days)
        periods = reminders.periods(at)
        config = mailer.config.reminders
        max_age = timedelta(days=config.receipt_max_age_days)
        with transaction(mailer.sessions) as session:
            everything = store.planning_state(session, at, max_age, config.receipts)
        expected = plan(everything, at, periods, config, mailer.calendar, max_age)
        assert [p.notice for p in reminders.planned(at, attachments=False)] == expected
        planned_somewhere |= bool(expected)
    assert planned_somewhere  # the comparison was made on mails, not only on empty lists


def test_two_planners_queueing_the_same_mails_at_once_queue_each_once(mailer: App) -> None:
    """The worker's receipts and a `mailbot poll` typed meanwhile plan the same mails in overlapping
    transactions: the second waits for the first and queues nothing, instead of failing on the unique key."""
    second = App(mailer.config, clock=mailer.clock)
    mails = [
        store.Outgoing(key=f"k{n}", kind="reminder", to="a@example.cn", subject="s", text="t", html="", message_id="")
        for n in range(3)
    ]
    later: list[list[str]] = []
    with transaction(mailer.sessions) as session:
        assert store.enqueue(session, mails, MORNING) == ["k0", "k1", "k2"]
        # Not committed yet: the other planner's INSERT (or, on SQLite, its BEGIN IMMEDIATE) must wait for it.
        planner = threading.Thread(target=lambda: later.append(_enqueue(second, mails)))
        planner.start()
        planner.join(1.0)
        assert planner.is_alive()
    planner.join(30)
    assert later == [[]]
    assert statuses(mailer) == ["pending"] * 3
    second.close()


def _enqueue(app: App, mails: list[store.Outgoing]) -> list[str]:
    with transaction(app.sessions) as session:
        return store.enqueue(session, mails, MORNING)


def test_a_temporary_refusal_is_retried_after_a_pause(mailer: App, smtp: ScriptedSmtp) -> None:
    smtp.replies = ["451 DT:SPM 请稍后重试"]
    mailer.reminders().queue(MORNING)
    first = mailer.outbox().drain()
    assert (first.retrying, first.sent) == (1, len(UNITS) - 1)
    assert mailer.outbox().drain().sent == 0  # not yet: the backoff has not passed
    mailer.clock.moment = MORNING + timedelta(minutes=2)  # type: ignore[attr-defined]
    assert mailer.outbox().drain().sent == 1
    assert len(smtp.delivered) == len(UNITS) and statuses(mailer) == ["sent"] * len(UNITS)


def test_a_permanent_refusal_fails_that_mail_only(mailer: App, smtp: ScriptedSmtp) -> None:
    smtp.replies = ["554 DT:SPM 发送的邮件内容包含了未被许可的信息"]
    mailer.reminders().queue(MORNING)
    result = mailer.outbox().drain()
    assert (result.failed, result.sent) == (1, len(UNITS) - 1)
    mailer.clock.moment = MORNING + timedelta(days=1)  # type: ignore[attr-defined]
    assert mailer.outbox().drain().sent == 0
    with transaction(mailer.sessions) as session:
        failed = session.scalars(select(OutboxMail).where(OutboxMail.status == "failed")).one()
        assert failed.last_error.startswith("554")
        shown = build_status(session, MORNING, needs_a_person(session, MORNING, 14)).to_json()[
            "outbox"
        ]  # `mailbot status` shows it to staff
    assert shown["paused"] is None
    assert [(m["id"], m["status"], m["to"]) for m in shown["mails"]] == [(failed.id, "failed", failed.to_address)]


def test_a_refused_login_pauses_all_sending_without_retrying(
    mailer: App, smtp: ScriptedSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp.password = "the-new-code"
    mailer.reminders().queue(MORNING)
    result = mailer.outbox().drain()
    assert result.paused is not None and "535" in result.paused
    for _ in range(3):
        assert mailer.outbox().drain().paused is not None
    assert smtp.logins == 1 and smtp.delivered == []  # one login attempt, then nothing against the account
    assert statuses(mailer) == ["pending"] * len(UNITS)
    with transaction(mailer.sessions) as session:
        assert "535" in build_status(session, MORNING, []).outbox["paused"]  # `mailbot status` says so
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "the-new-code")
    with transaction(mailer.sessions) as session:
        from mailbot.store import outbox as store

        assert store.resume(session)
    assert mailer.outbox().drain().sent == len(UNITS)


def test_it_sends_at_most_the_configured_mails_a_minute(mailer: App, smtp: ScriptedSmtp) -> None:
    import dataclasses

    mailer.config = dataclasses.replace(mailer.config, outbox=dataclasses.replace(mailer.config.outbox, per_minute=4))
    mailer.reminders().queue(MORNING)
    first = mailer.outbox().drain()
    assert (first.sent, first.throttled) == (4, True)
    mailer.clock.moment = MORNING + timedelta(seconds=61)  # type: ignore[attr-defined]
    assert mailer.outbox().drain().sent == len(UNITS) - 4


def test_after_a_crash_a_mail_never_handed_over_is_sent_and_one_that_may_have_been_is_not(
    mailer: App, smtp: ScriptedSmtp
) -> None:
    mailer.reminders().queue(MORNING)
    with transaction(mailer.sessions) as session:  # what a sender killed mid-way leaves behind
        ids = list(session.scalars(select(OutboxMail.id).order_by(OutboxMail.id)))
        session.execute(update(OutboxMail).where(OutboxMail.id == ids[0]).values(status="sending", claimed_at=MORNING))
        session.execute(
            update(OutboxMail).where(OutboxMail.id == ids[1]).values(status="delivering", claimed_at=MORNING)
        )
    assert mailer.outbox().drain().sent == len(UNITS) - 2  # the claims are fresh: maybe a live sender's
    mailer.clock.moment = MORNING + timedelta(minutes=11)  # type: ignore[attr-defined]
    result = mailer.outbox().drain()
    assert (result.requeued, result.uncertain, result.sent) == (1, 1, 1)
    assert statuses(mailer)[:2] == ["sent", "uncertain"] and len(smtp.delivered) == len(UNITS) - 1


def test_a_sender_that_cannot_start_leaves_the_mail_pending(mailer: App, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailbot.errors import ConfigError

    monkeypatch.delenv("TEST_SMTP_PASSWORD")
    mailer.reminders().queue(MORNING)
    with pytest.raises(ConfigError):
        mailer.outbox().drain()
    assert statuses(mailer) == ["pending"] * len(UNITS)


def test_a_dead_senders_claims_are_taken_back_at_once_and_a_live_ones_never(mailer: App) -> None:
    """The claim names its process: one that no longer runs is over without waiting out the lease."""
    mailer.reminders().queue(MORNING)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with transaction(mailer.sessions) as session:
        ids = list(session.scalars(select(OutboxMail.id).order_by(OutboxMail.id)))
        gone, alive = f"{socket.gethostname()}:{dead.stdout.strip()}", f"{socket.gethostname()}:{os.getppid()}"
        for mail_id, claimer in ((ids[0], gone), (ids[1], alive)):
            session.execute(
                update(OutboxMail)
                .where(OutboxMail.id == mail_id)
                .values(status="sending", claimed_at=MORNING, claimed_by=claimer)
            )
    result = mailer.outbox().drain()
    assert (result.requeued, result.sent) == (1, len(UNITS) - 1)
    assert statuses(mailer)[:2] == ["sent", "sending"]


def test_a_sender_killed_mid_send_and_restarted_sends_every_mail_once(
    tmp_path: Path, database_url: str, smtp: ScriptedSmtp
) -> None:
    """A real `mailbot outbox send` process, SIGKILLed while the server holds a message it has not answered yet,
    then started again: every unit's mail reaches the server exactly once; the one that was in the server's
    hands is marked uncertain for staff instead of being sent twice."""
    smtp.data_delay = 0.4
    section = server_section(smtp, "TEST_SMTP_PASSWORD", user=USER, **{"from": USER})
    config = write_config(tmp_path, UNITS, database={"url": database_url}, smtp=section)
    env = {**os.environ, "TEST_SMTP_PASSWORD": PASSWORD}
    app = App(load_config(config), clock=FixedClock(MORNING))
    try:
        app.upgrade()
        app.reminders().queue(MORNING)
        command = [sys.executable, "-m", "mailbot", "--config", str(config), "outbox", "send"]
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while len(smtp.delivered) < 3 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert len(smtp.delivered) == 3
        assert statuses(app).count("delivering") == 1  # the third: the server has it, the sender never heard
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        assert sorted(d.rcpt_tos[0] for d in smtp.delivered) == sorted(unit["emails"][0] for unit in UNITS)
        assert sorted(statuses(app)) == ["sent"] * (len(UNITS) - 1) + ["uncertain"]
    finally:
        app.close()


def test_the_monthly_annex2_nudge_carries_the_blank_annex2(mailer: App, smtp: ScriptedSmtp) -> None:
    reminders = replace(mailer.config.reminders, annex2_nudge_day=25)
    mailer.config = replace(mailer.config, reminders=reminders)
    friday = datetime(2021, 6, 25, 9, 0, tzinfo=TZ)
    mailer.clock.moment = friday  # type: ignore[attr-defined]
    mailer.reminders().queue(friday)  # the nudge, and the June table's (missed) 7-days-late notice
    mailer.outbox().drain()
    nudges = [d for d in smtp.delivered if "专项活动" in d.message["Subject"]]
    assert sorted(d.rcpt_tos[0] for d in nudges) == sorted(unit["emails"][0] for unit in UNITS)
    first = nudges[0].message
    assert "2021年6月" in first["Subject"] and "工会消费惠农专项活动统计表" in first["Subject"]
    [attachment] = list(first.iter_attachments())
    sheet = openpyxl.load_workbook(io.BytesIO(attachment.get_content())).active
    assert (sheet["A1"].value, sheet["A2"].value) == ("附件2", "工会消费惠农专项活动统计表")
    assert sheet["A3"].value == "填报单位：郏县总工会" and sheet["B4"].value == "活动名称"
    assert sheet["A15"].value == "（备注：此表于单项活动结束后1周内发送至pingqf163@example.cn）"


def _with_lease(app: App, seconds: int) -> App:
    app.config = replace(app.config, outbox=replace(app.config.outbox, lease_seconds=seconds))
    return app


def _delivered_once(smtp: ScriptedSmtp) -> bool:
    """Every unit's mail reached the server, none of them twice."""
    return Counter(d.rcpt_tos[0] for d in smtp.delivered) == Counter(unit["emails"][0] for unit in UNITS)


def _drain_with_a_second_sender(
    mailer: App, hooks: list[Callable[[], object]], seconds_later: int
) -> tuple[DrainResult, DrainResult]:
    """Queue the morning's mails and drain them with a 30 s lease; while the server holds the first mail at the
    hooked step, a second sender drains `seconds_later`. Returns (first drain, second drain)."""
    _with_lease(mailer, 30)
    mailer.reminders().queue(MORNING)
    meanwhile: list[DrainResult] = []

    def second_sender() -> None:
        mailer.clock.moment = MORNING + timedelta(seconds=seconds_later)  # type: ignore[attr-defined]
        meanwhile.append(mailer.outbox().drain())

    hooks.append(second_sender)
    first = mailer.outbox().drain()
    return first, meanwhile[0]


def test_a_sender_stalled_past_the_lease_before_handing_over_does_not_send_the_mail_again(
    mailer: App, smtp: ScriptedSmtp
) -> None:
    """While the first sender waits for its first RCPT answer, the lease runs out and a second drain (the
    same process, as the worker's next round would be) takes the mail back and sends everything. When the
    first sender wakes up it must not send the text it no longer owns."""
    first, meanwhile = _drain_with_a_second_sender(mailer, smtp.on_rcpt, seconds_later=31)
    assert (meanwhile.requeued, meanwhile.sent) == (1, len(UNITS))
    assert first.claim_lost and (first.sent, first.retrying, first.failed, first.uncertain) == (0, 0, 0, 0)
    assert _delivered_once(smtp)
    assert statuses(mailer) == ["sent"] * len(UNITS)


def test_a_sender_stalled_past_the_lease_after_handing_over_records_the_mail_it_sent(
    mailer: App, smtp: ScriptedSmtp
) -> None:
    """The server holds the first mail's text and has not answered when the lease runs out: the second drain
    marks that mail uncertain and sends the others. The first sender then hears 250: the mail went out once,
    and it is recorded sent rather than left for staff to check."""
    first, meanwhile = _drain_with_a_second_sender(mailer, smtp.on_data, seconds_later=31)
    assert (meanwhile.uncertain, meanwhile.sent) == (1, len(UNITS) - 1)
    assert not first.claim_lost and first.sent == 1
    assert _delivered_once(smtp)
    assert statuses(mailer) == ["sent"] * len(UNITS)


def test_a_claim_within_the_lease_is_left_to_its_sender(mailer: App, smtp: ScriptedSmtp) -> None:
    """A slow but live sender keeps its mail: a drain meanwhile, within `outbox.lease_seconds`, leaves it."""
    first, meanwhile = _drain_with_a_second_sender(mailer, smtp.on_rcpt, seconds_later=29)
    assert (meanwhile.requeued, meanwhile.sent) == (0, len(UNITS) - 1)
    assert not first.claim_lost and first.sent == 1
    assert _delivered_once(smtp)


def test_it_rejects_a_lease_that_is_not_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"outbox\.lease_seconds"):
        make_config(tmp_path, "sqlite://", outbox={"lease_seconds": 0})
    assert make_config(tmp_path, "sqlite://").outbox.lease_seconds == 600


def test_outbox_send_exits_5_when_the_server_refuses_the_login(
    tmp_path: Path, database_url: str, smtp: ScriptedSmtp, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The README's exit code for a refused login, when it happens and on every run while sending is paused;
    the server sees one login attempt only."""
    smtp.password = "the-new-code"
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    section = server_section(smtp, "TEST_SMTP_PASSWORD", user=USER, **{"from": USER})
    config = write_config(tmp_path, UNITS, database={"url": database_url}, smtp=section)
    app = App(load_config(config), clock=FixedClock(MORNING))
    try:
        app.upgrade()
        app.reminders().queue(MORNING)
    finally:
        app.close()
    # `remind` queues what is due, then finds sending paused like `outbox send` does.
    for command in (["outbox", "send"], ["outbox", "send"], ["remind", "--as-of", "2021-06-08T09:00"]):
        with pytest.raises(SystemExit) as exited:
            main(["--config", str(config), *command])
        assert exited.value.code == 5
        err = capsys.readouterr().err
        assert "sending is paused" in err and "535" in err and "mailbot outbox resume" in err
    assert smtp.logins == 1 and smtp.delivered == []
