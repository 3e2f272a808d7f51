"""``watch --sink --shard`` and ``tail`` as real subprocesses, on a real redis-server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import pytest
import redis.asyncio as aioredis
from _redis_server import RedisServer
from test_cli import DEADLINE, run, spawn, token_env

from flipkart_otc import json_schema, shard_of
from flipkart_otc.simulator import Simulator


@pytest.fixture
async def sim() -> Any:
    async with Simulator() as s:
        for loc in ("LOC1", "LOC2", "LOC3", "LOC4"):
            s.world.open_task(loc)
            s.world.arrive(loc, fe_id=f"fe-{loc}", otc="123456", ttl=300)
        yield s


async def test_a_shard_worker_writes_its_locations_and_tail_reads_them(
    sim: Simulator, redis_server: RedisServer
) -> None:
    locs = ["LOC1", "LOC2", "LOC3", "LOC4"]
    mine = [loc for loc in locs if shard_of(loc, 2) == 1]
    worker = await spawn(
        "watch", *locs, "--base-url", sim.base_url, "--interval", "0.2", "--show-otc",
        "--sink", redis_server.url, "--stream", "s1", "--shard", "1/2", "--format", "json",
        environ=token_env(sim),
    )  # fmt: skip
    assert worker.stdout is not None and worker.stderr is not None
    said = await asyncio.wait_for(worker.stderr.readline(), DEADLINE)
    assert said.decode().startswith(f"flipkart-otc watch: shard 1/2: watching {len(mine)} of 4")
    printed = [json.loads(await worker.stdout.readline()) for _ in range(2 * len(mine))]
    worker.terminate()
    assert await asyncio.wait_for(worker.wait(), DEADLINE) == 0
    assert {e["location_id"] for e in printed} == set(mine)

    code, out, err = await run("tail", redis_server.url, "--stream", "s1", "--from-start",
                               "--count", str(len(printed)))  # fmt: skip
    assert code == 0, err
    tailed = [json.loads(line) for line in out.splitlines()]
    schema = json_schema()
    for event in tailed:
        jsonschema.validate(event, schema)
        assert event.get("otc", "***") == "***"  # written with the code, shown only if asked
    assert [{k: v for k, v in e.items() if k not in ("event_id", "stream_id", "otc")}
            for e in tailed] == [
        {k: v for k, v in e.items() if k != "otc"} for e in printed
    ]  # fmt: skip
    code, out, _ = await run("tail", redis_server.url, "--stream", "s1", "--from-start",
                             "--count", "2", "--show-otc")  # fmt: skip
    assert json.loads(out.splitlines()[1])["otc"] == "123456"


async def test_tail_as_a_consumer_group_goes_on_where_it_left_off(
    sim: Simulator, redis_server: RedisServer
) -> None:
    async with aioredis.Redis.from_url(redis_server.url) as r:
        for i in range(5):
            event = {"event": "location_status_changed", "location_id": f"L{i}"}
            await r.xadd(
                "s2", {"id": f"{i:032x}", "location": f"L{i}", "event": json.dumps(event)}
            )
    args = ["tail", redis_server.url, "--stream", "s2", "--group", "desk", "--consumer", "c1"]
    _, first, _ = await run(*args, "--from-start", "--count", "2")
    _, second, _ = await run(*args, "--count", "3")
    seen = [json.loads(line)["location_id"] for line in (first + second).splitlines()]
    assert seen == ["L0", "L1", "L2", "L3", "L4"]  # each once, in order, across two runs
    async with aioredis.Redis.from_url(redis_server.url) as r:
        pending: Any = await r.xpending("s2", "desk")
    assert pending["pending"] == 0  # every entry printed was acknowledged


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["watch", "LOC1", "--sink", "http://x"], "expected a redis://HOST:PORT/DB URL"),
        (["watch", "LOC1", "--sink", "redis://h:99999/0"], "bad Redis URL"),
        (["watch", "LOC1", "--shard", "2/2"], "must be in 0..1"),
        (["tail", "redis://127.0.0.1:1/0", "--group", "g"], "--group and --consumer go together"),
        (["dashboard", "LOC1", "--shard", "0/0"], "must be"),
    ],
)  # fmt: skip
async def test_bad_redis_options_exit_2_naming_the_value(args: list[str], said: str) -> None:
    code, out, err = await run(*args)
    assert (code, out) == (2, "") and said in err.splitlines()[-1] and "Traceback" not in err


async def test_tail_waits_out_an_unreachable_redis_saying_so_once() -> None:
    code, out, err = await run("tail", "redis://:hunter2@127.0.0.1:1/0", "--duration", "1")
    assert code == 0 and out == ""
    assert err.count("unavailable") == 1 and "hunter2" not in err and "Traceback" not in err


async def test_a_dashboard_serves_what_is_on_the_stream(redis_server: RedisServer) -> None:
    from datetime import UTC, datetime

    import aiohttp

    from flipkart_otc import LocationStatus, LocationStatusChanged, LocationView
    from flipkart_otc.sinks import RedisStreamSink

    async with RedisStreamSink(redis_server.url, stream="s3") as sink:
        await sink.load(["LOC9"])
        event = LocationStatusChanged("LOC9", datetime.now(UTC), LocationStatus.NO_TASK)
        await sink.write([event], LocationView("LOC9", LocationStatus.NO_TASK, None))
        assert await sink.flush(10)
    page = await spawn("dashboard", "--source", redis_server.url, "--stream", "s3",
                       "--port", "0")  # fmt: skip
    assert page.stdout is not None
    line = (await asyncio.wait_for(page.stdout.readline(), DEADLINE)).decode()
    assert "1 locations from redis://127.0.0.1:" in line
    url = line.split()[2]
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "healthz") as response:
            health = await response.json()
        async with http.get(url + "events") as stream:  # a browser with the page open
            assert (await stream.content.readline()).startswith(b"id: ")  # the snapshot
            page.terminate()  # it stops with the stream open, in seconds, not aiohttp's 60
            assert await asyncio.wait_for(page.wait(), DEADLINE / 2) == 0
    assert health["running"] and health["locations"] == {"NO_TASK": 1}

    code, out, err = await run("dashboard", "--source", redis_server.url, "LOC1")
    assert (code, out) == (2, "") and "name none" in err


async def test_of_two_workers_on_one_shard_the_later_wins_and_the_first_stops(
    sim: Simulator, redis_server: RedisServer
) -> None:
    args = ["watch", "LOC1", "--base-url", sim.base_url, "--interval", "0.2", "--show-otc",
            "--sink", redis_server.url, "--stream", "s4", "--format", "json"]  # fmt: skip
    first = await spawn(*args, environ=token_env(sim))
    assert first.stdout is not None and first.stderr is not None
    await asyncio.wait_for(first.stderr.readline(), DEADLINE)  # started
    assert json.loads(await first.stdout.readline())["event"] == "location_status_changed"
    second = await spawn(*args, environ=token_env(sim))
    assert second.stdout is not None and second.stderr is not None
    assert b"1 resumed" in await asyncio.wait_for(second.stderr.readline(), DEADLINE)
    sim.world.renew("LOC1", "fe-LOC1", otc="654321")  # both see it; one may write it
    assert await asyncio.wait_for(first.wait(), DEADLINE) == 1
    said = (await first.stderr.read()).decode()
    assert "started later" in said and "LOC1" in said and "Traceback" not in said
    renewal = json.loads(await asyncio.wait_for(second.stdout.readline(), DEADLINE))
    assert renewal["event"] == "otc_renewed" and renewal["otc"] == "654321"
    second.terminate()
    assert await asyncio.wait_for(second.wait(), DEADLINE) == 0
    code, out, _ = await run("tail", redis_server.url, "--stream", "s4", "--from-start",
                             "--count", "3")  # fmt: skip
    assert code == 0
    assert [json.loads(line)["event"] for line in out.splitlines()] == [
        "location_status_changed", "fe_arrived", "otc_renewed"
    ]  # fmt: skip


async def test_a_worker_waiting_for_redis_at_start_still_stops_when_told() -> None:
    code, out, err = await run(
        "watch", "LOC1", "--token", "t", "--base-url", "http://127.0.0.1:1/sellers",
        "--sink", "redis://127.0.0.1:1/0", "--duration", "1",
    )  # fmt: skip
    assert (code, out) == (0, "") and err.count("unavailable") == 1 and "Traceback" not in err


async def test_a_dashboard_of_the_stream_on_a_busy_port_exits_1(redis_server: RedisServer) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        code, out, err = await run("dashboard", "--source", redis_server.url, "--port", port)
    # the feed, just started, stops too (redis-py can swallow a cancel while connecting)
    assert (code, out) == (1, "") and "cannot listen" in err and "Traceback" not in err
