"""OtcWatcher against the simulator over real HTTP, with time moved by a ManualClock."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import attrs
import pytest

from flipkart_otc import (
    AuthenticationError,
    FeArrived,
    FeDeparted,
    LocationStatus,
    LocationStatusChanged,
    ManualClock,
    OtcClient,
    OtcExpired,
    OtcRenewed,
    OtcWatcher,
    PollPolicy,
    RetryPolicy,
    ServiceUnavailableError,
    WatchEvent,
)
from flipkart_otc.simulator import Fault, FaultKind, Simulator

UTC = UTC
INTERVAL = 10.0


@attrs.define
class Env:
    clock: ManualClock
    sim: Simulator
    client: OtcClient

    def watcher(
        self, locations: list[str] | tuple[str, ...] = ("LOC1",), **kw: object
    ) -> OtcWatcher:
        kw.setdefault("interval", INTERVAL)
        kw.setdefault("jitter", 0)
        kw.setdefault("policy", PollPolicy.fixed())  # these tests count polls at one interval
        return OtcWatcher(self.client, locations, clock=self.clock, **kw)  # type: ignore[arg-type]

    def at(self, offset: float) -> datetime:
        return datetime.fromtimestamp(self.start + offset, UTC)

    @property
    def start(self) -> float:
        return 1_767_225_600.0


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    clock = ManualClock()
    async with Simulator(clock=clock) as sim:
        sim.world.open_task("LOC1")
        async with sim.client(retry=RetryPolicy(max_tries=2, base_delay=0)) as client:
            yield Env(clock, sim, client)


async def step(watcher: OtcWatcher, clock: ManualClock, seconds: float = 0) -> list[object]:
    """Move time, let every due poll and timer finish, and return the events they queued."""
    if seconds:
        clock.advance(seconds)
    await watcher.wait_idle()
    return [await anext(watcher) for _ in range(watcher.queued)]


def watcher_tasks() -> list[asyncio.Task[object]]:
    """Tasks of the watcher that are still running (cancelled ones count until done)."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("otc-watcher")]


async def drain(watcher: OtcWatcher) -> list[object]:
    return [event async for event in watcher]


def kinds(events: Sequence[object]) -> list[str]:
    return [type(e).__name__ for e in events]


async def test_first_poll_reports_status_and_initial_arrivals(env: Env) -> None:
    env.sim.world.arrive("LOC1", fe_id="fe2", fe_name="Shyam")
    env.sim.world.arrive("LOC1", fe_id="fe1", fe_name="Ram")
    async with env.watcher() as w:
        events = await step(w, env.clock)
        assert kinds(events) == ["LocationStatusChanged", "FeArrived", "FeArrived"]
        status, first, second = events
        assert status == LocationStatusChanged("LOC1", env.at(0), LocationStatus.ACTIVE, None)
        assert isinstance(first, FeArrived)
        assert isinstance(second, FeArrived)
        assert (first.fe_id, first.detail.fe_name, first.initial) == ("fe1", "Ram", True)
        assert second.fe_id == "fe2"
        assert w.status("LOC1") is LocationStatus.ACTIVE
        snapshot = w.snapshot("LOC1")
        assert snapshot is not None
        assert set(snapshot.details) == {"fe1", "fe2"}

        assert await step(w, env.clock, INTERVAL) == []
        env.sim.world.arrive("LOC1", fe_id="fe3")
        (event,) = await step(w, env.clock, INTERVAL)
        assert isinstance(event, FeArrived)
        assert (event.fe_id, event.initial, event.observed_at) == ("fe3", False, env.at(20))
    assert env.sim.requests["LOC1"] == 3


async def test_renewal_carries_the_previous_detail(env: Env) -> None:
    env.sim.world.arrive("LOC1", fe_id="fe1", otc="111111")
    async with env.watcher() as w:
        await step(w, env.clock)
        env.clock.advance(5)
        env.sim.world.renew("LOC1", "fe1", otc="222222")
        (event,) = await step(w, env.clock, 5)
        assert isinstance(event, OtcRenewed)
        assert (event.previous.otc, event.detail.otc) == ("111111", "222222")
        assert event.detail.created_at == env.at(5)


async def test_expiry_fires_once_at_the_instant_from_a_timer(env: Env) -> None:
    env.sim.world.arrive("LOC1", fe_id="fe1", ttl=25)
    async with env.watcher() as w:
        await step(w, env.clock)
        assert await step(w, env.clock, 10) == []
        assert await step(w, env.clock, 10) == []
        assert await step(w, env.clock, 4.999) == []
        (event,) = await step(w, env.clock, 0.001)  # t = 25, between polls
        assert isinstance(event, OtcExpired)
        assert event.observed_at == env.at(25) == event.detail.expires_at
        assert env.sim.requests["LOC1"] == 3
        assert await step(w, env.clock, 5) == []  # the poll at 30 still lists it: no repeat
        assert await step(w, env.clock, 100) == []
        env.sim.world.leave("LOC1", "fe1")
        (left,) = await step(w, env.clock, 10)
        assert isinstance(left, FeDeparted)
        assert left.expired


async def test_a_poll_showing_an_already_expired_code_reports_it_at_once(env: Env) -> None:
    async with env.watcher() as w:
        await step(w, env.clock)
        env.clock.advance(1)
        env.sim.world.arrive("LOC1", fe_id="fe1", ttl=5)  # expires at 6, next poll at 10
        events = await step(w, env.clock, 9)
        assert kinds(events) == ["FeArrived", "OtcExpired"]
        assert all(e.observed_at == env.at(10) for e in events)  # type: ignore[attr-defined]
        assert await step(w, env.clock, 50) == []


async def test_departure_before_expiry(env: Env) -> None:
    env.sim.world.arrive("LOC1", fe_id="fe1", ttl=300)
    async with env.watcher() as w:
        await step(w, env.clock)
        env.sim.world.leave("LOC1", "fe1")
        (event,) = await step(w, env.clock, 10)
        assert isinstance(event, FeDeparted)
        assert not event.expired
        assert await step(w, env.clock, 400) == []  # no expiry for a departed FE


async def test_task_closing_and_going_away_depart_everyone(env: Env) -> None:
    env.sim.world.arrive("LOC1", fe_id="fe1")
    env.sim.world.arrive("LOC1", fe_id="fe2")
    async with env.watcher() as w:
        await step(w, env.clock)
        env.sim.world.close_task("LOC1")
        events = await step(w, env.clock, 10)
        assert kinds(events) == ["LocationStatusChanged", "FeDeparted", "FeDeparted"]
        assert events[0] == LocationStatusChanged(
            "LOC1", env.at(10), LocationStatus.CLOSED, LocationStatus.ACTIVE
        )
        assert w.status("LOC1") is LocationStatus.CLOSED
        assert await step(w, env.clock, 10) == []

        env.sim.world.remove_task("LOC1")
        (event,) = await step(w, env.clock, 10)
        assert event == LocationStatusChanged(
            "LOC1", env.at(30), LocationStatus.NO_TASK, LocationStatus.CLOSED
        )
        env.sim.world.open_task("LOC1")
        env.sim.world.arrive("LOC1", fe_id="fe3")
        events = await step(w, env.clock, 10)
        assert kinds(events) == ["LocationStatusChanged", "FeArrived"]
        assert not events[1].initial  # type: ignore[attr-defined]


async def test_failing_keeps_state_and_recovery_diffs_against_the_last_good_poll(
    env: Env,
) -> None:
    env.sim.world.arrive("LOC1", fe_id="fe1", ttl=300)
    env.sim.world.arrive("LOC1", fe_id="fe2", ttl=15)
    async with env.watcher() as w:
        await step(w, env.clock)
        good = w.snapshot("LOC1")
        env.sim.faults.script(*[FaultKind.SERVICE_UNAVAILABLE] * 4, location="LOC1")
        env.sim.world.leave("LOC1", "fe1")
        env.sim.world.arrive("LOC1", fe_id="fe3")
        (event,) = await step(w, env.clock, 10)
        assert isinstance(event, LocationStatusChanged)
        assert (event.status, event.previous) == (LocationStatus.FAILING, LocationStatus.ACTIVE)
        assert isinstance(event.error, ServiceUnavailableError)
        assert w.snapshot("LOC1") == good  # no departures invented from an error
        # fe2's code expires while failing: the timer still fires from the last good state
        (expired,) = await step(w, env.clock, 5)
        assert isinstance(expired, OtcExpired)
        assert expired.fe_id == "fe2"
        assert await step(w, env.clock, 5) == []  # second failed poll: no new event
        events = await step(w, env.clock, 10)
        assert kinds(events) == ["LocationStatusChanged", "FeDeparted", "FeArrived"]
        assert [getattr(e, "fe_id", None) for e in events] == [None, "fe1", "fe3"]
    assert env.sim.requests["LOC1"] == 1 + 2 + 2 + 1


async def test_fatal_auth_failure_raises_and_stops_every_poller(env: Env) -> None:
    env.sim.world.open_task("LOC2")
    async with env.watcher(["LOC1", "LOC2"]) as w:
        await step(w, env.clock, 10)
        env.sim.expire_tokens()  # a static token cannot be refreshed
        env.clock.advance(10)
        with pytest.raises(AuthenticationError):
            await drain(w)
        assert watcher_tasks() == []  # stopped at once, before leaving `async with`
    assert watcher_tasks() == []
    assert env.sim.requests["LOC1"] + env.sim.requests["LOC2"] <= 2 + 2


async def test_remove_drops_state_and_add_starts_fresh(env: Env) -> None:
    env.sim.world.arrive("LOC1", fe_id="fe1")
    async with env.watcher() as w:
        assert len(await step(w, env.clock)) == 2
        assert w.remove("LOC1")
        assert not w.remove("LOC1")
        env.sim.world.leave("LOC1", "fe1")
        assert await step(w, env.clock, 30) == []
        with pytest.raises(ValueError, match="'LOC1' is not watched"):
            w.snapshot("LOC1")
        env.sim.world.arrive("LOC1", fe_id="fe2")
        assert w.add("LOC1")
        assert not w.add("LOC1")
        events = await step(w, env.clock, INTERVAL)
        assert kinds(events) == ["LocationStatusChanged", "FeArrived"]
        assert events[1].initial  # type: ignore[attr-defined]
    assert env.sim.requests["LOC1"] == 2


async def test_first_polls_are_staggered_and_polls_never_burst(env: Env) -> None:
    ids = [f"LOC{i}" for i in range(1, 11)]
    for location_id in ids:
        env.sim.world.open_task(location_id)
    async with env.watcher(ids) as w:
        await step(w, env.clock)
        assert sum(env.sim.requests.values()) == 1
        for n in range(2, 11):
            await step(w, env.clock, INTERVAL / 10)
            assert sum(env.sim.requests.values()) == n
        await step(w, env.clock, INTERVAL / 10)
        assert env.sim.requests["LOC1"] == 2


async def test_a_poll_slower_than_the_interval_is_followed_once_not_by_a_burst(env: Env) -> None:
    env.sim.faults.script(Fault(FaultKind.SLOW, delay=0.2), location="LOC1")
    async with env.watcher() as w:
        await step(w, env.clock)
        env.clock.advance(INTERVAL)
        await env.sim.wait_for_requests(2)  # the slow poll is under way
        env.clock.advance(3.5 * INTERVAL)  # three and a half intervals pass during it
        await step(w, env.clock)
        assert env.sim.requests["LOC1"] == 3  # first, slow, and one right after it


async def test_concurrency_limit_bounds_requests_in_flight(env: Env) -> None:
    ids = [f"LOC{i}" for i in range(1, 21)]
    for location_id in ids:
        env.sim.world.open_task(location_id)
        env.sim.faults.script(Fault(FaultKind.SLOW, delay=0.05), location=location_id)
    async with env.watcher(ids, interval=0, max_concurrency=3):  # saturation: never idle
        await env.sim.wait_for_requests(60)
    assert env.sim.peak_in_flight == 3


async def test_emit_initial_false_skips_initial_arrivals(env: Env) -> None:
    env.sim.world.arrive("LOC1", fe_id="fe1")
    async with env.watcher(emit_initial=False) as w:
        assert kinds(await step(w, env.clock)) == ["LocationStatusChanged"]
        env.sim.world.arrive("LOC1", fe_id="fe2")
        assert kinds(await step(w, env.clock, INTERVAL)) == ["FeArrived"]


# -- backpressure ------------------------------------------------------------------


async def test_a_slow_reader_bounds_the_queue_and_loses_nothing(env: Env) -> None:
    ids = [f"LOC{i}" for i in range(1, 21)]
    for location_id in ids:
        env.sim.world.open_task(location_id)
        for _ in range(3):
            env.sim.world.arrive(location_id)
    async with env.watcher(ids, queue_size=4) as w:
        env.clock.advance(INTERVAL)  # every first poll is due
        await w.wait_idle()  # returns once pollers wait for the reader
        assert w.queued == 4
        for _ in range(50):  # give the pollers every chance to overfill it
            await asyncio.sleep(0)
        assert w.queued == 4
        events: list[WatchEvent] = []
        while len(events) < 20 * 4:
            events.append(await asyncio.wait_for(anext(w), 5))
            assert w.queued <= 4
        assert await step(w, env.clock) == []
    assert kinds(events).count("LocationStatusChanged") == 20
    arrivals = {(e.location_id, e.fe_id) for e in events if isinstance(e, FeArrived)}
    assert len(arrivals) == 60


# -- lifecycle -----------------------------------------------------------------


@pytest.fixture
async def live() -> AsyncIterator[tuple[Simulator, OtcClient]]:
    async with Simulator() as sim:
        sim.world.open_task("LOC1")
        sim.world.arrive("LOC1")
        async with sim.client() as client:
            yield sim, client


async def test_break_leaves_nothing_running(live: tuple[Simulator, OtcClient]) -> None:
    _, client = live
    async with OtcWatcher(client, ["LOC1"], interval=0.05) as w:
        async for _ in w:
            break
    assert watcher_tasks() == []

    w = OtcWatcher(client, ["LOC1"], interval=0.05)
    events = aiter(w)
    assert inspect.isasyncgen(events)  # not started: the iterator owns the watcher
    async for _ in events:
        break
    await events.aclose()  # what the event loop does for a dropped `async for`
    assert watcher_tasks() == []
    with pytest.raises(RuntimeError, match="closed"):
        w.add("LOC2")


async def test_cancelling_the_consumer_stops_the_watcher(
    live: tuple[Simulator, OtcClient],
) -> None:
    _, client = live
    got = asyncio.Event()

    async def consume() -> None:
        async with OtcWatcher(client, ["LOC1"], interval=30) as w:
            async for _ in w:
                got.set()

    task = asyncio.create_task(consume())
    await got.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert task.cancelled()
    assert watcher_tasks() == []


async def test_aclose_wakes_a_waiting_consumer_whose_loop_just_ends(
    live: tuple[Simulator, OtcClient],
) -> None:
    _, client = live
    w = OtcWatcher(client, ["LOC1"], interval=3600)
    received = []
    first = asyncio.Event()

    async def consume() -> None:
        async for event in w:
            received.append(event)
            if len(received) == 2:
                first.set()

    task = asyncio.create_task(consume())
    await first.wait()  # status + arrival read; the consumer now waits an hour
    await w.aclose()
    await asyncio.wait_for(task, 5)  # ends without an exception
    assert kinds(received) == ["LocationStatusChanged", "FeArrived"]
    assert watcher_tasks() == []
    await w.aclose()


def test_bad_arguments_are_refused(env: Env) -> None:
    for kwargs, words in [
        ({"interval": -1}, "interval must be finite and >= 0, got -1"),
        ({"interval": float("inf")}, "interval must be finite"),
        ({"jitter": 1.0}, "jitter must be in [0, 1), got 1.0"),
        ({"max_concurrency": 0}, "max_concurrency must be >= 1, got 0"),
        ({"queue_size": 0}, "queue_size must be >= 1, got 0"),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            OtcWatcher(env.client, ["LOC1"], **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be empty or blank, got ' '"):
        OtcWatcher(env.client, ["LOC1", " "])
    with pytest.raises(TypeError, match="not a str"):
        OtcWatcher(env.client, "LOC1")
    with pytest.raises(TypeError, match="client must be an OtcClient"):
        OtcWatcher("token", ["LOC1"])  # type: ignore[arg-type]


async def test_events_hide_the_otc_unless_asked(env: Env) -> None:
    env.sim.world.arrive("LOC1", fe_id="fe1", otc="424242", fe_name="Ram")
    async with env.watcher() as w:
        status, arrived = await step(w, env.clock)
    assert "424242" not in repr(arrived)
    data = arrived.to_dict()  # type: ignore[attr-defined]
    assert data["otc"] == "***"
    assert data["event"] == "fe_arrived"
    assert data["observed_at"] == "2026-01-01T00:00:00Z"
    assert arrived.to_dict(show_otc=True)["otc"] == "424242"  # type: ignore[attr-defined]
    assert status.to_dict()["status"] == "ACTIVE"  # type: ignore[attr-defined]
