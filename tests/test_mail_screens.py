"""The mails of the demo as a phone shows them: the digest to staff, a receipt asking for a correction and a late
notice to units, each opened from the .eml mailbot sent, in Debian's headless Chromium at 390 px.

Each must show all its width (nothing scrolls sideways) and carry what its reader needs: the units' mails a human
contact, the digest no shell command. `MAILBOT_SCREENSHOTS=1` writes the PNGs into docs/mails/ (look at them after
changing a template)."""

from __future__ import annotations

import email
import email.policy
import os
from email.message import EmailMessage
from pathlib import Path

import pytest
from browser import SCREENSHOTS_ENV, browser, fits, png_size  # noqa: F401 - browser is a fixture
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from mailbot.demo.run import DemoResult

from reportfixtures import demo_run  # noqa: F401 - a fixture

PHONE = 390
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "mails"


def _sent(run: DemoResult) -> list[EmailMessage]:
    folder = run.folder / "sent"
    parsed = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in sorted(folder.iterdir())
    ]
    return [message for message in parsed if isinstance(message, EmailMessage)]


def _pick(run: DemoResult, kind: str, subject_has: str = "") -> EmailMessage:
    for message in _sent(run):
        if message["X-Mailbot-Kind"] == kind and subject_has in str(message["Subject"]):
            return message
    raise AssertionError(f"the demo sent no {kind} mail whose subject has {subject_has!r}")


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "the mail has no HTML part"
    return str(part.get_content())


def _open(driver: WebDriver, message: EmailMessage, tmp_path: Path, name: str) -> str:
    page = tmp_path / f"{name}.html"
    page.write_text(f'<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
                    f"{_html(message)}", encoding="utf-8")  # fmt: skip
    driver.get(page.as_uri())
    return driver.find_element(By.TAG_NAME, "body").text


def _shoot(driver: WebDriver, name: str) -> bytes:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": PHONE, "height": 800, "deviceScaleFactor": 1, "mobile": True}
    )
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE, "height": min(height, 3000), "deviceScaleFactor": 1, "mobile": True},
    )
    png = driver.get_screenshot_as_png()
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    if os.environ.get(SCREENSHOTS_ENV) == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / f"{name}-{PHONE}.png").write_bytes(png)
    return png


@pytest.mark.parametrize(
    ("name", "kind", "subject_has"),
    [("receipt-correction", "receipt", "请更正"), ("late-notice", "late_notice", ""), ("digest", "digest", "")],
)
def test_it_shows_each_mail_whole_at_phone_width(
    browser: WebDriver,  # noqa: F811 - the fixture
    demo_run: DemoResult,  # noqa: F811 - the fixture
    tmp_path: Path,
    name: str,
    kind: str,
    subject_has: str,
) -> None:
    message = _pick(demo_run, kind, subject_has)
    text = _open(browser, message, tmp_path, name)
    assert fits(browser, PHONE), f"the {name} mail scrolls sideways at {PHONE} px"
    assert png_size(_shoot(browser, name))[0] == PHONE
    if kind == "digest":
        assert "mailbot " not in text and "--" not in text  # staff never see a shell command
    else:
        assert "王维" in text and "0375-3799638" in text  # a person the unit can call
