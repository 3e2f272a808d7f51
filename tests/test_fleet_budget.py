"""The rate limit is the application's, also in a fleet: two ``watch --sink --shard i/2
--rate-limit R`` processes polling flat out against one API on 127.0.0.1, with a real
``redis-server`` between them (and without it, each keeps to R/2)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import DEADLINE, env, serve
from _redis_server import RedisServer
from aiohttp import web

from flipkart_otc import RateLimit
from flipkart_otc.sinks import RedisRateLimiter

RATE, BURST = 10, 2
RETRY_AFTER = 2.0
PATH = "/sellers/v3/returns/otc/start/details"


def most_in_a_second(times: list[float]) -> int:
    times = sorted(times)
    most, j = 0, 0
    for i, at in enumerate(times):  # every one-second window from a request on
        while j < len(times) and times[j] < at + 1.0:
            j += 1
        most = max(most, j - i)
    return most


async def start_workers(origin: str, sink: str, ids: Path) -> list[asyncio.subprocess.Process]:
    workers = []
    for shard in range(2):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flipkart_otc", "watch", "--locations-file", str(ids),
            "--base-url", origin + "/sellers", "--interval", "0", "--fixed-interval",
            "--rate-limit", f"{RATE}/{BURST}", "--sink", sink, "--shard", f"{shard}/2",
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=env(FLIPKART_ACCESS_TOKEN="fleet-token"),
        )  # fmt: skip
        workers.append(process)
    return workers


async def stop(workers: list[asyncio.subprocess.Process]) -> None:
    for process in workers:
        if process.returncode is None:
            process.terminate()
    for process in workers:
        await asyncio.wait_for(process.wait(), DEADLINE)


async def test_two_shard_workers_share_one_rate_limit_and_one_429_pause(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(f"LOC{i}" for i in range(40)))
    arrivals: list[float] = []
    refused_at: list[float] = []
    done = asyncio.Event()

    async def api(request: web.Request) -> web.Response:
        now = time.monotonic()
        arrivals.append(now)
        if len(arrivals) == 60:  # well into the run, both workers flat out
            refused_at.append(now)
            return web.json_response(
                {"errorCode": "TOO_MANY_REQUESTS", "message": "slow down"},
                status=429,
                headers={"Retry-After": f"{RETRY_AFTER:g}"},
            )
        if refused_at and now > refused_at[0] + RETRY_AFTER + 3:
            done.set()
        return web.json_response({"otcDetails": {}})

    async with serve({("POST", PATH): api}) as origin:
        workers = await start_workers(origin, redis_server.url, ids)
        try:
            await asyncio.wait_for(done.wait(), DEADLINE)
        finally:
            await stop(workers)
    for process in workers:
        assert process.stderr is not None
        err = (await process.stderr.read()).decode()
        assert "Traceback" not in err and "unexpected error" not in err, err
    # together under R (with the burst) in every one-second window
    assert most_in_a_second(arrivals) <= RATE + BURST
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert rate <= RATE * 1.05  # flat out, but the fleet's R in all (not 2 x R)
    # the 429 to one worker stopped both for its Retry-After (what was already on the
    # wire when it came may land just after it)
    t = refused_at[0]
    during = [at for at in arrivals if t + 0.1 <= at < t + RETRY_AFTER - 0.05]
    assert during == []
    assert [at for at in arrivals if at >= t + RETRY_AFTER]  # and both went on after it


async def test_without_redis_each_worker_keeps_to_its_part_of_the_rate(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = redis_server.url
    redis_server.kill()  # unreachable from the start
    limiter = RedisRateLimiter(url, RateLimit(RATE, burst=BURST), workers=2)
    try:
        turns = [await limiter.acquire() for _ in range(3)]
        assert limiter.degraded
        # R/2 with the burst halved (rounded up): one at once, then one every 0.2 s
        assert turns[0] == 0
        assert turns[1] == pytest.approx(2 / RATE, abs=0.02)
        await limiter.hold(5.0)
        assert await limiter.acquire() == pytest.approx(5.0, abs=0.05)
    finally:
        await limiter.aclose()
    warned = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warned) == 1 and ":S3" not in warned[0].getMessage()


# -- the CLI's options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--rate-limit", "abc"), "expected R or R/BURST"),
        (("--rate-limit", "0"), "rate must be a positive number"),
        (("--rate-limit", "1e-320"), "between 1e-06 and 1e+06"),
        (("--rate-limit", "5/0"), "burst must be >= 1"),
        (("--rate-limit", "5/" + "9" * 400), "burst must be >= 1 and <= 1,000,000"),
        (("--rate-limit", "5/x"), "expected R or R/BURST"),
        (("--rate-limit", "5", "--budget-share", "0"), "must be > 0 and <= 1"),
        (("--rate-limit", "5", "--budget-share", "1.5"), "between 0 and 1"),
        (("--budget-share", "0.5"), "--budget-share needs --rate-limit"),
    ],
)
@pytest.mark.parametrize("command", ["watch", "dashboard"])
async def test_bad_budget_options_are_one_line_and_exit_2(
    command: str, options: tuple[str, ...], message: str
) -> None:
    code, _, err = await run_cli(
        command, "LOC1", "--base-url", "http://127.0.0.1:9/sellers", "--duration", "5", *options
    )
    assert code == 2, err
    assert message in err.strip().splitlines()[-1]  # the last line says what is wrong
    assert "Traceback" not in err


async def test_watch_spends_its_budget_share_of_the_rate_limit() -> None:
    arrivals: list[float] = []

    async def api(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        return web.json_response(
            {"errorCode": "TRIPSHEET_TASK_NOT_FOUND", "message": "no task"}, status=400
        )

    async with serve({("POST", PATH): api}) as origin:
        code, _, err = await run_cli(
            "watch", *(f"LOC{i}" for i in range(60)), "--base-url", origin + "/sellers",
            "--interval", "0.1", "--rate-limit", "20/2", "--budget-share", "0.25",
            "--duration", "4",
        )  # fmt: skip
    assert code == 0, err
    # 60 idle locations polled at 5 a second (a quarter of 20), not 600 nor 20
    assert most_in_a_second(arrivals) <= 5 + 2
    assert 12 <= len(arrivals) <= 5 * 4 + 2


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flipkart_otc", *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env(FLIPKART_ACCESS_TOKEN="cli-token"),
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
