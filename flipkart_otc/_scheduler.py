"""When each piece of work is due, and who does it. Knows nothing of Flipkart.

One task keeps a heap of entries by when each is next due and hands the due ones
to workers through a FIFO. Workers start only as work comes due (never more than
the entries being served at once, up to ``workers``), so a large limit costs
nothing until the work is there. An entry is served by one worker at a time, so
its work never overlaps. Time is the clock's monotonic face, shown in epoch
seconds as the wall clock read at :meth:`Scheduler.start`: a stepped wall clock
neither stalls nor hurries anything.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import math
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from ._channel import Channel
from .clock import Clock, monotonic_of

__all__ = ["Entry", "Scheduler"]


class Entry(Protocol):
    """Something the scheduler attends to: when it is due, whether its owner dropped it
    (it is skipped when next met), and an order by ``due`` for the heap."""

    due: float
    removed: bool

    def __lt__(self, other: Any, /) -> bool: ...


E = TypeVar("E", bound=Entry)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Scheduler(Generic[E]):
    """Serve each entry when it is due.

    ``serve(entry, now)`` is called when an entry comes due and returns what to
    await (a plain function returning the coroutine: no frame of its own at each
    of the work's waits), or None; then ``next_due(entry, now)`` says when the
    entry is due again (None: not again). ``blocked()`` tells :meth:`wait_idle` that
    the workers wait on their consumer. An exception the work raises goes to
    ``on_error`` (the entry is not served again), never silently into a dead task.
    """

    def __init__(
        self,
        clock: Clock,
        serve: Callable[[E, float], Awaitable[None] | None],
        next_due: Callable[[E, float], float | None],
        *,
        workers: int,
        blocked: Callable[[], bool] = lambda: False,
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "scheduler",
    ) -> None:
        self.clock = clock
        self._monotonic = monotonic_of(clock)
        self._base = clock.time() - self._monotonic()
        self._serve = serve
        self._next_due = next_due
        self._max_workers = workers
        self._blocked = blocked
        self._on_error = on_error
        self._name = name
        self._heap: list[E] = []
        self._ready: Channel[E] = Channel()
        self._deadline = math.inf
        self._wakeup: asyncio.Future[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._workers = 0
        self._pending = 0  # entries in the ready FIFO or being served
        self._changed: asyncio.Event | None = None  # set on progress while wait_idle() waits
        self._stopped = False
        self._closing: asyncio.Future[list[BaseException | None]] | None = None

    def now(self) -> float:
        """Monotonic time, in epoch seconds as the wall clock read at start."""
        return self._monotonic() + self._base

    def start(self) -> None:
        """Read the wall clock once for :meth:`now`, and start the heap's task."""
        self._base = self.clock.time() - self._monotonic()
        self._tasks.append(asyncio.create_task(self._loop(), name=self._name))

    def schedule(self, entry: E, when: float) -> None:
        """Serve ``entry`` at ``when`` (at once if that is not in the future)."""
        entry.due = when
        if when <= self._monotonic() + self._base:
            self._enqueue(entry)
            return
        heapq.heappush(self._heap, entry)
        if when < self._deadline and self._wakeup is not None:
            _resolve(self._wakeup)

    def stop(self) -> None:
        """Stop serving: cancel every task but the caller's."""
        self._stopped = True
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self.notify()

    async def aclose(self) -> None:
        """Cancel and await every task. Safe to call more than once."""
        if self._closing is None:
            self._stopped = True
            for task in self._tasks:
                task.cancel()
            self._closing = asyncio.ensure_future(
                asyncio.gather(*self._tasks, return_exceptions=True)
            )
        await asyncio.shield(self._closing)  # a cancelled caller must not stop the cleanup

    async def wait_idle(self) -> None:
        """Wait until nothing is due or being served, or the workers are ``blocked()``."""
        while (self._pending and not self._blocked()) or self._due_now():
            self._changed = changed = asyncio.Event()
            try:
                await changed.wait()
            finally:
                self._changed = None

    def notify(self) -> None:
        """Progress: let :meth:`wait_idle` look again."""
        if self._changed is not None:
            self._changed.set()

    def _due_now(self) -> bool:
        heap = self._heap
        while heap and heap[0].removed:
            heapq.heappop(heap)
        return bool(heap) and heap[0].due <= self.now() and not self._stopped

    def _enqueue(self, entry: E) -> None:
        """Hand a due entry to the workers. (No wait_idle() wake-up: work only grows.)"""
        self._pending += 1
        self._ready.put_nowait(entry)
        if (
            self._workers < self._pending
            and self._workers < self._max_workers
            and not self._stopped
        ):
            self._workers += 1
            self._tasks.append(
                asyncio.create_task(self._work(), name=f"{self._name}-worker-{self._workers}")
            )

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        heap, clock, monotonic = self._heap, self.clock, self._monotonic
        while True:
            now = monotonic() + self._base
            while heap and heap[0].due <= now:
                entry = heapq.heappop(heap)
                if not entry.removed:
                    self._enqueue(entry)
            self.notify()  # nothing may be due any more (a removed entry was)
            self._deadline = heap[0].due if heap else math.inf
            self._wakeup = wakeup = loop.create_future()
            timer = None
            if self._deadline != math.inf:
                timer = clock.call_at(
                    self._deadline - self._base, functools.partial(_resolve, wakeup)
                )
            try:
                await wakeup
            finally:
                self._wakeup = None
                if timer is not None:
                    timer.cancel()

    async def _work(self) -> None:
        ready, monotonic, serve, next_due = (
            self._ready,
            self._monotonic,
            self._serve,
            self._next_due,
        )
        while not self._stopped:
            entry = ready.get_nowait() if ready.items else await ready.get()
            try:
                if entry.removed:
                    continue
                now = monotonic() + self._base
                try:
                    work = serve(entry, now)
                    if work is not None:
                        await work
                except Exception as exc:  # not CancelledError: stopping goes on
                    if self._on_error is None:
                        raise
                    self._on_error(exc)
                    continue
                if not entry.removed and not self._stopped:
                    when = next_due(entry, now)
                    if when is not None:
                        self.schedule(entry, when)
            finally:
                self._pending -= 1
                self.notify()
