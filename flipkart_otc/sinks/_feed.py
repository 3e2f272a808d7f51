"""``RedisStreamFeed``: a stream read back as a watcher's picture and subscribers, for
a dashboard apart from the shard workers."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Self

import attrs
from redis import exceptions as redis_errors

from .._checks import check_redis_url, safe_url
from .._fanout import LocationView, Picture, Readers, Subscription, WatcherHealth
from .._lifecycle import Closing
from .._mirror import apply
from .._saved import decode
from .._serialize import MASK
from ..clock import Clock, SystemClock
from ..errors import SinkError
from ..events import event_from_dict
from ._redis import (
    _REFUSED,
    _UNAVAILABLE,
    DEFAULT_STREAM,
    _connect,
    _refused,
    _stop,
    logger,
)
from ._tail import StreamTail

__all__ = ["RedisStreamFeed"]


class RedisStreamFeed(Closing):
    """A sink's stream read back as a watcher's picture and subscribers: what
    ``flipkart-otc dashboard --source redis://...`` shows, so dashboards scale apart
    from the shard workers.

    At start it reads every location's saved state and the stream's last entry in
    one transaction (a consistent picture), then follows the stream from there,
    applying each event to its location. Use it as an async context manager; hand
    it to :func:`flipkart_otc.dashboard.create_app`.

    >>> async with RedisStreamFeed("redis://127.0.0.1:6379/0") as feed:  # doctest: +SKIP
    ...     app = create_app(feed)
    """

    def __init__(
        self, url: str, *, stream: str = DEFAULT_STREAM, clock: Clock | None = None
    ) -> None:
        self._url = check_redis_url(url)
        self.stream = stream
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._redis = _connect(url)
        self._views: dict[str, LocationView] = {}
        self._readers = Readers()
        self._task: asyncio.Task[None] | None = None
        self._last_event: float | None = None
        self._closed = False

    def __repr__(self) -> str:
        seq = self._readers.seq
        return f"<RedisStreamFeed {safe_url(self._url)} stream={self.stream!r} seq={seq}>"

    @property
    def clock(self) -> Clock:
        """The clock the page's countdowns run on."""
        return self._clock

    def now(self) -> float:
        """Epoch seconds on :attr:`clock`."""
        return self._clock.time()

    @property
    def locations(self) -> list[str]:
        """The locations known so far."""
        return list(self._views)

    def picture(self) -> Picture:
        """Every location after exactly the events numbered up to the picture's ``seq``."""
        return Picture(
            self._readers.seq, datetime.fromtimestamp(self.now(), UTC), dict(self._views)
        )

    def subscribe(self, maxsize: int = 1024) -> Subscription:
        """A picture, then every later event (see ``OtcWatcher.subscribe``)."""
        if self._closed:
            raise RuntimeError("this RedisStreamFeed is closed")
        return self._readers.subscribe(self.picture(), maxsize)

    def health(self) -> WatcherHealth:
        """Running, locations by status, and when the last event came (as the last success)."""
        by_status = Counter(
            view.status.value if view.status is not None else "PENDING"
            for view in self._views.values()
        )
        last = self._last_event
        return WatcherHealth(
            self._task is not None and not self._task.done() and not self._closed,
            dict(by_status),
            datetime.fromtimestamp(last, UTC) if last is not None else None,
            None if last is None else max(0.0, self.now() - last),
        )

    async def start(self) -> None:
        """Read the picture, and follow the stream from it."""
        if self._task is not None:
            return
        prefix = f"{self.stream}:loc:"
        try:
            keys = [key async for key in self._redis.scan_iter(match=prefix + "*", count=1000)]
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xrevrange(self.stream, count=1)
                for key in keys:
                    pipe.hmget(key, ["state", "shown"])
                # a key that is not a hash answers WRONGTYPE: that key's reply, not all
                last, *states = await pipe.execute(raise_on_error=False)
        except _REFUSED as exc:
            raise _refused(self._url, exc) from None
        except _UNAVAILABLE as exc:
            raise SinkError(
                f"Redis {safe_url(self._url)} unavailable: {type(exc).__name__}: {exc}"
            ) from None
        except redis_errors.RedisError as exc:
            raise _refused(self._url, exc) from None
        if isinstance(last, Exception):  # the stream's key is not a stream
            raise _refused(self._url, last)
        for key, reply in zip(keys, states, strict=True):
            self._take_saved(key, reply)
        cursor = last[0][0].decode() if last else "0-0"
        self._task = asyncio.create_task(self._follow(cursor), name="redis-stream-feed")

    def _take_saved(self, key: bytes, reply: Any) -> None:
        """One location's saved state into the picture; one that is not readable is
        said on one line and left out (its next event brings the location back)."""
        name = key.decode("utf-8", "backslashreplace")
        try:
            if isinstance(reply, Exception):  # WRONGTYPE: not a sink's hash
                raise SinkError(f"not a location's hash ({type(reply).__name__})")
            raw, shown = reply
            if not raw:
                return  # claimed, never written
            saved = decode(raw)
        except SinkError as exc:  # its text is never shown: it may hold codes
            logger.warning("stream %s: %s skipped: %s", self.stream, name[:200], exc)
            return
        snapshot, visits = saved.snapshot, saved.visits
        if shown != b"1":
            # its worker masked its events: the page must not show more than they do
            if snapshot is not None:
                details = {fe: attrs.evolve(d, otc=MASK) for fe, d in snapshot.details.items()}
                snapshot = attrs.evolve(snapshot, details=details)
            visits = tuple(
                v if v.end is None else attrs.evolve(v, end=attrs.evolve(v.end, otc=MASK))
                for v in visits
            )
        self._views[saved.location_id] = LocationView(
            saved.location_id, saved.status, snapshot, saved.error, visits
        )

    async def _follow(self, cursor: str) -> None:
        # from the picture's entry on: no gap, no overlap
        tail = StreamTail(self._url, stream=self.stream, after=cursor)
        try:
            async for entry in tail:
                try:
                    event = event_from_dict(entry.event)
                    view = apply(self._views.get(event.location_id), event)
                except (ValueError, TypeError, RecursionError) as exc:
                    # this entry only: the feed goes on
                    logger.warning(
                        "stream %s: entry %s skipped: %s", self.stream, entry.stream_id, exc
                    )
                    continue
                self._views[event.location_id] = view
                self._last_event = self.now()
                self._readers.publish([event])
        except SinkError as exc:  # refused (a password changed, an ACL): for good
            self._readers.finish(exc)  # the page says why; wait() raises it
            raise
        finally:
            await tail.aclose()
            self._readers.finish()

    async def wait(self) -> None:
        """Wait while the feed follows the stream: returns once it is closed, raises
        the :class:`~flipkart_otc.SinkError` that stopped it (Redis refused)."""
        task = self._task
        if task is None:
            raise RuntimeError("this RedisStreamFeed is not started")
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not (task.cancelled() and self._closed):
                raise  # this wait was cancelled, not the feed closed

    async def aclose(self) -> None:
        """Stop following; subscribers' iterations end."""
        self._closed = True
        if self._task is not None:
            await _stop(self._task)
        await self._redis.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self
