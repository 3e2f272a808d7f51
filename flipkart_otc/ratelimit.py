"""A cap on requests per second, shared by every request of a client. Pure.

:class:`Bucket` is the generic cell rate algorithm (GCRA), a token bucket kept as
one number, the theoretical arrival time: each request books the earliest
instant it may be sent. In any span of ``L`` seconds the booked instants number
at most ``floor(L * rate) + burst``. A pause (Flipkart's 429 names how long the
whole application must wait) moves every booking past its end and empties the
bucket, so sending resumes at the rate, not with a burst of everything that
waited.

>>> bucket = Bucket(RateLimit(rate=2.0, burst=2))
>>> [bucket.book(0.0) for _ in range(4)]
[0.0, 0.0, 0.5, 1.0]
>>> bucket.pause(10.0)
>>> [bucket.book(1.0) for _ in range(3)]
[10.0, 10.5, 11.0]
"""

from __future__ import annotations

import math

import attrs

__all__ = ["BURST_MAX", "MAX_HOLD", "RATE_MAX", "RATE_MIN", "Bucket", "RateLimit", "check_share"]

#: The longest pause (seconds) a 429's ``Retry-After`` holds a client for: a server asking
#: for a year (or a date from a clock an hour fast) is asked again after this.
MAX_HOLD = 300.0

#: The accepted range of ``RateLimit.rate`` (requests per second): beyond it the bucket's
#: arithmetic (one request's share of a second, the burst's tolerance) is no longer exact.
RATE_MIN, RATE_MAX = 1e-6, 1e6
#: The largest ``RateLimit.burst``.
BURST_MAX = 1_000_000


def _positive_rate(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"rate must be a number of requests per second, got {type(value).__name__}"
        )
    if not (RATE_MIN <= value <= RATE_MAX):  # also refuses NaN
        raise ValueError(
            f"rate must be a positive number of requests per second between "
            f"{RATE_MIN:g} and {RATE_MAX:g}, got {value!r}"
        )


def _positive_burst(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"burst must be an int, got {type(value).__name__}")
    if not 1 <= value <= BURST_MAX:
        raise ValueError(f"burst must be >= 1 and <= {BURST_MAX:,}, got {value!r}")


def check_share(name: str, value: object) -> float:
    """A share of a rate: a number with 0 < value <= 1, else TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number (a share of the rate), got {type(value).__name__}"
        )
    if not 0 < value <= 1:  # also refuses NaN
        raise ValueError(f"{name} must be > 0 and <= 1 (a share of the rate), got {value!r}")
    return float(value)


@attrs.frozen
class RateLimit:
    """At most ``rate`` requests per second on average, ``burst`` at once (``rate``
    from :data:`RATE_MIN` to :data:`RATE_MAX`, ``burst`` from 1 to :data:`BURST_MAX`).

    >>> RateLimit(rate=20.0, burst=5)
    RateLimit(rate=20.0, burst=5)
    """

    rate: float = attrs.field(validator=_positive_rate)
    burst: int = attrs.field(default=1, validator=_positive_burst)


class Bucket:
    """When each request of a :class:`RateLimit` may go (times in any monotonic seconds)."""

    __slots__ = ("_interval", "_tat", "_tolerance", "resume_at")

    def __init__(self, limit: RateLimit) -> None:
        self._interval = 1.0 / limit.rate
        self._tolerance = (limit.burst - 1) * self._interval
        self._tat = -math.inf  # the theoretical arrival time of the next request
        #: No request before this (the end of the last pause).
        self.resume_at = -math.inf

    def free_at(self, now: float) -> float:
        """The earliest instant (``>= now``) a request booked at ``now`` may be sent."""
        return max(now, self.resume_at, self._tat - self._tolerance)

    def book(self, now: float) -> float:
        """Book the next request: the instant (``>= now``) it may be sent."""
        start = now if now >= self.resume_at else self.resume_at
        at = max(start, self._tat - self._tolerance)
        self._tat = max(self._tat, at) + self._interval
        return at

    def pause(self, until: float) -> None:
        """Send nothing before ``until``; then resume at the rate, the bucket empty."""
        if until > self.resume_at:
            self.resume_at = until
        self._tat = max(self._tat, until + self._tolerance)
