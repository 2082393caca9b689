"""`mailbot demo`: the sample mailbox, the embedded servers and a full run through the real pipeline."""

from __future__ import annotations

import base64
import io
import json
import smtplib
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from webfixtures import csrf_of, logged_in, serving

from mailbot.app import App
from mailbot.config import load_config, read_secret
from mailbot.defaults import load_default_units
from mailbot.demo.run import CONSOLE_URL, CONSOLE_USER, DemoResult, demo_clock, run_demo
from mailbot.demo.samples import SampleMessage, build_mailbox, gbk_named_zip
from mailbot.demo.seed2020 import GRAND_TOTAL_WAN, INCONSISTENT_IN_SEED, SEED_2020, WAN
from mailbot.demo.servers import DEMO_PASSWORD, DEMO_USER, DemoSmtpServer
from mailbot.errors import InputError

LATE, MISSING, NIL, QQ = "新华区总工会", "石龙区总工会", "舞阳铁矿工会", "高新区工会联合会"


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


@pytest.fixture(scope="module")
def demo_and_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, str]:
    console = _quiet()
    result = run_demo(tmp_path_factory.mktemp("run") / "demo", console=console)
    return result, console.file.getvalue()  # type: ignore[attr-defined]  # the StringIO of _quiet()


@pytest.fixture(scope="module")
def demo(demo_and_output: tuple[DemoResult, str]) -> DemoResult:
    return demo_and_output[0]


@pytest.fixture(scope="module")
def samples() -> dict[str, SampleMessage]:
    return {f"demo2021.{s.key}@mailbot.demo": s for s in build_mailbox(load_default_units())}


def _by_id(demo: DemoResult) -> dict[str, dict[str, Any]]:
    return {m["message_id"]: m for m in demo.messages}


# ---------------------------------------------------------------------------------------------------------
# The seed table


def test_it_sums_each_seed_block_to_its_stated_total() -> None:
    assert len(SEED_2020) == 29
    for block in SEED_2020:
        if block.unit in INCONSISTENT_IN_SEED:
            continue
        assert abs(block.rows_total_wan - block.stated_total_wan) <= Decimal("0.01"), block.unit


def test_it_totals_the_seed_to_the_circulars_3341_57() -> None:
    assert sum((b.stated_total_wan for b in SEED_2020), Decimal(0)) == GRAND_TOTAL_WAN == Decimal("3341.57")


def test_it_spells_seed_units_as_the_table_does() -> None:
    names = [b.unit for b in SEED_2020]
    assert {"郟县", "宝丰", "平顶山 发电分公司", "舞阳铁矿"} <= set(names)
    for unit, block in zip(load_default_units(), SEED_2020, strict=True):
        assert block.unit in (unit.name, *unit.aliases)


# ---------------------------------------------------------------------------------------------------------
# The sample mailbox


def test_it_builds_the_same_mailbox_bytes_every_time() -> None:
    first, second = build_mailbox(load_default_units()), build_mailbox(load_default_units())
    assert [(s.key, s.raw, s.received) for s in first] == [(s.key, s.raw, s.received) for s in second]
    assert 30 <= len(first) <= 40


def test_it_labels_a_gbk_subject_gb2312_as_old_clients_do(samples: dict[str, SampleMessage]) -> None:
    raw = samples["demo2021.jiaxian@mailbot.demo"].raw
    subject = raw.split(b"\r\nSubject: ", 1)[1].split(b"\r\nDate:", 1)[0]
    assert subject.startswith(b"=?gb2312?B?")
    decoded = b"".join(base64.b64decode(word.split(b"?")[3]) for word in subject.split(b"\r\n "))
    assert "郟".encode("gbk") in decoded


def test_it_writes_the_zip_member_name_as_gbk_without_the_utf8_flag() -> None:
    data = gbk_named_zip("平煤神马集团工会消费惠农统计表.xlsx", b"PK\x03\x04 inner")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        (info,) = archive.infolist()
        assert info.flag_bits & 0x800 == 0
        assert info.filename.encode("cp437").decode("gbk") == "平煤神马集团工会消费惠农统计表.xlsx"
        assert archive.read(info) == b"PK\x03\x04 inner"


def test_it_accepts_smtp_auth_for_the_demo_user_without_tls() -> None:
    with DemoSmtpServer() as server:
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            client.login(DEMO_USER, DEMO_PASSWORD)
            client.sendmail(DEMO_USER, ["unit@example.cn"], b"Subject: hi\r\n\r\nhello\r\n")
        with (
            smtplib.SMTP(server.host, server.port, timeout=5) as client,
            pytest.raises(smtplib.SMTPAuthenticationError),
        ):
            client.login(DEMO_USER, "wrong")
    assert [m.rcpt_tos for m in server.messages] == [("unit@example.cn",)]


# ---------------------------------------------------------------------------------------------------------
# A full run


def test_it_records_every_sample_message_exactly_once(demo: DemoResult, samples: dict[str, SampleMessage]) -> None:
    assert demo.recorded == demo.mailbox_count == len(samples) == len(demo.messages)
    assert sorted(m["message_id"] for m in demo.messages) == sorted(samples)


def test_it_attributes_registered_senders_to_their_units(demo: DemoResult, samples: dict[str, SampleMessage]) -> None:
    messages = _by_id(demo)
    for message_id, sample in samples.items():
        if sample.unit is not None and sample.kind != "auto_or_bounce":
            assert messages[message_id]["unit"] == sample.unit, sample.key


def test_it_gives_each_sample_the_expected_kind(demo: DemoResult, samples: dict[str, SampleMessage]) -> None:
    kinds = {mid: m["kind"] for mid, m in _by_id(demo).items()}
    assert kinds == {mid: s.kind for mid, s in samples.items()}


def test_it_finds_the_late_unit_late_and_the_missing_unit_missing(demo: DemoResult) -> None:
    assert demo.verdicts[LATE] == "late"
    assert demo.verdicts[MISSING] == "missing"
    assert demo.verdicts[NIL] == "nil"
    assert list(demo.verdicts) == [u.name for u in load_default_units()]
    assert sorted(demo.verdicts.values()).count("on_time") == 26


def test_it_reads_every_units_table_to_the_seeds_figures(demo: DemoResult) -> None:
    # The demo mailbox is built from seed 003's blocks, which are in the registry's order.
    for block, unit in zip(SEED_2020, load_default_units(), strict=True):
        if demo.verdicts[unit.name] in ("on_time", "late"):
            assert demo.totals[unit.name] == block.rows_total_wan * WAN, unit.name
    assert demo.totals[NIL] == 0 and MISSING not in demo.totals


def test_it_counts_the_auto_reply_and_the_bounce_as_auto_or_bounce(demo: DemoResult) -> None:
    messages = _by_id(demo)
    for key in ("gongdian-autoreply", "bounce"):
        assert messages[f"demo2021.{key}@mailbot.demo"]["kind"] == "auto_or_bounce"


def test_it_counts_the_qq_sender_for_its_unit_with_unknown_sender(demo: DemoResult) -> None:
    message = _by_id(demo)["demo2021.gaoxin@mailbot.demo"]
    assert message["unit"] == QQ
    assert message["from"] == "1538846217@qq.com"
    assert message["sender_known"] is False
    assert "unknown_sender" in {p["code"] for p in message["problems"]}
    assert demo.verdicts[QQ] == "on_time"


def test_it_answers_every_units_mail_and_chases_only_the_missing_unit(demo: DemoResult) -> None:
    """As of 06-18 12:00 the demo does the worker's day: a receipt per mail a unit sent from a registered address
    (the QQ sender's waits until staff confirm the address: its tables name the unit, but anyone can write a
    name), none to the auto-reply, the bounce or the stranger; the 3-days-late notice to the one unit still
    missing; everything delivered once."""
    answered = sorted(
        m["unit"]
        for m in demo.messages
        if m["kind"] in ("report", "nil_report", "rejected_input") and m["sender_known"]
    )
    assert sorted(m["unit"] for m in demo.sent if m["kind"] == "receipt") == answered
    others = [(m["kind"], m["unit"], m["to"]) for m in demo.sent if m["kind"] != "receipt"]
    assert others == [("late_notice", MISSING, "shilong@example.cn"), ("digest", "", "staff@example.cn")]
    assert {m["status"] for m in demo.sent} == {"sent"} and demo.smtp_received == len(demo.sent)
    assert len(list((demo.folder / "sent").glob("*.eml"))) == len(demo.sent)
    assert all(m["to"] != "1538846217@qq.com" for m in demo.sent)


def test_it_leaves_the_config_database_and_exports_in_the_folder(demo_and_output: tuple[DemoResult, str]) -> None:
    demo, output = demo_and_output
    for name in ("mailbot.toml", "mailbot.db", "export.json", "export.xlsx"):
        assert (demo.folder / name).is_file(), name
    # What staff read, and where the demo says they are.
    for name in ("digest.html", "汇总表.xlsx", "通报草稿.docx"):
        assert (demo.folder / name).stat().st_size > 5000, name
        assert str(demo.folder / name) in output.replace("\n", ""), name
    config = load_config(demo.folder / "mailbot.toml")
    assert config.database_url == f"sqlite:///{demo.database}"
    assert len(config.units) == 29
    exported = json.loads((demo.folder / "export.json").read_text(encoding="utf-8"))
    assert len(exported["messages"]) == demo.recorded


def test_it_opens_the_console_on_its_data_with_a_demo_account(demo_and_output: tuple[DemoResult, str]) -> None:
    """Before the re-run below, which makes a new password. The printed command, URL and account work."""
    demo, output = demo_and_output
    assert f"console:  mailbot --config {demo.config_path} web" in output
    assert f"then open {CONSOLE_URL} and log in as {CONSOLE_USER}, password {demo.console_password}" in output
    config = load_config(demo.config_path)
    assert (config.web.host, config.web.port, config.web.base_url) == ("127.0.0.1", 8080, CONSOLE_URL)
    secret = read_secret(config.web.secret_env, config.web.secret_file, "web", config.base_dir, keys="secret")
    assert len(secret) >= 32 and secret not in demo.config_path.read_text(encoding="utf-8")
    assert (demo.folder / config.web.secret_file).stat().st_mode & 0o077 == 0  # only its owner reads it
    app = App(config, clock=demo_clock)
    try:
        with serving(app) as base, logged_in(base, CONSOLE_USER, demo.console_password) as client:
            assert client.get("/").status_code == 200
            with httpx.Client(base_url=base) as stranger:
                token = csrf_of(stranger.get("/login").text)
                refused = stranger.post(
                    "/login", data={"username": CONSOLE_USER, "password": "demo-password", "csrf_token": token}
                )
                assert refused.status_code != 303  # the password is the printed one, not a guessable one
    finally:
        app.close()


def test_it_gives_the_same_result_when_run_again_on_the_same_folder(demo: DemoResult) -> None:
    again = run_demo(demo.folder, console=_quiet())
    assert again.recorded == demo.recorded
    assert again.by_kind == demo.by_kind
    assert again.verdicts == demo.verdicts
    assert again.messages == demo.messages


def test_it_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "mailbot.db").write_bytes(b"someone's real database")
    with pytest.raises(InputError):
        run_demo(tmp_path, console=_quiet())
    assert (tmp_path / "mailbot.db").read_bytes() == b"someone's real database"
