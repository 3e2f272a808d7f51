"""The one engine, on a source with no socket (the simulator's world answered in-process,
``_world_source``) and a manual clock: the visit followed inside the watcher against the
world's ground truth, with faults; a watcher read only through ``subscribe()``; a
stalled source seen by ``health()``; visits resumed from a sink's saved state."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pytest
from _world_source import WorldSource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flipkart_otc import (
    EndOtcReady,
    LocationView,
    ManualClock,
    OtcWatcher,
    PollPolicy,
    SavedLocation,
    ScanningStarted,
    ShipmentScanned,
    SubscriberLagged,
    VisitCompleted,
    VisitLeft,
    VisitWatcher,
    WatchEvent,
)
from flipkart_otc._saved import decode, encode
from flipkart_otc.simulator import ChangeKind, World

SCAN = 30.0


def policy() -> PollPolicy:
    # a failing location backs off to 10 s at most: this source's faults are not retried,
    # and each stage of a visit lasts three looks
    return PollPolicy(scanning=SCAN, failing_max=10)


async def step(watcher: OtcWatcher, clock: ManualClock, seconds: int) -> list[WatchEvent]:
    """Time passes a second at a time; the events that came meanwhile."""
    got: list[WatchEvent] = []
    for _ in range(seconds):
        clock.advance(1)
        await watcher.wait_idle()
        got += [await anext(watcher) for _ in range(watcher.queued)]
    return got


def visit_events(events: Sequence[object]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for e in events:
        if isinstance(e, ScanningStarted):
            out.append(("scanning", e.fe_id))
        elif isinstance(e, ShipmentScanned):
            out.append(("scanned", e.fe_id, e.shipment.tracking_id))
        elif isinstance(e, EndOtcReady):
            out.append(("end_otc", e.fe_id, e.end.otc))
        elif isinstance(e, VisitCompleted):
            out.append(("completed", e.fe_id, str(e.scanned)))
        elif isinstance(e, VisitLeft):
            out.append(("left", e.fe_id, str(e.scanned)))
    return out


#: One FE's visit: how many shipments it scans (None: it leaves the Start OTC page
#: without using its code), after how many seconds it arrives, whether it finishes.
plans = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(0, 12)), st.integers(0, 20), st.booleans()),
    min_size=1,
    max_size=3,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=plans,
    fault_rate=st.sampled_from([0.0, 0.2]),
    seed=st.integers(0, 1000),
    reading=st.sampled_from(["scanning", "page"]),
)
async def test_the_engine_follows_visits_as_the_world_has_them(
    plan: list[tuple[int | None, int, bool]], fault_rate: float, seed: int, reading: str
) -> None:
    clock = ManualClock()
    world = World(clock, seed=seed)
    world.has_more = reading
    world.open_task("LOC1")
    source = WorldSource(world, fault_rate=fault_rate, seed=seed)
    watcher = OtcWatcher(
        source, ["LOC1"], interval=5, jitter=0, clock=clock, policy=policy(), visits=True
    )
    events: list[WatchEvent] = []
    async with watcher:
        await watcher.wait_idle()
        fes = []
        for scans, delay, finishes in plan:
            events += await step(watcher, clock, delay)
            fes.append((world.arrive("LOC1", ttl=600), scans, finishes))
        # each stage lasts long enough for two looks (faults included), so all is seen
        events += await step(watcher, clock, 3 * int(SCAN))
        for fe, scans, _ in fes:
            if scans is None:
                world.leave("LOC1", fe)
            else:
                world.start_scanning("LOC1", fe)
        events += await step(watcher, clock, 3 * int(SCAN))
        for fe, scans, _ in fes:
            for n in range(scans or 0):
                world.scan("LOC1", fe, accepted=n % 3 != 2)
        events += await step(watcher, clock, 3 * int(SCAN))
        for fe, scans, finishes in fes:
            if scans is not None:
                if finishes:
                    world.to_end_otc("LOC1", fe)
                else:
                    world.leave("LOC1", fe)  # unfinished, from the scanning page
        events += await step(watcher, clock, 3 * int(SCAN))
        for fe, scans, finishes in fes:
            if scans is not None and finishes:
                world.complete("LOC1", fe)
        events += await step(watcher, clock, 3 * int(SCAN))
        assert watcher.following("LOC1") == []
    history = world.history
    expected = []
    for fe, scans, finishes in fes:
        if scans is None:
            continue
        tracked = [c.tracking_id for c in history if c.fe_id == fe and c.tracking_id]
        expected += [("scanning", fe), *[("scanned", fe, t) for t in tracked]]
        if not finishes:
            expected += [("left", fe, str(len(tracked)))]
            continue
        issued = [c.otc for c in history if c.kind is ChangeKind.END_OTC_ISSUED and c.fe_id == fe]
        assert len(issued) == 1  # asked once: a second call would show a second code
        expected += [("end_otc", fe, str(issued[0])), ("completed", fe, str(len(tracked)))]
    got = visit_events(events)
    assert len(got) == len(set(got))  # nothing twice
    for fe, _, _ in fes:  # it starts, and ends, once
        kinds = [g[0] for g in got if g[1] == fe]
        if kinds:
            assert kinds[0] == "scanning" and kinds.count("scanning") == 1
            ends = [k for k in kinds if k in ("completed", "left")]
            assert ends in ([], [kinds[-1]])
    if not fault_rate:  # nothing missed, and each in the order of the visit
        assert sorted(got) == sorted(expected)
        for fe, _, _ in fes:
            assert [g for g in got if g[1] == fe] == [k for k in expected if k[1] == fe]
        assert not any(isinstance(e, VisitLeft) and not e.complete for e in events)
        return
    # with faults (and no retries: this source has none), a visit's last read may fail:
    # what is told is true, and a count that may be short says so
    assert source.faults > 0
    truth = set(expected)
    for e in events:
        if isinstance(e, VisitLeft):
            told = ("left", e.fe_id, str(e.scanned))
            assert told in truth or not e.complete
        elif isinstance(e, (ScanningStarted, ShipmentScanned, EndOtcReady, VisitCompleted)):
            assert visit_events([e])[0] in truth


async def test_a_watcher_read_only_through_subscribe_keeps_polling_and_tells_a_stall() -> None:
    clock = ManualClock()
    world = World(clock)
    ids = [f"LOC{i}" for i in range(40)]
    fes = {}
    for location_id in ids:
        world.open_task(location_id)
        fes[location_id] = world.arrive(location_id, ttl=600)
    source = WorldSource(world)
    watcher = OtcWatcher(
        source, ids, interval=1, jitter=0, queue_size=64, clock=clock, policy=PollPolicy.fixed()
    )
    seen = 0
    async with watcher, watcher.subscribe(maxsize=100_000) as updates:
        await anext(updates)  # the picture
        for _ in range(100):  # every code renewed every second: 40 events a second
            for location_id in ids:
                world.renew(location_id, fes[location_id], ttl=600)
            clock.advance(1)
            await watcher.wait_idle()
            while updates.take_nowait() is not None:
                seen += 1
        assert seen >= 100 * len(ids)  # thousands, with a main queue of 64 never read
        assert source.calls["start-otc"] >= 100 * len(ids)
        assert watcher.health().healthy and watcher.health().reason is None
        with pytest.raises(SubscriberLagged):  # it stopped keeping them, and says so
            await anext(watcher)
        source.hang = True  # the source stops answering: no poll ends any more
        clock.advance(60)
        assert watcher.health().healthy  # not yet three of the longest intervals
        clock.advance(60)
        health = watcher.health()
        assert health.running and not health.healthy
        assert health.reason is not None and "no poll has ended for" in health.reason


async def test_an_iterated_watcher_still_holds_its_pollers_and_loses_nothing() -> None:
    clock = ManualClock()
    world = World(clock)
    ids = [f"LOC{i}" for i in range(10)]
    for location_id in ids:
        world.open_task(location_id)
        world.arrive(location_id, ttl=600)
    watcher = OtcWatcher(
        WorldSource(world), ids, interval=1, jitter=0, queue_size=4, clock=clock
    )
    async with watcher, watcher.subscribe() as updates:
        events = aiter(watcher)  # a reader: a full queue holds the pollers
        clock.advance(1)
        await watcher.wait_idle()
        assert watcher.queued == 4
        got = [await anext(events) for _ in range(20)]  # 10 status changes, 10 arrivals
        assert len(got) == 20
        assert updates.unread == 20


def test_a_visit_watcher_needs_the_visit_endpoints() -> None:
    class StartOtcOnly:
        async def fetch_body(self, location_id: str, *, patience: float = 0.0) -> bytes:
            return b'{"otcDetails": {}}'

    with pytest.raises(TypeError, match="has no initial_load, shipment_pages, end_otc_details"):
        VisitWatcher(StartOtcOnly(), ["LOC1"])  # type: ignore[arg-type]


class MemorySink:
    """A ResumableSink in memory: each location's saved state, as Redis would keep it."""

    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}
        self.events: list[WatchEvent] = []

    async def write(self, events: Sequence[WatchEvent], view: LocationView) -> None:
        if not events:
            return  # as the Redis sink: a poll that changed nothing is not saved
        self.events += events
        as_of = max(e.observed_at for e in events)
        self.saved[view.location_id] = encode(
            view.location_id, view.status, view.snapshot, view.error, as_of, view.visits
        )

    async def load(self, location_ids: Collection[str]) -> Mapping[str, SavedLocation]:
        return {loc: decode(self.saved[loc]) for loc in location_ids if loc in self.saved}


@pytest.mark.parametrize("stop_at", ["scanning", "end_otc"])
async def test_a_watcher_resumes_visits_from_saved_state(stop_at: str) -> None:
    clock = ManualClock()
    world = World(clock)
    world.open_task("LOC1")
    sink = MemorySink()
    source = WorldSource(world)

    def watcher() -> OtcWatcher:
        return OtcWatcher(
            source, ["LOC1"], interval=5, jitter=0, clock=clock, policy=policy(),
            visits=True, sink=sink,
        )  # fmt: skip

    fe = world.arrive("LOC1", ttl=600)
    async with watcher() as first:
        await step(first, clock, 5)
        world.start_scanning("LOC1", fe)
        scans = [world.scan("LOC1", fe) for _ in range(7)]
        await step(first, clock, int(SCAN))
        if stop_at == "end_otc":
            world.to_end_otc("LOC1", fe)
            await step(first, clock, int(SCAN))
    # while no watcher runs: more scans, or the FE finishing
    if stop_at == "scanning":
        scans += [world.scan("LOC1", fe) for _ in range(3)]
        world.to_end_otc("LOC1", fe)
    async with watcher() as second:
        assert second.resumed == 1
        assert [v.fe_id for v in second.picture().locations["LOC1"].visits] == [fe]
        got = await step(second, clock, 2 * int(SCAN))
        world.complete("LOC1", fe)
        got += await step(second, clock, 2 * int(SCAN))
    told = visit_events(sink.events)
    assert [t for t in told if t[0] == "scanned"] == [("scanned", fe, t) for t in scans]
    issued = [c.otc for c in world.history if c.kind is ChangeKind.END_OTC_ISSUED]
    assert len(issued) == 1  # never asked again once a code was published
    assert [t for t in told if t[0] in ("end_otc", "completed")] == [
        ("end_otc", fe, issued[0]),
        ("completed", fe, str(len(scans))),
    ]
    bridged = [e for e in got if not isinstance(e, VisitCompleted) and e.location_id == "LOC1"]
    if stop_at == "scanning":  # what happened meanwhile is told once, marked recovered
        assert visit_events_of(bridged) and all(e.recovered for e in visit_events_of(bridged))
    else:  # its End OTC was told before the stop: nothing of it again
        assert visit_events_of(bridged) == []


def visit_events_of(events: Sequence[WatchEvent]) -> list[Any]:
    """The visit events among ``events`` (the first look after resuming bridges a gap)."""
    return [
        e for e in events if isinstance(e, (ScanningStarted, ShipmentScanned, EndOtcReady))
    ]
