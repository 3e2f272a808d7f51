"""What a watcher polls: any object with these coroutines (:class:`OtcClient` has them
all), so a test or another transport can feed a watcher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Protocol, runtime_checkable

from .models import EndOtc, InitialLoad, ShipmentPage

__all__ = ["LegacySource", "OtcSource", "VisitSource"]


@runtime_checkable
class OtcSource(Protocol):
    """A source of Start OTC answers. :class:`~flipkart_otc.OtcClient` is one; a test
    or another transport can be another.

    ``fetch_body(location_id, patience=...)`` returns (an awaitable of) the raw body of
    a successful Start OTC answer; a failure raises this library's exceptions
    (:class:`~flipkart_otc.TaskNotFoundError` for no task, and so on), which the
    watcher classes as it classes the client's. ``patience``: how many seconds this
    request may yield its turn to more urgent ones under a rate limit (a source
    without one ignores it; one written before it existed, taking ``location_id``
    alone, is called without it).

    >>> class Canned:
    ...     async def fetch_body(self, location_id: str, *, patience: float = 0.0) -> bytes:
    ...         return b'{"otcDetails": {}}'
    >>> isinstance(Canned(), OtcSource)
    True
    """

    def fetch_body(self, location_id: str, *, patience: float = 0.0) -> Awaitable[bytes]:
        """The raw body of a successful Start OTC answer for ``location_id``."""
        ...


class LegacySource(Protocol):
    """An :class:`OtcSource` as it was before ``patience``: a watcher still takes one
    (it calls ``fetch_body(location_id)`` alone)."""

    def fetch_body(self, location_id: str) -> Awaitable[bytes]:
        """The raw body of a successful Start OTC answer for ``location_id``."""
        ...


@runtime_checkable
class VisitSource(OtcSource, Protocol):
    """A source that also answers the rest of the visit's endpoints, for a watcher with
    ``visits=True`` (:class:`~flipkart_otc.OtcClient` is one): initial-load, the scanned
    shipments read on from a cursor, and the End OTC (asked at most once per published
    code: each call makes a new one)."""

    def initial_load(self, location_id: str, *, patience: float = 0.0) -> Awaitable[InitialLoad]:
        """Every FE at the location, on any page of the visit."""
        ...

    def shipment_pages(
        self,
        task_id: str,
        fe_id: str,
        *,
        cursor: str | None = None,
        stop_short: bool = False,
        patience: float = 0.0,
    ) -> AsyncIterator[ShipmentPage]:
        """The FE's scanned shipments, page by page, from ``cursor`` (None: page 1)."""
        ...

    def end_otc_details(self, fe_id: str, task_id: str) -> Awaitable[EndOtc]:
        """The End OTC of the FE's task (a new code at each call)."""
        ...
