"""``OtcWatcher`` against the floor that aiohttp sets, on schedule, and in memory.

    python benchmarks/bench_watcher.py [--quick] [--speedups auto|off]
                                       [--only saturation,scheduled,memory,metrics]
                                       [--server aiohttp|raw]
                                       [--memory-over memory|http]

(a) saturation: ``OtcWatcher(interval=0, max_concurrency=16)`` over 256 locations
    against a bare aiohttp loop with 16 workers; polls counted by the server,
    pairs of phases alternating bare, watcher, bare, watcher ..., the median of
    the pairs' ratios. Targets: >= 0.90 at K=2 and K=20 changing, >= 1.00 at K=2
    static. ``--server raw`` answers from a bare asyncio protocol instead of the
    minimal aiohttp server, so that the client's own cost sets the rate.
(b) scheduled: 10,000 locations at a 10 s interval (jitter 0): achieved vs
    intended poll rate, schedule lag p50/p99 (target p99 < 1 s), and how late
    OtcExpired comes after the expiry instant, p50/p99 (target p99 < 100 ms).
(c) memory: RSS growth per watched location (2 FEs each) in a fresh process, once
    every location has been polled, at 10,000 and 100,000 locations (target
    <= 2 KiB per location at 100,000), and the pause of one full GC pass then.
    The answers come from memory (the transport keeps nothing per location);
    ``--memory-over http`` fetches them from the server instead.
(d) metrics: the saturation of (a) with metrics off and on (``observer=Metrics()`` on
    the client and the watcher, its subscription counting events), pairs of phases
    off, on (the order alternating), the median of the pairs' ratios; then what the
    hooks cost alone, and what one scrape costs (timed apart: once every 15 s or so).
    Target: within noise of off (about 1.00).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    CLIENT_CPU,
    FAR_FUTURE_MS,
    QUICK_SECONDS,
    TOKEN,
    Measured,
    add_quick_option,
    add_server_option,
    add_speedups_option,
    answer,
    bare_worker,
    machine,
    pairs_row,
    percentile,
    pin,
    rss_bytes,
    run_workers,
    server,
    server_count,
    table,
    use_speedups,
)

from flipkart_otc import (
    LocationStatusChanged,
    OtcClient,
    OtcExpired,
    OtcSource,
    OtcWatcher,
    RetryPolicy,
)
from flipkart_otc.client import START_OTC_PATH
from flipkart_otc.metrics import Metrics
from flipkart_otc.source import LegacySource


async def read_past_first_polls(watcher: OtcWatcher, count: int) -> asyncio.Task[None]:
    """Start a task that reads (and drops) the watcher's events; return it once ``count``
    locations have had their first poll. A watcher that stops first raises why."""
    polled = asyncio.Event()

    async def drain() -> None:
        statuses = 0
        try:
            async for event in watcher:
                if isinstance(event, LocationStatusChanged):
                    statuses += 1
                    if statuses == count:
                        polled.set()
        finally:
            polled.set()  # never leave the caller waiting on a watcher that stopped

    reader = asyncio.create_task(drain())
    await polled.wait()
    if reader.done():
        await reader
        raise RuntimeError(f"the watcher stopped before {count} first polls")
    return reader


# -- (a) saturation ------------------------------------------------------------------


#: What every watcher here is built with besides its locations: ``--visits`` turns the
#: visit on (with no FE past the Start OTC page, and no look for one at start: what it
#: costs a location then is what is measured; a look costs one initial-load, see
#: bench_visit).
WATCHER_OPTIONS: dict[str, Any] = {}


async def watcher_phase(
    client: OtcClient,
    origin: str,
    seconds: float,
    measured: Measured,
    metrics: Metrics | None = None,
) -> None:
    ids = [f"LOC{i}" for i in range(256)]
    async with contextlib.AsyncExitStack() as stack:
        watcher = await stack.enter_async_context(
            OtcWatcher(
                client,
                ids,
                interval=0,
                max_concurrency=16,
                observer=metrics,
                **WATCHER_OPTIONS,
            )
        )
        if metrics is not None:
            await stack.enter_async_context(metrics.attached(watcher))
        reader = await read_past_first_polls(watcher, len(ids))  # measure the polls after them
        before = await server_count(origin)
        with measured.phase():
            await asyncio.sleep(seconds)
        measured.requests += await server_count(origin) - before
        if metrics is not None:  # a scrape (every 15 s or so) is timed on its own
            scraped = time.perf_counter()
            metrics.render()
            SCRAPES.append(time.perf_counter() - scraped)
        reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)


async def bare_phase(
    one: Callable[[], Awaitable[None]], origin: str, seconds: float, measured: Measured
) -> None:
    before = await server_count(origin)
    with measured.phase():
        await run_workers(one, seconds)
    measured.requests += await server_count(origin) - before


async def saturation(origin: str, rounds: int, seconds: float) -> list[tuple[Measured, Measured]]:
    """``rounds`` pairs of phases, bare then watcher, measured one pair at a time."""
    pairs = []
    retry = RetryPolicy(max_tries=1)
    one = bare_worker(origin)
    await run_workers(one, 0.1)  # its connections are open before the first phase
    async with OtcClient(TOKEN, base_url=origin + "/sellers", retry=retry) as client:
        for _ in range(rounds):
            bare, ours = Measured(), Measured()
            await bare_phase(one, origin, seconds, bare)
            await watcher_phase(client, origin, seconds, ours)
            pairs.append((bare, ours))
    await one.close()  # type: ignore[attr-defined]
    return pairs


def run_saturation(quick: bool, kind: str) -> str:
    # Many short pairs, and the median of their ratios: a burst of noise from the shared
    # machine then spoils one pair, not the figure.
    rounds, seconds = (1, QUICK_SECONDS) if quick else (5, 0.6)
    rows = []
    for k, mode, target in ((2, "changing", 0.90), (20, "changing", 0.90), (2, "static", 1.00)):
        with server(k, mode, kind=kind) as origin:
            pairs = asyncio.run(saturation(origin, rounds, seconds))
        rows.append([*pairs_row(f"K={k} {mode}", pairs), f">= {target:.2f}"])
    header = [
        "answer",
        "bare polls/s",
        "watcher polls/s",
        "bare us",
        "watcher us",
        "ratio (median)",
        "range",
        "target",
    ]
    return (
        f"(a) saturation: 256 locations, interval=0, 16 in flight, {kind} server; {rounds} "
        f"pairs of {seconds:g}s phases (bare, watcher), medians\n" + table(header, rows)
    )


# -- (d) metrics ---------------------------------------------------------------------

SCRAPES: list[float] = []  # how long each render() of the metrics took


async def metrics_pairs(
    origin: str, rounds: int, seconds: float
) -> list[tuple[Measured, Measured]]:
    """``rounds`` pairs of watcher phases, metrics off then on, one pair at a time."""
    pairs = []
    retry = RetryPolicy(max_tries=1)
    metrics = Metrics()
    base_url = origin + "/sellers"
    async with (
        OtcClient(TOKEN, base_url=base_url, retry=retry) as off,
        OtcClient(TOKEN, base_url=base_url, retry=retry, observer=metrics) as on,
    ):
        for i in range(rounds):
            plain, measured = Measured(), Measured()
            if i % 2:  # the order alternates: neither side is always the warmer one
                await watcher_phase(on, origin, seconds, measured, metrics)
                await watcher_phase(off, origin, seconds, plain)
            else:
                await watcher_phase(off, origin, seconds, plain)
                await watcher_phase(on, origin, seconds, measured, metrics)
            pairs.append((plain, measured))
    return pairs


def hook_cost() -> float:
    """Microseconds the client's and the watcher's hooks cost per poll, alone."""
    metrics = Metrics()
    url = "http://127.0.0.1/sellers" + START_OTC_PATH
    count = 100_000
    started = time.perf_counter()
    for _ in range(count):
        metrics.request("POST", url, 200, 0.001)
        metrics.poll("answered", 0.002)
    return (time.perf_counter() - started) / count * 1e6


def run_metrics(quick: bool, kind: str) -> str:
    rounds, seconds = (2, QUICK_SECONDS) if quick else (16, 0.6)
    rows = []
    for k, mode in ((2, "changing"), (2, "static")):
        with server(k, mode, kind=kind) as origin:
            pairs = asyncio.run(metrics_pairs(origin, rounds, seconds))
        rows.append([*pairs_row(f"K={k} {mode}", pairs), "within noise of 1.00"])
    header = [
        "answer",
        "off polls/s",
        "on polls/s",
        "off us",
        "on us",
        "ratio on/off",
        "range",
        "target",
    ]
    return (
        f"(d) metrics: 256 locations, interval=0, 16 in flight, {kind} server; {rounds} "
        f"pairs of {seconds:g}s phases (off, on; the order alternating), medians\n"
        + table(header, rows)
        + f"\nthe hooks alone (a request and a poll told to Metrics): {hook_cost():.2f} us a poll"
        + f"; one scrape of 256 locations: {statistics.median(SCRAPES) * 1000:.1f} ms (median)"
    )


# -- (b) scheduled -------------------------------------------------------------------


async def scheduled(origin: str, count: int, interval: float, run: float) -> str:
    ids = [f"LOC{i}" for i in range(count)]
    arrivals: dict[str, list[float]] = defaultdict(list)
    late: list[float] = []

    class Recording(OtcClient):
        async def fetch_body(self, location_id: str, **kwargs: object) -> bytes:
            arrivals[location_id].append(time.time())
            return await super().fetch_body(location_id, **kwargs)  # type: ignore[arg-type]

    async with (
        Recording(TOKEN, base_url=origin + "/sellers", retry=RetryPolicy(max_tries=1)) as client,
        OtcWatcher(client, ids, interval=interval, jitter=0, max_concurrency=64) as watcher,
    ):

        async def drain() -> None:
            async for event in watcher:
                if isinstance(event, OtcExpired):
                    late.append(time.time() - event.detail.expires_at.timestamp())

        reader = asyncio.create_task(drain())
        start = time.time()
        await asyncio.sleep(run)
        reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    # whole intervals after the first (which starts the staggered polls), so that each
    # location is counted once per interval
    window_from, window_to = start + interval, start + interval * (run // interval)
    polls = sum(1 for times in arrivals.values() for t in times if window_from <= t < window_to)
    achieved = polls / (window_to - window_from)
    lags = [
        max(0.0, later - earlier - interval)
        for times in arrivals.values()
        for earlier, later in itertools.pairwise(times)
    ]
    rows = [
        [
            "poll rate (achieved / intended)",
            f"{achieved:.0f}/s / {count / interval:.0f}/s",
            f"{achieved / (count / interval):.3f}",
            "",
        ],
        [
            "schedule lag p50 / p99",
            f"{percentile(lags, 50) * 1000:.1f} ms / {percentile(lags, 99) * 1000:.1f} ms",
            f"{len(lags)} polls, max {max(lags, default=0) * 1000:.0f} ms",
            "p99 < 1000 ms",
        ],
        [
            "OtcExpired delay p50 / p99",
            f"{percentile(late, 50) * 1000:.1f} ms / {percentile(late, 99) * 1000:.1f} ms",
            f"{len(late)} expiries, max {max(late, default=0) * 1000:.0f} ms",
            "p99 < 100 ms",
        ],
    ]
    return (
        f"(b) scheduled: {count} locations, interval {interval:g}s, jitter 0, {run:g}s run\n"
        + table(["measure", "value", "", "target"], rows)
    )


def run_scheduled(quick: bool) -> str:
    count, interval, run = (200, 1.0, 5.0) if quick else (10_000, 10.0, 21.0)
    # Every code expires once, at its own millisecond, spread evenly over the whole
    # run: the watcher polls the locations in order over the first interval, so each
    # code is known at least 2 s before it expires (the server starts within 1 s).
    # Spread thin, one pause of the process (a full GC here) delays fewer than 1% of
    # them; the max column shows the longest.
    first_ms = int((time.time() + 3) * 1000)
    span_ms = int((run - 4) * 1000)
    step_ms = span_ms // (2 * count)
    locations = {f"LOC{i}": (first_ms + span_ms * i // count, step_ms) for i in range(count)}
    with server(2, "static", locations=locations) as origin:
        return asyncio.run(scheduled(origin, count, interval, run))


# -- (c) memory ----------------------------------------------------------------------


class InMemory:
    """Answers every location with the benchmark server's bytes, without a network.

    The memory run polls 100,000 locations once; over loopback HTTP that takes a
    minute on a slow machine, and the transport keeps nothing per location (its
    connection pool is per session), so the figure does not change: compare
    ``--memory-over http``.
    """

    def __init__(self, body: bytes) -> None:
        self._body = body

    def fetch_body(self, location_id: str) -> Awaitable[bytes]:  # an OtcSource
        return self._answer()

    async def _answer(self) -> bytes:
        await asyncio.sleep(0)  # a request's wait: the poll yields to the loop as over HTTP
        return self._body

    # the visit's endpoints, for --visits: never called (no FE leaves the page)
    async def initial_load(self, location_id: str, *, patience: float = 0.0) -> Any:
        raise NotImplementedError

    def shipment_pages(self, task_id: str, fe_id: str, **options: Any) -> Any:
        raise NotImplementedError

    async def end_otc_details(self, fe_id: str, task_id: str) -> Any:
        raise NotImplementedError


async def memory_child(origin: str | None, count: int) -> dict[str, float]:
    ids = [f"LOC{i}" for i in range(count)]
    async with contextlib.AsyncExitStack() as stack:
        client: OtcSource | LegacySource = InMemory(answer(2))
        if origin is not None:
            client = await stack.enter_async_context(
                OtcClient(TOKEN, base_url=origin + "/sellers", retry=RetryPolicy(max_tries=1))
            )
        for location_id in ids[:64]:  # warm the connection pool and every code path
            await client.fetch_body(location_id)
        base = rss_bytes()
        started = time.perf_counter()
        async with OtcWatcher(
            client, ids, interval=0, max_concurrency=64, **WATCHER_OPTIONS
        ) as watcher:
            reader = await read_past_first_polls(watcher, count)
            grown = rss_bytes() - base
            # what one full collection costs with every location held: the pause a
            # generation-2 pass puts on every poll and timer of the process
            paused = time.perf_counter()
            gc.collect()
            paused = time.perf_counter() - paused
            reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    seconds = time.perf_counter() - started - paused
    return {"per_location": grown / count, "seconds": seconds, "gc_ms": paused * 1000}


def run_memory(quick: bool, speedups: str, over: str) -> str:
    rows = []
    for count in (1_000,) if quick else (10_000, 100_000):
        with contextlib.ExitStack() as stack:
            origin = "-"
            if over == "http":
                locations = {f"LOC{i}": (FAR_FUTURE_MS, 0) for i in range(count)}
                origin = stack.enter_context(server(2, "static", locations=locations))
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--memory-child",
                    origin,
                    str(count),
                    "--speedups",
                    speedups,
                    *(["--visits"] if WATCHER_OPTIONS else []),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        data = json.loads(out.strip().splitlines()[-1])
        rows.append(
            [
                f"{count:,}",
                f"{data['per_location']:.0f} B ({data['per_location'] / 1024:.2f} KiB)",
                f"{data['seconds']:.1f}s",
                f"{data['gc_ms']:.0f} ms",
                "<= 2 KiB at 100,000",
            ]
        )
    return (
        f"(c) memory: RSS growth per location (2 FEs each), fresh process, answers over {over}\n"
        + table(["locations", "per location", "all polled in", "full GC pass", "target"], rows)
    )


PARTS = ("saturation", "scheduled", "memory", "metrics")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_quick_option(parser)
    add_speedups_option(parser)
    add_server_option(parser)
    parser.add_argument("--only", default=",".join(PARTS), help="the parts to run, by name")
    parser.add_argument(
        "--memory-over",
        choices=("memory", "http"),
        default="memory",
        help="(c) answers from memory (the default) or from the server over loopback HTTP",
    )
    parser.add_argument(
        "--memory-child", nargs=2, metavar=("ORIGIN", "COUNT"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--visits", action="store_true", help="watchers follow visits (visits=True)"
    )
    args = parser.parse_args()
    if args.visits:
        WATCHER_OPTIONS.update(visits=True, follow_existing=False)
    pin(CLIENT_CPU)
    speedups = use_speedups(args.speedups == "auto")
    if args.memory_child:
        origin, count = args.memory_child
        child_origin = None if origin == "-" else origin
        print(json.dumps(asyncio.run(memory_child(child_origin, int(count)))))
        return 0
    parts = set(args.only.split(","))
    if unknown := parts - set(PARTS):
        parser.error(
            f"--only: no part {', '.join(sorted(unknown))}; the parts: {', '.join(PARTS)}"
        )
    print(f"bench_watcher on {machine(speedups)}")
    if "saturation" in parts:
        print(run_saturation(args.quick, args.server))
    if "scheduled" in parts:
        print(run_scheduled(args.quick))
    if "memory" in parts:
        print(run_memory(args.quick, args.speedups, args.memory_over))
    if "metrics" in parts:
        print(run_metrics(args.quick, args.server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
