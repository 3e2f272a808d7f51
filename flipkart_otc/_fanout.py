"""Extra readers of a watcher: a consistent picture, then every later event, numbered.

The watcher publishes each poll's events here in the same step as it commits the
location's new state (no ``await`` between), so a picture taken at any moment is the
state after exactly the events numbered up to its ``seq``, and a subscriber's events
follow it with no gap and no overlap. A subscriber holds at most ``maxsize`` unread
events: one that falls further behind is dropped (its iteration raises
:class:`SubscriberLagged` once it has read what it holds) and never slows the pollers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol, runtime_checkable

from ._lifecycle import Closing
from ._saved import SavedLocation
from ._views import LocationView, Picture, Sequenced, WatcherHealth
from .clock import Clock
from .errors import FlipkartOtcError
from .events import OtcEvent, WatchEvent

__all__ = [
    "LocationView",
    "Picture",
    "Readers",
    "ReliableSink",
    "ResumableSink",
    "Sequenced",
    "SubscriberLagged",
    "Subscription",
    "WatcherHealth",
    "EventFeed",
]


class SubscriberLagged(FlipkartOtcError):
    """A subscriber fell more than its ``maxsize`` events behind and was dropped.

    Everything up to :attr:`last_seq` was delivered; subscribe again for a fresh
    picture.
    """

    def __init__(self, last_seq: int, maxsize: int) -> None:
        super().__init__(
            f"subscriber fell more than {maxsize} events behind after event {last_seq}; "
            "subscribe again"
        )
        self.last_seq = last_seq
        self.maxsize = maxsize


@runtime_checkable
class ReliableSink(Protocol):
    """Where a watcher hands each poll's events before the location's state advances.

    ``write`` is awaited with the location's events and the view of the location
    they lead to, before either reaches a reader; the watcher commits the state only
    once it returns, so a sink that keeps both in one atomic write loses nothing and
    repeats nothing. An exception from it stops the watcher, which raises it.
    """

    async def write(self, events: Sequence[WatchEvent], view: LocationView) -> None:
        """Keep ``events`` and ``view`` together, or raise."""
        ...


@runtime_checkable
class ResumableSink(ReliableSink, Protocol):
    """A :class:`ReliableSink` that also keeps each location's state, so that a watcher
    started again goes on where the last one stopped.

    A watcher with such a sink calls ``load`` once with its locations before its
    first poll (and for each location added later): a location found there is
    not announced again; what changed while no watcher ran comes out marked
    ``recovered``. ``load`` may also claim the locations for this watcher (a later
    claimant wins: :class:`~flipkart_otc.SinkFencedError`).
    """

    async def load(self, location_ids: Collection[str]) -> Mapping[str, SavedLocation]:
        """The saved state of those of ``location_ids`` that have one."""
        ...


@runtime_checkable
class EventFeed(Protocol):
    """What a dashboard reads: a watcher, or a reader of a sink's stream
    (:class:`~flipkart_otc.sinks.RedisStreamFeed`)."""

    @property
    def clock(self) -> Clock:
        """The clock its times come from."""
        ...

    def now(self) -> float:
        """Its time now, epoch seconds."""
        ...

    def picture(self) -> Picture:
        """Every location now, after exactly the events numbered up to its ``seq``."""
        ...

    def subscribe(self, maxsize: int = 1024) -> Subscription:
        """A picture, then every later event, numbered."""
        ...

    def health(self) -> WatcherHealth:
        """Running, locations by status, the last success."""
        ...


class Subscription(Closing):
    """An extra reader of an :class:`~flipkart_otc.OtcWatcher`: see ``subscribe()``.

    Iterating yields the :class:`Picture` first, then each :class:`Sequenced` event.
    """

    def __init__(
        self, picture: Picture, maxsize: int, detach: Callable[[Subscription], None]
    ) -> None:
        self.picture = picture
        self.maxsize = maxsize
        self._items: deque[Sequenced] = deque()
        self._picture_due = True
        self._last = picture.seq
        self._waiter: asyncio.Future[None] | None = None
        self._end: BaseException | None = None  # why iteration ends once drained
        self._detach = detach

    def __repr__(self) -> str:
        return f"<Subscription from seq {self.picture.seq} unread={len(self._items)}>"

    @property
    def unread(self) -> int:
        """Events published to this subscriber and not read yet."""
        return len(self._items)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def take_nowait(self) -> Sequenced | None:
        """The next unread event without waiting, or None (the picture is not one)."""
        return self._items.popleft() if self._items else None

    def push(self, item: Sequenced) -> bool:
        """Hand on one event (the watcher calls this); False once it is dropped."""
        if self._end is not None:
            return False
        if len(self._items) >= self.maxsize:
            self._end = SubscriberLagged(self._last, self.maxsize)
            self._wake()
            return False
        self._items.append(item)
        self._last = item.seq
        self._wake()
        return True

    def finish(self, reason: BaseException | None = None) -> None:
        """No more events (the watcher stopped): iteration ends, or raises ``reason``."""
        if self._end is None:
            self._end = reason if reason is not None else StopAsyncIteration()
        self._wake()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Picture | Sequenced:
        if self._picture_due:
            self._picture_due = False
            return self.picture
        while not self._items:
            if self._end is not None:
                raise self._end
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    async def aclose(self) -> None:
        """Stop receiving events."""
        self._detach(self)
        self.finish()


class Readers:
    """A feed's extra readers: each event numbered once (``seq`` counts from 1) and
    handed to every subscriber in the same step; one that falls behind is dropped,
    never waited for. A feed's picture is the state after the events up to ``seq``."""

    def __init__(self) -> None:
        #: The sequence number of the last event published (0 before any).
        self.seq = 0
        #: Subscribers dropped so far for falling behind.
        self.dropped = 0
        self._subscribers: set[Subscription] = set()

    @property
    def count(self) -> int:
        """Subscribers now."""
        return len(self._subscribers)

    def subscribe(self, picture: Picture, maxsize: int) -> Subscription:
        """A subscriber that starts from ``picture`` (taken at :attr:`seq`)."""
        subscription = Subscription(picture, maxsize, self._subscribers.discard)
        self._subscribers.add(subscription)
        return subscription

    def publish(self, events: Sequence[OtcEvent]) -> None:
        """Number ``events`` and hand them to every subscriber."""
        first = self.seq + 1
        self.seq += len(events)
        if self._subscribers:
            items = [Sequenced(seq, e) for seq, e in enumerate(events, first)]  # type: ignore[arg-type]
            for subscriber in list(self._subscribers):
                for item in items:
                    if not subscriber.push(item):  # it fell behind: dropped
                        self._subscribers.discard(subscriber)
                        self.dropped += 1
                        break

    def finish(self, reason: BaseException | None = None) -> None:
        """No more events: every subscriber's iteration ends (raising ``reason``)."""
        for subscriber in self._subscribers:
            subscriber.finish(reason)
        self._subscribers.clear()
