"""What readers of a watcher see: a location's view, a picture of every location, a
numbered event, a watcher's health. Frozen values: no asyncio, no I/O (the runtime that
makes them is ``_fanout``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs

from .events import WatchEvent
from .models import LocationStatus, OtcSnapshot, VisitView

__all__ = ["LocationView", "Picture", "Sequenced", "WatcherHealth"]


@attrs.frozen
class WatcherHealth:
    """A watcher's health (:meth:`OtcWatcher.health`), for a probe or a dashboard.

    ``healthy`` is what a liveness probe asks: running, and polls still ending (a
    watcher whose source stopped answering, or whose reliable reader stopped reading,
    is running but stalled); ``reason`` says why not, else None."""

    running: bool
    #: Locations by status (``PENDING``: not polled yet).
    by_status: dict[str, int]
    #: When the last poll that Flipkart answered (with FEs, none, or no task) ended.
    last_success: datetime | None
    #: Seconds since then, on the watcher's clock.
    last_success_age: float | None
    healthy: bool = attrs.field(default=attrs.Factory(lambda self: self.running, takes_self=True))
    reason: str | None = None
    #: Readers through ``subscribe()`` now.
    subscribers: int = 0
    #: Subscribers dropped so far for falling behind.
    subscriber_drops: int = 0
    #: Seconds left of a 429's pause (0: none): no poll is sent before it ends.
    hold: float = 0.0
    #: With ``PollPolicy(budget_share=...)``: requests a second the watcher aims at,
    #: requests a second it started over the last 10 s, and the interval (seconds) at
    #: which each idle location is polled now (inf: none is idle). None without a budget.
    target_rate: float | None = None
    rate_spent: float | None = None
    idle_interval: float | None = None


@attrs.frozen(slots=True)
class Sequenced:
    """An event and its sequence number (increasing across the watcher, from 1)."""

    seq: int
    event: WatchEvent


@attrs.frozen(slots=True)
class LocationView:
    """One location as a picture shows it: its status and last good snapshot, and (from
    a :class:`~flipkart_otc.VisitWatcher`) the FEs past the Start OTC page, by id."""

    location_id: str
    status: LocationStatus | None
    snapshot: OtcSnapshot | None
    #: Why it is ``FAILING`` (the last failure's text, secrets scrubbed), else None.
    error: str | None = None
    visits: tuple[VisitView, ...] = ()


@attrs.frozen(slots=True)
class Picture:
    """Every watched location after exactly the events numbered up to :attr:`seq`."""

    seq: int
    taken_at: datetime
    locations: Mapping[str, LocationView]
