"""Faults the simulator injects in front of its answers: scripted or random,
per location or for every request."""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Sequence

import attrs

__all__ = ["Fault", "FaultKind", "FaultPlan"]


class FaultKind(enum.Enum):
    """What can go wrong between a client and Flipkart."""

    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"  # 500 with the spec's body
    BAD_GATEWAY = "BAD_GATEWAY_ERROR"  # 502 with the spec's body
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE_ERROR"  # 503 with the spec's body
    GATEWAY_TIMEOUT = "GATEWAY_TIMEOUT_ERROR"  # 504 with the spec's body
    RATE_LIMITED = "RATE_LIMITED"  # 429 with Retry-After
    CONNECTION_TIMED_OUT = "CONNECTION_TIMED_OUT"  # Flipkart's non-standard 499
    HTML_BAD_GATEWAY = "HTML_BAD_GATEWAY"  # 502 with a proxy's HTML page
    SLOW = "SLOW"  # the answer comes after `delay` seconds (past the client's timeout)
    DROP = "DROP"  # the connection is closed without an answer
    TRUNCATED_JSON = "TRUNCATED_JSON"  # 200 with half the body
    INVALID_JSON = "INVALID_JSON"  # 200 with a body that is not JSON
    EXPIRED_TOKEN = "EXPIRED_TOKEN"  # every issued token expires now: 401 until refreshed


#: The endpoints a scripted fault may be kept for (``FaultPlan.script(endpoint=)``).
ENDPOINTS = ("start-otc", "initial-load", "shipments", "shipments-next", "end-otc")

#: Faults a client heals by retrying (the default for random faults).
TRANSIENT: tuple[FaultKind, ...] = (
    FaultKind.INTERNAL_SERVER_ERROR,
    FaultKind.BAD_GATEWAY,
    FaultKind.SERVICE_UNAVAILABLE,
    FaultKind.GATEWAY_TIMEOUT,
    FaultKind.RATE_LIMITED,
    FaultKind.CONNECTION_TIMED_OUT,
    FaultKind.HTML_BAD_GATEWAY,
    FaultKind.DROP,
)


@attrs.frozen
class Fault:
    """One injected fault. ``retry_after`` is sent with RATE_LIMITED; ``delay`` is
    how long a SLOW answer takes (real seconds)."""

    kind: FaultKind
    retry_after: float = 0.0
    delay: float = 30.0


def _as_fault(item: Fault | FaultKind) -> Fault:
    if isinstance(item, FaultKind):
        return Fault(item)
    if isinstance(item, Fault):
        return item
    raise TypeError(f"expected a Fault or a FaultKind, got {type(item).__name__}")


@attrs.define
class _Random:
    rate: float
    kinds: tuple[FaultKind, ...]


class FaultPlan:
    """Which requests fail, and how.

    Scripted faults are taken one per request, in order, before random ones;
    faults for a location come before global ones, and those for an endpoint (the
    names in :data:`ENDPOINTS`) before those for any.

    >>> plan = FaultPlan()
    >>> plan.script(FaultKind.BAD_GATEWAY, FaultKind.DROP, location="LOC1")
    >>> plan.script(FaultKind.SERVICE_UNAVAILABLE, endpoint="initial-load")
    >>> plan.random(0.2)
    """

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._scripts: dict[tuple[str | None, str | None], deque[Fault]] = {}
        self._random: dict[str | None, _Random] = {}
        #: (location, fault kind) of every fault injected so far.
        self.injected: list[tuple[str | None, FaultKind]] = []

    def script(
        self,
        *faults: Fault | FaultKind,
        location: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        """Fail the next requests (for ``location``, or any; to ``endpoint``, or any of
        :data:`ENDPOINTS`) with these faults, in order."""
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}; got {endpoint!r}")
        queue = self._scripts.setdefault((location, endpoint), deque())
        queue.extend(_as_fault(f) for f in faults)

    def random(
        self,
        rate: float,
        kinds: Sequence[FaultKind] = TRANSIENT,
        *,
        location: str | None = None,
    ) -> None:
        """Fail a ``rate`` fraction of requests with a fault drawn from ``kinds``."""
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must be between 0 and 1, got {rate!r}")
        if not kinds:
            raise ValueError("kinds must not be empty")
        self._random[location] = _Random(rate, tuple(kinds))

    def clear(self) -> None:
        """No more faults."""
        self._scripts.clear()
        self._random.clear()

    def take(self, location_id: str | None, endpoint: str | None = None) -> Fault | None:
        """The fault for the next request to ``location_id`` (on ``endpoint``), if any."""
        locations = (location_id, None) if location_id is not None else (None,)
        endpoints = (endpoint, None) if endpoint is not None else (None,)
        for key in [(loc, end) for loc in locations for end in endpoints]:
            queue = self._scripts.get(key)
            if queue:
                return self._note(location_id, queue.popleft())
        for location in locations:
            plan = self._random.get(location)
            if plan is not None and self._rng.random() < plan.rate:
                return self._note(location_id, Fault(self._rng.choice(plan.kinds)))
        return None

    def _note(self, location_id: str | None, fault: Fault) -> Fault:
        self.injected.append((location_id, fault.kind))
        return fault
