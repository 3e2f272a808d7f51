"""``VisitWatcher``: an :class:`~flipkart_otc.OtcWatcher` that follows each FE through
the whole visit, not only the Start OTC page (``OtcWatcher(visits=True)`` by another
name, with the visit's own knobs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ._checks import check_number
from .policy import PollPolicy
from .source import VisitSource
from .watcher import OtcWatcher

__all__ = ["VisitWatcher"]


class VisitWatcher(OtcWatcher):
    """Watch locations and yield every event of each FE's visit.

    >>> async with VisitWatcher(client, ["LOC1"]) as watcher:  # doctest: +SKIP
    ...     async for event in watcher:
    ...         match event:
    ...             case ShipmentScanned(fe_id=fe, shipment=s):
    ...                 print(f"{fe} scanned {s.tracking_id}")
    ...             case EndOtcReady(fe_id=fe, end=end):
    ...                 print(f"End OTC for {fe}: {end.total_scanned} scanned")

    The Start OTC events (``FeArrived`` ...) keep their contract; then, for an FE whose
    code was used: ``ScanningStarted``, ``ShipmentScanned`` once per shipment,
    ``EndOtcReady`` with the End OTC and the totals, ``VisitCompleted`` (or
    ``VisitLeft``). ``scan_interval``, when given, sets ``policy.scanning`` (else the
    policy's own: Flipkart's advice, 30 s); every other keyword argument is the
    ``OtcWatcher``'s, ``sink`` and ``shard`` included: one engine, one scheduler, one
    rate limit.

    Requests: each ``scan_interval``, one scanning call per FE that may be scanning
    (read on from where the last read ended), and initial-load only when a look
    leaves a page in doubt. Flipkart's docs read the scanning answer's has-more flag
    two ways: if it stays true while the FE scans (the docs: it turns false "once all
    shipments are scanned"), a visit costs about one request per ``scan_interval``;
    if it only means another page, every look asks initial-load too, about twice
    that. Either way the End OTC is asked within one interval of the FE reaching its
    page, and never again once a code was published (each call makes a new one).
    """

    def __init__(
        self,
        client: VisitSource,
        locations: Iterable[str] = (),
        *,
        scan_interval: float | None = None,
        follow_existing: bool = True,
        policy: PollPolicy | None = None,
        **options: Any,
    ) -> None:
        if policy is not None and not isinstance(policy, PollPolicy):
            raise TypeError(f"policy must be a PollPolicy, got {type(policy).__name__}")
        policy = policy or PollPolicy()
        if scan_interval is not None:  # else the policy's own (Flipkart's advice: 30 s)
            check_number("scan_interval", scan_interval, minimum=0.001)
            policy = attrs.evolve(policy, scanning=float(scan_interval))
        super().__init__(
            client,
            locations,
            policy=policy,
            visits=True,
            follow_existing=follow_existing,
            **options,
        )

    @property
    def watcher(self) -> OtcWatcher:
        """This watcher (it used to wrap one; kept so that code using it still runs)."""
        return self
