"""The visit watcher against the simulator over real HTTP, on a manual clock: each FE
followed through the visit, its events against the simulator's ground truth."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

import attrs
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flipkart_otc import (
    EndOtcReady,
    FeDeparted,
    LocationStatusChanged,
    LocationView,
    ManualClock,
    OtcClient,
    Picture,
    PollPolicy,
    RetryPolicy,
    ScanningStarted,
    ShipmentScanned,
    VisitCompleted,
    VisitLeft,
    VisitWatcher,
    json_schema,
)
from flipkart_otc._mirror import apply
from flipkart_otc.simulator import TRANSIENT, ChangeKind, FaultKind, Simulator

SCAN = 30.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@attrs.define
class Desk:
    clock: ManualClock
    sim: Simulator
    watcher: VisitWatcher
    events: list[object]

    async def step(self, seconds: float) -> list[object]:
        """Time passes a second at a time; the events that came meanwhile."""
        before = len(self.events)
        for _ in range(round(seconds)):
            self.clock.advance(1)
            await self.watcher.wait_idle()
            self.events += [await anext(self.watcher) for _ in range(self.watcher.queued)]
        return self.events[before:]


@pytest.fixture
async def desk() -> AsyncIterator[Desk]:
    clock = ManualClock()
    async with Simulator(clock=clock) as sim:
        sim.world.open_task("LOC1")
        async with (
            sim.client(retry=RetryPolicy(max_tries=3, base_delay=0)) as client,
            watching(client, clock) as watcher,
        ):
            await watcher.wait_idle()
            yield Desk(clock, sim, watcher, [])


def watching(client: OtcClient, clock: ManualClock) -> VisitWatcher:
    """LOC1, its Start OTC page every 5 s, its visits every 30 s."""
    return VisitWatcher(
        client,
        ["LOC1"],
        scan_interval=SCAN,
        interval=5,
        jitter=0,
        clock=clock,
        policy=PollPolicy.fixed(),
    )


def visit_events(events: list[object]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for e in events:
        if isinstance(e, ScanningStarted):
            out.append(("scanning", e.fe_id))
        elif isinstance(e, ShipmentScanned):
            out.append(("scanned", e.fe_id, e.shipment.tracking_id))
        elif isinstance(e, EndOtcReady):
            out.append(("end_otc", e.fe_id, e.end.otc, str(e.end.total_scanned)))
        elif isinstance(e, VisitCompleted):
            out.append(("completed", e.fe_id, str(e.scanned)))
        elif isinstance(e, VisitLeft):
            out.append(("left", e.fe_id, str(e.scanned)))
    return out


async def test_an_fe_is_followed_through_the_visit(desk: Desk) -> None:
    world = desk.sim.world
    fe = world.arrive("LOC1", fe_name="Ram", ttl=300)
    await desk.step(5)
    world.start_scanning("LOC1", fe)  # the code was used
    got = await desk.step(5)
    assert any(isinstance(e, FeDeparted) for e in got)  # the Start OTC contract holds
    assert visit_events(got) == [("scanning", fe)]
    scans = [world.scan("LOC1", fe) for _ in range(3)]
    got = await desk.step(SCAN)
    assert visit_events(got) == [("scanned", fe, t) for t in scans]
    scans.append(world.scan("LOC1", fe, accepted=False))
    world.to_end_otc("LOC1", fe)
    got = await desk.step(SCAN)
    issued = [c.otc for c in world.history if c.kind is ChangeKind.END_OTC_ISSUED]
    assert len(issued) == 1  # asked once
    assert visit_events(got) == [("scanned", fe, scans[-1]), ("end_otc", fe, issued[0], "4")]
    await desk.step(SCAN)
    assert len([c for c in world.history if c.kind is ChangeKind.END_OTC_ISSUED]) == 1
    world.complete("LOC1", fe)
    got = await desk.step(SCAN)
    assert visit_events(got) == [("completed", fe, "4")]
    assert desk.watcher.following("LOC1") == []
    # nothing more is asked once no FE is past the Start OTC page
    asked = sum(desk.sim.visit_requests.values())
    await desk.step(3 * SCAN)
    assert sum(desk.sim.visit_requests.values()) == asked


async def test_an_fe_that_leaves_without_its_code_is_asked_about_once(desk: Desk) -> None:
    world = desk.sim.world
    fe = world.arrive("LOC1", ttl=300)
    await desk.step(5)
    world.leave("LOC1", fe)
    got = await desk.step(3 * SCAN)
    assert visit_events(got) == []
    # the first look at start (nobody past the Start OTC page), then one round: its
    # shipments (refused: it is not on the task now), so its page in doubt: gone
    assert desk.sim.visit_requests == {"initial-load": 2, "shipments": 1}


async def test_an_fe_that_leaves_while_scanning_is_said_to_have_left(desk: Desk) -> None:
    world = desk.sim.world
    fe = world.arrive("LOC1", ttl=300)
    await desk.step(5)
    world.start_scanning("LOC1", fe)
    await desk.step(5)
    scanned = world.scan("LOC1", fe)
    world.leave("LOC1", fe)
    got = await desk.step(SCAN)
    left = [e for e in got if isinstance(e, VisitLeft)]
    # gone before its last scan was read: it is read before the FE is said to have left
    assert visit_events(got) == [("scanned", fe, scanned), ("left", fe, "1")]
    assert left[0].complete
    assert desk.watcher.following("LOC1") == []
    assert desk.watcher.picture().locations["LOC1"].visits == ()
    jsonschema.validate(left[0].to_dict(), json_schema())  # the shipped schema knows it


#: One FE's visit: how many shipments it scans (None: it leaves the Start OTC page
#: without using its code), after how many seconds it arrives, and whether it goes on
#: to the End OTC page (else it leaves once it has scanned).
visits = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(0, 6)), st.integers(0, 20), st.booleans()),
    min_size=1,
    max_size=3,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=visits,
    faulty=st.booleans(),
    seed=st.integers(0, 1000),
    reading=st.sampled_from(["scanning", "page"]),
)
async def test_the_visit_events_are_the_ground_truth(
    plan: list[tuple[int | None, int, bool]], faulty: bool, seed: int, reading: str
) -> None:
    clock = ManualClock()
    async with Simulator(clock=clock, seed=seed) as sim:
        world = sim.world
        world.has_more = reading
        world.open_task("LOC1")
        if faulty:
            sim.faults.random(0.2, TRANSIENT)
        async with (
            sim.client(retry=RetryPolicy(max_tries=4, base_delay=0)) as client,
            watching(client, clock) as watcher,
        ):
            desk = Desk(clock, sim, watcher, [])
            await watcher.wait_idle()
            fes = []
            for scans, delay, finishes in plan:
                await desk.step(delay)
                fes.append((world.arrive("LOC1", ttl=600), scans, finishes))
            # each stage lasts long enough for two rounds, so that all of it is seen
            await desk.step(2 * SCAN)
            for fe, scans, _ in fes:
                if scans is None:
                    world.leave("LOC1", fe)
                else:
                    world.start_scanning("LOC1", fe)
            await desk.step(2 * SCAN)
            for fe, scans, _ in fes:
                for _ in range(scans or 0):
                    world.scan("LOC1", fe, accepted=bool(scans and scans % 2))
            await desk.step(2 * SCAN)
            for fe, scans, finishes in fes:
                if scans is not None:
                    if finishes:
                        world.to_end_otc("LOC1", fe)
                    else:
                        world.leave("LOC1", fe)  # unfinished, from the scanning page
            await desk.step(2 * SCAN)
            for fe, scans, finishes in fes:
                if scans is not None and finishes:
                    world.complete("LOC1", fe)
            await desk.step(2 * SCAN)
            injected = len(sim.faults.injected)
    history = world.history
    issued = {(c.fe_id, c.otc) for c in history if c.kind is ChangeKind.END_OTC_ISSUED}
    expected = []
    for fe, scans, finishes in fes:
        if scans is None:
            continue
        tracked = [c.tracking_id for c in history if c.fe_id == fe and c.tracking_id]
        expected += [("scanning", fe), *[("scanned", fe, t) for t in tracked]]
        if not finishes:
            expected += [("left", fe, str(len(tracked)))]
            continue
        (end,) = [e for e in desk.events if isinstance(e, EndOtcReady) and e.fe_id == fe]
        assert (fe, end.end.otc) in issued  # a code Flipkart made, reported once
        expected += [("end_otc", fe, end.end.otc, str(len(tracked)))]
        expected += [("completed", fe, str(len(tracked)))]
    got = visit_events(desk.events)
    assert sorted(got) == sorted(expected)  # nothing missed, nothing twice
    for fe, _, _ in fes:  # and in the order of the visit, per FE
        kinds = [g[0] for g in got if g[1] == fe]
        assert kinds == [k[0] for k in expected if k[1] == fe]
    assert not faulty or injected > 0


async def test_a_bare_async_for_closes_the_watcher_when_it_leaves() -> None:
    clock = ManualClock()
    async with Simulator(clock=clock) as sim, sim.client() as client:
        sim.world.open_task("LOC1")
        watcher = VisitWatcher(client, ["LOC1"], clock=clock)
        events = aiter(watcher)
        assert inspect.isasyncgen(events)  # not started: the iterator owns the watcher
        async for event in events:  # the first poll: LOC1 is ACTIVE
            assert isinstance(event, LocationStatusChanged) and event.location_id == "LOC1"
            break
        await events.aclose()  # what the event loop does for a dropped `async for`
        assert not watcher.watcher.running
        with pytest.raises(RuntimeError, match="closed"):
            await watcher.start()


@pytest.mark.parametrize(
    ("reading", "per_round"),
    [
        ("scanning", {"shipments-next": 1}),  # the answer says the FE scans on
        ("page", {"shipments-next": 1, "initial-load": 1}),  # it does not: ask the page
    ],
)
async def test_a_scanning_fe_costs_a_request_a_round_however_many_pages(
    desk: Desk, reading: str, per_round: dict[str, int]
) -> None:
    world = desk.sim.world
    world.has_more = reading
    fe = world.arrive("LOC1", ttl=300)
    await desk.step(5)
    world.start_scanning("LOC1", fe)
    await desk.step(5)
    scans = [world.scan("LOC1", fe) for _ in range(60)]
    got = await desk.step(SCAN)  # three pages of 25
    for _ in range(4):
        before = desk.sim.visit_requests.copy()
        more = [world.scan("LOC1", fe) for _ in range(3)]
        got += await desk.step(SCAN)
        scans += more
        # read on from where the last read ended: one request, not the pages again
        assert desk.sim.visit_requests - before == per_round
    assert visit_events(got) == [("scanned", fe, t) for t in scans]


async def test_a_failed_look_for_fes_past_the_start_otc_page_is_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    async with Simulator(clock=clock) as sim:
        world = sim.world
        world.open_task("LOC1")
        world.arrive("LOC1", fe_id="fe1", ttl=300)
        world.start_scanning("LOC1", "fe1")
        scanned = world.scan("LOC1", "fe1")
        # the look's initial-load fails, retries and all; the Start OTC polls do not
        sim.faults.script(*[FaultKind.SERVICE_UNAVAILABLE] * 3, location="LOC1",
                          endpoint="initial-load")  # fmt: skip
        async with (
            sim.client(retry=RetryPolicy(max_tries=3, base_delay=0)) as client,
            watching(client, clock) as watcher,
        ):
            desk = Desk(clock, sim, watcher, [])
            await watcher.wait_idle()
            assert watcher.following("LOC1") == []
            assert "looking for FEs past the Start OTC page failed (again in 30s)" in caplog.text
            got = await desk.step(SCAN)
    assert visit_events(got) == [("scanning", "fe1"), ("scanned", "fe1", scanned)]
    assert sim.visit_requests["initial-load"] == 3 + 1


async def test_its_picture_and_the_events_after_it_are_one_sequence(desk: Desk) -> None:
    world, watcher = desk.sim.world, desk.watcher
    fe = world.arrive("LOC1", fe_name="Ram", ttl=300, logistic_partner="eKart")
    await desk.step(5)
    world.start_scanning("LOC1", fe)
    await desk.step(5)
    readers = [watcher.subscribe()]
    for accepted in (True, True, False):
        world.scan("LOC1", fe, accepted=accepted)
    await desk.step(SCAN)
    readers.append(watcher.subscribe())
    world.to_end_otc("LOC1", fe)
    await desk.step(SCAN)
    picture = watcher.picture()
    (end,) = [e for e in desk.events if isinstance(e, EndOtcReady)]
    (view,) = picture.locations["LOC1"].visits
    assert (view.fe_id, view.fe_name, view.logistic_partner) == (fe, "Ram", "eKart")
    assert (view.stage, view.scanned, view.rejected, view.end) == ("end_otc", 3, 1, end.end)
    assert picture.locations["LOC1"].snapshot is not None
    assert picture.locations["LOC1"].snapshot.details == {}  # off the Start OTC page
    for reader in readers:  # a picture, then the events after it, make the same state
        first = await anext(reader)
        assert isinstance(first, Picture)
        views = dict(first.locations)
        seq = first.seq
        while (item := reader.take_nowait()) is not None:
            assert item.seq == seq + 1
            seq = item.seq
            views[item.event.location_id] = apply(views.get(item.event.location_id), item.event)
        # events carry what changed; a watcher's snapshot also says when it was last polled
        assert (seq, unpolled(views)) == (picture.seq, unpolled(picture.locations))
        await reader.aclose()
    world.complete("LOC1", fe)
    await desk.step(SCAN)
    assert watcher.picture().locations["LOC1"].visits == ()


def unpolled(views: Mapping[str, LocationView]) -> dict[str, LocationView]:
    """The views without the instant of their last poll (no event tells it)."""
    return {
        loc: attrs.evolve(v, snapshot=None)
        if v.snapshot is None
        else attrs.evolve(v, snapshot=attrs.evolve(v.snapshot, fetched_at=EPOCH))
        for loc, v in views.items()
    }


def test_bad_arguments_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="client must be an OtcClient"):
        VisitWatcher(object(), ["LOC1"])  # type: ignore[arg-type]


async def test_fes_already_past_the_start_otc_page_at_start_are_followed() -> None:
    clock = ManualClock()
    async with Simulator(clock=clock) as sim:
        world = sim.world
        for loc in ("LOC1", "LOC2", "LOC3"):
            world.open_task(loc)
        world.arrive("LOC1", fe_id="fe1", ttl=300)
        world.start_scanning("LOC1", "fe1")
        first = world.scan("LOC1", "fe1")
        world.arrive("LOC2", fe_id="fe2", ttl=300)
        world.start_scanning("LOC2", "fe2")
        done = world.scan("LOC2", "fe2")
        world.to_end_otc("LOC2", "fe2")
        world.arrive("LOC3", fe_id="fe3", ttl=300)  # at the door: the Start OTC watcher's
        async with (
            sim.client(retry=RetryPolicy(max_tries=3, base_delay=0)) as client,
            VisitWatcher(
                client, ["LOC1", "LOC2", "LOC3"], scan_interval=SCAN, interval=5, jitter=0,
                clock=clock, policy=PollPolicy.fixed(),
            ) as watcher,
        ):  # fmt: skip
            desk = Desk(clock, sim, watcher, [])
            await watcher.wait_idle()
            await desk.step(SCAN + 5)
            # a first look at each location, as its first Start OTC answer (spread over
            # 5 s) shows a task; then only LOC2's round 30 s on asks again (is its FE on
            # the End OTC page gone?): LOC1's shipments answer says its FE scans on
            assert sim.visit_requests["initial-load"] == 3 + 1
            later = world.scan("LOC1", "fe1")
            await desk.step(SCAN)
        (end,) = [e for e in desk.events if isinstance(e, EndOtcReady)]
        assert visit_events(desk.events) == [
            ("scanning", "fe1"),
            ("scanned", "fe1", first),
            ("scanning", "fe2"),
            ("scanned", "fe2", done),
            ("end_otc", "fe2", end.end.otc, "1"),
            ("scanned", "fe1", later),
        ]
        assert watcher.following("LOC3") == []  # still on its Start OTC page

        # and off, the FEs already past the Start OTC page are not looked for
        async with (
            sim.client() as client,
            VisitWatcher(client, ["LOC1"], clock=clock, follow_existing=False) as quiet,
        ):
            asked = sim.visit_requests["initial-load"]
            await quiet.wait_idle()
            clock.advance(SCAN)
            await quiet.wait_idle()
            assert sim.visit_requests["initial-load"] == asked and quiet.following("LOC1") == []


async def test_a_visit_left_whose_last_scans_cannot_be_read_says_it_may_be_short(
    desk: Desk,
) -> None:
    world = desk.sim.world
    fe = world.arrive("LOC1", ttl=300)
    await desk.step(5)
    world.start_scanning("LOC1", fe)
    await desk.step(5)
    world.scan("LOC1", fe)
    world.leave("LOC1", fe)
    # every read of its scans is refused from now on (retries and all)
    for endpoint in ("shipments", "shipments-next"):
        desk.sim.faults.script(*[FaultKind.SERVICE_UNAVAILABLE] * 30, endpoint=endpoint)
    got = await desk.step(SCAN)
    (left,) = [e for e in got if isinstance(e, VisitLeft)]
    assert (left.scanned, left.complete) == (0, False)
    assert left.to_dict()["complete"] is False
