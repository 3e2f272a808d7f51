"""Typed, immutable views of what the Start OTC endpoint returns.

Everything here is pure data: no I/O, no clock reads. Times are aware UTC
datetimes whatever unit Flipkart sent them in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta

import attrs

from ._status import LocationStatus

__all__ = [
    "EndOtc",
    "FlyerCheck",
    "InitialLoad",
    "LocationStatus",
    "Lob",
    "ObdCheck",
    "OtcDetail",
    "OtcSnapshot",
    "ScannedShipment",
    "ShipmentPage",
    "ShipmentStatus",
    "VisitFe",
    "VisitView",
]


class Lob(enum.Enum):
    """Line of business of a pickup.

    Flipkart documents ``LARGE`` and ``NONLARGE``; older APIs spell the latter
    ``NON_LARGE``. Anything else parses to :attr:`UNKNOWN` and the raw text is
    kept in :attr:`OtcDetail.lob_raw`, so an odd value never breaks a poll.
    """

    LARGE = "LARGE"
    NONLARGE = "NONLARGE"
    UNKNOWN = "UNKNOWN"


@attrs.frozen(slots=True)
class OtcDetail:
    """One Field Executive on the Start OTC page and the code to read out.

    The ``otc`` is left out of ``repr()`` so that logging an ``OtcDetail`` does
    not leak it.

    >>> detail.fe_name, detail.logistic_partner, detail.lob  # doctest: +SKIP
    ('Ram', 'eKart', <Lob.LARGE: 'LARGE'>)
    """

    fe_id: str
    fe_name: str
    task_id: str
    otc: str = attrs.field(repr=False)
    expires_at: datetime
    created_at: datetime
    logistic_partner: str
    lob: Lob = Lob.UNKNOWN
    #: ``lob`` exactly as Flipkart sent it ("" when it was missing; a value that is not
    #: a string as its JSON text, a whole-number float as an integer).
    lob_raw: str = ""

    def is_expired(self, now: datetime) -> bool:
        """Whether the code has expired at ``now`` (an aware datetime)."""
        return now >= self.expires_at

    def time_left(self, now: datetime) -> timedelta:
        """How long the code stays valid after ``now``; never negative."""
        left = self.expires_at - now
        return left if left > timedelta(0) else timedelta(0)


@attrs.frozen(slots=True)
class OtcSnapshot:
    """The answer for one seller location at one instant.

    ``details`` maps each FE id to its :class:`OtcDetail`; it is empty when no
    FE is on the Start OTC page. Treat it as read-only.
    """

    location_id: str
    fetched_at: datetime
    details: Mapping[str, OtcDetail] = attrs.field(factory=dict)

    def __len__(self) -> int:
        return len(self.details)


@attrs.frozen(slots=True)
class VisitFe:
    """An FE at a location on any page of the visit (initial-load's ``feDetails``).

    ``task_status`` is Flipkart's text as sent (its values are not documented;
    the sample says ``"Scanning"``).
    """

    fe_id: str
    fe_name: str
    logistic_partner: str
    lob: Lob
    lob_raw: str
    task_id: str
    task_status: str
    task_created_at: datetime


@attrs.frozen(slots=True)
class InitialLoad:
    """A location's FEs on the Start OTC, scanning or End OTC page, and its OTC flow.

    ``enabled_for`` is the seller's configuration as sent (documented values
    ``OldStatic``, ``NewStatic``, ``DynamicStartEnd``, ``DynamicEnd``).
    """

    location_id: str
    fetched_at: datetime
    enabled_for: str
    fes: Mapping[str, VisitFe] = attrs.field(factory=dict)


@attrs.frozen(slots=True)
class EndOtc:
    """The End OTC for an FE's task and the summary of what was scanned.

    The ``otc`` is left out of ``repr()``.
    """

    fe_id: str
    task_id: str
    otc: str = attrs.field(repr=False)
    total_scanned: int
    obd_eligible: int
    obd_failed: int
    flyer_eligible: int
    flyer_failed: int


class ShipmentStatus(enum.Enum):
    """Whether the FE took a scanned shipment. Anything else parses to :attr:`UNKNOWN`
    (the text is kept in :attr:`ScannedShipment.status_raw`)."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"


@attrs.frozen(slots=True)
class FlyerCheck:
    """The return bag's check: the flyer id expected, the one captured, and the verdict
    as sent (e.g. ``FlyerMatch``)."""

    actual_flyer_id: str
    captured_flyer_id: str
    status: str


@attrs.frozen(slots=True)
class ObdCheck:
    """The open-box check: whether the shipment was eligible, the remark, the photos."""

    eligible: bool
    remark: str
    image_links: tuple[str, ...] = ()


@attrs.frozen(slots=True)
class ScannedShipment:
    """One shipment an FE scanned (``reason`` is None when it was accepted)."""

    tracking_id: str
    shipment_id: str
    status: ShipmentStatus
    status_raw: str
    reason: str | None
    scanned_at: datetime
    flyer: FlyerCheck | None = None
    obd: ObdCheck | None = None


@attrs.frozen(slots=True)
class VisitView:
    """An FE past the Start OTC page, as a watcher's picture shows it
    (``OtcWatcher(visits=True)``): on the ``"scanning"`` page or the ``"end_otc"``
    page (since ``since``), the shipments seen (``rejected`` of them refused), and its
    End OTC once got."""

    fe_id: str
    task_id: str
    fe_name: str | None
    logistic_partner: str | None
    stage: str
    since: datetime
    scanned: int = 0
    rejected: int = 0
    end: EndOtc | None = None
    #: The tracking ids reported (what a watcher resuming from saved state must not
    #: report again), and where its next read of the scans goes on (None: page 1).
    #: Bookkeeping: neither counts in ``==``.
    tracking_ids: frozenset[str] = attrs.field(default=frozenset(), eq=False, repr=False)
    cursor: str | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen(slots=True)
class ShipmentPage:
    """One page of an FE's scanned shipments (:meth:`OtcClient.shipment_pages`): the
    shipments it brought that the read had not yielded yet, where to read on from
    (the next page's URL; for the last page, the URL it was read from; None: the first
    page's POST), and whether the page gave a next URL (Flipkart's docs: the FE is
    still scanning)."""

    shipments: tuple[ScannedShipment, ...]
    cursor: str | None
    more: bool
