"""Many readers: subscribe() gives a picture, then every later event, numbered."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pytest

from flipkart_otc import (
    FeArrived,
    FeDeparted,
    LocationStatus,
    LocationStatusChanged,
    LocationView,
    ManualClock,
    OtcWatcher,
    Picture,
    ReliableSink,
    RetryPolicy,
    Sequenced,
    SubscriberLagged,
    Subscription,
    WatchEvent,
)
from flipkart_otc.simulator import Fault, FaultKind, Scenario, Simulator


async def drain(subscription: Subscription) -> list[object]:
    """What a subscription holds now (anext does not wait while some is unread)."""
    return [await anext(subscription) for _ in range(subscription.unread)]


def sequenced(items: list[object]) -> list[Sequenced]:
    assert all(isinstance(i, Sequenced) for i in items)
    return items  # type: ignore[return-value]


@attrs.define
class Run:
    main: list[WatchEvent]  # what the main iterator read
    got: dict[str, list[object]]  # what each subscriber read: its picture, then items
    late_from: int  # how many main events came before the late subscriber joined
    stalled: Subscription
    last_seq: int


async def run_scenario(seconds: int, join_at: int | None = None, stall: bool = False) -> Run:
    """A seeded scenario watched by the main iterator and subscribers, a second at a time.

    ``stall``: the second subscriber (maxsize 4) never reads after its picture.
    ``join_at``: a third subscriber joins at that second.
    """
    clock = ManualClock()
    scenario = Scenario(locations=8, seed=3, speed=5, mean_task_toggle=900)
    async with (
        Simulator(clock=clock, scenario=scenario, seed=3) as sim,
        sim.client(retry=RetryPolicy(max_tries=2, base_delay=0)) as client,
        OtcWatcher(client, scenario.location_ids, interval=5, jitter=0, clock=clock) as w,
    ):
        main: list[WatchEvent] = []
        first, second = w.subscribe(), w.subscribe(maxsize=4 if stall else 1024)
        got: dict[str, list[object]] = {"first": [await anext(first)]}
        got["second"] = [await anext(second)]
        late, late_from = None, 0
        for tick in range(seconds):
            if tick == join_at:
                late, late_from = w.subscribe(), len(main)
                got["late"] = [await anext(late)]
            clock.advance(1)
            sim.advance_scenario()
            await w.wait_idle()
            main += [await anext(w) for _ in range(w.queued)]
            got["first"] += await drain(first)
            if not stall:
                got["second"] += await drain(second)
            if late is not None:
                got["late"] += await drain(late)
        return Run(main, got, late_from, second, w.last_seq)


async def test_two_subscribers_and_the_main_iterator_see_one_order() -> None:
    run = await run_scenario(300)
    main, got, last = run.main, run.got, run.last_seq
    assert len(main) > 30
    for name in ("first", "second"):
        picture, *items = got[name]
        assert isinstance(picture, Picture) and picture.seq == 0
        assert [i.event for i in sequenced(items)] == main
        assert [i.seq for i in sequenced(items)] == list(range(1, len(main) + 1))
    assert last == len(main)


async def test_a_subscriber_that_stops_reading_is_dropped_and_slows_nobody() -> None:
    run = await run_scenario(300, stall=True)
    main, got, second = run.main, run.got, run.stalled
    assert [i.event for i in sequenced(got["first"][1:])] == main
    assert len(main) > 30  # the main iterator and the other subscriber went on
    assert second.unread == 4  # what it held when it fell behind (its picture was read)
    items: list[object] = [await anext(second) for _ in range(4)]
    assert [i.seq for i in sequenced(items)] == [1, 2, 3, 4]
    with pytest.raises(SubscriberLagged) as lagged:
        await anext(second)
    assert lagged.value.last_seq == 4


async def test_a_subscriber_joining_midway_gets_a_picture_then_exactly_the_later_events() -> None:
    run = await run_scenario(300, join_at=150)
    main, got, late_from = run.main, run.got, run.late_from
    picture, *items = got["late"]
    assert isinstance(picture, Picture)
    assert picture.seq == late_from  # the picture is the state after exactly these events
    assert [i.event for i in sequenced(items)] == main[late_from:]
    # the picture agrees with a replay of the main iterator's events up to it
    present: dict[str, set[str]] = {}
    statuses: dict[str, LocationStatus] = {}
    for event in main[:late_from]:
        fes = present.setdefault(event.location_id, set())
        if isinstance(event, FeArrived):
            fes.add(event.fe_id)
        elif isinstance(event, FeDeparted):
            fes.discard(event.fe_id)
        elif isinstance(event, LocationStatusChanged):
            statuses[event.location_id] = event.status
    for loc, view in picture.locations.items():
        assert view.status == statuses.get(loc)
        shown = set(view.snapshot.details) if view.snapshot is not None else set()
        assert shown == present.get(loc, set())


async def test_subscriptions_end_when_the_watcher_closes() -> None:
    async with Simulator() as sim, sim.client() as client:
        watcher = OtcWatcher(client, ["LOC1"], interval=60)
        async with watcher:
            subscription = watcher.subscribe()
        items = [item async for item in subscription]
        assert len(items) >= 1 and isinstance(items[0], Picture)
        with pytest.raises(RuntimeError, match="closed"):
            watcher.subscribe()


class Recorder:
    """A sink that keeps what it is handed, and what the main iterator had read by then."""

    def __init__(self, watcher_reads: list[WatchEvent], fail_on: int | None = None) -> None:
        self.writes: list[tuple[list[WatchEvent], LocationView, int]] = []
        self.reads = watcher_reads
        self.fail_on = fail_on

    async def write(self, events: Sequence[WatchEvent], view: LocationView) -> None:
        if self.fail_on is not None and len(self.writes) == self.fail_on:
            raise OSError("the store is gone")
        self.writes.append((list(events), view, len(self.reads)))


async def test_a_sink_gets_each_poll_with_its_state_before_any_reader() -> None:
    clock = ManualClock()
    main: list[WatchEvent] = []
    sink = Recorder(main)
    async with Simulator(clock=clock) as sim, sim.client() as client:
        sim.world.open_task("LOC1")
        sim.world.arrive("LOC1", fe_id="fe1", fe_name="Ram", ttl=300)
        watcher = OtcWatcher(client, ["LOC1"], interval=10, jitter=0, clock=clock, sink=sink)
        assert isinstance(sink, ReliableSink)
        async with watcher:
            for _ in range(25):
                await watcher.wait_idle()
                main += [await anext(watcher) for _ in range(watcher.queued)]
                clock.advance(1)
                if clock.time() == 1_767_225_600.0 + 12:
                    sim.world.leave("LOC1", "fe1")
    handed = [event for events, _, _ in sink.writes for event in events]
    assert handed == main  # every event, in order, through the sink
    _, first_view, read_before = sink.writes[0]
    assert read_before == 0  # written before the main iterator could read it
    assert first_view.status is LocationStatus.ACTIVE
    assert first_view.snapshot is not None and set(first_view.snapshot.details) == {"fe1"}
    last_view = sink.writes[-1][1]
    assert last_view.snapshot is not None and dict(last_view.snapshot.details) == {}


async def test_a_failing_sink_stops_the_watcher_with_its_error() -> None:
    clock = ManualClock()
    main: list[WatchEvent] = []
    async with Simulator(clock=clock) as sim, sim.client() as client:
        sim.world.open_task("LOC1")
        sink = Recorder(main, fail_on=0)
        async with OtcWatcher(client, ["LOC1"], interval=10, clock=clock, sink=sink) as watcher:
            with pytest.raises(OSError, match="store is gone"):
                await anext(watcher)
    assert main == [] and sink.writes == []


async def test_a_picture_tells_why_a_location_fails_and_health_sums_it_up() -> None:
    clock = ManualClock()
    async with (
        Simulator(clock=clock) as sim,
        sim.client(retry=RetryPolicy(max_tries=1)) as client,
    ):
        sim.world.open_task("LOC1")
        sim.world.arrive("LOC1", ttl=300)
        sim.faults.script(Fault(FaultKind.SERVICE_UNAVAILABLE), location="LOC2")
        watcher = OtcWatcher(client, ["LOC1", "LOC2", "LOC3"], interval=9, jitter=0, clock=clock)
        assert not watcher.running
        health = watcher.health()
        assert health.by_status == {"PENDING": 3} and health.last_success is None
        async with watcher:
            assert watcher.running and watcher.clock is clock
            await watcher.wait_idle()  # LOC1 at 0
            clock.advance(3)
            await watcher.wait_idle()  # LOC2 at 3: 503
            clock.advance(4)
            await watcher.wait_idle()  # LOC3 at 6: no task; 1 s later
            clock.advance(1)
            picture = watcher.picture()
            assert picture.seq == watcher.last_seq
            views = picture.locations
            assert views["LOC2"].status is LocationStatus.FAILING
            assert views["LOC2"].error is not None and "SERVICE_UNAVAILABLE" in views["LOC2"].error
            assert views["LOC1"].error is None and views["LOC3"].error is None
            health = watcher.health()
            assert health.running
            assert health.by_status == {"ACTIVE": 1, "FAILING": 1, "NO_TASK": 1}
            assert health.last_success_age == 1.0  # LOC3's answer (no task) is a success
            clock.advance(9)  # LOC2 again, answered: the error goes
            await watcher.wait_idle()
            assert watcher.picture().locations["LOC2"].error is None
        assert not watcher.running
