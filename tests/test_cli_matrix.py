"""Every combination of the options ``watch``, ``dashboard`` and ``fetch`` can meet, as real
processes against ``flipkart-otc simulate --visits`` and a real redis-server: each exits
as documented, with no traceback and no "a bug" line, and every JSON line validates
against the shipped schema. A combination of options is not new code: this walks them."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
from _helpers import DEADLINE, env, run, spawn
from _redis_server import RedisServer

from flipkart_otc import json_schema

DURATION = "5"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(json_schema())


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[str, dict[str, str]]]:
    """``flipkart-otc simulate --visits`` as a process: its base URL, and an environment
    with its token."""
    proc = await spawn(
        "simulate", "--visits", "--port", "0", "--locations", "12", "--speed", "40",
        "--seed", "3",
    )  # fmt: skip
    assert proc.stdout is not None
    banner = ""
    while "Ctrl+C" not in banner:
        line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE)
        assert line, banner
        banner += line.decode()
    base_url = re.search(r"base URL\s+(\S+)", banner)
    token = re.search(r"^\s*token\s+(\S+)$", banner, re.MULTILINE)
    assert base_url and token
    try:
        yield base_url[1], env(FLIPKART_ACCESS_TOKEN=token[1])
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), DEADLINE)


LOCATIONS = [f"LOC{i}" for i in range(1, 13)]


def clean(code: int, err: str, expected: int = 0) -> None:
    assert code == expected, err
    assert "Traceback" not in err and "a bug" not in err, err


async def test_every_combination_of_watch_and_dashboard_options_runs(
    simulator: tuple[str, dict[str, str]],
    redis_server: RedisServer,
    validator: jsonschema.protocols.Validator,
) -> None:
    base_url, environ = simulator
    common = ["--base-url", base_url, "--interval", "0.5", "--duration", DURATION]
    runs: list[tuple[tuple[str, ...], list[str]]] = []
    for visit, sink, shard, fmt in itertools.product((0, 1), (0, 1), (0, 1), ("text", "json")):
        args = ["watch", *LOCATIONS, *common, "--format", fmt]
        if visit:
            args += ["--visit", "--scan-interval", "0.5"]
        if sink:  # a stream each: two workers on one stream would fence each other
            args += ["--sink", redis_server.url, "--stream", f"w{visit}{shard}{fmt}"]
        if shard:
            args += ["--shard", "0/2"]
        runs.append((("watch", str(visit), str(sink), str(shard), fmt), args))
    for visit, sink, shard in itertools.product((0, 1), (0, 1), (0, 1)):
        args = ["dashboard", *LOCATIONS, *common, "--port", "0"]
        if visit:
            args += ["--visit", "--scan-interval", "0.5"]
        if sink:
            args += ["--sink", redis_server.url, "--stream", f"d{visit}{shard}"]
        if shard:
            args += ["--shard", "1/2"]
        runs.append((("dashboard", str(visit), str(sink), str(shard)), args))
    for visit, fmt in itertools.product((0, 1), ("table", "json")):
        args = ["fetch", *LOCATIONS, "--base-url", base_url, "--format", fmt]
        runs.append((("fetch", str(visit), fmt), [*args, "--visit"] if visit else args))

    gate = asyncio.Semaphore(4)  # two cores: a few processes at a time

    async def one(args: list[str]) -> tuple[int, str, str]:
        async with gate:
            return await run(*args, environ=environ)

    results = await asyncio.gather(*(one(args) for _, args in runs))
    kinds: set[str] = set()
    for (name, _), (code, out, err) in zip(runs, results, strict=True):
        # fetch exits 1 where a location fails: the simulator has none failing
        clean(code, err)
        if "json" in name:
            for line in out.splitlines():
                data = json.loads(line)
                if name[0] == "watch":
                    validator.validate(data)
                    kinds.add(data["event"])
        elif name[0] == "watch":
            assert out.strip(), (name, err)
        if name[0] == "dashboard":
            assert "flipkart-otc dashboard: http://127.0.0.1:" in out, (name, out, err)
    # the visits were seen, end to end, by the text and JSON paths alike
    assert {"scanning_started", "shipment_scanned"} <= kinds, kinds

    # a desk screen fed from the stream the workers wrote, with and without visits
    for stream in ("w00json", "w11text", "d10"):
        code, out, err = await run(
            "dashboard", "--source", redis_server.url, "--stream", stream, "--port", "0",
            "--duration", "2",
        )  # fmt: skip
        clean(code, err)
        assert "locations from" in out


async def test_the_stream_of_visit_workers_carries_the_visit(
    simulator: tuple[str, dict[str, str]], redis_server: RedisServer
) -> None:
    """What ``watch --visit --sink`` writes reads back as visit events with saved visit
    state, so a fleet follows visits and ``dashboard --source`` can show their stages."""
    import redis.asyncio as aioredis

    base_url, environ = simulator
    code, _, err = await run(
        "watch", *LOCATIONS, "--base-url", base_url, "--interval", "0.5", "--visit",
        "--scan-interval", "0.5", "--sink", redis_server.url, "--stream", "v",
        "--duration", "8", "--format", "json", environ=environ,
    )  # fmt: skip
    clean(code, err)
    async with aioredis.Redis.from_url(redis_server.url) as r:
        rows: Any = await r.xrange("v")
        states = [await r.hget(f"v:loc:{loc}", "state") for loc in LOCATIONS]
    kinds = {json.loads(f[b"event"])["event"] for _, f in rows}
    assert "shipment_scanned" in kinds, kinds
    assert any(s and b'"visits"' in s for s in states)  # saved with the location's state
