"""From two snapshots of a location to the events between them. Pure: no I/O, no clock.

:func:`diff` finds arrivals, renewals and departures. The expiry bookkeeping
(:func:`owed_expiries`, :func:`next_expiry`) tracks which codes still owe an
``OtcExpired`` and when; :func:`poll_events` combines both into the batch of
one poll, in the contract's order: expired, departed, renewed, arrived (each by
FE id), then codes first seen already expired.
"""

from __future__ import annotations

import math
from collections.abc import Set
from datetime import datetime

from .events import FeArrived, FeDeparted, FeEvent, OtcExpired, OtcRenewed
from .models import OtcDetail, OtcSnapshot

__all__ = [
    "ExpiryKey",
    "diff",
    "expiry_events",
    "expiry_key",
    "next_expiry",
    "owed_expiries",
    "poll_events",
]

#: One code of one FE: (fe_id, otc, expires_at). OtcExpired is owed once per key.
ExpiryKey = tuple[str, str, datetime]

_NO_DETAILS: dict[str, OtcDetail] = {}


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


def diff(
    previous: OtcSnapshot | None, current: OtcSnapshot, *, initial: bool = False
) -> list[FeEvent]:
    """Departures, renewals and arrivals from ``previous`` to ``current``, each sorted by FE id.

    Events are stamped ``current.fetched_at``; a departure says whether the
    FE's last code had expired by then. ``diff(a, a)`` is empty.
    """
    old = previous.details if previous is not None else _NO_DETAILS
    new = current.details
    if old is new:
        return []
    where, now = current.location_id, current.fetched_at
    departed: list[FeEvent] = [
        FeDeparted(where, now, fe_id, detail, expired=detail.expires_at <= now)
        for fe_id, detail in old.items()
        if fe_id not in new
    ]
    renewed: list[FeEvent] = []
    arrived: list[FeEvent] = []
    for fe_id, detail in new.items():
        known = old.get(fe_id)
        if known is detail:
            continue
        if known is None:
            arrived.append(FeArrived(where, now, fe_id, detail, initial=initial))
        elif _renewed(known, detail):
            renewed.append(OtcRenewed(where, now, fe_id, detail, previous=known))
    for group in (departed, renewed, arrived):
        if len(group) > 1:
            group.sort(key=_by_fe)
    return departed + renewed + arrived


def owed_expiries(
    snapshot: OtcSnapshot | None, emitted: Set[ExpiryKey], now: datetime
) -> list[OtcDetail]:
    """Codes in ``snapshot`` expired by ``now`` whose OtcExpired is not in ``emitted``."""
    if snapshot is None:
        return []
    owed = [
        d
        for d in snapshot.details.values()
        if d.expires_at <= now and expiry_key(d) not in emitted
    ]
    if len(owed) > 1:
        owed.sort(key=lambda d: d.fe_id)
    return owed


def expiry_events(
    snapshot: OtcSnapshot | None, emitted: frozenset[ExpiryKey], now: datetime
) -> tuple[list[FeEvent], frozenset[ExpiryKey]]:
    """OtcExpired for every code in ``snapshot`` owed one by ``now``, and the keys after."""
    owed = owed_expiries(snapshot, emitted, now)
    if snapshot is None or not owed:
        return [], emitted
    where = snapshot.location_id
    events: list[FeEvent] = [OtcExpired(where, now, d.fe_id, d) for d in owed]
    return events, emitted | {expiry_key(d) for d in owed}


def next_expiry(snapshot: OtcSnapshot | None, emitted: Set[ExpiryKey]) -> float:
    """Epoch seconds of the earliest code in ``snapshot`` still owing an OtcExpired (or inf)."""
    if snapshot is None or not snapshot.details:
        return math.inf
    details = snapshot.details.values()
    if emitted:
        pending = [d.expires_at for d in details if expiry_key(d) not in emitted]
        return min(pending).timestamp() if pending else math.inf
    return min(d.expires_at for d in details).timestamp()  # one conversion, not K


def poll_events(
    previous: OtcSnapshot | None,
    current: OtcSnapshot,
    emitted: Set[ExpiryKey],
    *,
    initial: bool = False,
    emit_initial: bool = True,
) -> tuple[list[FeEvent], frozenset[ExpiryKey]]:
    """The events of one successful poll, and the expiry keys to remember after it.

    Order: codes of the last known state that expired by now (before anything
    else happened to their FE), then departures, renewals and arrivals, then
    codes first seen in this poll that are already expired. Only keys of codes
    still listed are kept.
    """
    now = current.fetched_at
    if previous is not None and previous.details is current.details:
        # the same answer again (the common case): only codes may have expired since
        return expiry_events(current, frozenset(emitted), now)
    events, done = expiry_events(previous, frozenset(emitted), now)
    changes = diff(previous, current, initial=initial)
    if initial and not emit_initial:
        changes = [e for e in changes if not isinstance(e, FeArrived)]
    events += changes
    fresh, done = expiry_events(current, done, now)
    events += fresh
    if not done:
        return events, done
    listed = {expiry_key(d) for d in current.details.values()}
    return events, done & listed
