"""``RedisRateLimiter``: one rate limit and one 429 pause for a whole fleet, in Redis.

The bucket is the generic cell rate algorithm of :mod:`flipkart_otc.ratelimit`, kept
as one number (the theoretical arrival time) under ``<key>:tat``, moved by a Lua
script on Redis's own clock (``TIME``), so workers on machines whose clocks differ
still agree. A request that may go now is booked, fleet-wide; one that may not books
nothing and is told how long to wait before asking again (so a 429 that comes
meanwhile stops it: nothing is committed ahead); a 429
sets ``<key>:hold`` to the end of its pause (never earlier than one already set)
and empties the bucket, so every worker waits, then resumes at the rate.

Redis unreachable: each worker falls back to its part of the limit (``rate /
workers``, ``burst / workers`` rounded up) and to the pauses it saw itself, says so
once in the log, and tries Redis again at most once a second.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Final

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .._checks import check_int, check_redis_url, safe_url
from ..ratelimit import RATE_MIN, Bucket, RateLimit

__all__ = ["DEFAULT_RATE_KEY", "RedisRateLimiter"]

logger = logging.getLogger("flipkart_otc.sinks")

#: The keys' prefix by default.
DEFAULT_RATE_KEY: Final = "flipkart-otc:rate"

# KEYS: tat, hold. ARGV: interval, tolerance (seconds). Books a request that may go now
# (returns "0"), or books nothing and returns how long to wait before asking again: a
# booking far ahead would bind a request that a later 429 should stop.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local start = math.max(now, tonumber(redis.call('GET', KEYS[2]) or '0'))
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local at = math.max(start, tat - tolerance)
if at > now then return string.format('%.6f', at - now) end
local new = math.max(tat, now) + interval
redis.call('SET', KEYS[1], string.format('%.6f', new),
           'PX', math.ceil((new - now + tolerance) * 1000) + 1000)
return '0'
"""

# KEYS: tat, hold. ARGV: seconds, tolerance. Returns the pause left (seconds, text).
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local hold = tonumber(redis.call('GET', KEYS[2]) or '0')
local until_ = now + tonumber(ARGV[1])
if until_ > hold then
  hold = until_
  redis.call('SET', KEYS[2], string.format('%.6f', hold),
             'PX', math.ceil((hold - now) * 1000) + 1000)
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local tolerance = tonumber(ARGV[2])
if tat < hold + tolerance then
  redis.call('SET', KEYS[1], string.format('%.6f', hold + tolerance),
             'PX', math.ceil((hold - now + 2 * tolerance) * 1000) + 1000)
end
return string.format('%.6f', hold - now)
"""

# Redis unreachable, restarting, or refusing: keep to this worker's part.
_UNAVAILABLE = (redis_errors.RedisError, OSError)


class RedisRateLimiter:
    """A :class:`~flipkart_otc.SharedLimiter` in Redis: ``rate_limit`` for the whole
    fleet of ``workers`` processes, and one pause for all of them.

    >>> limiter = RedisRateLimiter("redis://127.0.0.1:6379/0", RateLimit(20, burst=5),
    ...                            workers=2)  # doctest: +SKIP
    >>> OtcClient(auth, rate_limit=RateLimit(20, burst=5), limiter=limiter)  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        rate_limit: RateLimit,
        *,
        workers: int = 1,
        key: str = DEFAULT_RATE_KEY,
        socket_timeout: float = 1.0,
    ) -> None:
        check_redis_url(url)
        if not isinstance(rate_limit, RateLimit):
            raise TypeError(f"rate_limit must be a RateLimit, got {type(rate_limit).__name__}")
        check_int("workers", workers)
        if not isinstance(key, str) or not key:
            raise ValueError("key must be a non-empty str")
        self._url = url
        self._limit = rate_limit
        self._workers = workers
        self._keys = (key + ":tat", key + ":hold")
        self._interval = 1.0 / rate_limit.rate
        self._tolerance = (rate_limit.burst - 1) * self._interval
        self._fallback = Bucket(
            RateLimit(
                max(RATE_MIN, rate_limit.rate / workers), max(1, -(-rate_limit.burst // workers))
            )
        )
        self._redis = Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 0),
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
        )
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._hold = self._redis.register_script(_HOLD)
        self._down_until = -math.inf  # Redis failed: not asked again before this
        self._down = False

    def __repr__(self) -> str:
        return (
            f"<RedisRateLimiter {safe_url(self._url)} rate={self._limit.rate:g} "
            f"burst={self._limit.burst} workers={self._workers}>"
        )

    @property
    def workers(self) -> int:
        """How many processes share the rate."""
        return self._workers

    @property
    def rate_limit(self) -> RateLimit:
        """The fleet's limit."""
        return self._limit

    @property
    def degraded(self) -> bool:
        """Redis is unreachable: this worker keeps to its part of the limit."""
        return self._down

    async def acquire(self) -> float:
        """Book one request fleet-wide if it may go now (0), else the seconds to wait
        before asking again (nothing booked)."""
        now = time.monotonic()
        if now >= self._down_until:
            try:
                wait = float(
                    await self._acquire(keys=self._keys, args=[self._interval, self._tolerance])
                )
            except _UNAVAILABLE as exc:
                self._failed(exc, now)
            else:
                self._recovered()
                return max(0.0, wait)
        fallback = self._fallback
        if fallback.free_at(now) > now:
            return fallback.free_at(now) - now
        fallback.book(now)
        return 0.0

    async def hold(self, seconds: float) -> None:
        """Pause every worker for ``seconds`` (this one at least, if Redis is away)."""
        now = time.monotonic()
        self._fallback.pause(now + seconds)
        if now < self._down_until:
            return
        try:
            await self._hold(keys=self._keys, args=[seconds, self._tolerance])
        except _UNAVAILABLE as exc:
            self._failed(exc, now)
        else:
            self._recovered()

    def _failed(self, exc: BaseException, now: float) -> None:
        self._down_until = now + 1.0
        if not self._down:
            self._down = True
            logger.warning(
                "rate limit: Redis %s unreachable (%s); this worker keeps to %g requests "
                "a second (1/%d of %g) until it is back",
                safe_url(self._url),
                type(exc).__name__,
                self._limit.rate / self._workers,
                self._workers,
                self._limit.rate,
            )

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            logger.warning(
                "rate limit: Redis %s back; the fleet shares one limit again",
                safe_url(self._url),
            )

    async def aclose(self) -> None:
        """Close the connection."""
        await self._redis.aclose()
