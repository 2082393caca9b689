"""A stop request that a signal handler may set, for `mailbot run`.

Standard library only, so that the command installs its handlers before it imports anything slow (SQLAlchemy,
APScheduler, the config): a SIGTERM that comes while the worker is still starting asks it to stop, instead of
killing the process with the signal's default action (exit -15).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignal:
    """A one-shot stop request. A pipe, not a threading.Event: Event.set() takes a lock, and a handler that runs
    while the main thread holds that lock (inside Event.wait) never returns."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self.requested = False
        self.signum = 0

    def set(self, signum: int = 0) -> None:
        # Plain assignments and one write(2): nothing here can wait for the thread it interrupted.
        self.signum, self.requested = signum, True
        with contextlib.suppress(BlockingIOError):  # full: it holds a stop request already
            os.write(self._write, b"\0")

    def wait(self) -> int:
        """Block until set; returns the signal number (0 when not stopped by a signal)."""
        while not self.requested:
            select.select([self._read], [], [])
        return self.signum

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


@contextlib.contextmanager
def stop_on_signals(stop: StopSignal) -> Iterator[None]:
    """SIGTERM (systemd's stop) and SIGINT (Ctrl-C) set `stop`. Call from the main thread."""
    previous = {sig: signal.signal(sig, lambda signum, _frame: stop.set(signum)) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
