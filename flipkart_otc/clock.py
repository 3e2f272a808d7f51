"""Time as the watcher and the simulator see it, injectable for tests.

A clock tells the time (epoch seconds) and runs callbacks at a given time. The
:class:`SystemClock` uses the wall clock and the event loop's timers; a
:class:`ManualClock` only moves when a test calls :meth:`ManualClock.advance`,
so tests drive expiries and poll intervals without sleeping.

>>> clock = ManualClock(start=1_000.0)
>>> fired = []
>>> _ = clock.call_at(1_005.0, lambda: fired.append(clock.time()))
>>> clock.advance(10)
>>> fired, clock.time()
([1005.0], 1010.0)
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "TimerHandle", "sleep_until"]


@runtime_checkable
class TimerHandle(Protocol):
    """What :meth:`Clock.call_at` returns."""

    def cancel(self) -> None:
        """Do not run the callback (a no-op once it ran)."""


@runtime_checkable
class Clock(Protocol):
    """A source of time that can also run callbacks at a time."""

    def time(self) -> float:
        """Now, in epoch seconds."""
        ...

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback`` (in the event loop) once the time reaches ``when``."""
        ...


class SystemClock:
    """The wall clock, with timers on the running event loop."""

    #: Now, in epoch seconds (:func:`time.time` itself: the watcher reads it per poll).
    time = staticmethod(time.time)

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - time.time()), callback)

    def __repr__(self) -> str:
        return "SystemClock()"


class _ManualTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told to; timers fire in time order.

    Share one between the simulator and the watcher so both agree on "now".
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = float(start)
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._seq = itertools.count()

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"

    def time(self) -> float:
        return self._now

    def datetime(self) -> datetime:
        """Now, as an aware UTC datetime."""
        return datetime.fromtimestamp(self._now, UTC)

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        timer = _ManualTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward, running every timer that comes due, in order."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds!r})")
        self.set_time(self._now + seconds)

    def set_time(self, when: float) -> None:
        """Move time forward to ``when`` (epoch seconds)."""
        if when < self._now:
            raise ValueError(f"a clock cannot go back: {when!r} < {self._now!r}")
        while self._timers and self._timers[0][0] <= when:
            due, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self._now = max(self._now, due)
                timer.callback()
        self._now = when

    @property
    def next_timer(self) -> float | None:
        """When the earliest pending timer fires, or None."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def sleep_until(clock: Clock, when: float) -> None:
    """Wait until ``clock`` reaches ``when``."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    handle = clock.call_at(when, lambda: _resolve(future))
    try:
        await future
    finally:
        handle.cancel()
