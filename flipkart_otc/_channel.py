"""A FIFO between the tasks of one event loop, cheaper than :class:`asyncio.Queue`.

The watcher hands every due location to a poller, and every event to the
reader, through one of these. ``asyncio.Queue`` spends about a dozen Python
calls per item on size checks through methods and ``join()`` accounting, which
showed on every poll of a saturated watcher. This keeps the semantics the
watcher relies on: ``get()`` waits while empty, ``put()`` waits while full,
first in first out, and a waiter that is cancelled after being woken passes
the wake-up on, so no item is stranded.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from typing import Generic, TypeVar

__all__ = ["Channel"]

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
            waiter = _waiter(self._putters)
            try:
                await waiter
            except BaseException:
                _abandon(waiter, self._putters)
                raise
        self.put_nowait(item)

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
