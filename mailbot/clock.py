"""Time is injected everywhere: decisions take `now`, adapters take a `Clock`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The real clock, aware and in Asia/Shanghai. The only place that reads the wall time."""
    return datetime.now(TZ)


def as_local(moment: datetime) -> datetime:
    """Convert an aware datetime to Asia/Shanghai; naive values are taken to be local already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=TZ)
    return moment.astimezone(TZ)
