"""What :class:`~flipkart_otc.OtcWatcher` yields.

Every event has ``location_id`` and ``observed_at`` (aware UTC). FE events also
have ``fe_id`` and ``detail``, the current (or last known) :class:`OtcDetail`.
Reprs never show an OTC; :meth:`OtcEvent.to_dict` gives a JSON-ready form and
masks the OTC unless asked.

=========================  ====================================================
event                      when
=========================  ====================================================
``FeArrived(initial)``     an FE is listed that was not; ``initial`` on a
                           location's first successful poll
``OtcRenewed(previous)``   same FE, new ``otc``, ``expires_at``, ``created_at``
                           or ``task_id``
``OtcExpired``             once per code, at its expiry instant, while the FE is
                           listed
``FeDeparted(expired)``    an FE listed before is gone, or the task ended
``LocationStatusChanged``  the location's :class:`LocationStatus` changed
=========================  ====================================================

A ``VisitWatcher`` adds the events of the rest of the visit (``VisitEvent``):
``ScanningStarted``, ``ShipmentScanned``, ``EndOtcReady``, ``VisitCompleted`` and
``VisitLeft``.

Why one module of some 500 lines: the ten event classes, their one JSON form and
:func:`event_from_dict` that reads it back are the event contract, kept in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import attrs

from ._checks import MASK
from .errors import FlipkartOtcError
from .models import (
    EndOtc,
    FlyerCheck,
    Lob,
    LocationStatus,
    ObdCheck,
    OtcDetail,
    ScannedShipment,
    ShipmentStatus,
)

__all__ = [
    "EVENT_KINDS",
    "EndOtcReady",
    "FeArrived",
    "FeDeparted",
    "FeEvent",
    "LocationStatusChanged",
    "OtcEvent",
    "OtcExpired",
    "OtcRenewed",
    "ScanningStarted",
    "ShipmentScanned",
    "StartOtcEvent",
    "VisitCompleted",
    "VisitEvent",
    "VisitLeft",
    "VisitWatchEvent",
    "WatchEvent",
    "detail_dict",
    "end_otc_dict",
    "event_from_dict",
    "iso_utc",
]


# -- the JSON form of the values events carry (the JSON view, _serialize, builds on it) --


def iso_utc(when: datetime) -> str:
    """ISO-8601 with a ``Z``, as every JSON form here writes times."""
    return when.isoformat().replace("+00:00", "Z")


def detail_dict(detail: OtcDetail, *, show_otc: bool = False) -> dict[str, Any]:
    """An :class:`OtcDetail` as JSON-ready data (ISO-8601 UTC times)."""
    return {
        "fe_id": detail.fe_id,
        "fe_name": detail.fe_name,
        "task_id": detail.task_id,
        "otc": detail.otc if show_otc else MASK,
        "expires_at": iso_utc(detail.expires_at),
        "created_at": iso_utc(detail.created_at),
        "logistic_partner": detail.logistic_partner,
        "lob": detail.lob.value,
        "lob_raw": detail.lob_raw,
    }


def end_otc_dict(end: EndOtc, *, show_otc: bool) -> dict[str, Any]:
    """An End OTC and its totals as JSON-ready data (the code masked unless asked)."""
    return {
        "otc": end.otc if show_otc else MASK,
        "total_scanned": end.total_scanned,
        "obd_eligible": end.obd_eligible,
        "obd_failed": end.obd_failed,
        "flyer_eligible": end.flyer_eligible,
        "flyer_failed": end.flyer_failed,
    }


# -- the events ---------------------------------------------------------------------


@attrs.frozen(slots=True)
class OtcEvent:
    """Base of every watcher event."""

    #: The event's name in :meth:`to_dict`.
    kind: ClassVar[str] = "event"

    location_id: str
    observed_at: datetime
    #: True when the event was not observed live but found on resuming from the state an
    #: earlier run saved (a :class:`~flipkart_otc.ResumableSink`): it happened, or may
    #: have, while no watcher ran. ``observed_at`` is then its real instant where that is
    #: known (a code's expiry), else when the gap was found.
    recovered: bool = attrs.field(default=False, kw_only=True)

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        """JSON-ready data with stable field names; the OTC is masked unless ``show_otc``."""
        data: dict[str, Any] = {
            "event": self.kind,
            "location_id": self.location_id,
            "observed_at": iso_utc(self.observed_at),
        }
        if self.recovered:
            data["recovered"] = True
        return data


@attrs.frozen(slots=True)
class FeEvent(OtcEvent):
    """An event about one Field Executive."""

    fe_id: str
    detail: OtcDetail

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        data = OtcEvent.to_dict(self)
        data.update(detail_dict(self.detail, show_otc=show_otc))
        return data


@attrs.frozen(slots=True)
class FeArrived(FeEvent):
    """An FE is on the Start OTC page who was not at the last poll.

    ``initial`` is true on the location's first successful poll: the FE was
    already there when watching began.
    """

    kind: ClassVar[str] = "fe_arrived"

    initial: bool = False

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        data = FeEvent.to_dict(self, show_otc=show_otc)
        data["initial"] = self.initial
        return data


@attrs.frozen(slots=True)
class OtcRenewed(FeEvent):
    """The FE's code changed (``otc``, ``expires_at``, ``created_at`` or ``task_id``)."""

    kind: ClassVar[str] = "otc_renewed"

    previous: OtcDetail

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        data = FeEvent.to_dict(self, show_otc=show_otc)
        data["previous"] = detail_dict(self.previous, show_otc=show_otc)
        return data


@attrs.frozen(slots=True)
class OtcExpired(FeEvent):
    """The FE's code (``detail.otc``) expired while the FE was listed. Once per code."""

    kind: ClassVar[str] = "otc_expired"


@attrs.frozen(slots=True)
class FeDeparted(FeEvent):
    """An FE listed before is gone (or the location's task ended).

    ``expired`` says whether its last code had expired by then.
    """

    kind: ClassVar[str] = "fe_departed"

    expired: bool = False

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        data = FeEvent.to_dict(self, show_otc=show_otc)
        data["expired"] = self.expired
        return data


@attrs.frozen(slots=True)
class LocationStatusChanged(OtcEvent):
    """The location's status changed; ``previous`` is ``None`` on its first poll.

    ``error`` is the failure behind a ``FAILING`` status, else ``None``.
    """

    kind: ClassVar[str] = "location_status_changed"

    status: LocationStatus
    previous: LocationStatus | None = None
    error: FlipkartOtcError | None = attrs.field(default=None, eq=False)

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        data = OtcEvent.to_dict(self)
        data["status"] = self.status.value
        data["previous"] = self.previous.value if self.previous else None
        data["error"] = str(self.error) if self.error else None
        return data


#: The events of the Start OTC page (every watcher yields them).
StartOtcEvent = FeArrived | OtcRenewed | OtcExpired | FeDeparted | LocationStatusChanged


@attrs.frozen(slots=True)
class VisitEvent(OtcEvent):
    """An event of an FE's visit past the Start OTC page (a ``VisitWatcher`` yields them)."""

    fe_id: str
    task_id: str

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        data = OtcEvent.to_dict(self)
        data["fe_id"], data["task_id"] = self.fe_id, self.task_id
        return data


@attrs.frozen(slots=True)
class ScanningStarted(VisitEvent):
    """The FE's Start OTC was used: it is scanning shipments. ``fe_name`` and
    ``logistic_partner`` as the Start OTC page (or initial-load) gave them: None when
    neither did."""

    kind: ClassVar[str] = "scanning_started"

    fe_name: str | None = None
    logistic_partner: str | None = None

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        data = VisitEvent.to_dict(self)
        data["fe_name"], data["logistic_partner"] = self.fe_name, self.logistic_partner
        return data


@attrs.frozen(slots=True)
class ShipmentScanned(VisitEvent):
    """The FE scanned a shipment (once per shipment)."""

    kind: ClassVar[str] = "shipment_scanned"

    shipment: ScannedShipment

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        data = VisitEvent.to_dict(self)
        shipment = self.shipment
        data.update(
            tracking_id=shipment.tracking_id,
            shipment_id=shipment.shipment_id,
            status=shipment.status_raw,
            reason=shipment.reason,
            scanned_at=iso_utc(shipment.scanned_at),
            flyer_failed=None if shipment.flyer is None else shipment.flyer.status != "FlyerMatch",
            obd_eligible=None if shipment.obd is None else shipment.obd.eligible,
        )
        return data


@attrs.frozen(slots=True)
class EndOtcReady(VisitEvent):
    """The FE is on the End OTC page: here is its End OTC and the scan summary."""

    kind: ClassVar[str] = "end_otc_ready"

    end: EndOtc

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        data = VisitEvent.to_dict(self)
        data.update(end_otc_dict(self.end, show_otc=show_otc))
        return data


@attrs.frozen(slots=True)
class VisitCompleted(VisitEvent):
    """The FE left the End OTC page: the visit is over. ``scanned``: shipments seen."""

    kind: ClassVar[str] = "visit_completed"

    scanned: int

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        data = VisitEvent.to_dict(self)
        data["scanned"] = self.scanned
        return data


@attrs.frozen(slots=True)
class VisitLeft(VisitEvent):
    """The FE is gone while scanning, before its End OTC page was seen: it left
    unfinished (or, between two looks, went through the End OTC page with a code from
    elsewhere, such as Seller Hub). ``scanned``: shipments seen. ``complete`` is False
    when the last scans could not be read once the FE had gone (Flipkart refused the
    read): ``scanned`` may then be short."""

    kind: ClassVar[str] = "visit_left"

    scanned: int
    complete: bool = True

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        data = VisitEvent.to_dict(self)
        data["scanned"] = self.scanned
        data["complete"] = self.complete
        return data


#: Any event a watcher yields: the Start OTC page's, and (with ``visits=True``) those of
#: the rest of the visit. Sinks, feeds and the dashboard carry every one of them.
WatchEvent = (
    StartOtcEvent | ScanningStarted | ShipmentScanned | EndOtcReady | VisitCompleted | VisitLeft
)

#: The same as :data:`WatchEvent` (the name the visit watcher's events had).
VisitWatchEvent = WatchEvent

#: Every event class, by its ``kind`` (what ``to_dict()`` calls ``"event"``).
EVENT_KINDS: Final[Mapping[str, type[OtcEvent]]] = {
    cls.kind: cls
    for cls in (
        FeArrived,
        OtcRenewed,
        OtcExpired,
        FeDeparted,
        LocationStatusChanged,
        ScanningStarted,
        ShipmentScanned,
        EndOtcReady,
        VisitCompleted,
        VisitLeft,
    )
}


def _when(text: Any) -> datetime:
    if not isinstance(text, str):
        raise TypeError(f"expected an ISO-8601 time, got {type(text).__name__}")
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"time without a zone: {text[:40]!r}")
    return when.astimezone(UTC)


def _detail(data: Mapping[str, Any]) -> OtcDetail:
    return OtcDetail(
        str(data["fe_id"]),
        str(data["fe_name"]),
        str(data["task_id"]),
        str(data["otc"]),
        _when(data["expires_at"]),
        _when(data["created_at"]),
        str(data["logistic_partner"]),
        Lob(data["lob"]),
        str(data["lob_raw"]),
    )


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count, got {str(value)[:40]!r}")
    return value


def _shipment(data: Mapping[str, Any]) -> ScannedShipment:
    raw = str(data["status"])
    try:
        status = ShipmentStatus(raw.upper())
    except ValueError:
        status = ShipmentStatus.UNKNOWN
    failed, eligible = data.get("flyer_failed"), data.get("obd_eligible")
    # the JSON form keeps the checks' verdicts only, so that is what comes back
    verdict = "FlyerMismatch" if failed else "FlyerMatch"
    flyer = None if failed is None else FlyerCheck("", "", verdict)
    obd = None if eligible is None else ObdCheck(bool(eligible), "")
    return ScannedShipment(
        str(data["tracking_id"]),
        str(data["shipment_id"]),
        status,
        raw,
        _text_or_none(data.get("reason")),
        _when(data["scanned_at"]),
        flyer,
        obd,
    )


def _end(data: Mapping[str, Any], fe_id: str, task_id: str) -> EndOtc:
    return EndOtc(
        fe_id,
        task_id,
        str(data["otc"]),
        _count(data["total_scanned"]),
        _count(data["obd_eligible"]),
        _count(data["obd_failed"]),
        _count(data["flyer_eligible"]),
        _count(data["flyer_failed"]),
    )


def _visit_event(
    kind: Any, data: Mapping[str, Any], location_id: str, at: datetime, recovered: bool
) -> VisitEvent | None:
    fe_id, task_id = str(data["fe_id"]), str(data["task_id"])
    key = (location_id, at, fe_id, task_id)
    if kind == ScanningStarted.kind:
        name, partner = data.get("fe_name"), data.get("logistic_partner")
        return ScanningStarted(
            *key, _text_or_none(name), _text_or_none(partner), recovered=recovered
        )
    if kind == ShipmentScanned.kind:
        return ShipmentScanned(*key, shipment=_shipment(data), recovered=recovered)
    if kind == EndOtcReady.kind:
        return EndOtcReady(*key, end=_end(data, fe_id, task_id), recovered=recovered)
    if kind == VisitCompleted.kind:
        return VisitCompleted(*key, scanned=_count(data["scanned"]), recovered=recovered)
    if kind == VisitLeft.kind:
        complete = data.get("complete", True) is not False
        return VisitLeft(
            *key, scanned=_count(data["scanned"]), complete=complete, recovered=recovered
        )
    return None


def event_from_dict(data: Mapping[str, Any]) -> WatchEvent:
    """The watch event whose :meth:`~OtcEvent.to_dict` form ``data`` is: what a reader
    of a sink's stream gets back (the OTC is ``"***"`` where it was masked; of a
    scanned shipment's checks only their verdicts come back).

    >>> event_from_dict(event.to_dict()) == event  # doctest: +SKIP
    True

    Raises ``ValueError`` naming the event kind or the field that is not right.
    """
    kind: Any = None
    try:
        if not isinstance(data, Mapping):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        kind = data["event"]
        location_id, at = str(data["location_id"]), _when(data["observed_at"])
        recovered = data.get("recovered") is True
        if kind == LocationStatusChanged.kind:
            previous = data.get("previous")
            error = data.get("error")
            return LocationStatusChanged(
                location_id,
                at,
                LocationStatus(data["status"]),
                LocationStatus(previous) if previous is not None else None,
                FlipkartOtcError(str(error)) if error else None,
                recovered=recovered,
            )
        visit = _visit_event(kind, data, location_id, at, recovered)
        if visit is not None:
            return visit  # type: ignore[return-value]  # each is a WatchEvent
        if kind not in EVENT_KINDS:
            raise ValueError(f"event {str(kind)[:40]!r}")
        detail = _detail(data)
        fe_id = detail.fe_id
        if kind == FeArrived.kind:
            initial = bool(data.get("initial", False))
            return FeArrived(location_id, at, fe_id, detail, initial, recovered=recovered)
        if kind == OtcRenewed.kind:
            previous_detail = _detail(data["previous"])
            return OtcRenewed(location_id, at, fe_id, detail, previous_detail, recovered=recovered)
        if kind == OtcExpired.kind:
            return OtcExpired(location_id, at, fe_id, detail, recovered=recovered)
        expired = bool(data.get("expired", False))
        return FeDeparted(location_id, at, fe_id, detail, expired, recovered=recovered)
    except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        # Overflow: a time that leaves datetime's range once in UTC (0001-01-01T00:00+01:00)
        raise ValueError(f"not a watch event's JSON form: {type(exc).__name__}: {exc}") from None
