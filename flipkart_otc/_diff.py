"""From two states of a location to the events between them. Pure: no I/O, no clock.

:func:`advance` is what a poller calls: it takes the last state's details, the
new ones, the expiry keys already reported and the instant the earliest
unreported code expires, and returns the poll's batch in the contract's order
(expired, departed, renewed, arrived, each by FE id, then codes first seen
already expired), the keys to remember and the next such instant. Knowing that
instant lets it skip the expiry passes on the common poll where nothing is due.
:func:`diff`, :func:`poll_events` and :func:`next_expiry` say the same over
snapshots, for tests and tools.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Set
from datetime import UTC, datetime
from operator import attrgetter

from .events import FeArrived, FeDeparted, FeEvent, OtcExpired, OtcRenewed
from .models import OtcDetail, OtcSnapshot

__all__ = [
    "Details",
    "ExpiryKey",
    "advance",
    "diff",
    "earliest_due",
    "expiry_events",
    "expiry_key",
    "next_expiry",
    "poll_events",
]

#: One code of one FE: (fe_id, otc, expires_at). OtcExpired is owed once per key.
ExpiryKey = tuple[str, str, datetime]
#: A location's FEs by FE id, as in :attr:`OtcSnapshot.details`.
Details = Mapping[str, OtcDetail]

_NO_DETAILS: dict[str, OtcDetail] = {}
_expires_at: Callable[[OtcDetail], datetime] = attrgetter("expires_at")


def expiry_key(detail: OtcDetail) -> ExpiryKey:
    return (detail.fe_id, detail.otc, detail.expires_at)


def _by_fe(event: FeEvent) -> str:
    return event.fe_id


def _renewed(old: OtcDetail, new: OtcDetail) -> bool:
    return (
        old.otc != new.otc
        or old.expires_at != new.expires_at
        or old.created_at != new.created_at
        or old.task_id != new.task_id
    )


def _changes(
    where: str, now: datetime, old: Details, new: Details, initial: bool
) -> tuple[list[FeEvent], list[OtcDetail]]:
    """Departures, renewals and arrivals (each sorted by FE id), and every detail of
    ``new`` that is not the very object ``old`` holds for its FE."""
    renewed: list[FeEvent] = []
    arrived: list[FeEvent] = []
    fresh: list[OtcDetail] = []
    for fe_id, detail in new.items():
        known = old.get(fe_id)
        if known is detail:
            continue
        fresh.append(detail)
        if known is None:
            arrived.append(FeArrived(where, now, fe_id, detail, initial=initial))
        elif _renewed(known, detail):
            renewed.append(OtcRenewed(where, now, fe_id, detail, previous=known))
    if len(renewed) > 1:
        renewed.sort(key=_by_fe)
    if len(arrived) > 1:
        arrived.sort(key=_by_fe)
    if len(new) - len(arrived) < len(old):  # not every FE of `old` is still listed
        departed: list[FeEvent] = [
            FeDeparted(where, now, fe_id, detail, expired=detail.expires_at <= now)
            for fe_id, detail in old.items()
            if fe_id not in new
        ]
        departed.sort(key=_by_fe)
        return departed + renewed + arrived, fresh
    if arrived:
        renewed += arrived
    return renewed, fresh  # no departure: the usual poll builds no more lists


def diff(
    previous: OtcSnapshot | None, current: OtcSnapshot, *, initial: bool = False
) -> list[FeEvent]:
    """Departures, renewals and arrivals from ``previous`` to ``current``, each sorted by FE id.

    Events are stamped ``current.fetched_at``; a departure says whether the
    FE's last code had expired by then. ``diff(a, a)`` is empty.
    """
    old = previous.details if previous is not None else _NO_DETAILS
    if old is current.details:
        return []
    return _changes(current.location_id, current.fetched_at, old, current.details, initial)[0]


def _expired(
    where: str, details: Iterable[OtcDetail], emitted: frozenset[ExpiryKey], now: datetime
) -> tuple[list[FeEvent], frozenset[ExpiryKey]]:
    owed = [d for d in details if d.expires_at <= now and expiry_key(d) not in emitted]
    if not owed:
        return [], emitted
    if len(owed) > 1:
        owed.sort(key=attrgetter("fe_id"))
    events: list[FeEvent] = [OtcExpired(where, now, d.fe_id, d) for d in owed]
    return events, emitted | {expiry_key(d) for d in owed}


def expiry_events(
    where: str, details: Details, emitted: frozenset[ExpiryKey], now: datetime
) -> tuple[list[FeEvent], frozenset[ExpiryKey]]:
    """OtcExpired (by FE id) for every code in ``details`` owed one by ``now``, and the
    keys after."""
    return _expired(where, details.values(), emitted, now)


def earliest_due(details: Details, emitted: Set[ExpiryKey]) -> float:
    """Epoch seconds of the earliest code in ``details`` still owing an OtcExpired (or inf)."""
    if not details:
        return math.inf
    if emitted:
        pending = [d.expires_at for d in details.values() if expiry_key(d) not in emitted]
        return min(pending).timestamp() if pending else math.inf
    return min(map(_expires_at, details.values())).timestamp()  # one conversion, not K


def advance(
    where: str,
    old: Details | None,
    new: Details,
    emitted: frozenset[ExpiryKey],
    due: float,
    now: float,
    *,
    emit_initial: bool = True,
) -> tuple[list[FeEvent], frozenset[ExpiryKey], float]:
    """The events of one successful poll of ``where`` at ``now`` (epoch seconds), the
    expiry keys to remember and the next due instant.

    ``old`` is the last state (None before the first success), ``emitted`` the
    keys already reported and ``due`` what :func:`earliest_due` gave for them.
    Order: codes of the last state that expired by ``now`` (before anything
    else happened to their FE), then departures, renewals and arrivals, then
    codes first seen in this poll that are already expired. Only keys of codes
    still listed are kept. ``emit_initial=False`` leaves out the arrivals of
    the first success.
    """
    if old is new and now < due:  # the same answer again, nothing due: the common poll
        return [], emitted, due
    at = datetime.fromtimestamp(now, UTC)
    events: list[FeEvent] = []
    done = emitted
    if old and now >= due:  # some code of the last state owes an OtcExpired
        events, done = _expired(where, old.values(), emitted, at)
    if old is new:
        return events, done, earliest_due(new, done)
    changes, fresh = _changes(where, at, old or _NO_DETAILS, new, old is None)
    if emit_initial or old is not None:
        events += changes
    else:
        events += [e for e in changes if not isinstance(e, FeArrived)]
    if done:
        done = done & {expiry_key(d) for d in new.values()}
    new_due = earliest_due(new, done)
    if new_due <= now:
        # A code owing an OtcExpired already: the pass above settled every detail
        # `old` also holds, so it is a fresh one.
        late, done = _expired(where, fresh, done, at)
        if late:
            events += late
            new_due = earliest_due(new, done)
    return events, done, new_due


def next_expiry(snapshot: OtcSnapshot | None, emitted: Set[ExpiryKey]) -> float:
    """:func:`earliest_due` of a snapshot (inf for None)."""
    return math.inf if snapshot is None else earliest_due(snapshot.details, emitted)


def poll_events(
    previous: OtcSnapshot | None,
    current: OtcSnapshot,
    emitted: Set[ExpiryKey],
    *,
    emit_initial: bool = True,
) -> tuple[list[FeEvent], frozenset[ExpiryKey]]:
    """:func:`advance` over snapshots: the events from ``previous`` to ``current`` and
    the keys after (``previous=None`` is a location's first success)."""
    keys = frozenset(emitted)
    events, keys, _ = advance(
        current.location_id,
        previous.details if previous is not None else None,
        current.details,
        keys,
        next_expiry(previous, keys),
        current.fetched_at.timestamp(),
        emit_initial=emit_initial,
    )
    return events, keys
