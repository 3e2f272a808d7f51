"""One FE's visit past the Start OTC page, as a state machine. Pure: no asyncio, no I/O.

The visit watcher starts following an FE when it leaves the Start OTC page. Each round
it asks for the scanned shipments of every FE that may be scanning; each answer goes
through :func:`on_shipments`, which reports each shipment once. Only a round that
leaves some FE's page in doubt (:func:`page_check_due`: the answer did not say more
may come, or the FE is on another page) asks initial-load what page each FE is on;
each answer goes through :func:`on_page`, which says what the FE's move means (events)
and what to ask next (the scanned shipments, the End OTC). The pages (the spec note's flow)::

    START_OTC --code used--> SCANNING --scanning done--> END_OTC --code verified--> gone

Flipkart's docs say the scanning answer's has-more flag turns false "once all
shipments are scanned": while it is true the FE is scanning, and asking initial-load
as well would double the requests of a visit. Where it only means another page, it
tells nothing of the page, and every round asks initial-load. An FE that is gone before
the End OTC page left without finishing: ``VisitLeft`` (none if it never scanned).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

from .events import (
    EndOtcReady,
    ScanningStarted,
    ShipmentScanned,
    VisitCompleted,
    VisitEvent,
    VisitLeft,
)
from .models import EndOtc, ScannedShipment, VisitView

__all__ = [
    "Ask",
    "FollowedFe",
    "VisitPage",
    "left",
    "on_end_otc",
    "on_page",
    "on_shipments",
    "page_check_due",
    "page_of",
    "resumed",
]


class VisitPage(enum.Enum):
    """Where an FE is in the visit."""

    START_OTC = "start_otc"
    SCANNING = "scanning"
    END_OTC = "end_otc"
    GONE = "gone"
    UNKNOWN = "unknown"  # a task status the docs do not name


def page_of(task_status: str | None) -> VisitPage:
    """The page an initial-load ``task.status`` means (None: the FE is not listed).

    Only "Scanning" is documented; the others are compared on their letters alone."""
    if task_status is None:
        return VisitPage.GONE
    letters = "".join(c for c in task_status.lower() if c.isalpha())
    if letters in ("startotc", "start"):
        return VisitPage.START_OTC
    if letters == "scanning":
        return VisitPage.SCANNING
    if letters in ("endotc", "end"):
        return VisitPage.END_OTC
    return VisitPage.UNKNOWN


class Ask(enum.Flag):
    """What to ask Flipkart next about the FE."""

    NOTHING = 0
    SHIPMENTS = enum.auto()
    END_OTC = enum.auto()
    STOP = enum.auto()  # stop following the FE
    LEFT = enum.auto()  # it left while scanning: read what can be read, then left()


class FollowedFe:
    """What is known of one FE's visit (slots: there may be many)."""

    __slots__ = (
        "cursor",
        "end_otc",
        "fe_id",
        "fe_name",
        "location_id",
        "logistic_partner",
        "more",
        "page",
        "seen",
        "task_id",
    )

    def __init__(
        self,
        location_id: str,
        fe_id: str,
        task_id: str,
        fe_name: str | None = None,
        logistic_partner: str | None = None,
    ) -> None:
        self.location_id = location_id
        self.fe_id = fe_id
        self.task_id = task_id
        self.fe_name = fe_name
        self.logistic_partner = logistic_partner
        self.page = VisitPage.START_OTC
        self.seen: set[str] = set()  # tracking ids reported
        self.more = False  # the last read ended with a next URL: the FE scans on
        self.cursor: str | None = None  # where the next read goes on (None: page 1)
        self.end_otc: EndOtc | None = None


def page_check_due(visits: Iterable[FollowedFe]) -> bool:
    """Whether a round must ask initial-load: some FE is not seen scanning (its last
    read did not end with a next URL, or it is on another page)."""
    return any(visit.page is not VisitPage.SCANNING or not visit.more for visit in visits)


def on_page(visit: FollowedFe, page: VisitPage, now: datetime) -> tuple[list[VisitEvent], Ask]:
    """initial-load says the FE is on ``page`` at ``now``."""
    key = (visit.location_id, now, visit.fe_id, visit.task_id)
    events: list[VisitEvent] = []
    if page is VisitPage.GONE:
        if visit.page is VisitPage.END_OTC:
            events.append(VisitCompleted(*key, scanned=len(visit.seen)))
            return events, Ask.STOP
        # its last scans first, then left(): one never seen scanning (every read failed,
        # or it went between two looks) may have scanned too
        return events, Ask.SHIPMENTS | Ask.LEFT
    if page is VisitPage.START_OTC:
        if visit.page is VisitPage.START_OTC:
            return events, Ask.STOP  # it never left: the Start OTC watcher follows it
        return events, Ask.NOTHING  # [inferred] not a way back the docs draw: wait
    if page is VisitPage.UNKNOWN:
        return events, Ask.SHIPMENTS if visit.page is not VisitPage.START_OTC else Ask.NOTHING
    if visit.page is VisitPage.START_OTC:
        events.append(_started(visit, now))
    if page is VisitPage.END_OTC:
        if visit.end_otc is not None:  # all it needs is the FE leaving the page, and
            # the scans its End OTC counts that a failed read left untold
            short = visit.end_otc.total_scanned > len(visit.seen)
            return events, Ask.SHIPMENTS if short else Ask.NOTHING
        visit.page = VisitPage.END_OTC
        return events, Ask.SHIPMENTS | Ask.END_OTC  # the last scans first, then the code
    if visit.page is VisitPage.START_OTC:
        visit.page = VisitPage.SCANNING
    return events, Ask.SHIPMENTS


def on_shipments(
    visit: FollowedFe, shipments: Iterable[ScannedShipment], more: bool, now: datetime
) -> list[VisitEvent]:
    """The FE's scanned shipments (the pages of one read, ``more`` if the last had a
    next URL): each not reported before, once. A shipment, or a next URL after the
    last one, shows an FE that left the Start OTC page is scanning."""
    events: list[VisitEvent] = []
    seen = visit.seen
    key = (visit.location_id, now, visit.fe_id, visit.task_id)
    for shipment in shipments:
        if shipment.tracking_id not in seen:
            seen.add(shipment.tracking_id)
            events.append(ShipmentScanned(*key, shipment=shipment))
    visit.more = more
    if (events or more) and visit.page is VisitPage.START_OTC:
        visit.page = VisitPage.SCANNING
        events.insert(0, _started(visit, now))
    return events


def left(visit: FollowedFe, complete: bool, now: datetime) -> list[VisitEvent]:
    """The FE is gone before its End OTC page (after :func:`on_page` asked
    ``Ask.LEFT``), once its last scans were read (``complete``) or could not be (the
    count may be short). Nothing, for one never seen scanning: it did not use its code."""
    if visit.page is not VisitPage.SCANNING:
        return []
    key = (visit.location_id, now, visit.fe_id, visit.task_id)
    return [VisitLeft(*key, scanned=len(visit.seen), complete=complete)]


def resumed(location_id: str, view: VisitView) -> FollowedFe:
    """An FE's visit as a saved picture left it (a watcher resuming from a sink's
    state): its page, the shipments told, where its reads went on, its End OTC."""
    visit = FollowedFe(location_id, view.fe_id, view.task_id, view.fe_name, view.logistic_partner)
    visit.page = VisitPage.END_OTC if view.stage == "end_otc" else VisitPage.SCANNING
    visit.seen = set(view.tracking_ids)
    visit.cursor = view.cursor
    visit.end_otc = view.end
    return visit


def _started(visit: FollowedFe, now: datetime) -> ScanningStarted:
    return ScanningStarted(
        visit.location_id,
        now,
        visit.fe_id,
        visit.task_id,
        visit.fe_name,
        visit.logistic_partner,
    )


def on_end_otc(visit: FollowedFe, end: EndOtc, now: datetime) -> tuple[list[VisitEvent], Ask]:
    """The End OTC, got: reported once. Its total tells whether a shipment was missed
    (scanned just before the FE moved on): then every page is read again."""
    if visit.end_otc is not None:
        return [], Ask.NOTHING
    visit.end_otc = end
    event = EndOtcReady(visit.location_id, now, visit.fe_id, visit.task_id, end=end)
    if end.total_scanned > len(visit.seen):
        visit.cursor = None
        return [event], Ask.SHIPMENTS
    return [event], Ask.NOTHING
