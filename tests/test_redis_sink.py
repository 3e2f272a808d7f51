"""RedisStreamSink against a real redis-server: atomic writes, ids, resume, fencing,
outages. The server is private to each test (see conftest); nothing is mocked."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
import redis.asyncio as aioredis
from _redis_server import RedisServer

from flipkart_otc import (
    FeArrived,
    FeDeparted,
    LocationStatus,
    LocationStatusChanged,
    LocationView,
    ManualClock,
    OtcExpired,
    OtcRenewed,
    OtcWatcher,
    PollPolicy,
    Shard,
    SinkFencedError,
)
from flipkart_otc._saved import event_id
from flipkart_otc.simulator import Simulator
from flipkart_otc.sinks import RedisStreamSink

STREAM = "test:events"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(clock=ManualClock()) as simulator:
        yield simulator


async def entries(server: RedisServer, stream: str = STREAM) -> list[dict[str, Any]]:
    """Every entry of the stream: its fields, the event's JSON decoded."""
    async with aioredis.Redis.from_url(server.url) as r:
        rows: Any = await r.xrange(stream)
    out = []
    for entry_id, fields in rows:
        event = json.loads(fields[b"event"])
        out.append(
            {
                "stream_id": entry_id.decode(),
                "id": fields[b"id"].decode(),
                "location": fields[b"location"].decode(),
                **event,
            }
        )
    return out


async def id_key(server: RedisServer, stream: str = STREAM) -> bytes:
    """The key the stream's writers share for event ids."""
    async with aioredis.Redis.from_url(server.url) as r:
        key: Any = await r.get(f"{stream}:idkey")
        return bytes.fromhex(key.decode())


async def run(watcher: OtcWatcher, clock: ManualClock, seconds: int) -> list[Any]:
    """Move the clock a second at a time; what the watcher yields meanwhile."""
    got: list[Any] = []
    for _ in range(seconds):
        clock.advance(1)
        await watcher.wait_idle()
        got += [await anext(watcher) for _ in range(watcher.queued)]
    return got


def watcher(sim: Simulator, client: Any, sink: RedisStreamSink, locs: list[str]) -> OtcWatcher:
    assert isinstance(sim.clock, ManualClock)
    return OtcWatcher(
        client, locs, interval=10, jitter=0, clock=sim.clock, sink=sink, policy=PollPolicy.fixed()
    )


async def test_each_poll_s_events_and_state_are_written_together(
    sim: Simulator, redis_server: RedisServer
) -> None:
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    sim.world.open_task("LOC1")
    sim.world.arrive("LOC1", fe_id="fe1", fe_name="Ram", otc="123456", ttl=300)
    async with (
        sim.client() as client,
        RedisStreamSink(redis_server.url, stream=STREAM) as sink,
        watcher(sim, client, sink, ["LOC1"]) as w,
    ):
        got = await run(w, clock, 5)
        sim.world.renew("LOC1", "fe1", otc="654321", ttl=60)
        got += await run(w, clock, 10)
        assert await sink.flush(5)
    assert [type(e) for e in got] == [LocationStatusChanged, FeArrived, OtcRenewed]
    stored = await entries(redis_server)
    assert [s["event"] for s in stored] == ["location_status_changed", "fe_arrived", "otc_renewed"]
    key = await id_key(redis_server)
    assert [s["id"] for s in stored] == [event_id(e, key) for e in got]
    assert all(s["location"] == "LOC1" and s["otc"] == "***" for s in stored[1:])
    async with aioredis.Redis.from_url(redis_server.url) as r:
        state = await r.hgetall(f"{STREAM}:loc:LOC1")
    assert int(state[b"ver"]) == 2  # two polls with events: two writes
    saved = json.loads(state[b"state"])
    assert saved["status"] == "ACTIVE" and saved["details"][0][3] == "654321"


async def test_a_restarted_watcher_resumes_announcing_only_what_changed(
    sim: Simulator, redis_server: RedisServer
) -> None:
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    world = sim.world
    world.open_task("LOC1")
    world.arrive("LOC1", fe_id="fe1", otc="111111", ttl=30)
    world.arrive("LOC1", fe_id="fe2", otc="222222", ttl=300)
    world.arrive("LOC1", fe_id="fe4", otc="444444", ttl=300)
    expiry = world.fes("LOC1")["fe1"].expires_at
    async with sim.client() as client:
        async with (
            RedisStreamSink(redis_server.url, stream=STREAM) as sink,
            watcher(sim, client, sink, ["LOC1", "LOC2"]) as first,
        ):
            before = await run(first, clock, 5)
        assert {type(e) for e in before} == {LocationStatusChanged, FeArrived}
        # while no watcher runs: fe1's code expires, fe2 leaves, fe3 arrives
        clock.advance(60)
        world.leave("LOC1", "fe2")
        world.arrive("LOC1", fe_id="fe3", otc="333333", ttl=300)
        async with (
            RedisStreamSink(redis_server.url, stream=STREAM) as sink,
            watcher(sim, client, sink, ["LOC1", "LOC2"]) as second,
        ):
            assert second.resumed == 2  # LOC1 and LOC2 (NO_TASK) were saved
            after = await run(second, clock, 5)
            world.renew("LOC1", "fe4", otc="555555", ttl=300)
            live = await run(second, clock, 10)
            assert await sink.flush(5)

    assert [(type(e), e.fe_id, e.recovered) for e in after] == [
        (OtcExpired, "fe1", True),
        (FeDeparted, "fe2", True),
        (FeArrived, "fe3", True),
    ]
    expired = after[0]
    assert expired.observed_at.timestamp() == expiry  # its real instant
    assert not after[2].initial
    assert [(type(e), e.recovered) for e in live] == [(OtcRenewed, False)]
    assert second.status("LOC2") is LocationStatus.NO_TASK
    stored = await entries(redis_server)
    key = await id_key(redis_server)
    assert [s["id"] for s in stored] == [event_id(e, key) for e in [*before, *after, *live]]
    assert [s.get("recovered", False) for s in stored[-4:]] == [True, True, True, False]


async def test_a_worker_started_later_takes_its_locations_over_and_the_first_stops(
    sim: Simulator, redis_server: RedisServer
) -> None:
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    sim.world.open_task("LOC1")
    sim.world.arrive("LOC1", fe_id="fe1", otc="111111", ttl=300)
    async with sim.client() as client, RedisStreamSink(redis_server.url, stream=STREAM) as sink_a:
        first = watcher(sim, client, sink_a, ["LOC1"])
        await first.start()
        got = await run(first, clock, 5)
        assert [type(e) for e in got] == [LocationStatusChanged, FeArrived]
        async with (
            RedisStreamSink(redis_server.url, stream=STREAM) as sink_b,
            watcher(sim, client, sink_b, ["LOC1"]) as second,
        ):
            assert second.resumed == 1
            sim.world.renew("LOC1", "fe1", otc="222222", ttl=300)
            # the first one polls first (it started first): its write is refused
            clock.advance(9)
            await first.wait_idle()
            with pytest.raises(SinkFencedError, match="started later") as caught:
                async for _ in first:
                    pass
            assert caught.value.location_id == "LOC1"
            assert "222222" not in str(caught.value)
            taken = await run(second, clock, 11)
            assert await sink_b.flush(5)
        await first.aclose()
    assert [type(e) for e in taken] == [OtcRenewed]  # nothing announced twice
    stored = await entries(redis_server)
    assert [s["event"] for s in stored] == ["location_status_changed", "fe_arrived", "otc_renewed"]
    async with aioredis.Redis.from_url(redis_server.url) as r:
        state = await r.hgetall(f"{STREAM}:loc:LOC1")
    assert int(state[b"ver"]) == 2 and int(state[b"owner"]) == 2


async def test_a_write_sent_twice_is_kept_once(redis_server: RedisServer) -> None:
    # What a pipeline resent after a lost answer does: the script sees its version there.
    sink = RedisStreamSink(redis_server.url, stream=STREAM)
    async with sink:
        await sink.load(["LOC1"])
        event = LocationStatusChanged("LOC1", datetime.now(UTC), LocationStatus.NO_TASK)

        item = sink._prepare([event], LocationView("LOC1", LocationStatus.NO_TASK, None))
        assert await sink._send([item]) == [1]
        assert await sink._send([item]) == [1]  # applied already: its version, no entry
    assert len(await entries(redis_server)) == 1


async def test_redis_killed_and_restarted_mid_run_loses_nothing(
    sim: Simulator, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    world = sim.world
    for loc in ("LOC1", "LOC2"):
        world.open_task(loc)
        world.arrive(loc, fe_id="fe1", ttl=25)
    caplog.set_level(logging.WARNING, "flipkart_otc.sinks")
    async with (
        sim.client() as client,
        RedisStreamSink(redis_server.url, stream=STREAM, patience=0.2, retry_max=0.1) as sink,
        watcher(sim, client, sink, ["LOC1", "LOC2"]) as w,
    ):
        got = await run(w, clock, 5)
        assert await sink.flush(5)
        redis_server.kill()
        # the watcher goes on polling while Redis is gone: FEs come, renew, expire, go
        world.arrive("LOC1", fe_id="fe2", ttl=300)
        got += await run(w, clock, 20)
        world.leave("LOC2", "fe1")
        world.renew("LOC1", "fe2")
        got += await run(w, clock, 20)
        world.arrive("LOC2", fe_id="fe3", ttl=300)
        world.leave("LOC2", "fe3")  # gone before Redis is back: still announced
        world.arrive("LOC2", fe_id="fe4", ttl=300)
        got += await run(w, clock, 20)
        assert not sink.healthy and sink.backlog > 0
        held = sink.backlog
        redis_server.start()
        assert await sink.flush(30)
        assert sink.healthy and sink.backlog == 0
    kinds = [type(e).__name__ for e in got]
    assert kinds.count("OtcExpired") >= 2 and "FeDeparted" in kinds and held >= 6
    stored = await entries(redis_server)
    key = await id_key(redis_server)
    assert [s["id"] for s in stored] == [event_id(e, key) for e in got]
    outage = [r.getMessage() for r in caplog.records]
    assert len(outage) == 2, outage  # once when it went, once when it came back
    assert "unavailable" in outage[0] and "is back" in outage[1]
    assert sink.outages == 1


async def test_at_the_backlog_bound_writers_wait_for_room(redis_server: RedisServer) -> None:
    sink = RedisStreamSink(
        redis_server.url, stream=STREAM, max_backlog=3, patience=0.05, retry_max=0.05
    )
    now = datetime.now(UTC)

    def write(loc: str) -> Any:
        event = LocationStatusChanged(loc, now, LocationStatus.NO_TASK)
        return sink.write([event], LocationView(loc, LocationStatus.NO_TASK, None))

    async with sink:
        await sink.load(["LOC1", "LOC2", "LOC3", "LOC4"])
        redis_server.kill()
        for loc in ("LOC1", "LOC2", "LOC3"):
            await write(loc)  # held, in order
        assert sink.backlog == 3
        fourth = asyncio.ensure_future(write("LOC4"))
        done, _ = await asyncio.wait({fourth}, timeout=0.5)
        assert not done and sink.backlog == 3  # the bound holds the writer, drops nothing
        redis_server.start()
        await fourth
        assert await sink.flush(30)
    assert [s["location"] for s in await entries(redis_server)] == ["LOC1", "LOC2", "LOC3", "LOC4"]


async def test_resharding_from_two_workers_to_three_moves_each_location_with_its_state(
    sim: Simulator, redis_server: RedisServer
) -> None:
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    world = sim.world
    locs = [f"LOC{i}" for i in range(1, 25)]
    for loc in locs:
        world.open_task(loc)
        world.arrive(loc, fe_id="fe1", ttl=300)

    async def run_workers(count: int) -> tuple[list[list[str]], list[Any]]:
        got: list[Any] = []
        async with sim.client() as client:
            sinks = [RedisStreamSink(redis_server.url, stream=STREAM) for _ in range(count)]
            workers = [
                OtcWatcher(
                    client,
                    locs,
                    interval=10,
                    jitter=0,
                    clock=clock,
                    sink=sink,
                    shard=Shard(i, count),
                )
                for i, sink in enumerate(sinks)
            ]
            for w in workers:
                await w.start()
            for _ in range(12):
                clock.advance(1)
                for w in workers:
                    await w.wait_idle()
                    got += [await anext(w) for _ in range(w.queued)]
            for w, sink in zip(workers, sinks, strict=True):
                await w.aclose()
                await sink.aclose()
        return [w.locations for w in workers], got

    two, first = await run_workers(2)
    for loc in locs[:6]:  # while none runs: some leave, some come
        world.leave(loc, "fe1")
        world.arrive(loc, fe_id="fe2", ttl=300)
    three, second = await run_workers(3)

    for split in (two, three):
        watched = [loc for shard in split for loc in shard]
        assert sorted(watched) == sorted(locs)  # none unwatched, none twice
    assert two[0] != three[0]  # locations did move
    arrivals = [(e.location_id, e.fe_id) for e in [*first, *second] if isinstance(e, FeArrived)]
    assert sorted(arrivals) == sorted(
        [(loc, "fe1") for loc in locs] + [(loc, "fe2") for loc in locs[:6]]
    )
    assert sorted((e.location_id, e.fe_id) for e in second if isinstance(e, FeDeparted)) == [
        (loc, "fe1") for loc in sorted(locs[:6])
    ]
    assert all(e.recovered for e in second)
    stored = await entries(redis_server)
    assert len({s["id"] for s in stored}) == len(stored) == len(first) + len(second)


async def test_a_slow_redis_holds_writes_in_order_and_the_watcher_goes_on(
    sim: Simulator, redis_server: RedisServer
) -> None:
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    world = sim.world
    world.open_task("LOC1")
    async with (
        sim.client() as client,
        RedisStreamSink(redis_server.url, stream=STREAM, patience=0.05) as sink,
        watcher(sim, client, sink, ["LOC1"]) as w,
    ):
        got = await run(w, clock, 5)
        assert await sink.flush(5)
        async with aioredis.Redis.from_url(redis_server.url) as r:
            await r.client_pause(3000, all=False)  # writes wait three seconds
        for fe in ("fe1", "fe2", "fe3"):
            world.arrive("LOC1", fe_id=fe, ttl=300)
            got += await run(w, clock, 10)
        assert len(got) == 4 and sink.backlog == 3  # read by the watcher's reader already
        assert await sink.flush(30)
        assert sink.outages == 0 and sink.healthy  # slow is not down
    key = await id_key(redis_server)
    assert [s["id"] for s in await entries(redis_server)] == [event_id(e, key) for e in got]


async def test_a_dashboard_reads_shard_workers_through_the_stream(
    sim: Simulator, redis_server: RedisServer
) -> None:
    from _helpers import Stream
    from aiohttp.test_utils import TestClient, TestServer

    from flipkart_otc.dashboard import create_app
    from flipkart_otc.sinks import RedisStreamFeed

    clock = sim.clock
    assert isinstance(clock, ManualClock)
    world = sim.world
    world.open_task("LOC1")
    world.arrive("LOC1", fe_id="fe1", fe_name="Ram", otc="123456", ttl=300)
    async with (
        sim.client() as client,
        RedisStreamSink(redis_server.url, stream=STREAM) as sink,
        watcher(sim, client, sink, ["LOC1", "LOC2"]) as w,
    ):
        before = await run(w, clock, 5)
        assert await sink.flush(5)
        async with RedisStreamFeed(redis_server.url, stream=STREAM, clock=clock) as feed:
            assert sorted(feed.locations) == ["LOC1", "LOC2"]

            def without_times(views: Any) -> dict[str, Any]:
                return {
                    loc: (
                        v.status,
                        v.error,
                        v.snapshot
                        and {
                            fe: attrs.evolve(d, otc="***") for fe, d in v.snapshot.details.items()
                        },
                    )
                    for loc, v in views.items()
                }

            # what the watcher knows (the saved state: times of the last events), with
            # the codes masked as the stream carries them
            assert without_times(feed.picture().locations) == without_times(w.picture().locations)
            shown = feed.picture().locations["LOC1"].snapshot
            assert shown is not None and shown.details["fe1"].otc == "***"
            app = create_app(feed)
            async with TestClient(TestServer(app, host="127.0.0.1")) as http:
                response = await http.get("/events")
                stream = Stream(response)
                snapshot = (await stream.next())["data"]
                (loc1,) = [loc for loc in snapshot["locations"] if loc["location_id"] == "LOC1"]
                assert [d["fe_name"] for d in loc1["details"]] == ["Ram"]
                assert "123456" not in json.dumps(snapshot)
                world.renew("LOC1", "fe1", otc="654321", ttl=60)
                world.arrive("LOC1", fe_id="fe2", fe_name="Sita", ttl=300)
                after = await run(w, clock, 10)
                live = [(await stream.next())["data"] for _ in after]
            assert [e["event"] for e in live] == ["otc_renewed", "fe_arrived"]
            assert live == [e.to_dict() | {"seq": n} for n, e in enumerate(after, 1)]
            names = {d.fe_name for d in feed.picture().locations["LOC1"].snapshot.details.values()}  # type: ignore[union-attr]
            assert names == {"Ram", "Sita"} and feed.health().by_status == {
                "ACTIVE": 1,
                "NO_TASK": 1,
            }
    assert len(before) == 3


@pytest.mark.parametrize("shown", [False, True])
async def test_a_feed_shows_the_codes_as_the_stream_carries_them_first_picture_to_last(
    sim: Simulator, redis_server: RedisServer, shown: bool
) -> None:
    """``dashboard --source --show-otc`` over workers that mask: ``***`` in the first
    picture as in every later event (the saved state holds the digits; not shown)."""
    from _helpers import Stream
    from aiohttp.test_utils import TestClient, TestServer

    from flipkart_otc.dashboard import create_app
    from flipkart_otc.sinks import RedisStreamFeed

    clock = sim.clock
    assert isinstance(clock, ManualClock)
    sim.world.open_task("LOC1")
    sim.world.arrive("LOC1", fe_id="fe1", fe_name="Ram", otc="123456", ttl=300)
    async with (
        sim.client() as client,
        RedisStreamSink(redis_server.url, stream=STREAM, show_otc=shown) as sink,
        watcher(sim, client, sink, ["LOC1"]) as w,
    ):
        await run(w, clock, 5)
        assert await sink.flush(5)
        async with RedisStreamFeed(redis_server.url, stream=STREAM, clock=clock) as feed:
            app = create_app(feed, show_otc=True)
            async with TestClient(TestServer(app, host="127.0.0.1")) as http:
                stream = Stream(await http.get("/events"))
                snapshot = (await stream.next())["data"]
                sim.world.renew("LOC1", "fe1", otc="654321", ttl=60)
                await run(w, clock, 10)
                renewal = (await stream.next())["data"]
    (loc1,) = snapshot["locations"]
    assert renewal["event"] == "otc_renewed"
    first, later = loc1["details"][0]["otc"], renewal["otc"]
    assert (first, later) == (("123456", "654321") if shown else ("***", "***"))
