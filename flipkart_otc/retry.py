"""Which failures are retried, and how long to wait between attempts."""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

import attrs
import backoff

from .errors import FlipkartOtcError, RateLimitedError, classify

__all__ = ["RetryPolicy", "is_retryable"]

T = TypeVar("T")


def _non_negative_finite(_: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{attribute.name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{attribute.name} must be finite and >= 0, got {value!r}")


def is_retryable(exc: BaseException) -> bool:
    """Whether an error is transient: 5xx, 429, timeouts (408, 499, 599) and connection
    faults (what :func:`~flipkart_otc.errors.classify` says)."""
    return classify(exc).retried


@attrs.frozen
class RetryPolicy:
    """How :class:`~flipkart_otc.OtcClient` retries transient failures.

    ``max_tries`` counts every attempt, the first included, so
    ``RetryPolicy(max_tries=1)`` switches retries off. Waits grow exponentially
    from ``base_delay`` up to ``max_delay`` with full jitter; ``base_delay=0``
    retries at once (handy in tests). A 429's ``Retry-After`` is honoured
    exactly, unless it exceeds ``max_retry_after``: then the
    :class:`~flipkart_otc.RateLimitedError` is raised. No attempt starts after
    ``max_time`` seconds.

    >>> RetryPolicy(max_tries=6, max_delay=2.0)
    RetryPolicy(max_tries=6, max_time=60.0, base_delay=0.5, max_delay=2.0, max_retry_after=60.0)
    """

    max_tries: int = 4
    max_time: float = attrs.field(default=60.0, validator=_non_negative_finite)
    base_delay: float = attrs.field(default=0.5, validator=_non_negative_finite)
    max_delay: float = attrs.field(default=8.0, validator=_non_negative_finite)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative_finite)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.max_tries, bool) or not isinstance(self.max_tries, int):
            raise TypeError(f"max_tries must be an int, got {type(self.max_tries).__name__}")
        if self.max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {self.max_tries!r}")
        if self.max_time <= 0:
            raise ValueError(f"max_time must be > 0, got {self.max_time!r}")
        if self.max_delay < self.base_delay:
            raise ValueError(
                f"max_delay ({self.max_delay!r}) must be >= base_delay ({self.base_delay!r})"
            )

    def delays(self, started: float | None = None) -> Generator[float, BaseException | None, None]:
        """The waits before each retry; send each failure in to get the wait after it.

        This is the ``backoff`` wait generator: backoff sends every exception
        in, which is how a 429's ``Retry-After`` overrides the exponential wait.
        ``started`` is when the first attempt began (``time.monotonic()``).
        """
        if started is None:
            started = time.monotonic()
        exc = yield 0.0  # backoff primes the generator with a bare send(None)
        attempt = 0
        while True:
            if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
                delay = exc.retry_after
                if delay > self.max_time - (time.monotonic() - started):
                    return  # retrying any sooner would ignore Retry-After: backoff raises exc
            else:
                # the exponent is capped: 2**1100 cannot be made a float (max_tries may be large)
                delay = random.uniform(
                    0, min(self.max_delay, self.base_delay * 2.0 ** min(attempt, 64))
                )
            attempt += 1
            exc = yield delay

    def _give_up(
        self, exc: Exception, retryable: Callable[[BaseException], bool] = is_retryable
    ) -> bool:
        if not retryable(exc):
            return True
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return exc.retry_after > self.max_retry_after
        return False

    def wrap(
        self,
        attempt: Callable[..., Awaitable[T]],
        *,
        retryable: Callable[[BaseException], bool] = is_retryable,
    ) -> Callable[..., Awaitable[T]]:
        """``attempt`` retried by this policy, through ``backoff.on_exception``.

        The first attempt runs bare: most calls succeed, and backoff's wrapper
        costs more than a small request's parsing. Only after a retryable
        failure does backoff take over, with that failure replayed as its first
        try, so its counting, waits and ``max_time`` are exactly as if it had
        made every attempt. ``retryable`` narrows what is retried for one kind of
        call (a call that makes something retries only what cannot have reached
        the server).
        """
        if self.max_tries == 1:
            return attempt
        give_up = functools.partial(self._give_up, retryable=retryable)

        async def call(*args: Any) -> T:
            started = time.monotonic()
            try:
                return await attempt(*args)
            except FlipkartOtcError as exc:
                if give_up(exc):
                    raise
                failures = [exc]

            async def again(*args: Any) -> T:
                if failures:
                    raise failures.pop()
                return await attempt(*args)

            retrying: Callable[..., Awaitable[T]] = backoff.on_exception(
                functools.partial(self.delays, started),
                FlipkartOtcError,
                max_tries=self.max_tries,
                max_time=self.max_time - (time.monotonic() - started),
                jitter=None,  # the jitter is in delays(); Retry-After must not be jittered
                giveup=give_up,
                logger=None,
            )(again)
            return await retrying(*args)

        return call
