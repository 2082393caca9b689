"""The console's front door, through a real server on loopback: every page needs a login, every POST a CSRF
token, five wrong passwords lock an account, and accounts are managed with `mailbot users`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from webfixtures import PASSWORD, STAFF, VIEWER, add_accounts, csrf_of, logged_in, serving

from mailbot.app import App
from mailbot.clock import TZ
from mailbot.store import users
from mailbot.store.db import transaction
from mailbot.store.models import AuditEntry
from mailbot.users import LOCKED, OK, WRONG, Account, judge_login
from mailbot.web.context import safe_next

from dbfixtures import FixedClock, make_config, write_config

NOW = datetime(2021, 6, 20, 10, 0, tzinfo=TZ)


@pytest.fixture
def console(app: App) -> Iterator[str]:
    add_accounts(app, NOW)
    with serving(app) as base:
        yield base


def _login(client: httpx.Client, name: str, password: str) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token})


def test_without_a_session_every_page_leads_to_the_login(console: str) -> None:
    with httpx.Client(base_url=console) as client:
        answer = client.get("/")
        assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/"
        login = client.get("/login")
        assert login.status_code == 200 and "登录" in login.text and csrf_of(login.text)


def test_a_login_sets_a_safe_session_cookie_and_goes_where_it_was_asked(console: str) -> None:
    with httpx.Client(base_url=console) as client:
        token = csrf_of(client.get("/login?next=/inbox").text)
        answer = client.post(
            "/login", data={"username": STAFF, "password": PASSWORD, "csrf_token": token, "next": "/inbox"}
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/inbox"
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
        assert "待处理" in client.get("/").text


def test_a_post_without_its_csrf_token_is_refused(console: str) -> None:
    with httpx.Client(base_url=console) as client:
        client.get("/login")
        answer = client.post("/login", data={"username": STAFF, "password": PASSWORD})
        assert answer.status_code == 403
    with logged_in(console) as client:
        assert client.post("/logout", data={}).status_code == 403
        assert client.get("/").status_code == 200  # still logged in
        token = csrf_of(client.get("/").text)
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303
        assert client.get("/").status_code == 303


def test_five_wrong_passwords_lock_the_account_for_15_minutes(app: App, console: str) -> None:
    with httpx.Client(base_url=console) as client:
        for _ in range(4):
            assert "用户名或密码不正确" in _login(client, STAFF, "wrong password").text
        locked = _login(client, STAFF, "wrong password")
        assert locked.status_code == 401 and "锁定" in locked.text
        assert "锁定" in _login(client, STAFF, PASSWORD).text  # the right password does not open it now
        app.clock.moment = NOW + timedelta(minutes=16)  # type: ignore[attr-defined]
        assert _login(client, STAFF, PASSWORD).status_code == 303
    with transaction(app.sessions) as session:
        actions = [e.action for e in session.scalars(select(AuditEntry))]
    assert "account_locked" in actions


def test_an_unknown_name_gets_the_same_answer_as_a_wrong_password(console: str) -> None:
    with httpx.Client(base_url=console) as client:
        unknown, wrong = _login(client, "nobody", PASSWORD), _login(client, VIEWER, "wrong password")
        assert unknown.status_code == wrong.status_code == 401
        assert "用户名或密码不正确" in unknown.text and "用户名或密码不正确" in wrong.text


def test_a_disabled_account_loses_its_session_at_the_next_click(app: App, console: str) -> None:
    with logged_in(console, VIEWER) as client:
        assert client.get("/").status_code == 200
        with transaction(app.sessions) as session:
            users.disable(session, VIEWER, NOW)
        assert client.get("/").status_code == 303
    with httpx.Client(base_url=console) as client:
        assert "已停用" in _login(client, VIEWER, PASSWORD).text


def test_the_cookie_is_secure_when_staff_reach_the_console_over_https(tmp_path, database_url: str) -> None:
    config = make_config(tmp_path / "data", database_url, web={"base_url": "https://mailbot.example.cn"})
    app = App(config, clock=FixedClock(NOW))
    app.upgrade()
    add_accounts(app, NOW)
    with serving(app) as base, httpx.Client(base_url=base) as client:
        assert "secure" in client.get("/login").headers["set-cookie"].lower()
    app.close()


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/inbox", "/inbox"), ("//evil.example/", "/"), ("https://evil.example/", "/"), ("/\\evil", "/"), (None, "/")],
)
def test_after_login_it_only_goes_to_pages_of_its_own(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_the_login_decision() -> None:
    fresh = Account(0, None, disabled=False)
    assert judge_login(fresh, True, NOW).outcome == OK
    assert judge_login(Account(3, None, False), False, NOW).outcome == WRONG
    fifth = judge_login(Account(4, None, False), False, NOW)
    assert (fifth.outcome, fifth.locked_until) == (LOCKED, NOW + timedelta(minutes=15))
    assert judge_login(Account(0, NOW + timedelta(minutes=1), False), True, NOW).outcome == LOCKED
    # After the lock: a wrong password counts from one again.
    after = judge_login(Account(0, NOW - timedelta(minutes=1), False), False, NOW)
    assert (after.outcome, after.failed_logins, after.locked_until) == (WRONG, 1, None)


def _users(config: str, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", config, "users", *args],
        input=password,
        capture_output=True,
        text=True,
    )


def test_accounts_are_managed_from_the_command_line_and_audited(tmp_path, database_url: str) -> None:
    config = str(write_config(tmp_path, database={"url": database_url}))
    assert subprocess.run([sys.executable, "-m", "mailbot", "--config", config, "db", "upgrade"]).returncode == 0
    assert _users(config, "add", "王维", "--password-stdin", password="long enough\n").returncode == 0
    assert _users(config, "add", "张敏", "--role", "viewer", "--password-stdin", password="also long\n").returncode == 0
    again = _users(config, "add", "王维", "--password-stdin", password="long enough\n")
    assert again.returncode == 6 and "exists already" in again.stderr
    short = _users(config, "add", "李", "--password-stdin", password="short\n")
    assert short.returncode == 6 and "至少 8 个字符" in short.stderr
    assert _users(config, "passwd", "王维", "--password-stdin", password="a new long one\n").returncode == 0
    assert _users(config, "disable", "张敏").returncode == 0
    listed = _users(config, "list").stdout.splitlines()
    assert listed == ["张敏\tviewer\tdisabled", "王维\tstaff"]
    app = App(make_config(tmp_path / "data", database_url))
    with transaction(app.sessions) as session:
        entries = [
            (e.user_name, e.action, e.target) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]
        verdict, _ = users.attempt_login(session, "王维", "a new long one", NOW)
    app.close()
    assert entries == [
        ("命令行", "user_add", "user:王维"),
        ("命令行", "user_add", "user:张敏"),
        ("命令行", "user_passwd", "user:王维"),
        ("命令行", "user_disable", "user:张敏"),
    ]
    assert verdict.ok


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_mailbot_web_serves_the_console_and_refuses_to_start_without_its_secret(tmp_path, database_url: str) -> None:
    config = str(write_config(tmp_path, database={"url": database_url}))
    assert subprocess.run([sys.executable, "-m", "mailbot", "--config", config, "db", "upgrade"]).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "MAILBOT_WEB_SECRET"}
    command = [sys.executable, "-m", "mailbot", "--config", config, "web", "--port", str(port := _free_port())]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "web.secret_env" in refused.stderr  # a config error, naming the key
    server = subprocess.Popen(command, env={**env, "MAILBOT_WEB_SECRET": "s" * 32}, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "mailbot web did not start"
                time.sleep(0.1)
        assert answer.status_code == 200 and csrf_of(answer.text)
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 303  # behind the login
    finally:
        server.terminate()
        server.wait(30)
