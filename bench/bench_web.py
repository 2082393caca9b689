"""The console on the large database (bench/largedb.py): each page and API call, target ≤ 200 ms server time.

The console runs in this process under a real uvicorn server on loopback, logged in as a staff user. Each URL is
requested `--warmup` times, then `--runs` times; the table shows the median and the maximum of the server time
(from the request reaching the application to its response headers, the body being rendered by then: sent back
as a Server-Timing header) and the median of the end-to-end time over loopback as httpx sees it.

.venv/bin/python bench/bench_web.py [--runs 20] [--warmup 2] [--folder /tmp/mailbot-large] [--database-url URL]
                                    [--fresh] [--only TEXT]

PostgreSQL: createdb -h 127.0.0.1 -U postgres mailbot_bench_large, then
  --database-url postgresql://postgres@127.0.0.1:5432/mailbot_bench_large --folder /tmp/mailbot-large-pg
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import largedb
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from webfixtures import logged_in
from webfixtures import serving as fixture_serving

from mailbot.app import App
from mailbot.store import users
from mailbot.store.db import transaction
from mailbot.store.models import User

NAME, PASSWORD = "基准测试", "correct horse battery staple"
TARGET_MS = 200.0
PERIOD = "2021-annex3-11-25"  # the period that closed the day before AS_OF


def server_timed(app: ASGIApp) -> ASGIApp:
    """The application, adding `Server-Timing: app;dur=…` (ms until the response starts) to every answer."""

    async def timed(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                duration = (time.perf_counter() - started) * 1000
                message["headers"] = [
                    *message.get("headers", []),
                    (b"server-timing", f"app;dur={duration:.2f}".encode()),
                ]
            await send(message)

        await app(scope, receive, send_timed)

    return timed


def serving(app: App) -> AbstractContextManager[str]:
    """The console of `app` on a free loopback port, with the timing wrapper (tests/webfixtures.serving)."""
    return fixture_serving(app, wrap=server_timed)


def ensure_user(app: App) -> None:
    with transaction(app.sessions) as session:
        if session.query(User).filter(User.name == NAME).first() is None:
            users.add_user(session, NAME, "staff", PASSWORD, largedb.AS_OF)


def urls(app: App) -> list[str]:
    message = largedb.real_message_ids(app)[0]
    unit = largedb.large_units()[0].name
    return [
        "/",
        f"/periods/{PERIOD}",
        f"/units/{unit}",
        f"/messages/{message}",
        f"/messages/{message}/attachments/0",
        "/search?q=第150工会",
        "/search?q=qq.com",
        "/outbox",
        "/inbox",
        "/audit",
        "/exemptions",
        "/api/periods",
        f"/api/periods/{PERIOD}",
        f"/api/messages/{message}",
    ]


def measure(client: httpx.Client, url: str, runs: int, warmup: int) -> dict[str, Any]:
    server, total = [], []
    answer = None
    for n in range(warmup + runs):
        started = time.perf_counter()
        answer = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
        assert answer.status_code == 200, f"{url}: {answer.status_code} {answer.text[:300]}"
        if n >= warmup:
            total.append(elapsed)
            server.append(float(answer.headers["server-timing"].partition("dur=")[2]))
    assert answer is not None
    return {
        "url": url,
        "server": statistics.median(server),
        "max": max(server),
        "total": statistics.median(total),
        "bytes": len(answer.content),
    }


def table(rows: list[dict[str, Any]], backend: str) -> Iterator[str]:
    yield f"{'page or call':44} {'server median':>14} {'server max':>11} {'end-to-end':>11} {'bytes':>9}  target"
    for row in rows:
        mark = "ok" if row["server"] <= TARGET_MS else "MISSED"
        yield (
            f"{row['url']:44} {row['server']:11.1f} ms {row['max']:8.1f} ms {row['total']:8.1f} ms "
            f"{row['bytes']:9,}  {mark}"
        )
    missed = [row["url"] for row in rows if row["server"] > TARGET_MS]
    yield f"{backend}: {len(rows) - len(missed)} of {len(rows)} within {TARGET_MS:.0f} ms" + (
        f"; missed: {', '.join(missed)}" if missed else ""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/mailbot-large"))
    parser.add_argument("--database-url", default="", help="default: an SQLite file in the folder")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--only", default="", help="measure only the URLs containing this text")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{args.folder / 'large.sqlite'}"
    built = largedb.ensure(args.folder, url, args.seed, args.fresh)
    for line in largedb.describe(built):
        print(line)
    app = built.app
    ensure_user(app)
    with serving(app) as base, logged_in(base, NAME, PASSWORD) as client:
        rows = [measure(client, u, args.runs, args.warmup) for u in urls(app) if args.only in u]
    for line in table(rows, app.engine.url.get_backend_name()):
        print(line)
    app.close()


if __name__ == "__main__":
    main()
