"""One watched location as a state machine: its state, and what an answer, a failure or
the passing of time does to it. Pure: no asyncio, no I/O, no clock (callers pass ``now``,
epoch seconds).

Each transition returns a :data:`Step`, the events it owes and the state after them,
without changing the state: the watcher queues the events first and only then calls
:func:`commit`, so a snapshot never advances past events that were not handed on.

The rules (DESIGN.md, "Watcher event semantics"):

- an answer: arrivals, renewals, departures and owed expiries (``_diff.advance``);
- ``NO_TASK`` or ``CLOSED``: every FE listed departs; the location's FEs are then none;
- ``FAILING``: the last good state is kept, no departure is invented; only codes that
  expired meanwhile are news;
- a change of status (the first poll's included) is a ``LocationStatusChanged`` first.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import NamedTuple

from ._diff import Details, ExpiryKey, advance, earliest_due, expiry_events
from ._wire.start_otc_incremental import Memo
from .errors import FlipkartOtcError
from .events import LocationStatusChanged, OtcEvent
from .models import LocationStatus, OtcSnapshot

__all__ = ["LocationState", "Step", "answered", "commit", "elapsed", "failed"]

_NO_KEYS: frozenset[ExpiryKey] = frozenset()
_NONE: Details = {}

class Step(NamedTuple):
    """What a transition owes and leads to, before it is committed."""

    events: list[OtcEvent]
    #: None when the step keeps the last good details (a failure, an expiry).
    details: Details | None
    status: LocationStatus | None
    expired: frozenset[ExpiryKey]
    next_expiry: float
    memo: Memo | None
    #: The text of the failure behind ``FAILING``, else None.
    error: str | None


class LocationState:
    """What is known of one location (slots: there may be 100,000)."""

    __slots__ = (
        "details",
        "error",
        "expired",
        "fetched_at",
        "location_id",
        "memo",
        "next_expiry",
        "status",
    )

    def __init__(self, location_id: str) -> None:
        self.location_id = location_id
        # The last good snapshot, kept as its parts: an answer that repeats the last one
        # then leaves no new long-lived object behind for the cyclic GC to walk.
        self.details: Details | None = None
        self.fetched_at: float | None = None  # epoch seconds: a datetime only when asked
        self.status: LocationStatus | None = None
        self.expired: frozenset[ExpiryKey] = _NO_KEYS  # codes already reported expired
        self.next_expiry = math.inf  # when the earliest code not yet reported expires
        self.memo: Memo | None = None  # what the incremental parser keeps
        self.error: str | None = None  # why it is FAILING

    def last(self) -> OtcSnapshot | None:
        """The last good snapshot."""
        if self.details is None or self.fetched_at is None:
            return None
        return OtcSnapshot(self.location_id, _at(self.fetched_at), self.details)


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def answered(
    state: LocationState, details: Details, memo: Memo | None, now: float, emit_initial: bool
) -> Step:
    """A successful answer with these ``details`` at ``now``."""
    events: list[OtcEvent]
    events, expired, due = advance(  # type: ignore[assignment]  # FeEvents are OtcEvents
        state.location_id,
        state.details,
        details,
        state.expired,
        state.next_expiry,
        now,
        emit_initial=emit_initial,
    )
    if state.status is not LocationStatus.ACTIVE:
        events = [_status_changed(state, LocationStatus.ACTIVE, None, now), *events]
    return Step(events, details, LocationStatus.ACTIVE, expired, due, memo, None)


def failed(
    state: LocationState, error: FlipkartOtcError, status: LocationStatus, now: float
) -> Step:
    """A failed poll at ``now`` that means ``status`` (NO_TASK, CLOSED or FAILING)."""
    last = state.details
    events: list[OtcEvent] = []
    if status is not state.status:
        events.append(_status_changed(state, status, error, now))
    expired, due = state.expired, state.next_expiry
    if status is LocationStatus.FAILING:
        if last is not None and now >= due:
            owed, expired = expiry_events(state.location_id, last, expired, _at(now))
            events += owed
            due = earliest_due(last, expired)
        return Step(events, None, status, expired, due, None, str(error))
    # NO_TASK or CLOSED: the FEs are gone (and stay gone while it lasts)
    details = last if status is state.status and last is not None else _NONE
    batch, expired, due = advance(state.location_id, last, details, expired, due, now)
    events += batch
    return Step(events, details, status, expired, due, None, None)


def elapsed(state: LocationState, now: float) -> Step | None:
    """Time passing to ``now`` with no poll: the expiries owed, or None when none are."""
    if state.details is None:
        return None
    events, expired = expiry_events(state.location_id, state.details, state.expired, _at(now))
    if not events:
        return None
    due = earliest_due(state.details, expired)
    return Step(list(events), None, state.status, expired, due, state.memo, state.error)


def commit(state: LocationState, step: Step, now: float) -> None:
    """Make ``step`` the location's state, once its events are queued."""
    _, details, status, expired, due, memo, error = step
    if details is not None:  # a success (or a task that ended): this state, as of now
        state.details, state.fetched_at = details, now
    state.status = status
    state.expired = expired
    state.next_expiry = due
    state.memo = memo
    state.error = error


def _status_changed(
    state: LocationState, status: LocationStatus, error: FlipkartOtcError | None, now: float
) -> LocationStatusChanged:
    return LocationStatusChanged(state.location_id, _at(now), status, state.status, error)
