"""Turns for requests under a rate cap and a 429's pause, on an injectable clock.

A :class:`Pacer` hands out turns of one :class:`~flipkart_otc.ratelimit.Bucket`
(or, without one, only waits out a pause). While the cap binds, waiting requests go
earliest ``queued + patience`` first: a request yields to those queued up to
``patience`` seconds after it, and never longer. A pause longer than the caller
waits for raises at once, nothing sent.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math

from .clock import Clock, TimerHandle, monotonic_of
from .errors import RateLimitedError
from .ratelimit import Bucket

__all__ = ["Pacer", "paused_error"]


def paused_error(location_id: str | None, left: float) -> RateLimitedError:
    """What a request not sent because of a pause raises."""
    return RateLimitedError(
        429,
        None,
        f"not sent: the API asked for no request for {left:.0f}s more",
        location_id=location_id,
        retry_after=left,
    )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Pacer:
    """Turns under ``bucket`` (None: no cap, only pauses), on ``clock``'s monotonic face."""

    __slots__ = (
        "_clock",
        "_max_pause",
        "_now",
        "_queued",
        "_release",
        "_waiting",
        "bucket",
        "resume_at",
    )

    def __init__(self, bucket: Bucket | None, clock: Clock, max_pause: float) -> None:
        self.bucket = bucket
        self._clock = clock
        self._now = monotonic_of(clock)
        self._max_pause = max_pause
        #: No request before this (the end of the last pause), on the monotonic face.
        self.resume_at = -math.inf
        # Requests waiting for their turn: (queued + patience, order, turn, location).
        self._waiting: list[tuple[float, int, asyncio.Future[None], str | None]] = []
        self._queued = itertools.count()
        self._release: TimerHandle | None = None

    @property
    def idle(self) -> bool:
        """No cap and no pause ever: a request need not ask for a turn."""
        return self.bucket is None and self.resume_at == -math.inf

    def free_at(self, now: float) -> float:
        bucket = self.bucket
        if bucket is None:
            return max(now, self.resume_at)
        return bucket.free_at(now)

    async def turn(self, location_id: str | None, patience: float) -> None:
        """Wait for this request's turn (a pause included)."""
        now = self._now()
        if self.resume_at - now > self._max_pause:
            raise paused_error(location_id, self.resume_at - now)
        if not self._waiting and self.free_at(now) <= now:
            if self.bucket is not None:
                self.bucket.book(now)
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (now + patience, next(self._queued), turn, location_id))
        if self._release is None:
            self._release_turns()
        await turn  # cancelled: _release_turns skips it

    async def sleep(self, until: float) -> None:
        """Wait until ``until`` on the monotonic face."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handle = self._clock.call_at(until, lambda: _resolve(future))
        try:
            await future
        finally:
            handle.cancel()

    def pause(self, until: float) -> None:
        """Send nothing before ``until`` (monotonic); then resume at the rate."""
        if until > self.resume_at:
            self.resume_at = until
        if self.bucket is not None:
            self.bucket.pause(until)
        if self._waiting:
            self._release_turns()  # later turns, or none if the pause is too long

    def close(self) -> None:
        if self._release is not None:
            self._release.cancel()
            self._release = None

    def _release_turns(self) -> None:
        """Give the turns that are due to the most urgent waiters; wake up again at the
        next one."""
        bucket, waiting = self.bucket, self._waiting
        self.close()
        now = self._now()
        if self.resume_at - now > self._max_pause:  # a 429 asked for too long a pause
            while waiting:
                _, _, turn, location_id = heapq.heappop(waiting)
                if not turn.done():
                    turn.set_exception(paused_error(location_id, self.resume_at - now))
            return
        while waiting and self.free_at(now) <= now:
            _, _, turn, _ = heapq.heappop(waiting)
            if not turn.done():
                if bucket is not None:
                    bucket.book(now)
                turn.set_result(None)
        if waiting:
            self._release = self._clock.call_at(self.free_at(now), self._release_turns)
