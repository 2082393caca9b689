"""The warm server behind the console script: a command it answers is the command run here, byte for byte.

Each test has its own runtime folder (XDG_RUNTIME_DIR), so its server is its own; every server a test starts,
itself or through the console script, is stopped at the end of the test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import time_machine

from mailbot import warm
from mailbot.cli import main
from mailbot.clock import TZ

from dbfixtures import UNITS, write_config
from mailgen import annex3_xlsx, make_message

CONSOLE_SCRIPT = str(Path(sys.executable).parent / "mailbot")
SERVER_START_SECONDS = 60  # the server imports SQLAlchemy, openpyxl and the rest first: seconds on a busy machine


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["status"], ("status",)),
        (["--config", "x.toml", "-vv", "outbox", "list", "--json"], ("outbox", "list")),
        (["--config=x.toml", "--verbose", "units", "exempt", "郏县"], ("units", "exempt")),
        (["outbox"], None),  # a group without its command: click prints the group's help here
        (["--help"], None),
        (["--version"], None),
        (["--colour", "status"], None),  # an option click doesn't know: its usage error comes from here
        ([], None),
        (["run"], ("run",)),  # found, and not one of the warm commands: the worker runs in its own process
    ],
)
def test_it_finds_the_command_words_past_the_global_options(argv: list[str], words: tuple[str, ...] | None) -> None:
    assert warm.command_of(argv) == words


def test_long_running_and_prompting_commands_are_not_handed_over() -> None:
    for words in [("run",), ("web",), ("demo",), ("poll",), ("ingest",), ("users", "add"), ("users", "passwd")]:
        assert words not in warm.WARM_COMMANDS
    assert ("status",) in warm.WARM_COMMANDS and ("outbox", "list") in warm.WARM_COMMANDS


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's runtime folder; any server still running in it at the end is stopped."""
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    yield folder
    for pid in _servers(folder):
        os.kill(pid, signal.SIGTERM)


def _servers(folder: Path) -> list[int]:
    """The pids of the warm servers whose socket is in `folder`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or one that just ended
            continue
        if b"mailbot.warm" in command and any(str(folder).encode() in part for part in command):
            found.append(int(entry.name))
    return found


def _wait_for(condition: Callable[[], bool], seconds: float = SERVER_START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def server(runtime: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    path = warm.socket_path()
    assert path is not None and path.parent == runtime / "mailbot"
    process = subprocess.Popen(warm.server_command(path))
    _wait_for(path.exists)
    yield path, process
    process.terminate()
    process.wait(10)


def _database(folder: Path, **sections: object) -> Path:
    """A config and a database holding 郏县's report, ingested five minutes after it came (a receipt queued)."""
    config = write_config(folder, units=UNITS[:2], imap={"user": "pingqf163@example.cn"}, **sections)
    main(["--config", str(config), "db", "upgrade"])
    inbox = folder / "inbox"
    inbox.mkdir()
    received = datetime(2021, 6, 10, 9, 0, tzinfo=TZ)
    (inbox / "1.eml").write_bytes(make_message(received=received, attachments=[("附件3.xlsx", annex3_xlsx())]))
    with time_machine.travel(datetime(2021, 6, 10, 9, 5, tzinfo=TZ), tick=False):
        main(["--config", str(config), "ingest", str(inbox)])
    return config


def _here(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """A command line run in this process, as `python -m mailbot` runs it."""
    capfd.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capfd.readouterr()
    return code, out, err


def _served(path: Path, argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """A command line run by the server, on this process's descriptors 1 and 2 (which capfd reads)."""
    capfd.readouterr()
    code = warm.ask(path, argv)
    assert code is not None, "the server did not run the command"
    out, err = capfd.readouterr()
    return code, out, err


def test_a_served_command_prints_and_exits_as_one_run_here(
    tmp_path: Path, server: tuple[Path, subprocess.Popen[bytes]], capfd: pytest.CaptureFixture[str]
) -> None:
    path, _ = server
    config = str(_database(tmp_path))
    for argv in (
        ["--config", config, "status", "--json", "--as-of", "2021-06-30"],
        ["--config", config, "status", "--as-of", "2021-06-30"],  # rich's tables, piped: no width cut
        ["--config", config, "units", "list"],
        ["--config", config, "outbox", "list", "--json"],
        ["--config", config, "export", "--format", "json", "--period", "2099-annex3"],  # a bad period: exit 6
        ["--config", str(tmp_path / "none.toml"), "status"],  # no config: exit 2 and the message on stderr
    ):
        served, here = _served(path, argv, capfd), _here(argv, capfd)
        assert served == here, argv
    assert json.loads(_served(path, ["--config", config, "outbox", "list", "--json"], capfd)[1])["mails"]
    assert _here(["--config", config, "export", "--period", "2099-annex3"], capfd)[0] == 6


def test_the_command_runs_in_the_clients_folder_with_its_environment_and_umask(
    tmp_path: Path,
    server: tuple[Path, subprocess.Popen[bytes]],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, _ = server
    _database(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILBOT_CONFIG", "mailbot.toml")  # relative, and only in this process's environment
    umask = os.umask(0o077)
    try:
        code, _, err = _served(path, ["export", "--format", "csv", "-o", "导出.csv"], capfd)
    finally:
        os.umask(umask)
    assert (code, err) == (0, "wrote 导出.csv\n")
    written = tmp_path / "导出.csv"
    assert "郏县总工会" in written.read_text(encoding="utf-8-sig")
    assert written.stat().st_mode & 0o777 == 0o600


def test_a_server_whose_files_changed_steps_down_and_the_command_runs_here(
    tmp_path: Path, server: tuple[Path, subprocess.Popen[bytes]], runtime: Path
) -> None:
    path, process = server
    module = Path(warm.__file__).parent / "words.py"  # imported by the server, as by every command
    stat = module.stat()
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # as an upgrade would leave it
    try:
        assert warm.ask(path, ["--config", str(tmp_path / "none.toml"), "status"]) is None  # nothing ran there
        assert process.wait(10) == 0
    finally:
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # ask() started the next server, which takes over the socket once the old one let it go.
    _wait_for(lambda: len(_servers(runtime)) == 1 and path.exists())


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


@pytest.mark.parametrize(("signum", "returncode"), [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)])
def test_a_signal_to_the_command_line_reaches_the_served_command(
    tmp_path: Path, server: tuple[Path, subprocess.Popen[bytes]], signum: int, returncode: int
) -> None:
    _, process = server
    # An SMTP server that accepts and never greets: `outbox send` waits for its greeting (60 s by default).
    silent = socket.create_server(("127.0.0.1", 0))
    smtp = {"host": "127.0.0.1", "port": silent.getsockname()[1], "ssl": False, "user": "x", "password_env": "PW"}
    config = _database(tmp_path, smtp=smtp)
    with silent:
        client = subprocess.Popen(
            [CONSOLE_SCRIPT, "--config", str(config), "outbox", "send"],
            env={**os.environ, "PW": "secret"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        silent.settimeout(30)
        connection, _ = silent.accept()  # the command waits for the greeting now
        # It runs as the server's grandchild (the fork between them waits for its exit status).
        (reporter,) = _children(process.pid)
        (command,) = _children(reporter)
        client.send_signal(signum)
        _, err = client.communicate(timeout=30)
        connection.close()
    assert client.returncode == returncode
    if signum == signal.SIGINT:
        assert b"aborted" in err  # click's answer to Ctrl-C, from the command itself
    assert not Path(f"/proc/{command}").exists()


def test_the_console_script_starts_a_server_unless_turned_off(tmp_path: Path, runtime: Path) -> None:
    config = str(write_config(tmp_path))
    env = {**os.environ, "MAILBOT_WARM": "0"}
    subprocess.run([CONSOLE_SCRIPT, "--config", config, "db", "upgrade"], env=env, check=True)
    subprocess.run([CONSOLE_SCRIPT, "--config", config, "units", "list"], env=env, check=True, capture_output=True)
    assert _servers(runtime) == []
    subprocess.run([CONSOLE_SCRIPT, "--help"], check=True, capture_output=True)  # not a warm command
    assert _servers(runtime) == []
    first = subprocess.run([CONSOLE_SCRIPT, "--config", config, "units", "list", "--json"], capture_output=True)
    assert first.returncode == 0 and len(_servers(runtime)) == 1  # ran here, and started one for the next
    path = warm.socket_path()
    assert path is not None
    _wait_for(path.exists)
    second = subprocess.run([CONSOLE_SCRIPT, "--config", config, "units", "list", "--json"], capture_output=True)
    assert (second.returncode, second.stdout, second.stderr) == (0, first.stdout, first.stderr)


def test_an_idle_server_goes_away_and_takes_its_socket(runtime: Path) -> None:
    path = runtime / "idle.sock"
    code = f"from pathlib import Path\nfrom mailbot.warm import serve\nserve(Path({str(path)!r}), idle_seconds=2)"
    process = subprocess.Popen([sys.executable, "-P", "-c", code])
    _wait_for(path.exists)  # it listened
    assert process.wait(SERVER_START_SECONDS) == 0
    assert not path.exists()


def test_a_second_server_for_the_same_socket_leaves(
    runtime: Path, server: tuple[Path, subprocess.Popen[bytes]]
) -> None:
    path, first = server
    started = time.monotonic()
    warm.serve(path)  # in this process: it waits for the first's lock, then gives up
    assert time.monotonic() - started >= warm.LOCK_WAIT_SECONDS
    assert first.poll() is None and path.exists()


def test_a_folder_others_can_enter_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    (shared / "mailbot").mkdir(parents=True, mode=0o755)
    (shared / "mailbot").chmod(0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    assert warm.socket_path() is None


def test_doctor_says_whether_a_server_answers(
    runtime: Path, monkeypatch: pytest.MonkeyPatch, server: tuple[Path, subprocess.Popen[bytes]]
) -> None:
    path, process = server
    assert warm.state() == f"a warm server answers at {path}: the everyday commands start in about 0.1 s"
    assert process.poll() is None  # a connection that sends nothing is no command: the server goes on
    process.terminate()
    process.wait(10)
    assert warm.state() == f"no warm server at {path}: the next everyday command starts one"
    monkeypatch.setenv("MAILBOT_WARM", "0")
    assert warm.state().startswith("turned off (MAILBOT_WARM=0)")


def _at_a_terminal(argv: list[str], env: dict[str, str], columns: int) -> bytes:
    """What a command prints at a terminal `columns` wide (a pseudo-terminal standing in for staff's)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    with os.fdopen(leader, "rb", buffering=0) as screen:
        process = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower, env=env)
        os.close(follower)
        printed = b""
        while True:
            try:
                chunk = screen.read(65536)
            except OSError:  # EIO: the command's end closed the terminal's last writer
                break
            if not chunk:
                break
            printed += chunk
        assert process.wait(60) == 0, printed
    return printed


def test_a_served_command_sees_the_clients_terminal_and_its_width(tmp_path: Path, runtime: Path) -> None:
    config = str(_database(tmp_path))
    argv = [CONSOLE_SCRIPT, "--config", config, "units", "list"]
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    here = _at_a_terminal(argv, {**env, "MAILBOT_WARM": "0"}, 72)
    path = warm.socket_path()
    assert path is not None
    warm.start_server(path)
    _wait_for(path.exists)
    served = _at_a_terminal(argv, env, 72)
    assert served == here
    text = re.sub(r"\x1b\[[0-9;]*m", "", served.decode())  # rich's colours: a terminal gets them
    assert max(len(line) for line in text.splitlines()) == 72 and "2 units" in text  # drawn to the width
    assert len(_servers(runtime)) == 1


def test_commands_at_the_same_time_are_each_served_whole(
    tmp_path: Path, server: tuple[Path, subprocess.Popen[bytes]]
) -> None:
    config = str(_database(tmp_path))
    argv = [CONSOLE_SCRIPT, "--config", config, "outbox", "list", "--json"]
    alone = subprocess.run(argv, env={**os.environ, "MAILBOT_WARM": "0"}, capture_output=True, check=True).stdout
    clients = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(8)]
    results = [client.communicate(timeout=120) for client in clients]
    assert [client.returncode for client in clients] == [0] * 8
    assert all(out == alone and err == b"" for out, err in results)
    assert json.loads(alone)["mails"]  # the receipt queued for 郏县: a list worth comparing
