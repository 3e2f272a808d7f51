"""``VisitWatcher``: follow each FE through the whole visit, not only the Start OTC page.

It runs an :class:`~flipkart_otc.OtcWatcher` (its events pass through unchanged) and,
when an FE leaves the Start OTC page, follows it: every ``scan_interval`` seconds (30,
Flipkart's advice for the scanning endpoint) one initial-load per location with FEs in
the visit (which page each is on), the scanned shipments of each FE scanning, and the
End OTC once an FE is on the End OTC page. Nothing is asked for a location with no FE past the
Start OTC page. The decisions are the pure state machine's (``_visit``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ._channel import Channel
from ._checks import check_number
from ._lifecycle import Lifecycle
from ._visit import Ask, FeVisit, Page, on_end_otc, on_page, on_shipments, page_of
from .client import OtcClient
from .clock import monotonic_of
from .errors import FlipkartOtcError, TaskNotFoundError, classify
from .events import FeDeparted, OtcEvent, VisitWatchEvent
from .watcher import OtcWatcher

__all__ = ["VisitWatcher"]

logger = logging.getLogger("flipkart_otc")

#: Seconds to the next round while an FE on the End OTC page has no code yet (the End
#: OTC call is never retried by the client: it makes a code).
_END_OTC_RETRY = 5.0


class VisitWatcher(Lifecycle[VisitWatchEvent]):
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
    ``EndOtcReady`` with the End OTC and the totals, ``VisitCompleted``. Keyword
    arguments other than ``scan_interval`` and ``follow_existing`` go to the
    ``OtcWatcher``.

    ``follow_existing`` (the default) also follows the FEs already past the Start OTC
    page when watching begins: one initial-load per location, spread over the first
    ``scan_interval``; they come out as ``ScanningStarted`` (then the rest of their
    visit), as FEs already at the door come out as ``FeArrived(initial=True)``.
    """

    def __init__(
        self,
        client: OtcClient,
        locations: Iterable[str] = (),
        *,
        scan_interval: float = 30.0,
        queue_size: int = 1024,
        follow_existing: bool = True,
        **options: Any,
    ) -> None:
        if not isinstance(client, OtcClient):
            raise TypeError(f"client must be an OtcClient, got {type(client).__name__}")
        check_number("scan_interval", scan_interval, minimum=0.001)
        self._client = client
        self._scan_interval = float(scan_interval)
        self._otc = OtcWatcher(client, locations, queue_size=queue_size, **options)
        self._events: Channel[OtcEvent | None] = Channel(queue_size)
        self._following: dict[str, dict[str, FeVisit]] = {}  # location -> FE -> visit
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakers: dict[str, Callable[[], None]] = {}  # a sleeping follower, by location
        self._busy = 0  # followers and the pump, while they have work in hand
        self._progress: asyncio.Event | None = None
        self._fatal: BaseException | None = None
        self._started = self._closed = False
        self._follow_existing = bool(follow_existing)

    @property
    def watcher(self) -> OtcWatcher:
        """The Start OTC watcher inside (its ``subscribe()``, ``snapshot()`` ...)."""
        return self._otc

    def following(self, location_id: str) -> list[str]:
        """The FEs of a location followed past the Start OTC page now."""
        return sorted(self._following.get(location_id, ()))

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start watching (``async with`` does this)."""
        if self._closed:
            raise RuntimeError("this VisitWatcher is closed")
        if not self._started:
            self._started = True
            await self._otc.start()
            self._spawn(self._pump())
            if self._follow_existing:
                self._busy += 1  # until its first look is done
                self._spawn(self._discover())

    async def aclose(self) -> None:
        """Stop: every follower, then the Start OTC watcher. Safe to call twice."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._otc.aclose()
        if not self._events.full():
            self._events.put_nowait(None)  # wakes a waiting reader: the iteration ends

    async def __anext__(self) -> VisitWatchEvent:
        if not self._started:
            await self.start()
        while True:
            if self._events.items:
                item = self._events.get_nowait()
            elif self._fatal is not None:
                raise self._fatal
            elif self._closed:
                raise StopAsyncIteration
            else:
                item = await self._events.get()
            self._changed()
            if item is not None:
                return item  # type: ignore[return-value]

    @property
    def queued(self) -> int:
        """Events waiting to be read."""
        return len(self._events)

    async def wait_idle(self) -> None:
        """Wait until nothing is due: no poll, no follower at work, no event on its way
        (for tests with a ManualClock). Returns at once while events wait for the reader
        and the queue is full."""
        while True:
            await self._otc.wait_idle()
            if (self._busy == 0 and self._otc.queued == 0) or self._events.full():
                return
            self._progress = progress = asyncio.Event()
            await progress.wait()

    # -- the work --------------------------------------------------------------------

    def _changed(self) -> None:
        if self._progress is not None:
            self._progress.set()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fail(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
            logger.error("visit watcher stopped: %s", exc)
            for task in list(self._tasks):
                if task is not asyncio.current_task():
                    task.cancel()
            if not self._events.full():
                self._events.put_nowait(None)
        self._changed()

    async def _emit(self, events: Sequence[OtcEvent]) -> None:
        for event in events:
            while self._events.full():
                self._changed()  # wait_idle() returns: the reader must read
                await self._events.room()
            self._events.put_nowait(event)
        self._changed()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._otc.now(), UTC)

    async def _pump(self) -> None:
        """The Start OTC watcher's events, passed on; an FE leaving its page is followed."""
        otc = self._otc
        try:
            while True:
                event = await anext(otc)
                self._busy += 1
                try:
                    await self._emit([event])
                    if isinstance(event, FeDeparted):
                        self._follow(event.location_id, event.fe_id, event.detail.task_id)
                finally:
                    self._busy -= 1
                    self._changed()
        except StopAsyncIteration:
            pass
        except Exception as exc:  # the Start OTC watcher's fatal error
            self._fail(exc)

    def _follow(self, location_id: str, fe_id: str, task_id: str) -> None:
        visits = self._following.get(location_id)
        if visits is None:
            visits = self._following[location_id] = {}
            self._busy += 1  # until the follower's first round ends
            self._spawn(self._follower(location_id, visits))
        elif fe_id not in visits and (wake := self._wakers.get(location_id)) is not None:
            wake()  # a round now, not at the next interval: the FE may be scanning
        visits.setdefault(fe_id, FeVisit(location_id, fe_id, task_id))

    async def _sleep_until(self, when: float) -> None:
        """Sleep on the watcher's clock until ``when`` (monotonic), not busy meanwhile."""
        clock = self._otc.clock
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not woken.done():
                self._busy += 1  # due now: wait_idle() waits for what follows
                woken.set_result(None)

        self._busy -= 1
        self._changed()
        timer = clock.call_at(when, wake)
        try:
            await woken
        finally:
            timer.cancel()
            if not woken.done():  # cancelled asleep: count as busy again, as on waking
                self._busy += 1

    async def _discover(self) -> None:
        """At start: one initial-load per location, spread over one ``scan_interval``;
        every FE already past the Start OTC page is followed from there."""
        locations = self._otc.locations
        monotonic = monotonic_of(self._otc.clock)
        start = monotonic()
        try:
            for i, location_id in enumerate(locations):
                if i:
                    await self._sleep_until(start + self._scan_interval * i / len(locations))
                try:
                    fes = (await self._client.initial_load(location_id)).fes
                except FlipkartOtcError as exc:
                    if classify(exc).fatal:
                        raise
                    continue  # no task, or a failure: the Start OTC watcher has it
                for fe_id, fe in sorted(fes.items()):
                    if page_of(fe.task_status) not in (Page.START_OTC, Page.GONE):
                        self._follow(location_id, fe_id, fe.task_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a refused token, or a bug
            self._fail(exc)
        finally:
            self._busy -= 1
            self._changed()

    async def _follower(self, location_id: str, visits: dict[str, FeVisit]) -> None:
        """Rounds of one location, each ``scan_interval`` apart, while it has visits.

        While a round is due or under way the follower counts as busy (wait_idle()
        waits for it); asleep between rounds, it does not."""
        clock = self._otc.clock
        monotonic = monotonic_of(clock)
        loop = asyncio.get_running_loop()
        busy = True
        try:
            while visits:
                try:
                    await self._round(location_id, visits)
                except FlipkartOtcError as exc:
                    if classify(exc).fatal:
                        raise
                    logger.info("location %s: visit round failed: %s", location_id, exc)
                if not visits:
                    break
                # an FE on the End OTC page without its code (asking failed): the desk
                # needs one before the FE goes, so the next round comes soon
                waiting = any(
                    v.page is Page.END_OTC and v.end_otc is None for v in visits.values()
                )
                pause = (
                    min(self._scan_interval, _END_OTC_RETRY) if waiting else self._scan_interval
                )
                woken: asyncio.Future[None] = loop.create_future()

                def wake(future: asyncio.Future[None] = woken) -> None:
                    nonlocal busy
                    if not future.done():
                        busy = True
                        self._busy += 1  # due now: wait_idle() waits for this round
                        future.set_result(None)

                busy = False
                self._busy -= 1
                self._changed()
                self._wakers[location_id] = wake
                timer = clock.call_at(monotonic() + pause, wake)
                try:
                    await woken
                finally:
                    timer.cancel()
                    self._wakers.pop(location_id, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a refused token, or a bug: stop, and say why
            self._fail(exc)
        finally:
            if self._following.get(location_id) is visits:
                del self._following[location_id]
            if busy:
                self._busy -= 1
            self._changed()

    async def _round(self, location_id: str, visits: dict[str, FeVisit]) -> None:
        """One look at a location's visits: initial-load (which page each FE is on: the
        End OTC must not wait), then what each FE's page calls for."""
        try:
            fes = (await self._client.initial_load(location_id)).fes
        except TaskNotFoundError:  # no task any more: every FE of it is gone
            fes = {}
        for fe_id, visit in list(visits.items()):
            fe = fes.get(fe_id)
            if fe is not None and fe.task_id != visit.task_id:
                fe = None  # the same FE on another task: this visit is over
            events, ask = on_page(visit, page_of(fe.task_status if fe else None), self._now())
            await self._emit(events)
            if ask & Ask.STOP:
                del visits[fe_id]
            else:
                await self._ask(location_id, visit, ask)

    async def _ask(self, location_id: str, visit: FeVisit, ask: Ask) -> None:
        """The FE's shipments and End OTC, as ``ask`` says; a failure is logged, and the
        next round asks again (the task closed, the FE moved on, or Flipkart failed)."""
        client = self._client
        try:
            if ask & Ask.SHIPMENTS:
                pages = client.scanned_shipments(visit.task_id, visit.fe_id)
                shipments = [shipment async for shipment in pages]
                await self._emit(on_shipments(visit, shipments, self._now()))
            if ask & Ask.END_OTC:
                end = await client.end_otc_details(visit.fe_id, visit.task_id)
                await self._emit(on_end_otc(visit, end, self._now()))
        except FlipkartOtcError as exc:
            if classify(exc).fatal:
                raise
            logger.info("location %s, FE %s: %s", location_id, visit.fe_id, exc)
