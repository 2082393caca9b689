"""Logging in and out. `POST /login` takes the form fields username, password and csrf_token (the token is in
the login page's form); a success starts a fresh session and redirects."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from mailbot.store import users as store
from mailbot.store.db import transaction
from mailbot.users import DISABLED, LOCK_TIME, LOCKED, Verdict
from mailbot.web.context import Console, csrf_ok, csrf_token, safe_next

REFUSED = {
    LOCKED: f"连续输错密码次数过多，账户已锁定 {int(LOCK_TIME.total_seconds() // 60)} 分钟，请稍后再试",
    DISABLED: "该账户已停用，请联系管理员",
}
WRONG_TEXT = "用户名或密码不正确"


def routes(console: Console) -> list[Route]:
    async def login_page(request: Request) -> Response:
        csrf_token(request)
        return console.render(request, "login.html", next=safe_next(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form):
            return console.forbidden(request, "登录表单已过期，请刷新页面后重试")
        name, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
        verdict, role = await run_in_threadpool(_attempt, console, name, password)
        target = safe_next(str(form.get("next", "")) or None)
        if not verdict.ok or role is None:
            message = REFUSED.get(verdict.outcome, WRONG_TEXT)
            return console.render(request, "login.html", status=401, error=message, next=target, username=name)
        request.session.clear()  # a fresh session (and CSRF token) for the logged-in person
        request.session.update({"user": name, "role": role})
        csrf_token(request)
        return RedirectResponse(target, status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        if not csrf_ok(request, form):
            return console.forbidden(request, "表单已过期，请刷新页面后重试")
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


def _attempt(console: Console, name: str, password: str) -> tuple[Verdict, str | None]:
    app = console.app
    now = app.clock()
    with transaction(app.sessions) as session:
        verdict, user = store.attempt_login(session, name, password, now)
        if user is not None and verdict.outcome == LOCKED and verdict.locked_until == now + LOCK_TIME:
            store.audit(session, name, "account_locked", f"user:{name}", None, {"locked_until": now + LOCK_TIME}, now)
        return verdict, (user.role if user is not None and verdict.ok else None)
