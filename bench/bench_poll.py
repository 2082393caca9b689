"""A poll that finds nothing new on a 10,000-message dovecot mailbox, side by side with a bare
connect + login + select + UID SEARCH on the same server. Target: ≤ 1.5×, and no message body fetched.

    .venv/bin/python bench/bench_poll.py [--messages 10000] [--rounds 30]
"""

from __future__ import annotations

import argparse
import imaplib
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from mailbot.app import App
from mailbot.clock import TZ

from common import summary  # also puts tests/ on sys.path
from dbfixtures import FixedClock, make_config, server_section
from mailgen import mixed_messages
from mailservers import DovecotServer, IdRequiredProxy


def bare_round(server: DovecotServer) -> float:
    start = time.perf_counter()
    client = imaplib.IMAP4(server.host, server.port)
    client.login(server.user, server.password)
    client.select("INBOX", readonly=True)
    client.uid("SEARCH", "UID", "1:*")
    client.logout()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with DovecotServer() as server, tempfile.TemporaryDirectory() as folder:
        fill_start = time.perf_counter()
        for start in range(0, args.messages, 1000):
            server.append(mixed_messages(min(1000, args.messages - start), first=start))
        print(f"filled dovecot with {args.messages} messages in {time.perf_counter() - fill_start:.1f} s")
        os.environ["BENCH_IMAP_PASSWORD"] = server.password
        imap = server_section(server, "BENCH_IMAP_PASSWORD", user=server.user, batch_size=200)
        config = make_config(Path(folder), f"sqlite:///{folder}/bench.db", imap=imap)
        app = App(config, clock=FixedClock(datetime(2021, 6, 20, 10, 0, tzinfo=TZ)))
        app.upgrade()
        sync_start = time.perf_counter()
        first = app.poller().poll()
        took = time.perf_counter() - sync_start
        print(f"first sync: {first.new} messages recorded and processed in {took:.1f} s ({first.new / took:.0f} msg/s)")
        poll_times, bare_times, command_times = [], [], []
        poller = app.poller()  # as the worker holds it
        for _ in range(args.rounds):  # interleaved, so all three see the same machine load
            bare_times.append(bare_round(server))
            start = time.perf_counter()
            result = poller.poll()
            poll_times.append(time.perf_counter() - start)
            assert result.fetched == 0
            start = time.perf_counter()
            app.poller().poll()  # as `mailbot poll` does it: also checks the schema and syncs the units
            command_times.append(time.perf_counter() - start)
        print(f"bare connect+login+select+UID SEARCH: {summary(bare_times)}")
        print(f"mailbot poll, nothing new (worker):   {summary(poll_times)}")
        print(f"  same, with schema check + unit sync: {summary(command_times)}")
        bare = statistics.median(bare_times)
        print(
            f"ratio of medians: worker {statistics.median(poll_times) / bare:.2f}x, "
            f"with schema check {statistics.median(command_times) / bare:.2f}x  (target <= 1.5x)"
        )
        with IdRequiredProxy(server.host, server.port) as proxy:
            proxied = App(make_config(Path(folder), f"sqlite:///{folder}/bench.db", imap={**imap, "port": proxy.port}))
            proxied.poller().poll()
            fetches = [c for c in proxy.stats.commands if "FETCH" in c]
            print(f"commands of one idle poll: {proxy.stats.commands}; FETCH commands: {len(fetches)}")
        app.close()


if __name__ == "__main__":
    main()
