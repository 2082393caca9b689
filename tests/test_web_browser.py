"""The console as staff meet it: headless Chromium (Debian's, through chromedriver) on the real pages of a console
served on loopback over a copy of the demo's database — the login form, the lock after five wrong passwords, the
actions of 待处理 and 免报 clicked as a person clicks them, an attachment downloaded, a unit's hostile subject shown
as text, a viewer without buttons, and every main page at a phone's and an office screen's width.

The tests share one browser and one database and run in file order: the actions' tests change what later pages show.
`MAILBOT_SCREENSHOTS=1` writes the screenshots into docs/console/ (look at them after changing a template)."""

from __future__ import annotations

import email
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from email.message import Message as EmailPart
from email.policy import default
from pathlib import Path
from urllib.parse import quote

import pytest
from browser import (  # noqa: F401 - browser is a fixture
    browser,
    fits,
    fresh,
    log_in,
    png_size,
    post_buttons,
    screenshots,
    submit,
    text_of,
)
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import select
from webfixtures import PASSWORD, STAFF, VIEWER, add_accounts, serving

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.config import load_config
from mailbot.demo.run import DemoResult
from mailbot.store import users
from mailbot.store.db import transaction
from mailbot.store.models import Attachment, Message
from mailbot.web.views import next_round
from mailbot.worker import REMIND_AT

from dbfixtures import FixedClock, ingest_raws
from mailgen import annex3_xlsx, make_message
from reportfixtures import DAY_AFTER, DEMO_PERIOD, demo_run  # noqa: F401 - the demo, made once per session

LOCKABLE = "李强"  # an account of its own for the lock test: the others must still log in afterwards
RECEIVED = datetime(2021, 6, 10, 9, 0, tzinfo=TZ)  # before the demo period's deadline (06-15)
# A table from an address no unit registered, naming no unit: only staff can say whose it is.
STRANGER, STRANGER_ID = "caiwu.2021@qq.com", "browser.stranger@qq.com"
CONFIRMED = "石龙区总工会"  # missing in the demo: the stranger's table is its own, sent on time
EXEMPTED = "新华区总工会"  # missing too, and due a late notice in the next round
# What a unit wrote, hostile: shown as text everywhere, never run.
HOSTILE_SUBJECT, HOSTILE_ID = "<script>alert(1)</script>", "browser.hostile@qq.com"
HOSTILE_NAME = "a\"b'<img src=x onerror=alert(2)>.xlsx"
QINGFANG = "demo2021.qingfang@mailbot.demo"  # the demo's 轻纺工会 report: a table with rows and a problem


@pytest.fixture(scope="module")
def site(demo_run: DemoResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, str]]:  # noqa: F811
    """The console over a copy of the demo's folder (the demo's database stays as the other tests expect it),
    as of the day after the demo period's deadline, with two more messages from unknown addresses; the App and
    the console's base URL."""
    folder = tmp_path_factory.mktemp("console") / "demo"
    shutil.copytree(demo_run.folder, folder)
    app = App(load_config(folder / "mailbot.toml"), clock=FixedClock(DAY_AFTER))
    try:
        add_accounts(app, DAY_AFTER)
        with transaction(app.sessions) as session:
            users.add_user(session, LOCKABLE, "staff", PASSWORD, DAY_AFTER)
        stranger = make_message(STRANGER, "统计表", received=RECEIVED, message_id=f"<{STRANGER_ID}>",
                                attachments=[("附件3.xlsx", annex3_xlsx(unit="某某单位"))])  # fmt: skip
        hostile = make_message("hostile@qq.com", HOSTILE_SUBJECT, received=RECEIVED, message_id=f"<{HOSTILE_ID}>",
                               attachments=[(HOSTILE_NAME, annex3_xlsx("hostile", unit="某某单位"))])  # fmt: skip
        ingest_raws(app, folder.parent / "mail", stranger, hostile)
        with serving(app) as base:
            yield app, base
    finally:
        app.close()


@pytest.fixture(scope="module")
def console(site: tuple[App, str]) -> str:
    return site[1]


def _message(app: App, message_id: str) -> Message:
    with transaction(app.sessions, readonly=True) as session:
        found = session.scalars(select(Message).where(Message.message_id == message_id)).one()
        session.expunge(found)
        return found


def _status(driver: WebDriver, unit: str) -> str:
    """The 报送情况 word of `unit` in the period grid open in the browser."""
    return driver.find_element(By.CSS_SELECTOR, f"tr[data-unit='{unit}'] td:nth-child(2)").text


def _reminded(app: App) -> set[str]:
    """The units the next round would remind of the demo period: what `mailbot remind --dry-run` prints."""
    at = next_round(DAY_AFTER, app.calendar, REMIND_AT)
    return {p.notice.unit for p in app.reminders().planned(at) if p.notice.period == DEMO_PERIOD}


def _status_code(driver: WebDriver) -> int:
    """The HTTP status of the page open in the browser (Navigation Timing Level 2)."""
    return int(driver.execute_script("return performance.getEntriesByType('navigation')[0].responseStatus"))


def _part(raw: bytes, filename: str) -> bytes:
    """The attachment's bytes as the standard library reads the archived message (not mailbot's splitter)."""
    for part in email.message_from_bytes(raw, policy=default).walk():
        if isinstance(part, EmailPart) and part.get_filename() == filename:
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            return data
    raise AssertionError(f"no part named {filename}")


def test_without_a_session_a_page_shows_the_login_form(browser: WebDriver, console: str) -> None:  # noqa: F811
    fresh(browser, console).get(f"{console}/periods/{DEMO_PERIOD}")
    assert browser.current_url == f"{console}/login?next=/periods/{DEMO_PERIOD}"
    assert browser.find_element(By.NAME, "username").is_displayed()
    assert browser.find_element(By.NAME, "password").get_attribute("type") == "password"
    assert "总览" not in text_of(browser)  # nothing of the console before the login


def test_staff_log_in_with_the_form_and_land_on_the_overview(browser: WebDriver, console: str) -> None:  # noqa: F811
    log_in(fresh(browser, console), console, STAFF, PASSWORD)
    assert browser.current_url == f"{console}/"
    assert browser.find_element(By.TAG_NAME, "h1").text == "总览"
    assert STAFF in text_of(browser, "header") and "（只读）" not in text_of(browser, "header")
    card = text_of(browser, f"#period-{DEMO_PERIOD}")
    assert "工会消费惠农统计表" in card and "已报送" in card
    submit(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/logout'] button"))  # 退出
    assert browser.current_url == f"{console}/login"
    browser.get(f"{console}/")
    assert browser.current_url == f"{console}/login?next=/"


def test_five_wrong_passwords_in_the_form_lock_the_account(browser: WebDriver, console: str) -> None:  # noqa: F811
    fresh(browser, console)
    for _ in range(4):
        log_in(browser, console, LOCKABLE, "not the password")
        assert browser.find_element(By.CSS_SELECTOR, ".error").text == "用户名或密码不正确"
    log_in(browser, console, LOCKABLE, "not the password")
    assert "账户已锁定 15 分钟" in browser.find_element(By.CSS_SELECTOR, ".error").text
    log_in(browser, console, LOCKABLE, PASSWORD)  # the right password does not open a locked account
    assert "账户已锁定" in browser.find_element(By.CSS_SELECTOR, ".error").text
    assert browser.current_url == f"{console}/login"


def test_staff_confirm_an_unknown_sender_in_the_inbox_and_its_unit_counts(
    browser: WebDriver,  # noqa: F811
    site: tuple[App, str],
) -> None:
    app, base = site
    message = _message(app, STRANGER_ID).id
    log_in(fresh(browser, base), base, STAFF, PASSWORD)
    browser.get(f"{base}/audit")
    entries = len(browser.find_elements(By.CSS_SELECTOR, "tr.entry"))
    browser.get(f"{base}/periods/{DEMO_PERIOD}")
    assert _status(browser, CONFIRMED) == "未报送"
    browser.get(f"{base}/inbox")
    item = browser.find_element(By.CSS_SELECTOR, f".item[data-message='{message}']")
    assert STRANGER in item.text and "发件人待确认" in text_of(browser, "#group-senders")
    form = item.find_element(By.CSS_SELECTOR, "form[action='/actions/confirm-sender']")
    field = form.find_element(By.NAME, "unit")
    assert field.get_attribute("list") == "units"  # the page's one list of the registry's names
    assert CONFIRMED in [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#units option")]
    field.send_keys(CONFIRMED)
    submit(browser, form.find_element(By.TAG_NAME, "button"))  # 确认此地址属于该单位
    assert browser.current_url == f"{base}/inbox"
    assert text_of(browser, ".flash.ok") == f"已确认 {STRANGER} 属于 {CONFIRMED}，重新读取 1 封邮件"
    assert browser.find_elements(By.CSS_SELECTOR, f".item[data-message='{message}']") == []
    browser.get(f"{base}/periods/{DEMO_PERIOD}")
    assert _status(browser, CONFIRMED) == "按时"  # its table came 06-10, before the deadline
    assert browser.find_elements(By.CSS_SELECTOR, ".flash") == []  # the message was shown once
    browser.get(f"{base}/audit")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.entry")
    assert len(rows) == entries + 1
    newest = [cell.text for cell in rows[0].find_elements(By.TAG_NAME, "td")]
    assert newest[1:4] == [STAFF, "确认发件人", f"address:{STRANGER}"] and CONFIRMED in newest[5]


def test_staff_exempt_a_unit_and_it_is_neither_reminded_nor_missing(
    browser: WebDriver,  # noqa: F811
    site: tuple[App, str],
) -> None:
    app, base = site
    before = _reminded(app)
    assert EXEMPTED in before  # its late notice is due in the next round
    log_in(fresh(browser, base), base, STAFF, PASSWORD)
    browser.get(f"{base}/exemptions")
    form = browser.find_element(By.CSS_SELECTOR, "form[action='/actions/exempt']")
    Select(form.find_element(By.NAME, "unit")).select_by_visible_text(EXEMPTED)
    Select(form.find_element(By.NAME, "period")).select_by_value(DEMO_PERIOD)
    form.find_element(By.NAME, "reason").send_keys("机构调整，本期由市直工会合并报送")
    submit(browser, form.find_element(By.TAG_NAME, "button"))  # 设为免报
    assert browser.current_url == f"{base}/exemptions"
    assert text_of(browser, ".flash.ok") == f"{EXEMPTED} 已免报 {DEMO_PERIOD}"
    row = text_of(browser, f"tr[data-unit='{EXEMPTED}'][data-period='{DEMO_PERIOD}']")
    assert "机构调整，本期由市直工会合并报送" in row and STAFF in row
    browser.get(f"{base}/periods/{DEMO_PERIOD}")
    assert _status(browser, EXEMPTED) == "免报"
    assert _reminded(app) == before - {EXEMPTED}


def test_an_attachment_clicked_on_a_message_page_downloads_as_archived(
    browser: WebDriver,  # noqa: F811
    site: tuple[App, str],
    tmp_path: Path,
) -> None:
    app, base = site
    message = _message(app, QINGFANG)
    with transaction(app.sessions, readonly=True) as session:
        filename = session.scalars(select(Attachment.filename).where(Attachment.message_id == message.id)).one()
    log_in(fresh(browser, base), base, STAFF, PASSWORD)
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    try:
        browser.get(f"{base}/messages/{message.id}")
        browser.find_element(By.LINK_TEXT, "下载原件").click()
        WebDriverWait(browser, 10).until(lambda _: (tmp_path / filename).exists())
        WebDriverWait(browser, 10).until(lambda _: not list(tmp_path.glob("*.crdownload")))
    finally:
        browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "default"})
    assert [p.name for p in tmp_path.iterdir()] == [filename]  # the name the unit gave it
    assert (tmp_path / filename).read_bytes() == _part(app.archive.load(message.sha256), filename)


def test_a_hostile_subject_and_file_name_show_as_text_and_run_nothing(
    browser: WebDriver,  # noqa: F811
    site: tuple[App, str],
) -> None:
    app, base = site
    message = _message(app, HOSTILE_ID).id
    log_in(fresh(browser, base), base, STAFF, PASSWORD)
    pages = {f"/messages/{message}": True, f"/search?q={quote('script')}": True, "/inbox": False}
    for path, lists_files in pages.items():
        browser.get(f"{base}{path}")
        time.sleep(0.2)  # time for an <img onerror> to fail and alert, were it markup
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert  # noqa: B018 - the property raises when no alert is open
        shown = text_of(browser)
        assert HOSTILE_SUBJECT in shown, path
        assert HOSTILE_NAME in shown or not lists_files, path  # the inbox names the mail, not its files
        assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == [], path


def test_a_form_without_its_token_is_refused(browser: WebDriver, site: tuple[App, str]) -> None:  # noqa: F811
    _, base = site
    log_in(fresh(browser, base), base, STAFF, PASSWORD)
    browser.get(f"{base}/exemptions")
    form = browser.find_element(By.CSS_SELECTOR, "form[action='/actions/exempt']")
    Select(form.find_element(By.NAME, "unit")).select_by_visible_text("舞钢市总工会")
    Select(form.find_element(By.NAME, "period")).select_by_value(DEMO_PERIOD)
    form.find_element(By.NAME, "reason").send_keys("无令牌")
    browser.execute_script("arguments[0].querySelector('input[name=csrf_token]').remove()", form)
    submit(browser, form.find_element(By.TAG_NAME, "button"))
    assert _status_code(browser) == 403
    assert browser.find_element(By.TAG_NAME, "h1").text == "无权操作" and "CSRF" in text_of(browser)
    browser.get(f"{base}/exemptions")
    assert browser.find_elements(By.CSS_SELECTOR, "tr[data-unit='舞钢市总工会']") == []  # nothing changed


def test_a_viewer_sees_no_action_buttons(browser: WebDriver, console: str) -> None:  # noqa: F811
    """A viewer reads every page but finds nothing to press, where staff find the actions."""
    pages = ("/", "/inbox", "/exemptions", f"/periods/{DEMO_PERIOD}", "/outbox")
    log_in(fresh(browser, console), console, VIEWER, PASSWORD)
    assert f"{VIEWER}（只读）" in text_of(browser, "header")
    for path in pages:
        browser.get(f"{console}{path}")
        assert post_buttons(browser) == [], path
        assert browser.find_elements(By.CSS_SELECTOR, "form[action^='/actions/']") == [], path
    browser.get(f"{console}/inbox")
    assert browser.find_elements(By.CSS_SELECTOR, ".item"), "the viewer still reads the items"
    log_in(fresh(browser, console), console, STAFF, PASSWORD)
    for path in ("/inbox", "/exemptions"):
        browser.get(f"{console}{path}")
        assert post_buttons(browser), f"staff see the actions on {path}"


def test_the_login_page_and_the_overview_fit_a_phone_and_an_office_screen(
    browser: WebDriver,  # noqa: F811
    console: str,
) -> None:
    fresh(browser, console)
    assert browser.find_elements(By.CSS_SELECTOR, "header") == []  # no one is logged in on this screenshot
    for name in ("login", "overview"):
        if name == "overview":
            log_in(browser, console, STAFF, PASSWORD)
        for width, (png, scroll_width) in screenshots(browser, name).items():
            assert scroll_width == width, f"{name} overflows sideways at {width} px"
            assert png_size(png)[0] == width and png_size(png)[1] >= 300, name
            assert len(png) > 5_000, f"{name} at {width} px looks blank"


def test_every_main_page_fits_a_phone_without_sideways_scrolling(
    browser: WebDriver,  # noqa: F811
    site: tuple[App, str],
) -> None:
    """Long addresses and file names wrap, wide tables scroll inside their box. Runs last: the audit log, the
    exemptions and the hostile message the tests above left are on the pages."""
    app, base = site
    pages = {
        "period": f"/periods/{DEMO_PERIOD}",
        "unit": f"/units/{quote('高新区工会联合会')}",
        "message": f"/messages/{_message(app, QINGFANG).id}",
        "inbox": "/inbox",
        "outbox": "/outbox",
        "search": f"/search?q={quote('联合会')}",
        "audit": "/audit",
        "exemptions": "/exemptions",
    }
    log_in(fresh(browser, base), base, STAFF, PASSWORD)
    for name, path in pages.items():
        browser.get(f"{base}{path}")
        for width, (png, scroll_width) in screenshots(browser, name).items():
            assert scroll_width <= width, f"{name} overflows sideways at {width} px"
            assert png_size(png)[0] == width and len(png) > 5_000, name
    for path in (
        f"/messages/{_message(app, HOSTILE_ID).id}",
        f"/search?q={quote('script')}",
        "/units/" + quote(CONFIRMED),
    ):
        browser.get(f"{base}{path}")
        assert fits(browser, 390), f"{path} overflows sideways at 390 px"
