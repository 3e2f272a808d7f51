"""The visit past the Start OTC page, as a capability of the watcher's engine
(``OtcWatcher(visits=True)``): what a location's look at its FEs asks (``_visit``'s
state machine decides), and how its events are handed on through the same step as a
poll's. A mixin of :class:`~flipkart_otc.OtcWatcher`, apart so that each holds one
concern; it uses the engine's parts named below."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs

from ._budget import Budget
from ._entry import _Location, _Visits
from ._fanout import LocationView, Readers, ReliableSink
from ._mirror import visits_after
from ._saved import SavedLocation
from ._scheduler import Scheduler
from ._visit import (
    Ask,
    FollowedFe,
    VisitPage,
    left,
    on_end_otc,
    on_page,
    on_shipments,
    page_check_due,
    page_of,
    resumed,
)
from .errors import FlipkartOtcError, TaskNotFoundError, classify
from .events import FeDeparted, LocationStatusChanged, OtcEvent
from .models import LocationStatus, ScannedShipment, VisitFe, VisitView
from .policy import PollPolicy, Urgency
from .source import OtcSource, VisitSource

__all__ = ["VisitFollowing"]

logger = logging.getLogger("flipkart_otc")


class VisitFollowing:
    """The engine's visit following (mixed into :class:`~flipkart_otc.OtcWatcher`)."""

    # the engine's parts it uses (set by OtcWatcher.__init__)
    _client: OtcSource
    _policy: PollPolicy
    _scheduler: Scheduler[_Location]
    _sink: ReliableSink | None
    _readers: Readers
    _budget: Budget | None
    _share: float
    _paced: bool
    _follow_existing: bool
    _hold_until: float
    _random: random.Random
    _interval: float
    _fatal: BaseException | None

    if TYPE_CHECKING:

        def _attend_page(self, loc: _Location, now: float) -> Awaitable[None]: ...

        async def _emit_waiting(self, events: Sequence[OtcEvent]) -> None: ...

        def _view(
            self, loc: _Location, visits: tuple[VisitView, ...] | None = None
        ) -> LocationView: ...

    def _resume_visits(self, loc: _Location, saved: SavedLocation) -> None:
        """Go on following the FEs the saved state followed; where the task is open,
        look once for those that moved past the Start OTC page while no watcher ran.
        What the first look finds bridges the gap: marked recovered."""
        active = saved.status is LocationStatus.ACTIVE
        if not saved.visits and not active:
            return
        visit = loc.visit = _Visits()
        visit.views = saved.visits
        visit.fes = {v.fe_id: resumed(loc.location_id, v) for v in saved.visits}
        visit.look = active
        visit.recovering = True
        visit.next_round = -math.inf  # with the first poll

    def _follow_from(self, loc: _Location, events: Sequence[OtcEvent], now: float) -> None:
        """A committed step's events: an FE gone from the Start OTC page is followed (its
        code may have been used); a location's first answer showing an open task is
        looked at once for FEs already past the page (``follow_existing``)."""
        for event in events:
            if isinstance(event, FeDeparted):
                visit = loc.visit
                if visit is None:
                    visit = loc.visit = _Visits()
                if not visit.fes:  # the first followed: looked at at once
                    visit.next_round = now
                if event.fe_id not in visit.fes:
                    d = event.detail
                    visit.fes[event.fe_id] = FollowedFe(
                        loc.location_id, event.fe_id, d.task_id, d.fe_name, d.logistic_partner
                    )
            elif (
                isinstance(event, LocationStatusChanged)
                and event.previous is None
                and event.status is LocationStatus.ACTIVE
                and self._follow_existing
            ):
                visit = loc.visit
                if visit is None:
                    visit = loc.visit = _Visits()
                visit.look = True
                visit.next_round = min(visit.next_round, now)

    async def _poll_and_look(self, loc: _Location, visit: _Visits, now: float) -> None:
        """The Start OTC page first if it is due (an FE leaving it is then followed in
        this very look), then the location's visits."""
        await self._attend_page(loc, now)
        if loc.removed or self._fatal is not None:
            return
        now = self._scheduler.now()
        if now < self._hold_until:  # throttled: after the pause, spread as polls are
            visit.next_round = self._hold_until + self._random.random() * self._interval
            return
        visit.next_round = math.inf  # while the look runs; the look says when again
        try:
            await self._look(loc, visit)
            visit.failed = 0
        except FlipkartOtcError as exc:
            if classify(exc).fatal:
                raise
            visit.failed += 1
            logger.info("location %s: a look at its visits failed: %s", loc.location_id, exc)
        if loc.removed:
            return
        budget = self._budget
        if visit.fes or visit.look:
            waiting = any(
                v.page is VisitPage.END_OTC and v.end_otc is None for v in visit.fes.values()
            )
            pause = self._policy.visit_interval(waiting_end_otc=waiting, failed=visit.failed)
            visit.next_round = self._scheduler.now() + pause
            if budget is not None:  # about a read per FE a look, spent before idle polls
                budget.note_looks(loc.location_id, max(1, len(visit.fes)) / pause)
            return
        if budget is not None:
            budget.note_looks(loc.location_id, 0.0)
        if not visit.views:
            loc.visit = None  # nobody past the Start OTC page: the location costs nothing

    def _patience(self, urgency: Urgency) -> float:
        return self._policy.patience(urgency) if self._paced else 0.0

    def _shared(self) -> dict[str, float]:
        """What a visit request passes so that, under a budget, it is spent from the
        watcher's share of the rate like a poll (nothing without one)."""
        return {"share": self._share} if self._budget is not None else {}

    async def _look(self, loc: _Location, visit: _Visits) -> None:
        """One look at a location's visits: the new shipments of each FE that may be
        scanning; then, if that leaves a page in doubt (or a look for FEs past the Start
        OTC page is owed), initial-load, and what each FE's page calls for."""
        source: VisitSource = self._client  # type: ignore[assignment]  # checked at init
        location_id = loc.location_id
        answer: Mapping[str, VisitFe] | None = None
        if visit.look:
            try:
                load = await source.initial_load(
                    location_id, patience=self._patience(Urgency.ACTIVE), **self._shared()
                )
            except FlipkartOtcError as exc:
                verdict = classify(exc)
                if verdict.fatal:
                    raise
                if verdict.status is not LocationStatus.FAILING:
                    visit.look = False  # no task now: nobody is past the Start OTC page
                    return
                logger.warning(
                    "location %s: looking for FEs past the Start OTC page failed "
                    "(again in %gs): %s",
                    location_id,
                    self._policy.scanning,
                    exc,
                )
                return
            visit.look = False
            answer = load.fes
            for fe_id, there in sorted(answer.items()):
                if fe_id not in visit.fes and page_of(there.task_status) not in (
                    VisitPage.START_OTC,
                    VisitPage.GONE,
                ):
                    visit.fes[fe_id] = FollowedFe(
                        location_id, fe_id, there.task_id, there.fe_name, there.logistic_partner
                    )
        read: dict[str, bool] = {}  # FEs whose scans this look read: whether all of them
        if answer is None:
            for followed in list(visit.fes.values()):
                if followed.page in (VisitPage.START_OTC, VisitPage.SCANNING):
                    read[followed.fe_id] = await self._shipments(loc, followed)
            if not page_check_due(visit.fes.values()):
                visit.recovering = False
                return
            try:
                patience = self._patience(Urgency.ACTIVE)
                load = await source.initial_load(location_id, patience=patience, **self._shared())
                answer = load.fes
            except TaskNotFoundError:  # no task any more: every FE of it is gone
                answer = {}
        for fe_id, followed in list(visit.fes.items()):
            fe: VisitFe | None = answer.get(fe_id)
            if fe is not None and fe.task_id != followed.task_id:
                fe = None  # the same FE on another task: this visit is over
            page = page_of(fe.task_status if fe else None)
            events, ask = on_page(followed, page, self._at())
            await self._tell(loc, events)
            if ask & Ask.LEFT:  # gone: its last scans (unless read a moment ago), then say so
                complete = read.get(fe_id)
                if complete is None:
                    complete = await self._shipments(loc, followed)
                await self._tell(loc, left(followed, complete, self._at()))
                del visit.fes[fe_id]
                continue
            if ask & Ask.STOP:
                del visit.fes[fe_id]
                continue
            if fe_id in read:
                ask &= ~Ask.SHIPMENTS  # read a moment ago, in this look
            await self._ask(loc, followed, ask)
        visit.recovering = False

    def _at(self) -> datetime:
        return datetime.fromtimestamp(self._scheduler.now(), UTC)

    async def _shipments(self, loc: _Location, followed: FollowedFe) -> bool:
        """The FE's shipments not reported yet, read on from where the last read ended;
        False if the read failed (what came before the failure is still told). A failure
        leaves its page in doubt: the look asks initial-load."""
        source: VisitSource = self._client  # type: ignore[assignment]
        read: list[ScannedShipment] = []
        cursor, more, complete = followed.cursor, False, True
        pages = source.shipment_pages(
            followed.task_id,
            followed.fe_id,
            cursor=cursor,
            stop_short=True,
            patience=self._patience(Urgency.ACTIVE),
            **self._shared(),
        )
        try:
            async for page in pages:
                read += page.shipments
                cursor, more = page.cursor, page.more
        except FlipkartOtcError as exc:
            if classify(exc).fatal:
                raise
            complete, more, cursor = False, False, None  # from the first page next time
            level = logging.DEBUG if followed.page is VisitPage.START_OTC else logging.INFO
            logger.log(level, "location %s, FE %s: %s", loc.location_id, followed.fe_id, exc)
        followed.cursor = cursor
        await self._tell(loc, on_shipments(followed, read, more, self._at()))
        return complete

    async def _ask(self, loc: _Location, followed: FollowedFe, ask: Ask) -> None:
        """The FE's shipments and End OTC, as ``ask`` says; a failure is logged, and the
        next look asks again (the task closed, the FE moved on, or Flipkart failed)."""
        if ask & Ask.SHIPMENTS:
            await self._shipments(loc, followed)
        if ask & Ask.END_OTC:
            source: VisitSource = self._client  # type: ignore[assignment]
            try:
                end = await source.end_otc_details(
                    followed.fe_id, followed.task_id, **self._shared()
                )
            except FlipkartOtcError as exc:
                if classify(exc).fatal:
                    raise
                logger.info("location %s, FE %s: %s", loc.location_id, followed.fe_id, exc)
                return
            events, then = on_end_otc(followed, end, self._at())
            await self._tell(loc, events)
            if then & Ask.SHIPMENTS:
                await self._shipments(loc, followed)

    async def _tell(self, loc: _Location, events: Sequence[OtcEvent]) -> None:
        """Hand on a look's events as a poll's are: the sink first (with the location's
        visits as they lead to), then the main iterator, then the picture and the
        subscribers in one step."""
        if not events or loc.removed:
            return
        visit = loc.visit
        assert visit is not None
        if visit.recovering:  # the first look after resuming bridges the gap
            events = [attrs.evolve(e, recovered=True) for e in events]
        views = visit.views
        for event in events:
            views = visits_after(views, event)  # type: ignore[arg-type]
        fes = visit.fes
        views = tuple(
            attrs.evolve(v, cursor=fes[v.fe_id].cursor) if v.fe_id in fes else v for v in views
        )
        if self._sink is not None:
            await self._sink.write(events, self._view(loc, views))  # type: ignore[arg-type]
        await self._emit_waiting(events)
        if loc.removed:
            return
        visit.views = views
        self._readers.publish(events)
