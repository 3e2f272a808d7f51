"""A location's view kept from its events alone, as a reader of a sink's stream sees it.
Pure: no I/O.

The stream holds every event of the location, in order, so applying them to the view
saved with the last of them keeps the view the watcher had: FEs come with their
arrival or renewal and go with their departure; the status comes with its change.
"""

from __future__ import annotations

from ._fanout import LocationView
from .events import (
    FeArrived,
    FeDeparted,
    LocationStatusChanged,
    OtcRenewed,
    WatchEvent,
)
from .models import LocationStatus, OtcSnapshot

__all__ = ["apply"]


def apply(view: LocationView | None, event: WatchEvent) -> LocationView:
    """``view`` (None: a location not seen yet) after ``event``."""
    location_id = event.location_id
    if view is None:
        view = LocationView(location_id, None, None)
    snapshot = view.snapshot
    details = dict(snapshot.details) if snapshot is not None else {}
    status, error = view.status, view.error
    if isinstance(event, LocationStatusChanged):
        status, error = event.status, None
        if status in (LocationStatus.NO_TASK, LocationStatus.CLOSED):
            details = {}
        if status is LocationStatus.FAILING:  # the last good snapshot stays as it was
            error = str(event.error) if event.error is not None else None
            return LocationView(location_id, status, snapshot, error)
    elif isinstance(event, (FeArrived, OtcRenewed)):
        details[event.fe_id] = event.detail
    elif isinstance(event, FeDeparted):
        details.pop(event.fe_id, None)
    else:  # an expiry: nothing to change (the code's instant is in its detail)
        return view
    return LocationView(
        location_id, status, OtcSnapshot(location_id, event.observed_at, details), error
    )
