"""Time as the watcher and the simulator see it, injectable for tests.

A clock has two faces: :meth:`Clock.time`, the wall clock (epoch seconds, what
timestamps mean), and :meth:`Clock.monotonic`, which never steps, on which
:meth:`Clock.call_at` runs timers. A wall clock stepped back an hour must not
stop a watcher's polls for that hour, nor one stepped forward fire expiries
early: the watcher schedules on the monotonic face alone.

:class:`SystemClock` is the real thing. :class:`ManualClock` only moves when a
test says so: :meth:`ManualClock.advance` moves both faces and fires timers,
:meth:`ManualClock.step_wall` steps the wall clock alone, as an NTP step or an
administrator would.

>>> clock = ManualClock(start=1_000.0)
>>> fired = []
>>> _ = clock.call_at(clock.monotonic() + 5, lambda: fired.append(clock.time()))
>>> clock.step_wall(-3600)  # the wall clock jumps back; the timer is not delayed
>>> clock.advance(10)
>>> fired, clock.time()
([-2595.0], -2590.0)
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "TimerHandle", "monotonic_of", "sleep_until"]


@runtime_checkable
class TimerHandle(Protocol):
    """What :meth:`Clock.call_at` returns."""

    def cancel(self) -> None:
        """Do not run the callback (a no-op once it ran)."""


@runtime_checkable
class Clock(Protocol):
    """A wall clock, a monotonic clock, and timers on the monotonic one."""

    def time(self) -> float:
        """Now on the wall clock, in epoch seconds (it may step either way)."""
        ...

    def monotonic(self) -> float:
        """Now on a clock that never steps, in seconds from an arbitrary start."""
        ...

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        """Run ``callback`` (in the event loop) once :meth:`monotonic` reaches ``when``."""
        ...


def monotonic_of(clock: Clock) -> Callable[[], float]:
    """``clock.monotonic``; for a clock written before it existed (``time()`` and a
    ``call_at`` on that time), ``clock.time``, which then serves both faces as before."""
    monotonic: Callable[[], float] | None = getattr(clock, "monotonic", None)
    return monotonic if monotonic is not None else clock.time


def _boot_clock() -> Callable[[], float]:
    # CLOCK_BOOTTIME keeps counting while the machine sleeps, so a code that expired
    # during a suspend is due at once on resume; elsewhere time.monotonic.
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:  # pragma: no cover - not Linux
        return time.monotonic
    return functools.partial(time.clock_gettime, boottime)  # no Python frame per read


class SystemClock:
    """The wall clock, and timers on the running event loop against a monotonic clock
    that counts a suspended machine's sleep (Linux's ``CLOCK_BOOTTIME``)."""

    #: Now, in epoch seconds (:func:`time.time` itself).
    time = staticmethod(time.time)
    #: Now, on the monotonic clock.
    monotonic = staticmethod(_boot_clock())

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - self.monotonic()), callback)

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
    Its monotonic face starts at 0.
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = float(start)
        self._mono = 0.0
        self._timers: list[tuple[float, int, _ManualTimer]] = []
        self._seq = itertools.count()

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def datetime(self) -> datetime:
        """Now, as an aware UTC datetime."""
        return datetime.fromtimestamp(self._now, UTC)

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        timer = _ManualTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    def advance(self, seconds: float) -> None:
        """Move both faces forward, running every timer that comes due, in order."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds!r})")
        end = self._mono + seconds
        while self._timers and self._timers[0][0] <= end:
            due, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self._move_to(max(self._mono, due))
                timer.callback()
        self._move_to(end)

    def _move_to(self, mono: float) -> None:
        self._now += mono - self._mono
        self._mono = mono

    def set_time(self, when: float) -> None:
        """Move forward until the wall clock reads ``when`` (epoch seconds)."""
        if when < self._now:
            raise ValueError(f"a clock cannot go back: {when!r} < {self._now!r}")
        self.advance(when - self._now)

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock alone by ``seconds`` (either way): no timer moves or fires."""
        self._now += seconds

    @property
    def next_timer(self) -> float | None:
        """When (on the monotonic face) the earliest pending timer fires, or None."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def sleep_until(clock: Clock, when: float) -> None:
    """Wait until ``clock``'s wall face would read ``when``, had it not stepped since:
    the wait is measured on the monotonic face."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    handle = clock.call_at(monotonic_of(clock)() + (when - clock.time()), lambda: _resolve(future))
    try:
        await future
    finally:
        handle.cancel()
