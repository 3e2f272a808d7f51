"""``OtcWatcher``: poll many seller locations and yield what changed.

The public face, and the glue between three parts: the scheduler (``_scheduler``)
says when each location is due, and starts pollers only for due work; each poll's
answer or failure goes through the location's state machine (``_location``), which
gives the events and the next state; the events go to the sink, the main iterator
(with backpressure, once somebody reads it) and to subscribers (``_fanout``, never
waited for), and the state commits with no ``await`` between, so every reader sees
one order. A location costs a small state object, not a task, so tens of thousands
fit in one process.

With ``visits=True`` the same engine follows each FE past the Start OTC page: the
location's entry is also due for a look at its visits (``_visit``'s state machine
says what to ask and what it means), paced by the same policy and rate limit, and
its events commit and publish through the same step (``_following``, a mixin).

Why one module of some 750 lines: the public face (lifecycle, readers, health) and
the step every poll goes through (queue, sink, commit, publish, with no ``await``
between the last three) share the same state and must be read together to see
that no reader ever sees half a poll; the scheduler, the state machines, the fan-out
and the visit following are apart.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Final

from ._budget import budget_for
from ._channel import Channel
from ._checks import check_int, check_location_id, check_number
from ._entry import _Location
from ._fanout import (
    LocationView,
    Picture,
    Readers,
    ReliableSink,
    ResumableSink,
    SubscriberLagged,
    Subscription,
    WatcherHealth,
)
from ._following import VisitFollowing
from ._lifecycle import Lifecycle
from ._location import LocationState, Step, answered, commit, elapsed, failed
from ._observe import Observer, poll_outcome
from ._saved import mark_recovered, restore
from ._scheduler import Scheduler
from ._wire.start_otc_incremental import parse_incremental
from .clock import Clock, SystemClock
from .errors import FlipkartOtcError, RateLimitedError, classify
from .events import OtcEvent, WatchEvent
from .models import LocationStatus, OtcSnapshot, VisitView
from .policy import PollPolicy
from .shard import Shard
from .source import LegacySource, OtcSource, VisitSource

__all__ = ["OtcWatcher", "WatcherHealth"]

logger = logging.getLogger("flipkart_otc")

_WAKE: Final = object()  # put in the event queue to wake a waiting consumer

#: A watcher whose polls have all stopped ending for this many of its longest intervals
#: (and at least this many times the floor) is stalled: ``health()`` says so.
_STALL_INTERVALS: Final = 3
_STALL_FLOOR: Final = 30.0


def _takes_patience(source: object) -> bool:
    """Whether ``source.fetch_body`` takes ``patience`` (a source written before the
    protocol named it takes ``location_id`` alone)."""
    try:
        parameters = inspect.signature(source.fetch_body).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError):  # no signature to read: call it as the protocol says
        return True
    return "patience" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


class OtcWatcher(Lifecycle[WatchEvent], VisitFollowing):
    """Watch seller locations and yield :mod:`~flipkart_otc.events` as FEs come and go.

    >>> async with OtcWatcher(client, ["LOC1", "LOC2"], interval=10) as watcher:  # doctest: +SKIP
    ...     async for event in watcher:
    ...         match event:
    ...             case FeArrived(location_id=loc, detail=d):
    ...                 print(f"{d.fe_name} from {d.logistic_partner} is at {loc}")
    ...             case OtcExpired(location_id=loc, fe_id=fe):
    ...                 print(f"the code of {fe} at {loc} expired")

    Each location is first polled at a staggered offset within one
    ``interval``; then ``policy`` (a :class:`~flipkart_otc.PollPolicy`) says when
    from what the poll found: by default ``interval`` seconds while a task waits
    for its FE, faster while an FE is there, once just after each code's expiry,
    every two minutes where there is no task, backing off while failing;
    ``policy=PollPolicy.fixed()`` polls every location every ``interval``.
    ``jitter`` spreads each interval by up to ±10 % by default; a poll slower
    than its interval is followed at once by the next. ``interval=0`` polls
    each location with a task again as soon as its last poll ends. At most
    ``max_concurrency`` requests are in flight. Events go through a queue of
    ``queue_size``: a consumer that stops reading slows the pollers down, and
    no event is lost. ``clock`` (a
    :class:`~flipkart_otc.clock.Clock`) lets tests move time by hand.
    ``emit_initial=False`` leaves out the ``FeArrived(initial=True)`` events of
    each location's first successful poll. ``shard`` (a
    :class:`~flipkart_otc.Shard`) keeps only the locations of that shard.
    ``observer`` (such as a :class:`~flipkart_otc.metrics.Metrics`) is told of each
    poll's outcome and how late it started.

    ``sink`` (a :class:`~flipkart_otc.ReliableSink`, such as
    :class:`~flipkart_otc.sinks.RedisStreamSink`) is handed each poll's events
    before any reader. A :class:`~flipkart_otc.ResumableSink` also gives each
    location's saved state back at start: nothing announced before is announced
    again, and what happened meanwhile comes out with ``recovered=True``.

    Failures: ``TRIPSHEET_TASK_NOT_FOUND`` and ``TRIPSHEET_CLOSED_ERROR`` set the
    location's status to ``NO_TASK``/``CLOSED`` (its FEs depart); any other
    failure, after the client's retries, sets ``FAILING`` and keeps the last
    snapshot. :class:`~flipkart_otc.AuthenticationError` and
    :class:`~flipkart_otc.InvalidTaskTypeError` are fatal: every poller stops
    and the iterator raises the error once the events before it are read.

    ``visits=True`` also follows each FE past the Start OTC page (``client`` must
    then be a :class:`~flipkart_otc.VisitSource`, as ``OtcClient`` is): once its code
    is used, ``ScanningStarted``, ``ShipmentScanned`` once per shipment,
    ``EndOtcReady`` with its End OTC, then ``VisitCompleted`` (or ``VisitLeft``).
    Its location is looked at every ``policy.scanning`` seconds while it has such an
    FE (``policy.end_otc`` while an FE waits on the End OTC page for its code), and
    not at all otherwise. ``follow_existing`` also follows the FEs already past the
    Start OTC page when watching begins (one initial-load for each location whose
    first answer shows an open task).

    Readers: the main ``async for`` is one reader among others. Events are kept for it
    from the start, and a full queue holds the pollers (nothing is lost) unless the
    watcher is read otherwise and nobody has iterated it: one read only through
    :meth:`subscribe`, :meth:`picture`, a dashboard or a sink keeps polling at full
    speed; once ``queue_size`` events wait unread there, the main iterator stops
    keeping them, and iterating it later raises :class:`SubscriberLagged`.
    """

    def __init__(
        self,
        client: OtcSource | LegacySource,
        locations: Iterable[str] = (),
        *,
        interval: float = 10.0,
        jitter: float = 0.1,
        max_concurrency: int = 64,
        queue_size: int = 1024,
        clock: Clock | None = None,
        emit_initial: bool = True,
        seed: int | None = None,
        sink: ReliableSink | None = None,
        policy: PollPolicy | None = None,
        shard: Shard | None = None,
        visits: bool = False,
        follow_existing: bool = True,
        observer: Observer | None = None,
    ) -> None:
        if not isinstance(client, OtcSource):
            raise TypeError(
                f"client must be an OtcClient or have fetch_body(), got {type(client).__name__}"
            )
        if not isinstance(visits, bool):
            raise TypeError(f"visits must be a bool, got {type(visits).__name__}")
        if visits and not isinstance(client, VisitSource):
            missing = [
                name
                for name in ("initial_load", "shipment_pages", "end_otc_details")
                if not callable(getattr(client, name, None))
            ]
            raise TypeError(
                f"visits=True needs a VisitSource, such as an OtcClient; "
                f"{type(client).__name__} has no {', '.join(missing)}"
            )
        self._visits_on = visits
        self._follow_existing = bool(follow_existing)
        if isinstance(locations, str):
            raise TypeError(f"locations must be an iterable of ids, not a str: {locations!r}")
        check_number("interval", interval, minimum=0.0)
        check_number("jitter", jitter, minimum=0.0)
        if jitter >= 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter!r}")
        check_int("max_concurrency", max_concurrency)
        check_int("queue_size", queue_size)
        if policy is not None and not isinstance(policy, PollPolicy):
            raise TypeError(f"policy must be a PollPolicy, got {type(policy).__name__}")
        self._policy = policy if policy is not None else PollPolicy()
        if shard is not None and not isinstance(shard, Shard):
            raise TypeError(f"shard must be a Shard, got {type(shard).__name__}")
        self._shard = shard
        self._client = client  # an OtcSource: checked above
        self._interval = float(interval)
        self._jitter = float(jitter)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._emit_initial = emit_initial
        self._random = random.Random(seed)
        self._max_concurrency = max_concurrency
        self._locations: dict[str, _Location] = {}
        for location_id in locations:  # stripped; a repeated id is watched once
            location_id = check_location_id(location_id)
            if shard is None or shard.owns(location_id):
                self._locations.setdefault(location_id, _Location(location_id))
        # Under a rate cap, each poll says how long it may yield to more urgent ones.
        self._paced = _takes_patience(client) and getattr(client, "rate_limit", None) is not None
        ensure_connections = getattr(client, "ensure_connections", None)
        if callable(ensure_connections):  # a client's pool, sized to what may be in flight
            ensure_connections(max_concurrency)
        # budget: PollPolicy(budget_share=s) spends s x the client's rate (see _budget)
        self._budget = budget_for(self._policy, client, self._interval)
        self._share = self._policy.budget_share or 1.0

        self._events: Channel[object] = Channel(queue_size)
        self._reading = False  # somebody iterates the main iterator
        self._read_otherwise = sink is not None  # a subscriber, a picture, a sink reads it
        self._unread: SubscriberLagged | None = None  # why it stopped keeping events
        self._last_end = -math.inf  # when a poll last ended (a probe asks)
        self._stopped: asyncio.Event | None = None  # set once stopped (wait_stopped())
        # The watcher's "now" is the scheduler's: the monotonic clock, in epoch seconds
        # as the wall clock read at start. Polls, timers and expiries all use it, so a
        # step of the wall clock neither stops polling nor fires an expiry early.
        self._scheduler: Scheduler[_Location] = Scheduler(
            self._clock,
            self._attend,
            self._next_due,
            workers=max_concurrency,
            blocked=self._events.full,
            on_error=self._fail,  # a sink that failed, or a bug: stop, and say why
            name="otc-watcher",
        )
        self._hold_until = -math.inf  # no poll before this: the API said so (429)
        self._started = False
        self._closed = False
        self._fatal: BaseException | None = None
        if sink is not None and not isinstance(sink, ReliableSink):
            raise TypeError(f"sink must have an async write(), got {type(sink).__name__}")
        self._sink = sink
        self._resumable = isinstance(sink, ResumableSink)
        self._resumed_at = math.inf  # when the saved state was loaded
        self._resumed_count = 0
        self._readers = Readers()
        if observer is not None and not isinstance(observer, Observer):
            raise TypeError(f"observer must be an Observer, got {type(observer).__name__}")
        self._observer = observer

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._started else "new"
        return (
            f"<OtcWatcher {state} locations={len(self._locations)} "
            f"interval={self._interval:g}s queued={len(self._events)}>"
        )

    # -- what dashboards ask -------------------------------------------------

    @property
    def locations(self) -> list[str]:
        """The watched location ids, in the order they were added."""
        return list(self._locations)

    @property
    def shard(self) -> Shard | None:
        """The shard this watcher keeps to (None: every location given)."""
        return self._shard

    @property
    def resumed(self) -> int:
        """Locations whose saved state the sink gave back at start."""
        return self._resumed_count

    @property
    def clock(self) -> Clock:
        """The clock the watcher runs on."""
        return self._clock

    def now(self) -> float:
        """The watcher's time in epoch seconds: the wall clock at start, moved on by the
        monotonic clock since (events' ``observed_at`` come from it)."""
        return self._scheduler.now()

    def _get(self, location_id: str) -> _Location:
        location_id = check_location_id(location_id)
        loc = self._locations.get(location_id)
        if loc is None:
            raise ValueError(f"location {location_id!r} is not watched")
        return loc

    @property
    def queued(self) -> int:
        """Events waiting to be read."""
        return len(self._events)

    async def wait_idle(self) -> None:
        """Wait until no location is due or being served (for tests with a ManualClock).

        Returns at once when a poller waits for room in the event queue: read
        the queued events, then wait again. With ``interval=0`` some location is
        always due, so this only returns that way.
        """
        await self._scheduler.wait_idle()

    def snapshot(self, location_id: str) -> OtcSnapshot | None:
        """The last good snapshot of a watched location (None before its first).

        It advances only once the events leading to it are queued.
        """
        return self._get(location_id).last()

    def status(self, location_id: str) -> LocationStatus | None:
        """The status of a watched location (None before its first poll ends)."""
        return self._get(location_id).status

    def subscribe(self, maxsize: int = 1024) -> Subscription:
        """An extra reader: a :class:`Picture` of every watched location now, then every
        later event as :class:`Sequenced` (no gap, no overlap; ``seq`` increases across
        the watcher). Use it as an async context manager and iterate it::

            async with watcher.subscribe() as updates:
                async for item in updates:
                    if isinstance(item, Picture): ...    # first: the whole state
                    else: show(item.seq, item.event)

        It never slows the pollers or the main iterator: one that falls more than
        ``maxsize`` events behind is dropped, and its iteration raises
        :class:`SubscriberLagged` (a ``FlipkartOtcError``) once it has read what it
        holds; subscribe again. It ends when the watcher closes (raising the watcher's
        fatal error, if that is why).
        """
        check_int("maxsize", maxsize)
        if self._closed:
            raise RuntimeError("this OtcWatcher is closed")
        return self._readers.subscribe(self.picture(), maxsize)  # picture(): read otherwise

    def picture(self) -> Picture:
        """Every watched location now: the state after exactly the events numbered up to
        its ``seq`` (what :meth:`subscribe` starts with)."""
        self._read_otherwise = True
        locations = {loc_id: self._view(loc) for loc_id, loc in self._locations.items()}
        return Picture(self._readers.seq, datetime.fromtimestamp(self.now(), UTC), locations)

    @property
    def running(self) -> bool:
        """Started, not closed, and not stopped by a fatal error."""
        return self._started and not self._closed and self._fatal is None

    def health(self) -> WatcherHealth:
        """What a probe asks: running, locations by status, the last successful poll,
        whether polls still end (``healthy``; ``reason`` says why not), a 429's pause
        (``hold``), and with ``PollPolicy(budget_share=...)`` the budget."""
        by_status: Counter[str] = Counter()
        last = None
        for loc in self._locations.values():
            by_status[loc.status.value if loc.status is not None else "PENDING"] += 1
            if loc.fetched_at is not None and (last is None or loc.fetched_at > last):
                last = loc.fetched_at
        running, reason = self.running, None
        if not running:
            reason = "stopped: " + str(self._fatal) if self._fatal is not None else "not running"
        elif self._locations and (quiet := self.now() - self._last_end) > self._stall_after():
            reason = f"no poll has ended for {quiet:.0f}s"
            if self._reading and self._events.full():
                reason += ": the main iterator is not being read, and holds the pollers"
        now = self.now()
        hold = max(0.0, self._hold_until - now)
        paused_for = getattr(self._client, "paused_for", None)
        if callable(paused_for):  # the client's own pause (a 429 it saw, or a fleet's)
            hold = max(hold, paused_for())
        budget = self._budget
        return WatcherHealth(
            running,
            dict(by_status),
            datetime.fromtimestamp(last, UTC) if last is not None else None,
            None if last is None else max(0.0, now - last),
            healthy=reason is None,
            reason=reason,
            subscribers=self._readers.count,
            subscriber_drops=self._readers.dropped,
            hold=hold,
            target_rate=budget.target if budget is not None else None,
            rate_spent=budget.spent(now) if budget is not None else None,
            idle_interval=budget.idle_interval() if budget is not None else None,
        )

    def _stall_after(self) -> float:
        longest = self._policy.longest(self._interval)
        return _STALL_INTERVALS * max(longest, _STALL_FLOOR)

    def following(self, location_id: str) -> list[str]:
        """The FEs of a watched location followed past the Start OTC page now
        (``visits=True``), by id."""
        visit = self._get(location_id).visit
        return sorted(visit.fes) if visit is not None else []

    async def wait_stopped(self) -> None:
        """Wait until the watcher stops: return once it is closed, raise its fatal
        error if that is why (for an application that reads it only through
        :meth:`subscribe`, a dashboard or a sink, and must still learn it stopped)."""
        if self._stopped is None:
            self._stopped = asyncio.Event()
        if self._fatal is None and not self._closed:
            await self._stopped.wait()
        if self._fatal is not None:
            raise self._fatal

    def _set_stopped(self) -> None:
        if self._stopped is not None:
            self._stopped.set()

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event published (0 before any)."""
        return self._readers.seq

    # -- changing what is watched --------------------------------------------

    def add(self, location_id: str) -> bool:
        """Start watching a location; False if it is already watched, or belongs to
        another shard than this watcher's.

        Added while running, it is first polled within one interval and its
        FEs arrive with ``initial=True`` (unless a resumable sink has its state).
        """
        location_id = check_location_id(location_id)
        if self._closed:
            raise RuntimeError("this OtcWatcher is closed")
        if location_id in self._locations:
            return False
        if self._shard is not None and not self._shard.owns(location_id):
            logger.debug("location %s is not in shard %s: not watched", location_id, self._shard)
            return False
        loc = self._locations[location_id] = _Location(location_id)
        if self._started:
            loc.next_poll = self.now() + self._random.random() * self._interval
            self._scheduler.schedule(loc, loc.next_poll)
        return True

    def remove(self, location_id: str) -> bool:
        """Stop watching a location and drop its state; False if it was not watched.

        Nothing is emitted for it: no departures are invented. A poll already
        under way is discarded.
        """
        loc = self._locations.pop(check_location_id(location_id), None)
        if loc is None:
            return False
        loc.removed = True
        if self._budget is not None:
            self._budget.forget(loc.location_id)
        return True

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Start polling (``async with`` and ``async for`` do this for you)."""
        if self._closed:
            raise RuntimeError("this OtcWatcher is closed")
        if self._started:
            return
        self._started = True
        if self._resumable:
            await self._load(list(self._locations.values()))
        self._scheduler.start()
        now = self._last_end = self.now()
        count = len(self._locations)
        for i, loc in enumerate(self._locations.values()):
            loc.next_poll = now + self._interval * i / count
            self._scheduler.schedule(loc, loc.next_poll)

    async def aclose(self) -> None:
        """Stop: wake a waiting consumer (its ``async for`` ends), cancel and await every
        poller. Safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._wake_consumer()
            self._readers.finish(self._fatal)
            self._set_stopped()
        await self._scheduler.aclose()

    # -- iteration -------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        self._reading = True  # from now on a full queue holds the pollers
        return super().__aiter__()

    async def __anext__(self) -> WatchEvent:
        if not self._started:
            await self.start()
        self._reading = True
        if self._unread is not None:
            raise self._unread
        queue = self._events
        while True:
            if self._closed and self._fatal is None:
                raise StopAsyncIteration
            if queue.items:
                item = queue.get_nowait()
            else:
                if self._fatal is not None:
                    raise self._fatal
                item = await queue.get()
            if item is not _WAKE:
                return item  # type: ignore[return-value]

    def _wake_consumer(self) -> None:
        if not self._events.full():
            self._events.put_nowait(_WAKE)

    # -- scheduling ------------------------------------------------------------

    async def _load(self, locs: Sequence[_Location]) -> None:
        """Give ``locs`` the state the sink saved (the first time each is due)."""
        assert isinstance(self._sink, ResumableSink)
        saved = await self._sink.load([loc.location_id for loc in locs])
        if self._resumed_at == math.inf:
            self._resumed_at = self._clock.time()
        for loc in locs:
            loc.loaded = True
            found = saved.get(loc.location_id)
            if found is not None and not loc.removed:
                restore(loc, found)
                loc.resumed = True
                self._resumed_count += 1
                if self._visits_on:
                    self._resume_visits(loc, found)

    async def _load_then_attend(self, loc: _Location, now: float) -> None:
        await self._load([loc])
        await self._attend(loc, now)

    def _attend(self, loc: _Location, now: float) -> Awaitable[None]:
        """What a due location needs now: a poll, a look at its visits, or only its
        expiries."""
        if not loc.loaded and self._resumable:  # added while running
            return self._load_then_attend(loc, now)
        visit = loc.visit
        if visit is not None and now >= visit.next_round:
            return self._poll_and_look(loc, visit, now)
        return self._attend_page(loc, now)

    def _attend_page(self, loc: _Location, now: float) -> Awaitable[None]:
        """A poll of the Start OTC page, if it is due, else only the expiries owed."""
        if now < loc.next_poll:
            return self._expire(loc, now)
        if now < self._hold_until:  # throttled: expiries only, then poll once allowed,
            # spread over one interval as at start: no burst of every held poll at once
            loc.next_poll = self._hold_until + self._random.random() * self._interval
            return self._expire(loc, now)
        return self._poll(loc, now)

    def _next_due(self, loc: _Location, now: float) -> float | None:
        if self._fatal is not None:
            return None
        # an expiry no later than now that found nothing owed (a clock coarser than the
        # codes' milliseconds) is looked at again in 1 ms
        due = min(loc.next_poll, max(loc.next_expiry, now + 1e-3))
        visit = loc.visit
        if visit is not None and visit.next_round < due:
            return visit.next_round  # an FE just followed: looked at at once
        return due

    def _next_poll(self, loc: _Location, started: float, now: float) -> float:
        status = loc.status
        loc.failures = loc.failures + 1 if status is LocationStatus.FAILING else 0
        spread = 1.0
        if self._jitter:
            spread += self._jitter * (2 * self._random.random() - 1)
        if self._budget is not None:  # idle polls spend what the budget leaves
            return self._budget.next_poll(
                loc.location_id,
                status,
                fes=bool(loc.details),
                failures=loc.failures,
                started=started,
                now=now,
                next_expiry=loc.next_expiry,
                spread=spread,
            )
        return self._policy.next_poll(
            self._interval,
            status,
            fes=bool(loc.details),
            failures=loc.failures,
            started=started,
            now=now,
            next_expiry=loc.next_expiry,
            spread=spread,
        )

    # -- one location ----------------------------------------------------------

    async def _emit_waiting(self, events: Sequence[OtcEvent]) -> None:
        # A batch goes in whole (or into an empty queue, if it is larger than the queue):
        # once it is in, the state commits and subscribers get it with no await between,
        # so every reader sees one order and a picture is never half a poll.
        queue = self._events
        while queue.items and len(queue.items) + len(events) > queue.maxsize:
            if self._read_otherwise and not self._reading:  # the main iterator is no reader
                self._stop_keeping()
                return
            self._scheduler.notify()  # wait_idle() returns while pollers wait for the reader
            await queue.room()
        if self._unread is None:
            for event in events:
                queue.force(event)

    def _stop_keeping(self) -> None:
        """Nobody has iterated, and ``queue_size`` events wait: stop keeping them (a
        later ``async for`` raises ``SubscriberLagged``), and never hold a poller."""
        if self._unread is None:
            self._unread = SubscriberLagged(self._readers.seq, self._events.maxsize)
            self._events.items.clear()
            logger.info(
                "nobody iterates this watcher: its events are no longer kept for the main "
                "iterator (subscribe() and picture() read it; so do sinks and dashboards)"
            )

    def _view(
        self, loc: LocationState, visits: tuple[VisitView, ...] | None = None
    ) -> LocationView:
        if visits is None:
            visit = getattr(loc, "visit", None)
            visits = visit.views if visit is not None else ()
        return LocationView(loc.location_id, loc.status, loc.last(), loc.error, visits)

    async def _expire(self, loc: _Location, now: float) -> None:
        step = elapsed(loc, now)
        if step is None:
            return
        if loc.resumed:  # codes that expired while no watcher ran
            step = step._replace(events=mark_recovered(step.events, self._resumed_at, whole=False))
        if (waiting := self._hand_on(loc, step, now)) is not None:
            await waiting

    def _hand_on(self, loc: _Location, step: Step, now: float) -> Awaitable[None] | None:
        """Queue a step's events, then commit it and publish them (no await between): at
        once when they fit (None: nothing to await, no coroutine made), else an awaitable
        that first waits for the sink and for room in the queue."""
        events = step.events
        queue = self._events
        if self._sink is not None or len(queue.items) + len(events) > queue.maxsize:
            return self._hand_on_waiting(loc, step, now)
        if self._unread is None:
            for event in events:
                queue.put_nowait(event)
        self._settle(loc, step, now)
        return None

    async def _hand_on_waiting(self, loc: _Location, step: Step, now: float) -> None:
        events = step.events
        if self._sink is not None:
            await self._sink_write(loc, step, now)
        if events:
            await self._emit_waiting(events)
        self._settle(loc, step, now)

    def _settle(self, loc: _Location, step: Step, now: float) -> None:
        events = step.events
        if not loc.removed:  # removed meanwhile: its state is gone, its events are out
            commit(loc, step, now)
            if self._visits_on and events:
                self._follow_from(loc, events, now)
        if events:  # numbered and handed to the subscribers in the commit's step
            self._readers.publish(events)

    async def _sink_write(self, loc: _Location, step: Step, now: float) -> None:
        assert self._sink is not None
        ahead = LocationState(loc.location_id)  # the state the step leads to, for the sink
        ahead.details, ahead.fetched_at, ahead.status = loc.details, loc.fetched_at, loc.status
        ahead.error = loc.error
        commit(ahead, step, now)
        visit = loc.visit
        view = self._view(ahead, visit.views if visit is not None else ())
        await self._sink.write(step.events, view)  # type: ignore[arg-type]

    async def _poll(self, loc: _Location, started: float) -> None:
        location_id = loc.location_id
        due = loc.next_poll
        wait = 0.0
        try:
            if self._paced:
                policy = self._policy
                urgency = policy.urgency(loc.status, fes=bool(loc.details))
                if self._budget is not None:  # its polls queue for their share of the cap
                    body = await self._client.fetch_body(  # type: ignore[call-arg]
                        location_id, patience=policy.patience(urgency), share=self._share
                    )
                else:
                    body = await self._client.fetch_body(
                        location_id, patience=policy.patience(urgency)
                    )
            else:
                body = await self._client.fetch_body(location_id)
            details, memo = parse_incremental(body, location_id, loc.details, loc.memo)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            verdict = classify(exc)
            if verdict.fatal or not isinstance(exc, FlipkartOtcError):
                if self._observer is not None:
                    self._observer.poll("fatal", started - due)
                self._fail(exc)  # a refused token, a bad task type, or a bug: do not spin
                return
            if loc.removed:
                return
            if isinstance(exc, RateLimitedError):
                # Beyond what the client waits for in-call: no poll of any location of
                # this watcher before the server said one may come (the throttle is per
                # application).
                wait = exc.retry_after or 0.0
            now = self._scheduler.now()
            if wait:
                self._hold_until = max(self._hold_until, now + wait)
            step = failed(loc, exc, verdict.status, now)
            if verdict.status is LocationStatus.FAILING and loc.status is not verdict.status:
                logger.warning("location %s: polls failing: %s", location_id, exc)
        else:
            if loc.removed:
                return
            now = self._scheduler.now()
            step = answered(loc, details, memo, now, self._emit_initial)
        self._last_end = now
        if self._observer is not None:
            self._observer.poll(poll_outcome(step.status), started - due)
        if loc.status is LocationStatus.FAILING and step.status is not LocationStatus.FAILING:
            status = step.status.value if step.status is not None else None
            logger.info("location %s: recovered (%s)", location_id, status)
        if loc.resumed:  # the first poll after resuming: all it finds bridges the gap
            loc.resumed = False
            step = step._replace(events=mark_recovered(step.events, self._resumed_at, whole=True))
        if (waiting := self._hand_on(loc, step, now)) is not None:
            await waiting
        if loc.removed:
            return
        loc.next_poll = max(self._next_poll(loc, started, now), now + wait)

    def _fail(self, exc: BaseException) -> None:
        """A fatal error: stop every poller; the iterator raises ``exc`` after the
        events queued before it."""
        if self._fatal is None:
            self._fatal = exc
            logger.error("watcher stopped: %s", exc)
            self._readers.finish(exc)
            self._set_stopped()
        self._scheduler.stop()
        self._wake_consumer()
