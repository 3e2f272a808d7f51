"""/healthz, /readyz and /metrics over real HTTP on 127.0.0.1, through their states,
with the simulator and a ManualClock (and a real redis-server for the sink)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from _redis_server import RedisServer
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from flipkart_otc import (
    ManualClock,
    OtcClient,
    OtcWatcher,
    PollPolicy,
    RetryPolicy,
    SinkFencedError,
)
from flipkart_otc.metrics import Metrics
from flipkart_otc.probes import Probes
from flipkart_otc.simulator import Fault, FaultKind, Simulator
from flipkart_otc.sinks import RedisStreamSink

STALL = 30.0


@contextlib.asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def get(url: str, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, **kw) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def settle(watcher: OtcWatcher, clock: ManualClock, seconds: float = 0) -> None:
    """Move time, let every due poll finish, and drop what it queued."""
    if seconds:
        clock.advance(seconds)
    await watcher.wait_idle()
    for _ in range(watcher.queued):
        await anext(watcher)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=ManualClock()) as simulator:
        simulator.world.open_task("LOC1")
        simulator.world.arrive("LOC1", fe_id="fe1", fe_name="Ram", ttl=300)
        yield simulator


def watcher_of(sim: Simulator, client: OtcClient, **kw: Any) -> OtcWatcher:
    assert isinstance(sim.clock, ManualClock)
    return OtcWatcher(
        client,
        ["LOC1", "LOC2", "LOC3"],
        interval=10,
        jitter=0,
        clock=sim.clock,
        policy=PollPolicy.fixed(),
        **kw,
    )


async def test_readiness_goes_through_starting_ready_and_source_down(sim: Simulator) -> None:
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    sim.world.open_task("LOC2")  # LOC3 has no task: NO_TASK is an answer, and ready
    metrics = Metrics()
    retry = RetryPolicy(max_tries=1)
    async with (
        sim.client(retry=retry, observer=metrics) as client,
        watcher_of(sim, client, observer=metrics) as watcher,
        metrics.attached(watcher),
    ):
        probes = Probes(watcher, metrics=metrics, stall_after=STALL)
        async with served(probes.create_app()) as url:
            # starting: nothing polled yet (the first polls are staggered over 10 s)
            status, body = await get(url + "/readyz")
            assert status == 503
            assert body["ready"] is False
            assert any("not polled yet" in r for r in body["reasons"])
            assert (await get(url + "/healthz"))[0] == 200  # alive all the same

            await settle(watcher, clock, 10)
            status, body = await get(url + "/readyz")
            assert (status, body["reasons"]) == (200, [])
            assert body["locations"] == {"ACTIVE": 2, "NO_TASK": 1}

            # the API goes down: every poll fails from now on
            sim.faults.random(1.0, [FaultKind.SERVICE_UNAVAILABLE])
            for _ in range(2):  # 20 s: failing, but not for longer than STALL yet
                await settle(watcher, clock, 10)
            status, body = await get(url + "/readyz")
            assert status == 200, body
            assert body["locations"] == {"FAILING": 3}
            for _ in range(2):  # 40 s since the last answer: past STALL
                await settle(watcher, clock, 10)
            status, body = await get(url + "/readyz")
            assert status == 503
            assert body["reasons"] == [
                f"no poll answered for 40s (over {STALL:g}s; 3 of 3 locations failing)"
            ]
            assert (await get(url + "/healthz"))[0] == 200  # down is not dead

            status, text = await get(url + "/metrics")
            assert status == 200
            got = samples(text)
            assert got[("flipkart_otc_polls_total", (("outcome", "failed"),))] == 12
            # LOC1 at 0 s and 10 s, LOC2 at 3.3 s; LOC3 (no task) at 6.7 s; then 12 failed
            assert got[("flipkart_otc_polls_total", (("outcome", "answered"),))] == 3
            assert got[("flipkart_otc_polls_total", (("outcome", "no_task"),))] == 1
            start = (("endpoint", "start-otc"),)
            assert got[("flipkart_otc_requests_total", (*start, ("status", "503")))] == 12
            assert got[("flipkart_otc_requests_total", (*start, ("status", "200")))] == 3
            assert got[("flipkart_otc_request_seconds_count", start)] == 16
            assert got[("flipkart_otc_locations", (("status", "FAILING"),))] == 3
            assert got[("flipkart_otc_locations", (("status", "ACTIVE"),))] == 0
            assert got[("flipkart_otc_fes_present", ())] == 1  # the last known
            assert got[("flipkart_otc_last_success_age_seconds", ())] == 40
            assert got[("flipkart_otc_running", ())] == 1

            sim.faults.clear()
            await settle(watcher, clock, 10)
            assert (await get(url + "/readyz"))[0] == 200  # it recovers

        await watcher.aclose()
        status, body = await get_after_close(probes)
        assert status == 503 and body["reason"] == "not running"  # health().reason


async def get_after_close(probes: Probes) -> tuple[int, Any]:
    async with served(probes.create_app()) as url:
        return await get(url + "/healthz")


async def test_a_fenced_sink_makes_the_worker_not_ready(
    sim: Simulator, redis_server: RedisServer
) -> None:
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    stream = "test:events"
    async with (
        sim.client() as client,
        RedisStreamSink(redis_server.url, stream=stream) as sink_a,
    ):
        first = watcher_of(sim, client, sink=sink_a)
        await first.start()
        probes = Probes(first, sink=sink_a, stall_after=STALL)
        async with served(probes.create_app()) as url:
            await settle(first, clock, 10)
            status, body = await get(url + "/readyz")
            assert (status, body["reasons"]) == (200, [])
            assert body["sink"] == {"healthy": True, "backlog": 0}
            async with (
                RedisStreamSink(redis_server.url, stream=stream) as sink_b,
                watcher_of(sim, client, sink=sink_b) as second,
            ):
                assert second.resumed == 3
                sim.world.renew("LOC1", "fe1", ttl=300)  # the next poll writes: refused
                clock.advance(10)
                await first.wait_idle()
                with pytest.raises(SinkFencedError):
                    async for _ in first:
                        pass
                status, body = await get(url + "/readyz")
                assert status == 503
                assert body["sink"]["healthy"] is False
                # the watcher's own reason (health().reason), then the sink's
                assert body["reasons"][0].startswith("stopped: a worker started later")
                assert body["reasons"][1].startswith("the sink stopped: ")
                assert "started later" in body["reasons"][1]
                assert (await get(url + "/healthz"))[0] == 503
        await first.aclose()


async def test_metrics_need_the_key_as_a_bearer_token_when_one_is_set(sim: Simulator) -> None:
    key = "k" * 20
    metrics = Metrics()
    async with sim.client() as client, watcher_of(sim, client, observer=metrics) as watcher:
        probes = Probes(watcher, metrics=metrics, access_key=key)
        async with served(probes.create_app()) as url:
            assert (await get(url + "/metrics"))[0] == 401
            wrong = {"Authorization": "Bearer " + "x" * 20}
            assert (await get(url + "/metrics", headers=wrong))[0] == 401
            status, text = await get(url + "/metrics", headers={"Authorization": "Bearer " + key})
            assert status == 200 and "flipkart_otc_polls_total" in text
            assert (await get(url + "/readyz"))[0] == 503  # probes need no key
        without = Probes(watcher)
        async with served(without.create_app()) as url:
            status, text = await get(url + "/metrics")
            assert status == 404 and "flipkart-otc[metrics]" in text


async def test_a_429_is_counted_and_its_hold_shown(sim: Simulator) -> None:
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    metrics = Metrics()
    sim.faults.script(Fault(FaultKind.RATE_LIMITED, retry_after=120), location="LOC1")
    retry = RetryPolicy(max_tries=1)
    async with (
        sim.client(retry=retry, observer=metrics) as client,
        watcher_of(sim, client, observer=metrics) as watcher,
        metrics.attached(watcher),
    ):
        await settle(watcher, clock, 10)
        got = samples(metrics.render().decode())
    assert got[("flipkart_otc_throttled_total", ())] == 1
    assert 100 < got[("flipkart_otc_rate_limit_hold_seconds", ())] <= 120
    start = (("endpoint", "start-otc"),)
    assert got[("flipkart_otc_requests_total", (*start, ("status", "429")))] == 1
    assert got[("flipkart_otc_polls_total", (("outcome", "failed"),))] == 1
    # events are counted through a subscription, by kind
    assert got[("flipkart_otc_events_total", (("event", "location_status_changed"),))] >= 1


async def test_the_dashboard_serves_the_same_probes_and_guards_its_metrics(
    sim: Simulator,
) -> None:
    from flipkart_otc.dashboard import create_app

    clock = sim.clock
    assert isinstance(clock, ManualClock)
    key = "a-dashboard-key-0123"
    metrics = Metrics()
    async with (
        sim.client(observer=metrics) as client,
        watcher_of(sim, client, observer=metrics) as watcher,
        metrics.attached(watcher),
    ):
        probes = Probes(watcher, metrics=metrics, stall_after=STALL)
        app = create_app(watcher, access_key=key, probes=probes)
        async with served(app) as url:
            status, body = await get(url + "/readyz")  # no key needed for a probe
            assert status == 503 and "3 of 3 locations not polled yet" in body["reasons"]
            await settle(watcher, clock, 10)
            status, body = await get(url + "/readyz")
            assert (status, body["reasons"], body["clients"]) == (200, [], 0)
            assert (await get(url + "/healthz"))[0] == 200
            assert (await get(url + "/metrics"))[0] == 401  # neither cookie nor key
            bearer = {"Authorization": "Bearer " + key}
            status, text = await get(url + "/metrics", headers=bearer)
            assert status == 200
            assert samples(text)[("flipkart_otc_locations", (("status", "ACTIVE"),))] == 1
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as session:
                async with session.post(url + "/login", data={"key": key}) as r:
                    assert r.status == 200  # redirected to the page, the cookie set
                async with session.get(url + "/metrics") as r:
                    assert r.status == 200  # the page's cookie is enough


def test_a_stream_reader_without_a_stall_limit_stays_ready_through_a_quiet_hour() -> None:
    from datetime import UTC, datetime

    from flipkart_otc import WatcherHealth
    from flipkart_otc._readiness import readiness

    quiet = WatcherHealth(True, {"ACTIVE": 2}, datetime(2026, 1, 1, tzinfo=UTC), 3600.0)
    assert readiness(quiet, stall_after=None)[0] is True
    ready, body = readiness(quiet, stall_after=STALL)
    assert not ready and body["reasons"][0].startswith("no poll answered for 3600s")
