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
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import attrs

from ._serialize import detail_dict, iso_utc
from .errors import FlipkartOtcError
from .models import LocationStatus, OtcDetail

__all__ = [
    "FeArrived",
    "FeDeparted",
    "FeEvent",
    "LocationStatusChanged",
    "OtcEvent",
    "OtcExpired",
    "OtcRenewed",
    "WatchEvent",
]


@attrs.frozen(slots=True)
class OtcEvent:
    """Base of every watcher event."""

    #: The event's name in :meth:`to_dict`.
    kind: ClassVar[str] = "event"

    location_id: str
    observed_at: datetime

    def to_dict(self, *, show_otc: bool = False) -> dict[str, Any]:
        """JSON-ready data with stable field names; the OTC is masked unless ``show_otc``."""
        return {
            "event": self.kind,
            "location_id": self.location_id,
            "observed_at": iso_utc(self.observed_at),
        }


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


#: Any event the watcher yields.
WatchEvent = FeArrived | OtcRenewed | OtcExpired | FeDeparted | LocationStatusChanged
