"""The console as staff meet it: headless Chromium (Debian's, through chromedriver) on the real pages of a console
served on loopback over a copy of the demo's database — the login form, the lock after five wrong passwords, a
viewer without buttons, and the layout at a phone's and an office screen's width.

`MAILBOT_SCREENSHOTS=1` writes the screenshots into docs/console/ (look at them after changing a template)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from browser import browser, fresh, log_in, png_size, post_buttons, screenshots, submit, text_of  # noqa: F401 - fixture
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from webfixtures import PASSWORD, STAFF, VIEWER, add_accounts, serving

from mailbot.app import App
from mailbot.config import load_config
from mailbot.demo.run import DemoResult
from mailbot.store import users
from mailbot.store.db import transaction

from dbfixtures import FixedClock
from reportfixtures import DAY_AFTER, DEMO_PERIOD, demo_run  # noqa: F401 - the demo, made once per session

LOCKABLE = "李强"  # an account of its own for the lock test: the others must still log in afterwards


@pytest.fixture(scope="module")
def console(demo_run: DemoResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    """The console over a copy of the demo's folder (the demo's database stays as the other tests expect it),
    as of the day after the demo period's deadline; its base URL."""
    folder = tmp_path_factory.mktemp("console") / "demo"
    shutil.copytree(demo_run.folder, folder)
    app = App(load_config(folder / "mailbot.toml"), clock=FixedClock(DAY_AFTER))
    try:
        add_accounts(app, DAY_AFTER)
        with transaction(app.sessions) as session:
            users.add_user(session, LOCKABLE, "staff", PASSWORD, DAY_AFTER)
        with serving(app) as base:
            yield base
    finally:
        app.close()


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


def test_a_viewer_sees_no_action_buttons(browser: WebDriver, console: str) -> None:  # noqa: F811
    """A viewer reads every page but finds nothing to press. The staff control runs once the 待处理 page
    exists (the actions are being built beside these tests): then staff see buttons where the viewer sees none."""
    log_in(fresh(browser, console), console, VIEWER, PASSWORD)
    assert f"{VIEWER}（只读）" in text_of(browser, "header")
    pages = ("/", "/inbox", f"/periods/{DEMO_PERIOD}", "/outbox")
    for path in pages:
        browser.get(f"{console}{path}")
        assert post_buttons(browser) == [], path
    log_in(fresh(browser, console), console, STAFF, PASSWORD)
    browser.get(f"{console}/inbox")
    if browser.find_element(By.TAG_NAME, "h1").text != "未找到":
        assert post_buttons(browser), "staff see the actions of the demo's needs-a-person items"


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
