"""Peak RSS of `mailbot ingest` on one message carrying a 25 MB attachment. Target: ≤ 150 MB.

Each measurement is a fresh process, and the figure is that process's own peak (ru_maxrss from os.wait4).

    .venv/bin/python bench/bench_memory.py [--mb 25] [--what ingest|poll|baseline]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from mailbot.clock import TZ

from common import ROOT  # also puts tests/ on sys.path
from mailgen import make_message
from mailservers import HOST, PASSWORD, USER, DovecotServer, append_messages


def peak_rss_mb(args: list[str], cwd: Path) -> float:
    """Run a command and return that child's own peak resident set size in MB (os.wait4's rusage)."""
    child = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{args} failed with {child.returncode}")
    return usage.ru_maxrss / 1024


def write_message(path: Path, mb: int) -> None:
    payload = os.urandom(mb * 1024 * 1024)  # random: incompressible, like a real xlsx
    received = datetime(2021, 6, 10, 9, 0, tzinfo=TZ)
    path.write_bytes(make_message(attachments=[("附件3-大文件.xlsx", payload)], received=received))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=25)
    parser.add_argument("--what", choices=["ingest", "poll", "baseline"], default="ingest")
    parser.add_argument("--write", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--append-to", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:
        write_message(Path(args.write), args.mb)
        if args.append_to:
            append_messages(HOST, args.append_to, USER, PASSWORD, "INBOX", [Path(args.write).read_bytes()])
        return
    if args.what == "poll":
        measure_poll(args.mb)
        return
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        (base / "mailbot.toml").write_text(f'data_dir = "{base / "data"}"\n', encoding="utf-8")
        mailbot = [sys.executable, "-m", "mailbot", "--config", str(base / "mailbot.toml")]
        subprocess.run([*mailbot, "db", "upgrade"], check=True, stdout=subprocess.DEVNULL)
        if args.what == "baseline":
            rss = peak_rss_mb([*mailbot, "status"], base)
            print(f"peak RSS of `mailbot status` (imports + database only): {rss:.0f} MB")
            return
        # Built in another process: a forked child starts with its parent's resident pages, so a parent that
        # once held the message would inflate the child's figure.
        subprocess.run([sys.executable, __file__, "--write", str(base / "big.eml"), "--mb", str(args.mb)], check=True)
        rss = peak_rss_mb([*mailbot, "ingest", str(base / "big.eml")], base)
        print(f"peak RSS of `mailbot ingest` with a {args.mb} MB attachment: {rss:.0f} MB (target <= 150 MB)")


def measure_poll(mb: int) -> None:
    """The same message fetched over IMAP from dovecot by `mailbot poll`."""
    with DovecotServer() as server, tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        config = base / "mailbot.toml"
        config.write_text(
            f'data_dir = "{base / "data"}"\n[imap]\nhost = "{server.host}"\nport = {server.port}\nssl = false\n'
            f'user = "{server.user}"\npassword_env = "BENCH_IMAP_PASSWORD"\n',
            encoding="utf-8",
        )
        os.environ["BENCH_IMAP_PASSWORD"] = server.password
        mailbot = [sys.executable, "-m", "mailbot", "--config", str(config)]
        subprocess.run([*mailbot, "db", "upgrade"], check=True, stdout=subprocess.DEVNULL)
        big = str(base / "big.eml")
        subprocess.run(
            [sys.executable, __file__, "--write", big, "--mb", str(mb), "--append-to", str(server.port)], check=True
        )
        rss = peak_rss_mb([*mailbot, "poll"], base)
        print(f"peak RSS of `mailbot poll` fetching a {mb} MB attachment from dovecot: {rss:.0f} MB (target <= 150 MB)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
