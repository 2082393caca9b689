"""Processes named as "host:pid" in the database (the worker lock, outbox claims), and whether one still runs."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Holder:
    """A process, written in a row as "host:pid"."""

    host: str
    pid: int

    @classmethod
    def current(cls) -> Holder:
        """This process, read at each call: a forked child is another one."""
        return cls(socket.gethostname(), os.getpid())

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        host, _, pid = text.rpartition(":")
        return cls(host, int(pid)) if host and pid.isdigit() else None

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (signal 0 only asks)."""
    if pid <= 0:
        return False  # 0 and negative ids address process groups, not a process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def gone(text: str) -> bool:
    """True when `text` names a process of this machine, other than this one, that no longer runs. Another
    machine's process cannot be asked, and this process's own name may be a live thread's: neither is gone."""
    holder, me = Holder.parse(text), Holder.current()
    if holder is None or holder.host != me.host or holder.pid == me.pid:
        return False
    return not pid_alive(holder.pid)
