"""``VisitWatcher``: follow each FE through the whole visit, not only the Start OTC page.

It runs an :class:`~flipkart_otc.OtcWatcher` (its events pass through unchanged) and,
when an FE leaves the Start OTC page, follows it: every ``scan_interval`` seconds (30,
Flipkart's advice for the scanning endpoint) the scanned shipments of each FE that may
be scanning, read on from where the last read ended; initial-load (which page each FE
is on) only in a round where the scanning answer did not say the FE scans on, or an FE
is on another page; and the End OTC once an FE is on the End OTC page. Nothing is asked
for a location with no FE past the Start OTC page. The decisions are the pure state
machine's (``_visit``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from ._channel import Channel
from ._checks import check_int, check_number
from ._fanout import LocationView, Picture, Readers, Subscription, WatcherHealth
from ._lifecycle import Lifecycle
from ._mirror import apply
from ._visit import (
    Ask,
    FeVisit,
    Page,
    on_end_otc,
    on_page,
    on_shipments,
    page_check_due,
    page_of,
)
from ._wire.shipments import PAGE_SIZE
from .client import OtcClient
from .clock import Clock, monotonic_of
from .errors import FlipkartOtcError, TaskNotFoundError, classify
from .events import FeDeparted, LocationStatusChanged, OtcEvent, VisitWatchEvent
from .models import LocationStatus, ScannedShipment, VisitFe
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

    Requests: each ``scan_interval``, one scanning call per FE that may be scanning
    (read on from where the last read ended), and initial-load only when a round
    leaves a page in doubt. Flipkart's docs read the scanning answer's has-more flag
    two ways: if it stays true while the FE scans (the docs: it turns false "once all
    shipments are scanned"), a visit costs about one request per ``scan_interval``;
    if it only means another page, every round asks initial-load too, about twice
    that. Either way the End OTC is asked within one interval of the FE reaching its
    page.

    ``follow_existing`` (the default) also follows the FEs already past the Start OTC
    page when watching begins: one initial-load for each location whose first Start
    OTC answer shows an open task; they come out as ``ScanningStarted`` (then the
    rest of their visit), as FEs already at the door come out as
    ``FeArrived(initial=True)``.
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
        self._busy = 0  # followers and the pump, while they have work in hand
        self._progress: asyncio.Event | None = None
        self._fatal: BaseException | None = None
        self._started = self._closed = False
        self._follow_existing = bool(follow_existing)
        self._known: set[str] = set()  # locations whose task state a poll has told
        # the picture: each location after the events published (numbered) so far
        self._views: dict[str, LocationView] = {}
        self._readers = Readers()

    @property
    def watcher(self) -> OtcWatcher:
        """The Start OTC watcher inside (its ``subscribe()``, ``snapshot()`` ...)."""
        return self._otc

    def following(self, location_id: str) -> list[str]:
        """The FEs of a location followed past the Start OTC page now."""
        return sorted(self._following.get(location_id, ()))

    # -- for a dashboard (an EventFeed) --------------------------------------------------

    @property
    def clock(self) -> Clock:
        """The clock the watcher runs on."""
        return self._otc.clock

    def now(self) -> float:
        """The watcher's time in epoch seconds (as :meth:`OtcWatcher.now`)."""
        return self._otc.now()

    def picture(self) -> Picture:
        """Every watched location now, its FEs past the Start OTC page included
        (:attr:`LocationView.visits`): the state after exactly the events numbered up to
        its ``seq``, those of the Start OTC watcher and of the visits in one sequence."""
        views = self._views
        locations = {
            loc: views.get(loc) or LocationView(loc, None, None) for loc in self._otc.locations
        }
        return Picture(self._readers.seq, datetime.fromtimestamp(self.now(), UTC), locations)

    def subscribe(self, maxsize: int = 1024) -> Subscription:
        """An extra reader: a :meth:`picture`, then every later event, numbered, as
        :meth:`OtcWatcher.subscribe` gives them (what the dashboard reads)."""
        check_int("maxsize", maxsize)
        if self._closed:
            raise RuntimeError("this VisitWatcher is closed")
        return self._readers.subscribe(self.picture(), maxsize)

    def health(self) -> WatcherHealth:
        """The Start OTC watcher's health; not running once this one has stopped."""
        health = self._otc.health()
        if self._fatal is not None or self._closed:
            health = attrs.evolve(health, running=False)
        return health

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start watching (``async with`` does this)."""
        if self._closed:
            raise RuntimeError("this VisitWatcher is closed")
        if not self._started:
            self._started = True
            await self._otc.start()
            self._spawn(self._pump())

    async def aclose(self) -> None:
        """Stop: every follower, then the Start OTC watcher. Safe to call twice."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._otc.aclose()
        self._readers.finish(self._fatal)
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
            self._readers.finish(exc)
            if not self._events.full():
                self._events.put_nowait(None)
        self._changed()

    async def _emit(self, events: Sequence[OtcEvent]) -> None:
        """Queue ``events`` for the reader and, in the same step each, apply them to
        the picture and hand them to the subscribers."""
        views = self._views
        for event in events:
            while self._events.full():
                self._changed()  # wait_idle() returns: the reader must read
                await self._events.room()
            self._events.put_nowait(event)
            views[event.location_id] = apply(views.get(event.location_id), event)
            self._readers.publish([event])
        self._changed()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._otc.now(), UTC)

    async def _sleep(self, seconds: float) -> None:
        """Sleep on the watcher's clock, not busy meanwhile: a task that is busy (counted
        in wait_idle()) before is busy again on waking, or when cancelled asleep."""
        clock = self._otc.clock
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not woken.done():
                self._busy += 1  # due now: wait_idle() waits for what follows
                woken.set_result(None)

        self._busy -= 1
        self._changed()
        timer = clock.call_at(monotonic_of(clock)() + seconds, wake)
        try:
            await woken
        finally:
            timer.cancel()
            if not woken.done():  # cancelled asleep: busy again, as on waking
                self._busy += 1

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
                        detail = event.detail
                        self._follow(
                            FeVisit(
                                event.location_id,
                                event.fe_id,
                                detail.task_id,
                                detail.fe_name,
                                detail.logistic_partner,
                            )
                        )
                    elif isinstance(event, LocationStatusChanged):
                        self._told(event)
                finally:
                    self._busy -= 1
                    self._changed()
        except StopAsyncIteration:
            pass
        except Exception as exc:  # the Start OTC watcher's fatal error
            self._fail(exc)

    def _told(self, event: LocationStatusChanged) -> None:
        """A location's first known task state: if its task is open, FEs may be past
        the Start OTC page already (``follow_existing``); one look finds them. From
        then on every FE comes through the Start OTC page, which the watcher sees."""
        location_id = event.location_id
        if event.status is LocationStatus.FAILING or location_id in self._known:
            return
        self._known.add(location_id)
        if event.status is LocationStatus.ACTIVE and self._follow_existing:
            self._busy += 1  # until the look is done
            self._spawn(self._look(location_id))

    async def _look(self, location_id: str) -> None:
        """initial-load once (again each ``scan_interval`` while it fails); every FE
        past the Start OTC page is followed from there."""
        try:
            while True:
                try:
                    fes = (await self._client.initial_load(location_id)).fes
                    break
                except FlipkartOtcError as exc:
                    verdict = classify(exc)
                    if verdict.fatal:
                        raise
                    if verdict.status is not LocationStatus.FAILING:
                        return  # no task now: nobody is past the Start OTC page
                    logger.warning(
                        "location %s: looking for FEs past the Start OTC page failed "
                        "(again in %gs): %s",
                        location_id,
                        self._scan_interval,
                        exc,
                    )
                    await self._sleep(self._scan_interval)
            for fe_id, fe in sorted(fes.items()):
                if page_of(fe.task_status) not in (Page.START_OTC, Page.GONE):
                    visit = FeVisit(
                        location_id, fe_id, fe.task_id, fe.fe_name, fe.logistic_partner
                    )
                    self._follow(visit, answer=fes)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a refused token, or a bug
            self._fail(exc)
        finally:
            self._busy -= 1
            self._changed()

    def _follow(self, visit: FeVisit, *, answer: Mapping[str, VisitFe] | None = None) -> None:
        """Follow an FE: at once if its location has no other FE followed (with
        ``answer``, an initial-load just made), else from the location's next round."""
        location_id = visit.location_id
        visits = self._following.get(location_id)
        if visits is None:
            visits = self._following[location_id] = {}
            self._busy += 1  # until the follower's first round ends, or it sleeps
            self._spawn(self._follower(location_id, visits, answer))
        visits.setdefault(visit.fe_id, visit)

    async def _follower(
        self,
        location_id: str,
        visits: dict[str, FeVisit],
        answer: Mapping[str, VisitFe] | None,
    ) -> None:
        """Rounds of one location, each ``scan_interval`` apart, while it has visits.

        While a round is due or under way the follower counts as busy (wait_idle()
        waits for it); asleep between rounds, it does not."""
        try:
            while visits:
                try:
                    await self._round(location_id, visits, answer)
                except FlipkartOtcError as exc:
                    if classify(exc).fatal:
                        raise
                    logger.info("location %s: visit round failed: %s", location_id, exc)
                answer = None
                if not visits:
                    break
                # an FE on the End OTC page without its code (asking failed): the desk
                # needs one before the FE goes, so the next round comes soon
                waiting = any(
                    v.page is Page.END_OTC and v.end_otc is None for v in visits.values()
                )
                pause = self._scan_interval
                if waiting:
                    pause = min(pause, _END_OTC_RETRY)
                await self._sleep(pause)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a refused token, or a bug: stop, and say why
            self._fail(exc)
        finally:
            if self._following.get(location_id) is visits:
                del self._following[location_id]
            self._busy -= 1
            self._changed()

    async def _round(
        self,
        location_id: str,
        visits: dict[str, FeVisit],
        answer: Mapping[str, VisitFe] | None = None,
    ) -> None:
        """One look at a location's visits: the new shipments of each FE that may be
        scanning; then, if that leaves a page in doubt (or ``answer`` is in hand),
        which page each FE is on and what that page calls for."""
        read: set[str] = set()
        if answer is None:
            for visit in list(visits.values()):
                if visit.page in (Page.START_OTC, Page.SCANNING):
                    await self._shipments(location_id, visit)
                    read.add(visit.fe_id)
            if not page_check_due(visits.values()):
                return
            try:
                answer = (await self._client.initial_load(location_id)).fes
            except TaskNotFoundError:  # no task any more: every FE of it is gone
                answer = {}
        for fe_id, visit in list(visits.items()):
            fe = answer.get(fe_id)
            if fe is not None and fe.task_id != visit.task_id:
                fe = None  # the same FE on another task: this visit is over
            events, ask = on_page(visit, page_of(fe.task_status if fe else None), self._now())
            await self._emit(events)
            if ask & Ask.STOP:
                del visits[fe_id]
                continue
            if fe_id in read:
                ask &= ~Ask.SHIPMENTS  # read a moment ago, in this round
            await self._ask(location_id, visit, ask)

    async def _shipments(self, location_id: str, visit: FeVisit) -> None:
        """The FE's shipments not reported yet, read on from where the last read ended.
        A failure leaves its page in doubt: the round asks initial-load."""
        read: list[ScannedShipment] = []
        cursor, more = visit.cursor, False
        pages = self._client._shipment_pages(
            visit.task_id, visit.fe_id, PAGE_SIZE, cursor, stop_short=True
        )
        try:
            async for page, at, has_next in pages:
                read += page.shipments
                cursor, more = at, has_next
        except FlipkartOtcError as exc:
            if classify(exc).fatal:
                raise
            visit.more, visit.cursor = False, None  # from the first page next time
            level = logging.DEBUG if visit.page is Page.START_OTC else logging.INFO
            logger.log(level, "location %s, FE %s: %s", location_id, visit.fe_id, exc)
            return
        visit.cursor = cursor
        await self._emit(on_shipments(visit, read, more, self._now()))

    async def _ask(self, location_id: str, visit: FeVisit, ask: Ask) -> None:
        """The FE's shipments and End OTC, as ``ask`` says; a failure is logged, and the
        next round asks again (the task closed, the FE moved on, or Flipkart failed)."""
        if ask & Ask.SHIPMENTS:
            await self._shipments(location_id, visit)
        if ask & Ask.END_OTC:
            try:
                end = await self._client.end_otc_details(visit.fe_id, visit.task_id)
            except FlipkartOtcError as exc:
                if classify(exc).fatal:
                    raise
                logger.info("location %s, FE %s: %s", location_id, visit.fe_id, exc)
                return
            events, then = on_end_otc(visit, end, self._now())
            await self._emit(events)
            if then & Ask.SHIPMENTS:
                await self._shipments(location_id, visit)
