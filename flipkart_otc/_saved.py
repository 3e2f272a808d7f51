"""What a sink keeps of a location between runs, and each event's deterministic id. Pure.

A location is saved only with events (the sink's write of a poll that changed
nothing is skipped), as the state they lead to plus ``as_of``, the instant of that
step. Every code in a saved state that expired by ``as_of`` had been reported
(a step reports each code owed by its instant), so the expiry keys need no saving:
:func:`restore` rebuilds them. Times are kept as whole microseconds, so a restored
code compares equal to the one the next poll parses.

The OTC is part of the state (a renewal may change only the code), so whoever can
read the saved state can read the codes; the event ids never hold it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from ._diff import earliest_due, expiry_key
from ._location import LocationState
from .errors import SinkError
from .events import (
    FeEvent,
    LocationStatusChanged,
    OtcEvent,
    OtcExpired,
    ShipmentScanned,
    VisitEvent,
)
from .models import EndOtc, Lob, LocationStatus, OtcDetail, OtcSnapshot, VisitView

__all__ = [
    "SavedLocation",
    "decode",
    "encode",
    "event_id",
    "mark_recovered",
    "restore",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_FORMAT = 1  # of the saved JSON; a newer one is refused, never misread


def _us(when: datetime) -> int:
    return (when - _EPOCH) // _US


def _at(us: int) -> datetime:
    return _EPOCH + us * _US


@attrs.frozen(slots=True)
class SavedLocation:
    """A location as an earlier run left it: the state after its last saved events.

    ``as_of`` is the instant of that step: every code that expired by then had
    been reported. A :class:`~flipkart_otc.ResumableSink` gives these back.
    """

    location_id: str
    status: LocationStatus | None
    snapshot: OtcSnapshot | None
    error: str | None
    as_of: datetime
    #: The FEs followed past the Start OTC page (a watcher with ``visits=True``).
    visits: tuple[VisitView, ...] = ()


def event_id(event: OtcEvent, key: bytes = b"") -> str:
    """The deterministic id of ``event``: 32 hex digits from what happened.

    FE events: location, kind, FE and the code (task id, created and expiry
    instants, and with a ``key`` the OTC itself, through a keyed hash that does
    not give it away: two codes issued in the same second differ); status
    changes: location, both statuses and the instant. The same event derived
    twice (a retried write, a run that resumed from state the stream already
    holds) has the same id, so a reader drops repeats by it. Writers to one
    stream share one ``key`` (a :class:`~flipkart_otc.sinks.RedisStreamSink`
    keeps it in Redis); without one the OTC stays out.
    """
    if isinstance(event, FeEvent):
        d = event.detail
        parts = [event.location_id, event.kind, event.fe_id, d.task_id]
        parts += [str(_us(d.created_at)), str(_us(d.expires_at))]
        if key:
            parts.append(d.otc)
    elif isinstance(event, LocationStatusChanged):
        previous = event.previous.value if event.previous is not None else ""
        parts = [event.location_id, event.kind, previous, event.status.value]
        parts.append(str(_us(event.observed_at)))
    elif isinstance(event, ShipmentScanned):  # once per shipment of the visit
        parts = [event.location_id, event.kind, event.fe_id, event.task_id]
        parts.append(event.shipment.tracking_id)
    elif isinstance(event, VisitEvent):  # once per visit: started, its End OTC, its end
        parts = [event.location_id, event.kind, event.fe_id, event.task_id]
    else:  # pragma: no cover - every watch event is one of the above
        parts = [event.location_id, event.kind, str(_us(event.observed_at))]
    text = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(text, digest_size=16, key=key).hexdigest()


def encode(
    location_id: str,
    status: LocationStatus | None,
    snapshot: OtcSnapshot | None,
    error: str | None,
    as_of: datetime,
    visits: Sequence[VisitView] = (),
) -> bytes:
    """The JSON a sink saves for a location (OTCs included: see the module's note)."""
    data: dict[str, Any] = {
        "format": _FORMAT,
        "location_id": location_id,
        "status": status.value if status is not None else None,
        "error": error,
        "as_of": _us(as_of),
        "fetched_at": _us(snapshot.fetched_at) if snapshot is not None else None,
        "details": None
        if snapshot is None
        else [
            [
                d.fe_id,
                d.fe_name,
                d.task_id,
                d.otc,
                _us(d.expires_at),
                _us(d.created_at),
                d.logistic_partner,
                d.lob.value,
                d.lob_raw,
            ]
            for _, d in sorted(snapshot.details.items())
        ],
    }
    if visits:  # absent, not empty, without: a state as small as before visits were kept
        data["visits"] = [_visit_row(v) for v in visits]
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _visit_row(v: VisitView) -> list[Any]:
    end = v.end
    return [
        v.fe_id,
        v.task_id,
        v.fe_name,
        v.logistic_partner,
        v.stage,
        _us(v.since),
        v.scanned,
        v.rejected,
        None
        if end is None
        else [
            end.otc,
            end.total_scanned,
            end.obd_eligible,
            end.obd_failed,
            end.flyer_eligible,
            end.flyer_failed,
        ],
        sorted(v.tracking_ids),
        v.cursor,
    ]


def _ints(values: Sequence[Any]) -> tuple[int, int, int, int, int]:
    a, b, c, d, e = (int(v) for v in values)
    return a, b, c, d, e


def _visit_of(row: Sequence[Any]) -> VisitView:
    fe_id, task_id, name, partner, stage, since, scanned, rejected, end, seen, cursor = row
    if stage not in ("scanning", "end_otc"):
        raise ValueError("a visit's stage")
    if not all(isinstance(n, int) for n in (scanned, rejected, since)):
        raise TypeError("a visit's counts")
    return VisitView(
        str(fe_id),
        str(task_id),
        None if name is None else str(name),
        None if partner is None else str(partner),
        stage,
        _at(since),
        scanned,
        rejected,
        None if end is None else EndOtc(str(fe_id), str(task_id), str(end[0]), *_ints(end[1:6])),
        frozenset(str(t) for t in seen),
        None if cursor is None else str(cursor),
    )


def decode(raw: bytes | str) -> SavedLocation:
    """What :func:`encode` wrote; :class:`SinkError` (no OTC in it) if it is not that."""
    try:
        data = json.loads(raw)
        if data["format"] != _FORMAT:
            raise ValueError(f"saved state format {data['format']!r}, this reads {_FORMAT}")
        location_id = str(data["location_id"])
        status = LocationStatus(data["status"]) if data["status"] is not None else None
        snapshot = None
        if data["details"] is not None:
            details = {}
            for row in data["details"]:
                fe_id, name, task, otc, expires, created, partner, lob, lob_raw = row
                details[fe_id] = OtcDetail(
                    fe_id, name, task, otc, _at(expires), _at(created), partner, Lob(lob), lob_raw
                )
            snapshot = OtcSnapshot(location_id, _at(data["fetched_at"]), details)
        error = data["error"]
        visits = tuple(_visit_of(row) for row in data.get("visits") or ())
        return SavedLocation(location_id, status, snapshot, error, _at(data["as_of"]), visits)
    except (ValueError, KeyError, TypeError, IndexError, OverflowError, RecursionError) as exc:
        # never the text: it holds codes
        raise SinkError(f"a saved location state is not readable ({type(exc).__name__})") from None


def restore(state: LocationState, saved: SavedLocation) -> None:
    """Make ``state`` what ``saved`` says, with the expiry keys of codes reported."""
    state.status = saved.status
    state.error = saved.error
    if saved.snapshot is None:
        return
    details = saved.snapshot.details
    state.details, state.fetched_at = details, saved.snapshot.fetched_at.timestamp()
    state.expired = frozenset(
        expiry_key(d) for d in details.values() if d.expires_at <= saved.as_of
    )
    state.next_expiry = earliest_due(details, state.expired)


def mark_recovered(
    events: Sequence[OtcEvent], resumed_at: float, *, whole: bool
) -> list[OtcEvent]:
    """``events`` with those that fall in the gap before ``resumed_at`` marked recovered.

    A code that expired before the watcher resumed is reported at its real instant.
    ``whole``: the first poll after resuming, whose every event bridges the gap.
    """
    marked: list[OtcEvent] = []
    for event in events:
        if isinstance(event, OtcExpired) and event.detail.expires_at.timestamp() < resumed_at:
            event = attrs.evolve(event, observed_at=event.detail.expires_at, recovered=True)
        elif whole:
            event = attrs.evolve(event, recovered=True)
        marked.append(event)
    return marked
