"""Everyday commands answered by a warm interpreter, as Mercurial's chg answers hg's.

A new Python process pays 0.3–0.4 s importing SQLAlchemy, the models and rich before `mailbot status` reads its
first row: the command takes about ten times what `mailbot --help` costs. The console script `mailbot` is this
module's `main`: for a command of WARM_COMMANDS it hands its arguments, environment, working folder and its three
standard streams (the file descriptors themselves, over a Unix socket) to a server that has imported all that
once. The server forks; the fork takes the streams, the folder and the environment, runs the command line, and its
exit status comes back. The server holds no state of its own: no config, no database connection, nothing read
before the fork, so each command does and prints exactly what it would in a new process.

Any other command, and every command when no server answers, runs in this process as before; the first of those
starts a server in the background for the next. The server exits after IDLE_SECONDS without a command, and as
soon as a file it imported has changed on disk (an upgrade: the next command starts a new one). `MAILBOT_WARM=0`
turns all of it off; `python -m mailbot` never uses it.

Only the standard library is imported here before a command is handed over: this module is what every `mailbot`
invocation imports first.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

if TYPE_CHECKING:  # socket is imported where it is used: `mailbot --help` and the commands run here need none
    import socket

# Commands that only read or change the database (and send mail) and need no answer typed at a prompt. Those left
# out run in their own process as before: the long-running ones (run, web, demo, poll), the ones that start
# process pools (ingest, reprocess), the ones that ask for a password (users add, users passwd), and db and doctor,
# which import alembic and are run once in a while.
WARM_COMMANDS = frozenset(
    {
        ("status",),
        ("remind",),
        ("digest",),
        ("export",),
        ("handled",),
        ("outbox", "list"),
        ("outbox", "send"),
        ("outbox", "retry"),
        ("outbox", "cancel"),
        ("outbox", "resume"),
        ("outbox", "mark-sent"),
        ("units", "list"),
        ("units", "confirm-address"),
        ("units", "reject"),
        ("units", "retire-address"),
        ("units", "replace-address"),
        ("units", "exempt"),
        ("units", "unexempt"),
        ("messages", "assign"),
        ("problems", "accept"),
        ("report", "circular"),
        ("users", "list"),
        ("users", "disable"),
    }
)
GROUPS = frozenset(words[0] for words in WARM_COMMANDS if len(words) == 2)

# What the server imports before its first fork: every module the commands above import (found by running each
# after these), so none is imported again per command. openpyxl and python-docx come with the workbook and the
# circular, numpy with openpyxl.
PRELOAD = (
    "mailbot.cli",
    "mailbot.app",
    "mailbot.console",
    "mailbot.registry",
    "mailbot.store.ledger",
    "mailbot.store.users",
    "mailbot.report.status",
    "mailbot.report.export",
    "mailbot.report.workbook",
    "mailbot.report.circular",
    "mailbot.remind",
    "mailbot.digests",
    "mailbot.users",
    "sqlalchemy.dialects.sqlite",
    "sqlite3",
    "difflib",
    "mimetypes",
    "defusedxml.ElementTree",
    "encodings.unicode_escape",
    "encodings.cp437",
    "openpyxl.packaging.extended",
)
OPTIONAL_PRELOAD = ("sqlalchemy.dialects.postgresql", "psycopg")  # only where a PostgreSQL driver is installed

IDLE_SECONDS = 15 * 60
LOCK_WAIT_SECONDS = 5.0  # a new server waits this long for the one it replaces to let go of the socket
REQUEST_SECONDS = 5.0  # a client that connects and sends nothing is dropped after this
STREAMS = (("stdin", 0), ("stdout", 1), ("stderr", 2))


# --- the client: the console script --------------------------------------------------------------------------


def main() -> None:
    """The console script: a warm command handed to the server when one answers, anything else run here."""
    argv = sys.argv[1:]
    if command_of(argv) in WARM_COMMANDS and enabled():
        path = socket_path()
        if path is not None:
            code = ask(path, argv)
            if code is not None:
                sys.exit(code)
    from mailbot.cli import main as run_here

    run_here(argv)


def enabled() -> bool:
    import socket

    return os.environ.get("MAILBOT_WARM", "1") != "0" and hasattr(socket, "send_fds") and hasattr(os, "fork")


def command_of(argv: list[str]) -> tuple[str, ...] | None:
    """The command words of a command line (`("outbox", "list")`), past the global options; None when the line
    asks for help or the version, or has an option the global ones don't know: click answers those here."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--config":
            index += 2
        elif word.startswith("--config=") or word == "--verbose" or (len(word) > 1 and set(word[1:]) == {"v"}):
            index += 1
        elif word.startswith("-"):
            return None
        elif word in GROUPS:
            return (word, argv[index + 1]) if index + 1 < len(argv) else None
        else:
            return (word,)
    return None


def state() -> str:
    """What `mailbot doctor` says of the warm server."""
    if not enabled():
        return "turned off (MAILBOT_WARM=0): every command runs in a process of its own"
    path = socket_path()
    if path is None:
        return "no folder for it ($XDG_RUNTIME_DIR/mailbot or /tmp/mailbot-UID, this user's alone): commands run alone"
    if _answers(path):
        return f"a warm server answers at {path}: the everyday commands start in about 0.1 s"
    return f"no warm server at {path}: the next everyday command starts one"


def _answers(path: Path) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))  # the server takes a connection that sends nothing as no command
        except OSError:
            return False
    return True


def socket_path() -> Path | None:
    """This installation's socket in a folder only this user can enter, or None where there is no such folder.

    One server per venv, interpreter, mailbot folder, PYTHON* and locale variables: those shape the server's
    interpreter itself, where every other variable is set anew in each fork."""
    import hashlib

    folder = _private_folder()
    if folder is None:
        return None
    # The interpreter reads these at its start (its flags, its locale and file-name encoding): not per fork.
    python = sorted((k, v) for k, v in os.environ.items() if k.startswith(("PYTHON", "LC_", "LANG")))
    # The venv (sys.prefix) and the interpreter it links to: `python` and `python3` of one venv share a server.
    key = json.dumps([sys.prefix, os.path.realpath(sys.executable), str(Path(__file__).parent), python])
    return folder / f"warm-{hashlib.sha256(key.encode()).hexdigest()[:16]}.sock"


def _private_folder() -> Path | None:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    # /tmp when there is no runtime folder: the folder is checked below to be this user's alone.
    folder = Path(runtime) / "mailbot" if runtime else Path("/tmp") / f"mailbot-{os.getuid()}"  # noqa: S108
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        stat = folder.lstat()
    except OSError:
        return None
    # Someone else's folder, or one others can enter, would let them answer (or overhear) our commands.
    private = stat.st_uid == os.getuid() and (stat.st_mode & 0o077) == 0 and folder.is_dir() and not folder.is_symlink()
    return folder if private else None


def ask(path: Path, argv: list[str]) -> int | None:
    """The command's exit code, run by the server at `path`; None when nothing ran, the caller runs it here.

    A server that does not answer (none yet, or one that found its files changed) is replaced in the background."""
    import socket

    # The streams are looked at before the socket exists (a with enters each context before making the next):
    # a closed 0, 1 or 2 would otherwise be taken by the socket itself and handed on as the command's stream.
    with (
        _standard_fds() as fds,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client,
        _Forwarding() as forwarding,
    ):
        try:
            client.connect(str(path))
            socket.send_fds(client, [_request(argv)], fds)
            replies = client.makefile("rb")
            started = _reply(replies)
        except (OSError, ValueError):
            started = None
        if started is None or "pid" not in started:
            start_server(path)
            return 128 + forwarding.pending[0] if forwarding.pending else None  # Ctrl-C before it began
        forwarding.start(int(started["pid"]))
        return _outcome(replies)


class _Forwarding:
    """Signals this process gets (Ctrl-C, a kill) passed on to the command, those that came before it started
    included; the previous handlers back at the end."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pending: list[int] = []
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _Forwarding:
        self.previous = {signum: signal.signal(signum, self._forward) for signum in self.SIGNALS}
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def start(self, pid: int) -> None:
        self.pid = pid
        for signum in self.pending:
            self._forward(signum, None)

    def _forward(self, signum: int, _frame: object) -> None:
        if self.pid is None:
            self.pending.append(signum)
            return
        with suppress(ProcessLookupError):
            os.kill(self.pid, signum)


def _request(argv: list[str]) -> bytes:
    umask = os.umask(0)
    os.umask(umask)
    streams = {name: _encoding(getattr(sys, name)) for name, _ in STREAMS}
    request = {"argv": argv, "cwd": str(Path.cwd()), "env": dict(os.environ), "umask": umask, "streams": streams}
    return json.dumps(request).encode() + b"\n"


def _encoding(stream: Any) -> tuple[str, str]:
    """A stream's encoding and error handler, as this interpreter chose them (PYTHONIOENCODING, the locale)."""
    return (getattr(stream, "encoding", None) or "utf-8", getattr(stream, "errors", None) or "strict")


@contextmanager
def _standard_fds() -> Iterator[list[int]]:
    """File descriptors 0, 1 and 2, with /dev/null standing in for any that is closed."""
    opened: list[int] = []
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            opened.append(os.open(os.devnull, os.O_RDWR))
            fds.append(opened[-1])
    try:
        yield fds
    finally:
        for fd in opened:
            os.close(fd)


def _outcome(replies: BinaryIO) -> int:
    """The exit code of the command once it ended; a command killed by a signal kills this process with it."""
    try:
        ended = _reply(replies)
    except (OSError, ValueError):
        ended = None
    if ended is None or "exit" not in ended:
        print("error: the command's process ended without a status (killed?)", file=sys.stderr)
        return 1
    code = int(ended["exit"])
    if code < 0:  # as a shell expects of a command that died of a signal
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


def _reply(replies: BinaryIO) -> dict[str, Any] | None:
    line = replies.readline()
    return json.loads(line) if line.endswith(b"\n") else None


def start_server(path: Path) -> None:
    """A server for the next command, in its own session, its streams on /dev/null."""
    null = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    with suppress(OSError):  # no server: every command runs in its own process, as with MAILBOT_WARM=0
        os.posix_spawn(sys.executable, server_command(path), dict(os.environ), file_actions=null, setsid=True)


def server_command(path: Path) -> list[str]:
    """The server's command line. -P: `python -m` would put the folder it starts in first on sys.path, and every
    later command would import from the folder the first one ran in (a stray openpyxl.py there, say); the
    console script's own path has no such entry."""
    return [sys.executable, "-P", "-m", "mailbot.warm", str(path)]


# --- the server --------------------------------------------------------------------------------------------


def serve(path: Path, idle_seconds: float = IDLE_SECONDS) -> None:
    """Answer commands at `path` until `idle_seconds` pass without one or an imported file changes."""
    lock = _lock(path)
    if lock is None:
        return  # another server answers at this path
    os.chdir("/")  # not to hold the folder of the command that started it (each fork goes to its client's)
    try:
        if not _preload():
            return
        stamps = _stamps()
        listener = _listen(path)
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps each fork: nothing to wait for here
        signal.signal(signal.SIGTERM, _exit_quietly)
        try:
            _accept(listener, lock, stamps, idle_seconds)
        finally:
            _unlisten(listener, path)
    finally:
        os.close(lock)


def _exit_quietly(_signum: int, _frame: object) -> NoReturn:
    raise SystemExit(0)


def _lock(path: Path) -> int | None:
    """An exclusive lock beside the socket, held while the server lives; None when another holds it."""
    import fcntl
    import time

    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


def _preload() -> bool:
    import importlib

    try:
        for name in PRELOAD:
            importlib.import_module(name)
        from sqlalchemy.orm import configure_mappers

        configure_mappers()  # done once here instead of at each command's first query
        _render_a_table()
    except Exception:  # a broken installation: commands run in their own process and say what is wrong
        return False
    for name in OPTIONAL_PRELOAD:
        with suppress(ImportError):
            importlib.import_module(name)
    return True


def _render_a_table() -> None:
    """rich loads its emoji and character-width tables at the first table it prints: load them here."""
    import io

    from rich.console import Console
    from rich.table import Table

    table = Table(title="单位")
    table.add_column("单位")
    table.add_row("汝州市总工会 :)")
    Console(file=io.StringIO(), width=40).print(table)


def _stamps() -> dict[Path, tuple[int, int]]:
    """The modification time and size of every file the server has imported."""
    stamps = {}
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if name:
            try:
                stat = Path(name).stat()
            except OSError:
                continue
            stamps[Path(name)] = (stat.st_mtime_ns, stat.st_size)
    return stamps


def _changed(stamps: dict[Path, tuple[int, int]]) -> bool:
    for path, stamp in stamps.items():
        try:
            stat = path.stat()
        except OSError:
            return True
        if (stat.st_mtime_ns, stat.st_size) != stamp:
            return True
    return False


def _listen(path: Path) -> socket.socket:
    with suppress(FileNotFoundError):  # a socket left by a server that was killed: we hold the lock
        path.unlink()
    import socket

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    listener.settimeout(None)
    return listener


def _unlisten(listener: socket.socket, path: Path) -> None:
    listener.close()
    with suppress(FileNotFoundError):
        path.unlink()


def _accept(listener: socket.socket, lock: int, stamps: dict[Path, tuple[int, int]], idle_seconds: float) -> None:
    listener.settimeout(idle_seconds)
    while True:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            return
        with connection:
            received = _receive(connection)
            if received is None:
                continue
            request, fds = received
            try:
                if _changed(stamps):
                    _send(connection, {"stale": True})
                    return
                _fork(connection, (listener.fileno(), lock), request, fds)
            finally:
                for fd in fds:
                    os.close(fd)


def _fork(connection: socket.socket, inherited: tuple[int, ...], request: dict[str, Any], fds: list[int]) -> None:
    try:
        pid = os.fork()
    except OSError:
        return  # out of processes or memory: the client sees no pid and runs the command itself
    if pid == 0:
        _report(connection, inherited, request, fds)


def _receive(connection: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """The request and the client's three streams; None from another user or a client that sent nothing whole."""
    import socket
    import struct

    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    if struct.unpack("3i", credentials)[1] != os.getuid():
        return None
    connection.settimeout(REQUEST_SECONDS)
    fds: list[int] = []
    try:
        data, fds, _, _ = socket.recv_fds(connection, 1 << 16, 3)
        while data and not data.endswith(b"\n"):
            more = connection.recv(1 << 16)
            if not more:
                break
            data += more
        if len(fds) == 3 and data.endswith(b"\n"):
            return json.loads(data), fds
    except (OSError, ValueError):
        pass
    for fd in fds:
        os.close(fd)
    return None


def _send(connection: socket.socket, message: dict[str, Any]) -> None:
    with suppress(OSError):  # the client has gone (killed): the command's outcome has no one to go to
        connection.sendall(json.dumps(message).encode() + b"\n")


def _report(connection: socket.socket, inherited: tuple[int, ...], request: dict[str, Any], fds: list[int]) -> NoReturn:
    """The fork between the server and the command: runs the command in a fork of its own and sends back its
    pid, then its exit status (a negative one for a signal), which only a parent can learn."""
    try:
        for fd in inherited:  # the listening socket and the lock belong to the server alone
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:  # now 0, 1 and 2: the command needs no second copy
                os.close(fd)
        pid = os.fork()
        if pid == 0:
            connection.close()
            _command(request)
        _send(connection, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        _send(connection, {"exit": os.waitstatus_to_exitcode(status)})
    finally:
        os._exit(0)


def _command(request: dict[str, Any]) -> NoReturn:
    """Become the command: the client's streams, folder, environment and umask, then its command line."""
    code = 1
    try:
        _streams(request["streams"])
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.umask(int(request["umask"]))
        _timezone()
        sys.argv = ["mailbot", *request["argv"]]
        code = _run(list(request["argv"]))
    except BaseException as error:  # what Python prints of an error no one caught, and how it exits
        import traceback

        traceback.print_exc()
        code = -signal.SIGINT if isinstance(error, KeyboardInterrupt) else 1
    finally:
        _finish()
        if code < 0:  # a Ctrl-C before click took over: the process dies of it, as Python's own would
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code)


def _timezone() -> None:
    import time

    time.tzset()  # TZ may differ from the server's


def _streams(encodings: dict[str, list[str]]) -> None:
    """New sys.stdin, stdout and stderr over descriptors 0–2, buffered as Python buffers them at start."""
    for name, fd in STREAMS:
        encoding, errors = encodings[name]
        # Python line-buffers stderr always and stdout at a terminal; 1 is line buffering, -1 the default.
        buffering = 1 if fd == 2 or (fd == 1 and os.isatty(fd)) else -1
        mode = "r" if fd == 0 else "w"
        stream = open(fd, mode, buffering, encoding, errors, closefd=False)  # noqa: SIM115 - kept till the exit
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _run(argv: list[str]) -> int:
    """The command line's exit code, as a new interpreter would give it."""
    from mailbot.cli import main as run_here

    try:
        run_here(argv)
    except SystemExit as exit_:
        return _exit_code(exit_.code)
    return 0


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _finish() -> None:
    """What an interpreter does at exit: the atexit functions (logging's flush among them), then the streams."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
