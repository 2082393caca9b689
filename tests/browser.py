"""Debian's headless Chromium, driven through its chromedriver by Selenium, for the console's browser tests.

Nothing is downloaded: the driver's path is given (so Selenium Manager is never asked) and SE_OFFLINE tells
Selenium Manager to stay offline should anything call it. A machine without chromium or chromium-driver fails
these tests loudly (CI installs both, see .ci/run): a skipped browser test would hide a broken console.
One browser serves a whole test module; `fresh` clears its cookies between tests.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "console"
SCREENSHOTS_ENV = "MAILBOT_SCREENSHOTS"  # =1: write the PNGs into docs/console (CI leaves docs alone)
WIDTHS = (390, 1280)  # a phone, an office screen: the widths the issue asks the console to work at
PHONE_WIDTH = 600  # narrower viewports are emulated as a mobile device (touch, no scrollbars)
MAX_HEIGHT = 4000  # a long page is cut here: a screenshot shows the layout, not every row
MAX_PIXELS = 1280 * 1000  # and cut shorter when wide: a PNG of a page of text takes ~0.25 bytes a pixel


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.access(path, os.X_OK), f"{path} is missing: apt-get install chromium chromium-driver (.ci/run does)"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(options=_options(), service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _options() -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start; the pages are our own.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--hide-scrollbars", "--window-size=1280,900", "--lang=zh-CN"):  # fmt: skip
        options.add_argument(argument)
    # An alert stays open for the test to find (driver.switch_to.alert) instead of being dismissed unseen.
    options.unhandled_prompt_behavior = "ignore"
    return options


def fresh(driver: WebDriver, base: str) -> WebDriver:
    """The browser with no session (cookies cleared) and the normal desktop viewport, on the login page."""
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.get(f"{base}/login")  # cookies are cleared for the site open in the browser
    driver.delete_all_cookies()
    driver.get(f"{base}/login")
    return driver


def log_in(driver: WebDriver, base: str, name: str, password: str) -> None:
    """Through the login form, as a person does it."""
    driver.get(f"{base}/login")
    driver.find_element(By.NAME, "username").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(password)
    submit(driver, driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button[type=submit]"))


def submit(driver: WebDriver, button: WebElement) -> None:
    """Click a form's button and wait until the answer has replaced the page (a mark set on the old document
    is gone, and the new one has loaded): a check made sooner would read the old page."""
    driver.execute_script("document.documentElement.dataset.before = 'submit'")
    button.click()
    WebDriverWait(driver, 10, ignored_exceptions=(WebDriverException,)).until(_replaced)


def _replaced(driver: WebDriver) -> bool:
    return bool(
        driver.execute_script(
            "return document.readyState === 'complete' && document.documentElement.dataset.before === undefined"
        )
    )


def text_of(driver: WebDriver, selector: str = "main") -> str:
    return driver.find_element(By.CSS_SELECTOR, selector).text


def post_buttons(driver: WebDriver) -> list[WebElement]:
    """Every button that submits a POST form, except the header's 退出 (logout): the page's actions."""
    forms = driver.find_elements(By.CSS_SELECTOR, "form[method=post]:not([action='/logout'])")
    return [button for form in forms for button in form.find_elements(By.CSS_SELECTOR, "button, input[type=submit]")]


def screenshots(driver: WebDriver, name: str) -> dict[int, tuple[bytes, int]]:
    """The page now open, at each of WIDTHS, as tall as its content (up to MAX_HEIGHT and MAX_PIXELS): width → (PNG, the
    document's scroll width, which is the width when nothing overflows sideways). Writes docs/console/NAME-WIDTH.png
    when MAILBOT_SCREENSHOTS=1, so that later tests can call it for their own pages."""
    shots = {width: _shot(driver, width) for width in WIDTHS}
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    if os.environ.get(SCREENSHOTS_ENV) == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for width, (png, _) in shots.items():
            (SCREENSHOTS / f"{name}-{width}.png").write_bytes(png)
    return shots


def _shot(driver: WebDriver, width: int) -> tuple[bytes, int]:
    _viewport(driver, width, 800)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    height = min(height, MAX_HEIGHT, MAX_PIXELS // width)
    _viewport(driver, width, height)
    scroll_width = int(driver.execute_script("return document.documentElement.scrollWidth"))
    return driver.get_screenshot_as_png(), scroll_width


def fits(driver: WebDriver, width: int) -> bool:
    """Whether the page now open shows all its width at a viewport `width` px wide (nothing scrolls sideways)."""
    _viewport(driver, width, 800)
    try:
        return bool(
            driver.execute_script(
                "const root = document.documentElement; return root.scrollWidth <= root.clientWidth + 1"
            )
        )
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _viewport(driver: WebDriver, width: int, height: int) -> None:
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < PHONE_WIDTH}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    return int(width), int(height)
