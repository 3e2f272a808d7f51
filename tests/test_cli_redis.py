"""``watch --sink --shard`` and ``tail`` as real subprocesses, on a real redis-server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import pytest
import redis.asyncio as aioredis
from _helpers import DEADLINE, run, spawn, token_env
from _redis_server import RedisServer

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


# -- issue 25: the URL from the environment, refusals, foreign data ---------------------

PASSWORD = "S3cret-canary-7f1c"


async def _require_password(server: RedisServer) -> str:
    """The server now wants PASSWORD; the URL that carries it."""
    async with aioredis.Redis.from_url(server.url) as r:
        await r.config_set("requirepass", PASSWORD)
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read().replace(b"\0", b" ").decode()


async def test_the_redis_url_from_the_environment_stays_out_of_ps_and_every_output(
    sim: Simulator, redis_server: RedisServer
) -> None:
    url = await _require_password(redis_server)
    environ = token_env(sim) | {"FLIPKART_OTC_REDIS_URL": url}
    worker = await spawn(
        "watch", "LOC1", "--base-url", sim.base_url, "--interval", "0.2", "--sink",
        "--stream", "s5", "--format", "json", environ=environ,
    )  # fmt: skip
    assert worker.stdout is not None and worker.stderr is not None
    said = (await asyncio.wait_for(worker.stderr.readline(), DEADLINE)).decode()
    assert "resumed from redis://***@127.0.0.1:" in said
    assert "--sink" in _cmdline(worker.pid) and PASSWORD not in _cmdline(worker.pid)
    first = await asyncio.wait_for(worker.stdout.readline(), DEADLINE)
    worker.terminate()
    out, err = await asyncio.wait_for(worker.communicate(), DEADLINE)
    assert worker.returncode == 0
    assert PASSWORD not in (said + first.decode() + out.decode() + err.decode())

    reader = await spawn("tail", "--stream", "s5", "--from-start", "--count", "1",
                         environ=environ)  # fmt: skip
    assert PASSWORD not in _cmdline(reader.pid)
    out, err = await asyncio.wait_for(reader.communicate(), DEADLINE)
    assert reader.returncode == 0, err
    assert json.loads(out)["event"] == json.loads(first)["event"]
    assert PASSWORD not in (out + err).decode()

    page = await spawn("dashboard", "--source", "--stream", "s5", "--port", "0",
                       environ=environ)  # fmt: skip
    assert page.stdout is not None
    line = (await asyncio.wait_for(page.stdout.readline(), DEADLINE)).decode()
    assert "1 locations from redis://***@127.0.0.1:" in line and PASSWORD not in line
    assert PASSWORD not in _cmdline(page.pid)
    page.terminate()
    out, err = await asyncio.wait_for(page.communicate(), DEADLINE)
    assert PASSWORD not in (out + err).decode()

    for command in ("watch", "dashboard", "tail"):
        code, helped, _ = await run(command, "--help")
        assert code == 0 and "FLIPKART_OTC_REDIS_URL" in helped, command
    code, printed, said = await run("tail", "--count", "1")  # no URL, no variable
    assert (code, printed) == (2, "") and "FLIPKART_OTC_REDIS_URL is not set" in said


async def test_a_refused_password_or_permission_exits_1_on_one_line(
    sim: Simulator, redis_server: RedisServer
) -> None:
    url = await _require_password(redis_server)
    async with aioredis.Redis.from_url(url) as r:
        # a user who may only ping: every command of ours is refused (NOPERM)
        await r.acl_setuser(
            "pinger", enabled=True, passwords=["+Pinger-pw-1"], commands=["+ping"], keys=["*"]
        )
    base = f"127.0.0.1:{redis_server.port}/0"
    wrong, missing = f"redis://:Wr0ng-pw-2@{base}", f"redis://{base}"
    pinger = f"redis://pinger:Pinger-pw-1@{base}"
    cases = [
        ("tail", wrong, "--duration", "20"),
        ("tail", missing, "--duration", "20"),
        ("tail", pinger, "--duration", "20"),
        ("dashboard", "--source", wrong, "--port", "0", "--duration", "20"),
        ("dashboard", "--source", pinger, "--port", "0", "--duration", "20"),
        ("watch", "LOC1", "--base-url", sim.base_url, "--sink", wrong, "--duration", "20"),
        ("watch", "LOC1", "--base-url", sim.base_url, "--sink", pinger, "--duration", "20"),
    ]
    results = await asyncio.gather(*(run(*case, environ=token_env(sim)) for case in cases))
    for case, (code, out, err) in zip(cases, results, strict=True):
        lines = err.splitlines()
        assert code == 1 and "dashboard: http" not in out, (case, err)
        assert len(lines) == 1 and "refused" in lines[0], (case, err)
        assert "Traceback" not in err and "retrying" not in err and "a bug" not in err
        for secret in (PASSWORD, "Wr0ng-pw-2", "Pinger-pw-1"):
            assert secret not in out + err, case


@pytest.mark.parametrize("query", ["socket_timeout=abc", "db=x", "no_such_option=1"])
async def test_a_bad_option_in_the_redis_url_is_a_usage_error(query: str) -> None:
    url = f"redis://:hunter2@127.0.0.1:1/0?{query}"
    for args in (["tail", url], ["dashboard", "--source", url, "--port", "0"],
                 ["watch", "LOC1", "--token", "t", "--sink", url]):  # fmt: skip
        code, out, err = await run(*args)
        assert (code, out) == (2, ""), (args, err)
        assert "bad Redis URL" in err and query.split("=")[0] in err, err
        assert "hunter2" not in err and "Traceback" not in err and "a bug" not in err
    code, _, err = await run("tail", environ={**token_env_free(), "FLIPKART_OTC_REDIS_URL": url})
    assert code == 2 and "bad Redis URL" in err and "hunter2" not in err


def token_env_free() -> dict[str, str]:
    from _helpers import env

    return env()


FOREIGN = [
    {"id": "a" * 32, "location": "L0", "event": "5"},
    {"id": "b" * 32, "location": "L0", "event": "[" * 100_000 + "]" * 100_000},
    {"id": "c" * 32, "location": "L0", "event": '{"x": ' * 5_000 + "1" + "}" * 5_000},
    {"id": "d" * 32, "location": "L0", "event": '["event", "location_id"]'},
    {"id": "e" * 32, "location": "L0"},
    {"id": b"\xff\xfe", "location": "L0", "event": "{}"},
]
GOOD = {"event": "location_status_changed", "location_id": "L1", "status": "NO_TASK"}


async def _foreign_then_good(server: RedisServer, stream: str) -> None:
    async with aioredis.Redis.from_url(server.url) as r:
        for fields in FOREIGN:
            await r.xadd(stream, fields)  # type: ignore[arg-type]
        await r.xadd(stream, {"id": "f" * 32, "location": "L1", "event": json.dumps(GOOD)})


async def test_tail_skips_what_is_not_an_event_with_a_line_each(
    redis_server: RedisServer,
) -> None:
    await _foreign_then_good(redis_server, "s7")
    code, out, err = await run("tail", redis_server.url, "--stream", "s7", "--from-start",
                               "--count", "1")  # fmt: skip
    assert code == 0, err
    assert [json.loads(line)["location_id"] for line in out.splitlines()] == ["L1"]
    lines = err.splitlines()
    assert len(lines) == len(FOREIGN) and all("is not an event" in x for x in lines), err
    assert "Traceback" not in err and "a bug" not in err
    # in a group each is acknowledged: a consumer that comes back is not stuck on them
    args = ["tail", redis_server.url, "--stream", "s7", "--group", "g", "--consumer", "c"]
    code, out, err = await run(*args, "--from-start", "--count", "1")
    assert code == 0 and json.loads(out)["location_id"] == "L1", err
    async with aioredis.Redis.from_url(redis_server.url) as r:
        pending: Any = await r.xpending("s7", "g")
        assert pending["pending"] == 0
        await r.xadd("s7", {"id": "1" * 32, "location": "L2", "event": "5"})
        await r.xadd("s7", {"id": "2" * 32, "location": "L2", "event": json.dumps(GOOD)})
    code, out, err = await run(*args, "--count", "1")
    assert code == 0 and json.loads(out)["location_id"] == "L1" and err.count("not an event") == 1


async def test_a_dashboard_of_the_stream_survives_foreign_entries_and_keys(
    redis_server: RedisServer,
) -> None:
    from datetime import UTC, datetime

    import aiohttp
    from _helpers import Stream

    from flipkart_otc import LocationStatus, LocationStatusChanged, LocationView
    from flipkart_otc.sinks import RedisStreamSink

    async with RedisStreamSink(redis_server.url, stream="s8") as sink:
        await sink.load(["LOC9"])
        event = LocationStatusChanged("LOC9", datetime.now(UTC), LocationStatus.NO_TASK)
        await sink.write([event], LocationView("LOC9", LocationStatus.NO_TASK, None))
        assert await sink.flush(10)
    async with aioredis.Redis.from_url(redis_server.url) as r:
        await r.set("s8:loc:junk", "a string, not a hash")
        await r.hset("s8:loc:garbled", mapping={"state": "{not json", "ver": 1})
        await r.rpush("s8:loc:alist", "x")
    page = await spawn("dashboard", "--source", redis_server.url, "--stream", "s8",
                       "--port", "0")  # fmt: skip
    assert page.stdout is not None and page.stderr is not None
    line = (await asyncio.wait_for(page.stdout.readline(), DEADLINE)).decode()
    assert "1 locations from redis://127.0.0.1:" in line, line
    url = line.split()[2]
    overflow = GOOD | {"location_id": "L3", "observed_at": "0001-01-01T00:00:00+01:00"}
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "events") as response:
            stream = Stream(response)
            assert (await stream.next())["event"] == "snapshot"
            await _foreign_then_good(redis_server, "s8")  # GOOD has no time: skipped too
            async with aioredis.Redis.from_url(redis_server.url) as r:
                bad = {"id": "9" * 32, "location": "L3", "event": json.dumps(overflow)}
                await r.xadd("s8", bad)  # type: ignore[arg-type]
                good = GOOD | {"location_id": "L4", "observed_at": "2026-01-01T00:00:00Z"}
                await r.xadd("s8", {"id": "8" * 32, "location": "L4", "event": json.dumps(good)})
            arrived = await stream.next()
            assert arrived["data"]["location_id"] == "L4"
        async with http.get(url + "healthz") as response:
            health = await response.json()
            assert response.status == 200 and health["running"] is True
            assert health["locations"] == {"NO_TASK": 2}
    page.terminate()
    _, err = await asyncio.wait_for(page.communicate(), DEADLINE)
    assert await page.wait() == 0
    said = err.decode()
    for key in ("s8:loc:junk", "s8:loc:garbled", "s8:loc:alist"):
        assert said.count(key) == 1, said
    assert said.count("skipped") == 3 + len(FOREIGN) + 2  # keys; entries; no time, overflow
    assert "Traceback" not in said and "a bug" not in said


async def test_a_dashboard_of_the_stream_exits_1_when_redis_refuses_it_later(
    redis_server: RedisServer,
) -> None:
    """The password changes while it runs: the feed's next connection is refused."""
    url = await _require_password(redis_server)
    page = await spawn("dashboard", "--source", url, "--port", "0")
    assert page.stdout is not None
    line = (await asyncio.wait_for(page.stdout.readline(), DEADLINE)).decode()
    assert "0 locations from redis://***@" in line
    async with aioredis.Redis.from_url(url) as r:
        await r.config_set("requirepass", "An0ther-pw-3")
        await r.client_kill_filter(_type="normal", skipme=True)
    _, err = await asyncio.wait_for(page.communicate(), DEADLINE)
    said = err.decode()
    # the connections killed: an outage (one line), then the refusal ends it (one line)
    assert page.returncode == 1 and "refused" in said.splitlines()[-1], said
    assert len(said.splitlines()) <= 2
    assert PASSWORD not in said and "An0ther-pw-3" not in said and "Traceback" not in said


async def test_a_foreign_id_key_stops_a_worker_with_one_line(
    sim: Simulator, redis_server: RedisServer
) -> None:
    async with aioredis.Redis.from_url(redis_server.url) as r:
        await r.set("s9:idkey", "not hex at all")
    code, _, err = await run(
        "watch", "LOC1", "--base-url", sim.base_url, "--sink", redis_server.url,
        "--stream", "s9", "--duration", "20", environ=token_env(sim),
    )  # fmt: skip
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "s9:idkey is not an id key" in err and "a bug" not in err


async def test_a_redis_url_whose_database_is_not_a_number_is_a_usage_error() -> None:
    code, out, err = await run("tail", "redis://:hunter2@127.0.0.1:1/events")
    assert (code, out) == (2, "") and "database in a Redis URL is a number" in err
    assert "hunter2" not in err
