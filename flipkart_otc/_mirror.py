"""A location's view kept from its events alone, as a reader of a sink's stream (or of a
visit watcher) sees it. Pure: no I/O.

The stream holds every event of the location, in order, so applying them to the view
saved with the last of them keeps the view the watcher had: FEs come with their
arrival or renewal and go with their departure; the status comes with its change; an
FE's visit past the Start OTC page comes with ``ScanningStarted`` and goes with
``VisitCompleted`` or ``VisitLeft``.
"""

from __future__ import annotations

import attrs

from ._views import LocationView
from .events import (
    EndOtcReady,
    FeArrived,
    FeDeparted,
    LocationStatusChanged,
    OtcEvent,
    OtcRenewed,
    ScanningStarted,
    ShipmentScanned,
    VisitEvent,
)
from .models import LocationStatus, OtcSnapshot, ShipmentStatus, VisitView

__all__ = ["apply", "visits_after"]


def apply(view: LocationView | None, event: OtcEvent) -> LocationView:
    """``view`` (None: a location not seen yet) after ``event`` (any a watcher or a
    visit watcher yields)."""
    location_id = event.location_id
    if view is None:
        view = LocationView(location_id, None, None)
    if isinstance(event, VisitEvent):
        return attrs.evolve(view, visits=visits_after(view.visits, event))
    snapshot = view.snapshot
    details = dict(snapshot.details) if snapshot is not None else {}
    status, error = view.status, view.error
    if isinstance(event, LocationStatusChanged):
        status, error = event.status, None
        if status in (LocationStatus.NO_TASK, LocationStatus.CLOSED):
            details = {}
        if status is LocationStatus.FAILING:  # the last good snapshot stays as it was
            error = str(event.error) if event.error is not None else None
            return attrs.evolve(view, status=status, error=error)
    elif isinstance(event, (FeArrived, OtcRenewed)):
        details[event.fe_id] = event.detail
    elif isinstance(event, FeDeparted):
        details.pop(event.fe_id, None)
    else:  # an expiry: nothing to change (the code's instant is in its detail)
        return view
    snapshot = OtcSnapshot(location_id, event.observed_at, details)
    return attrs.evolve(view, status=status, snapshot=snapshot, error=error)


def visits_after(visits: tuple[VisitView, ...], event: VisitEvent) -> tuple[VisitView, ...]:
    """The FEs past the Start OTC page after ``event`` (in the order they came)."""
    rest = tuple(v for v in visits if v.fe_id != event.fe_id)
    now = next((v for v in visits if v.fe_id == event.fe_id), None)
    if isinstance(event, ScanningStarted):
        return (
            *rest,
            VisitView(
                event.fe_id,
                event.task_id,
                event.fe_name,
                event.logistic_partner,
                "scanning",
                event.observed_at,
            ),
        )
    if now is None:  # a later event of a visit not seen starting: nothing to show it on
        return visits
    if isinstance(event, ShipmentScanned):
        if event.shipment.tracking_id in now.tracking_ids:
            return visits  # told before (a stream read after a worker's restart)
        rejected = event.shipment.status is ShipmentStatus.REJECTED
        now = attrs.evolve(
            now,
            scanned=now.scanned + 1,
            rejected=now.rejected + rejected,
            tracking_ids=now.tracking_ids | {event.shipment.tracking_id},
        )
    elif isinstance(event, EndOtcReady):
        now = attrs.evolve(now, stage="end_otc", since=event.observed_at, end=event.end)
    else:  # completed, or left: the visit is over
        return rest
    return tuple(now if v.fe_id == event.fe_id else v for v in visits)
