"""``OtcWatcher``: poll many seller locations and yield what changed.

The public face, and the glue between three parts: the scheduler (``_scheduler``)
says when each location is due, and starts pollers only for due work; each poll's
answer or failure goes through the location's state machine (``_location``), which
gives the events and the next state; the events go to the main iterator (with
backpressure) and to subscribers (``_fanout``, never waited for), and the state
commits with no ``await`` between, so every reader sees one order. A location costs
a small state object, not a task, so tens of thousands fit in one process.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import Counter
from collections.abc import Awaitable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Final

from ._channel import Channel
from ._checks import check_int, check_location_id, check_number
from ._fanout import (
    LocationView,
    Picture,
    Readers,
    ReliableSink,
    ResumableSink,
    Subscription,
    WatcherHealth,
)
from ._lifecycle import Lifecycle
from ._location import LocationState, Step, answered, commit, elapsed, failed
from ._saved import mark_recovered, restore
from ._scheduler import Scheduler
from ._wire.start_otc_incremental import parse_incremental
from .client import OtcClient
from .clock import Clock, SystemClock
from .errors import FlipkartOtcError, RateLimitedError, classify
from .events import OtcEvent, WatchEvent
from .models import LocationStatus, OtcSnapshot
from .policy import PollPolicy
from .shard import Shard
from .source import OtcSource

__all__ = ["OtcWatcher", "WatcherHealth"]

logger = logging.getLogger("flipkart_otc")

_WAKE: Final = object()  # put in the event queue to wake a waiting consumer


class _Location(LocationState):
    """A location's state, and when it is next polled (a scheduler ``Entry``)."""

    __slots__ = ("due", "failures", "loaded", "next_poll", "removed", "resumed")

    def __init__(self, location_id: str) -> None:
        super().__init__(location_id)
        self.next_poll = 0.0
        self.failures = 0  # failed polls in a row
        self.due = math.inf
        self.removed = False
        self.loaded = False  # its saved state (a ResumableSink's) was asked for
        self.resumed = False  # restored from saved state, not polled since

    def __lt__(self, other: _Location) -> bool:  # heap order; one heap entry per location
        return self.due < other.due


class OtcWatcher(Lifecycle[WatchEvent]):
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
    """

    def __init__(
        self,
        client: OtcSource,
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
    ) -> None:
        if not isinstance(client, OtcSource):
            raise TypeError(
                f"client must be an OtcClient or have fetch_body(), got {type(client).__name__}"
            )
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
        self._client = client
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
        self._paced = False
        if isinstance(client, OtcClient):
            client.ensure_connections(max_concurrency)
            self._paced = client.rate_limit is not None

        self._events: Channel[object] = Channel(queue_size)
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
        return self._readers.subscribe(self.picture(), maxsize)

    def picture(self) -> Picture:
        """Every watched location now: the state after exactly the events numbered up to
        its ``seq`` (what :meth:`subscribe` starts with)."""
        locations = {loc_id: self._view(loc) for loc_id, loc in self._locations.items()}
        return Picture(self._readers.seq, datetime.fromtimestamp(self.now(), UTC), locations)

    @property
    def running(self) -> bool:
        """Started, not closed, and not stopped by a fatal error."""
        return self._started and not self._closed and self._fatal is None

    def health(self) -> WatcherHealth:
        """What a probe asks: running, locations by status, the last successful poll."""
        by_status: Counter[str] = Counter()
        last = None
        for loc in self._locations.values():
            by_status[loc.status.value if loc.status is not None else "PENDING"] += 1
            if loc.fetched_at is not None and (last is None or loc.fetched_at > last):
                last = loc.fetched_at
        return WatcherHealth(
            self.running,
            dict(by_status),
            datetime.fromtimestamp(last, UTC) if last is not None else None,
            None if last is None else max(0.0, self.now() - last),
        )

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
        now = self.now()
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
        await self._scheduler.aclose()

    # -- iteration -------------------------------------------------------------

    async def __anext__(self) -> WatchEvent:
        if not self._started:
            await self.start()
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

    async def _load_then_attend(self, loc: _Location, now: float) -> None:
        await self._load([loc])
        await self._attend(loc, now)

    def _attend(self, loc: _Location, now: float) -> Awaitable[None]:
        """What a due location needs now: a poll, or only its expiries."""
        if not loc.loaded and self._resumable:  # added while running
            return self._load_then_attend(loc, now)
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
        return min(loc.next_poll, max(loc.next_expiry, now + 1e-3))

    def _next_poll(self, loc: _Location, started: float, now: float) -> float:
        status = loc.status
        loc.failures = loc.failures + 1 if status is LocationStatus.FAILING else 0
        spread = 1.0
        if self._jitter:
            spread += self._jitter * (2 * self._random.random() - 1)
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
            self._scheduler.notify()  # wait_idle() returns while pollers wait for the reader
            await queue.room()
        for event in events:
            queue.force(event)

    def _view(self, loc: LocationState) -> LocationView:
        return LocationView(loc.location_id, loc.status, loc.last(), loc.error)

    async def _expire(self, loc: _Location, now: float) -> None:
        step = elapsed(loc, now)
        if step is None:
            return
        if loc.resumed:  # codes that expired while no watcher ran
            step = (mark_recovered(step[0], self._resumed_at, whole=False), *step[1:])
        if (waiting := self._hand_on(loc, step, now)) is not None:
            await waiting

    def _hand_on(self, loc: _Location, step: Step, now: float) -> Awaitable[None] | None:
        """Queue a step's events, then commit it and publish them (no await between): at
        once when they fit (None: nothing to await, no coroutine made), else an awaitable
        that first waits for the sink and for room in the queue."""
        events = step[0]
        queue = self._events
        if self._sink is not None or len(queue.items) + len(events) > queue.maxsize:
            return self._hand_on_waiting(loc, step, now)
        for event in events:
            queue.put_nowait(event)
        self._settle(loc, step, now)
        return None

    async def _hand_on_waiting(self, loc: _Location, step: Step, now: float) -> None:
        events = step[0]
        if self._sink is not None:
            await self._sink_write(loc, step, now)
        if events:
            await self._emit_waiting(events)
        self._settle(loc, step, now)

    def _settle(self, loc: _Location, step: Step, now: float) -> None:
        if not loc.removed:  # removed meanwhile: its state is gone, its events are out
            commit(loc, step, now)
        if step[0]:  # numbered and handed to the subscribers in the commit's step
            self._readers.publish(step[0])

    async def _sink_write(self, loc: _Location, step: Step, now: float) -> None:
        assert self._sink is not None
        ahead = LocationState(loc.location_id)  # the state the step leads to, for the sink
        ahead.details, ahead.fetched_at, ahead.status = loc.details, loc.fetched_at, loc.status
        ahead.error = loc.error
        commit(ahead, step, now)
        await self._sink.write(step[0], self._view(ahead))  # type: ignore[arg-type]

    async def _poll(self, loc: _Location, started: float) -> None:
        location_id = loc.location_id
        wait = 0.0
        try:
            if self._paced:
                policy = self._policy
                urgency = policy.urgency(loc.status, fes=bool(loc.details))
                body = await self._client.fetch_body(  # type: ignore[call-arg]
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
        if loc.status is LocationStatus.FAILING and step[2] is not LocationStatus.FAILING:
            logger.info("location %s: recovered (%s)", location_id, step[2] and step[2].value)
        if loc.resumed:  # the first poll after resuming: all it finds bridges the gap
            loc.resumed = False
            step = (mark_recovered(step[0], self._resumed_at, whole=True), *step[1:])
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
        self._scheduler.stop()
        self._wake_consumer()
