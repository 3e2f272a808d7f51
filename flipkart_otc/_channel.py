"""A FIFO and a gate between the tasks of one event loop, cheaper than asyncio's own.

The watcher hands every due location to a poller, and every event to the
reader, through one of these. ``asyncio.Queue`` spends about a dozen Python
calls per item on size checks through methods and ``join()`` accounting, which
showed on every poll of a saturated watcher. This keeps the semantics the
watcher relies on: ``get()`` waits while empty, ``put()`` waits while full,
first in first out, and a waiter that is cancelled after being woken passes
the wake-up on, so no item is stranded. :class:`Gate` is a semaphore with the
same hand-off, which the client holds around each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from typing import Generic, TypeVar

__all__ = ["Channel", "Gate"]

T = TypeVar("T")


def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return


def _waiter(waiters: deque[asyncio.Future[None]]) -> asyncio.Future[None]:
    waiter = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    return waiter


def _abandon(waiter: asyncio.Future[None], waiters: deque[asyncio.Future[None]]) -> None:
    """The task awaiting ``waiter`` was cancelled."""
    waiter.cancel()  # in case it was not woken
    with contextlib.suppress(ValueError):
        waiters.remove(waiter)
    if not waiter.cancelled():  # woken, then cancelled: another waiter takes the turn
        _wake_one(waiters)


class Channel(Generic[T]):
    """A FIFO of at most ``maxsize`` items (0: unbounded)."""

    __slots__ = ("_getters", "_putters", "items", "maxsize")

    def __init__(self, maxsize: int = 0) -> None:
        #: The items, oldest first; read it (``if channel.items``), change it only
        #: through the methods.
        self.items: deque[T] = deque()
        #: How many items fit (``sys.maxsize`` when unbounded); read only.
        self.maxsize = maxsize if maxsize > 0 else sys.maxsize
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()

    def __len__(self) -> int:
        return len(self.items)

    def full(self) -> bool:
        return len(self.items) >= self.maxsize

    def put_nowait(self, item: T) -> None:
        """Add ``item``; :class:`asyncio.QueueFull` if there is no room."""
        if len(self.items) >= self.maxsize:
            raise asyncio.QueueFull
        self.items.append(item)
        if self._getters:
            _wake_one(self._getters)

    async def put(self, item: T) -> None:
        """Add ``item``, waiting for room."""
        while len(self.items) >= self.maxsize:
            await self.room()
        self.put_nowait(item)

    def force(self, item: T) -> None:
        """Add ``item`` even past ``maxsize``: a batch that must go in whole."""
        self.items.append(item)
        if self._getters:
            _wake_one(self._getters)

    async def room(self) -> None:
        """Wait until an item is taken (then check again: another may have filled it)."""
        waiter = _waiter(self._putters)
        try:
            await waiter
        except BaseException:
            _abandon(waiter, self._putters)
            raise

    def get_nowait(self) -> T:
        """The oldest item; :class:`asyncio.QueueEmpty` if there is none."""
        if not self.items:
            raise asyncio.QueueEmpty
        item = self.items.popleft()
        if self._putters:
            _wake_one(self._putters)
        return item

    async def get(self) -> T:
        """The oldest item, waiting for one."""
        while not self.items:
            waiter = _waiter(self._getters)
            try:
                await waiter
            except BaseException:
                _abandon(waiter, self._getters)
                raise
        return self.get_nowait()


class Gate:
    """At most ``size`` holders at once (0: no limit); a waiter that is cancelled after
    being let in passes its turn on. :meth:`enter_nowait` is the fast path, with no
    coroutine::

        if not gate.enter_nowait():
            await gate.enter()
        try:
            ...
        finally:
            gate.leave()
    """

    __slots__ = ("_waiters", "free", "size")

    def __init__(self, size: int = 0) -> None:
        self.size = size if size > 0 else sys.maxsize
        #: Holders that may still enter at once; read only.
        self.free = self.size
        self._waiters: deque[asyncio.Future[None]] = deque()

    def enter_nowait(self) -> bool:
        """Enter if there is room now; False otherwise."""
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    async def enter(self) -> None:
        """Enter, waiting for room (first come, first served)."""
        if self.enter_nowait():
            return
        waiter = _waiter(self._waiters)
        try:
            await waiter  # leave() hands its place over: `free` is not given back
        except BaseException:
            waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if not waiter.cancelled():  # let in, then cancelled: pass the place on
                self.leave()
            raise

    def leave(self) -> None:
        """Give the place back, or hand it to the first waiter."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1

    def widen(self, size: int) -> None:
        """Let up to ``size`` in at once (never narrows); waiters that now fit go in."""
        if size <= self.size:
            return
        self.free += size - self.size
        self.size = size
        while self.free > 0 and self._waiters:
            self.free -= 1
            self.leave()
