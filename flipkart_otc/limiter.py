"""``SharedLimiter``: a rate limit and a 429's pause shared by several processes.

Flipkart throttles per application, and a fleet's workers share one. An
:class:`~flipkart_otc.OtcClient` given a ``limiter`` asks it for a turn before
each request (after its own ``rate_limit``), and tells it of each 429's pause, so
one worker's 429 holds every worker. :class:`~flipkart_otc.sinks.RedisRateLimiter`
keeps the bucket and the pause in Redis.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["SharedLimiter"]


@runtime_checkable
class SharedLimiter(Protocol):
    """Turns under a rate limit that several processes share."""

    @property
    def workers(self) -> int:
        """How many processes share the rate (each aims its budget at its part)."""
        ...

    async def acquire(self) -> float:
        """Book one request that may go now (0), or book nothing and say how many
        seconds to wait before asking again (a pause included). Never raises for an
        outage: it falls back to this worker's part."""
        ...

    async def hold(self, seconds: float) -> None:
        """A 429 asked for no request of the application for ``seconds``."""
        ...
