"""Beyond one process: what one Redis sink writes, and what a second shard worker adds.

    python benchmarks/bench_fleet.py [--quick] [--only sink|shards] [--rounds 5]

(a) sink: events per second one ``RedisStreamSink`` writes to a private redis-server
    (Debian's, started here, ``appendfsync always``), 64 writers at once (a watcher's
    pollers), one event per write: batched in pipelines (the default, 256 writes a
    pipeline) against one write per round trip (``batch=1``), side by side,
    alternating; and batched with writers that do not wait (what the sink does while
    Redis is slow).
(b) shards: polls per second at saturation (``interval=0``) of one worker process
    watching every location, against two worker processes (``Shard(0, 2)`` and
    ``Shard(1, 2)``) watching half each, alternating, against one bare asyncio server
    (``--server raw`` of bench_watcher: it costs next to nothing per request). Printed:
    the rate of each, the ratio (target >= 1.8), polls per second of worker CPU, and
    each worker's memory per location (target: unchanged). On a machine with two cores
    the server shares them with the workers, and two busy processes may not do twice
    the work of one at all: the script measures that ceiling too (two pure-Python
    loops against one), and polls per worker CPU-second say what a core per worker
    gives.
(c) visit: what the sink sends Redis per event, Start OTC arrivals beside scanned
    shipments (whose writes carry the FE's visit state): Redis commands and bytes
    received, from Redis's own counters.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _harness import (
    QUICK_SECONDS,
    TOKEN,
    add_quick_option,
    machine,
    rss_bytes,
    server,
    server_count,
    table,
)

from flipkart_otc import (
    FeArrived,
    Lob,
    LocationStatus,
    LocationStatusChanged,
    LocationView,
    OtcClient,
    OtcDetail,
    OtcSnapshot,
    OtcWatcher,
    PollPolicy,
    RetryPolicy,
    Shard,
)

# -- (a) the sink ------------------------------------------------------------------------


async def sink_rate(
    url: str, events: int, batch: int, writers: int = 64, patience: float = 1.0
) -> float:
    """Events per second through one sink: each writer waits for its write (up to
    ``patience``: 0 leaves each queued, as writers do while Redis is slow)."""
    from flipkart_otc.sinks import RedisStreamSink

    at = datetime.now(UTC)
    stream = f"bench:{batch}:{time.monotonic_ns()}"
    async with RedisStreamSink(
        url, stream=stream, batch=batch, maxlen=None, patience=patience, max_backlog=events
    ) as sink:
        locations = [f"LOC{i}" for i in range(writers)]
        await sink.load(locations)

        async def writer(location_id: str, count: int) -> None:
            for n in range(count):
                detail = OtcDetail(
                    f"fe{n}", "Ram", "t1", "123456", at + timedelta(minutes=5), at,
                    "eKart", Lob.LARGE, "LARGE",
                )  # fmt: skip
                snapshot = OtcSnapshot(location_id, at, {detail.fe_id: detail})
                view = LocationView(location_id, LocationStatus.ACTIVE, snapshot)
                await sink.write([FeArrived(location_id, at, detail.fe_id, detail)], view)

        started = time.perf_counter()
        await asyncio.gather(*(writer(loc, events // writers) for loc in locations))
        assert await sink.flush(600)
        took = time.perf_counter() - started
        assert sink.written == events // writers * writers
    return sink.written / took


def run_sink(quick: bool, rounds: int) -> str:
    if shutil.which("redis-server") is None:
        return "(a) sink: skipped, no redis-server (apt-get install redis-server)"
    from _redis_server import RedisServer

    events = 500 if quick else 40_000
    rows: list[tuple[float, float]] = []
    unwaited: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp))
        redis.start()
        try:
            for _ in range(1 if quick else rounds):
                batched = asyncio.run(sink_rate(redis.url, events, 256))
                single = asyncio.run(sink_rate(redis.url, events // 4, 1))
                queued = asyncio.run(sink_rate(redis.url, events, 256, patience=0))
                rows.append((batched, single))
                unwaited.append(queued)
        finally:
            redis.kill()
    ratios = sorted(b / s for b, s in rows)
    body = table(
        ["writes", "events/s (median)", "ratio batched / one a trip"],
        [
            ["batched (256 a pipeline)", f"{statistics.median(b for b, _ in rows):9.0f}",
             f"{statistics.median(ratios):.1f} ({ratios[0]:.1f}-{ratios[-1]:.1f})"],
            ["one per round trip", f"{statistics.median(s for _, s in rows):9.0f}", ""],
            ["batched, writers not waiting", f"{statistics.median(unwaited):9.0f}", ""],
        ],
    )  # fmt: skip
    return (
        f"(a) sink: {events} events, 64 writers, appendfsync always, "
        f"{len(rows)} alternating rounds\n{body}"
    )


async def sink_cost(url: str, kind: str, events: int = 2_000) -> tuple[float, float]:
    """Redis commands and bytes received by Redis per event, writing ``kind`` events
    ("start": FE arrivals; "visit": scanned shipments, each write's state holding the
    FE's visit, 20 shipments told) one a write, as a watcher's pollers do."""
    from redis.asyncio import Redis

    from flipkart_otc import ScannedShipment, ShipmentScanned, ShipmentStatus, VisitView
    from flipkart_otc.sinks import RedisStreamSink

    at = datetime.now(UTC)
    stream = f"cost:{kind}:{time.monotonic_ns()}"
    detail = OtcDetail(
        "fe1", "Ram", "t1", "123456", at + timedelta(minutes=5), at, "eKart", Lob.LARGE, "LARGE"
    )
    async with Redis.from_url(url) as r, RedisStreamSink(url, stream=stream, maxlen=None) as sink:
        locations = [f"LOC{i}" for i in range(64)]
        await sink.load(locations)
        await sink.flush(60)
        before: Any = await r.info("all")

        async def writer(location_id: str, count: int) -> None:
            snapshot = OtcSnapshot(location_id, at, {"fe1": detail})
            for n in range(count):
                if kind == "start":
                    view = LocationView(location_id, LocationStatus.ACTIVE, snapshot)
                    event: Any = FeArrived(location_id, at, f"fe{n}", detail)
                else:
                    ids = frozenset(f"FMP123456-{i:04d}" for i in range(20))
                    visit = VisitView(
                        "fe2", "t2", "Ravi", "eKart", "scanning", at, 20, 1,
                        tracking_ids=ids, cursor="/sellers/v3/returns/tasks/shipments/eyJ0In0=",
                    )  # fmt: skip
                    visits = (visit,)
                    view = LocationView(location_id, LocationStatus.ACTIVE, snapshot, None, visits)
                    shipment = ScannedShipment(
                        f"FMP123456-{n:04d}", f"SH{n}", ShipmentStatus.ACCEPTED, "ACCEPTED",
                        None, at,
                    )  # fmt: skip
                    event = ShipmentScanned(location_id, at, "fe2", "t2", shipment=shipment)
                await sink.write([event], view)

        await asyncio.gather(*(writer(loc, events // len(locations)) for loc in locations))
        assert await sink.flush(600)
        after: Any = await r.info("all")
    written = events // len(locations) * len(locations)
    commands = after["total_commands_processed"] - before["total_commands_processed"]
    received = after["total_net_input_bytes"] - before["total_net_input_bytes"]
    return commands / written, received / written


def run_visit_cost(quick: bool) -> str:
    if shutil.which("redis-server") is None:
        return "(c) visit events: skipped, no redis-server (apt-get install redis-server)"
    from _redis_server import RedisServer

    events = 640 if quick else 6_400
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp))
        redis.start()
        try:
            rows = []
            for kind in ("start", "visit"):
                commands, received = asyncio.run(sink_cost(redis.url, kind, events))
                rows.append([kind, f"{commands:.2f}", f"{received:,.0f} B"])
        finally:
            redis.kill()
    return (
        f"(c) what the sink sends Redis per event ({events} events, one a write, 64 writers;"
        " Redis's own counters)\n"
        + table(["events", "Redis commands / event", "bytes received / event"], rows)
    )


# -- (b) shards ----------------------------------------------------------------------------


def worker(origin: str, ids: list[str], seconds: float, conn: Any) -> None:
    """One shard worker: poll ``ids`` flat out, say when each was polled once (and the
    memory that took), then on "go" measure its CPU over ``seconds``."""

    async def main() -> None:
        before = rss_bytes()
        async with (
            OtcClient(TOKEN, base_url=origin + "/sellers", retry=RetryPolicy(max_tries=1)) as c,
            OtcWatcher(c, ids, interval=0, policy=PollPolicy.fixed(), jitter=0) as watcher,
        ):

            polled = asyncio.Event()

            async def drain() -> None:  # read the events, or they block the pollers
                first_polls = 0
                async for event in watcher:
                    if isinstance(event, LocationStatusChanged) and event.previous is None:
                        first_polls += 1  # each location's first poll says so
                        if first_polls == len(ids):
                            polled.set()

            reader = asyncio.create_task(drain())
            await polled.wait()
            per_location = (rss_bytes() - before) / len(ids)
            loop = asyncio.get_running_loop()
            conn.send(per_location)
            await loop.run_in_executor(None, conn.recv)  # "go"
            cpu = time.process_time()
            await asyncio.sleep(seconds)
            conn.send(time.process_time() - cpu)
            reader.cancel()

    asyncio.run(main())


def shards_phase(origin: str, ids: list[str], count: int, seconds: float) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for index in range(count):
        parent, child = ctx.Pipe()
        mine = Shard(index, count).select(ids)
        proc = ctx.Process(target=worker, args=(origin, mine, seconds, child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    for pipe in pipes:
        if not pipe.poll(300):
            raise RuntimeError("a shard worker did not start")
    memory = [pipe.recv() for pipe in pipes]
    first = asyncio.run(server_count(origin))
    for pipe in pipes:
        pipe.send("go")
    started = time.perf_counter()
    cpu = sum(pipe.recv() for pipe in pipes)
    took = time.perf_counter() - started
    polls = asyncio.run(server_count(origin)) - first
    for proc in procs:
        proc.terminate()
        proc.join(10)
    return {
        "rate": polls / took,
        "per_cpu": polls / cpu,
        "memory": statistics.mean(memory),
    }


def spin(seconds: float, conn: Any) -> None:
    """Pure-Python work for ``seconds``; sends how much was done."""
    done, stop = 0, time.perf_counter() + seconds
    while time.perf_counter() < stop:
        for _ in range(10_000):
            done += 1
    conn.send(done)


def ceiling(processes: int, seconds: float) -> float:
    """Work ``processes`` CPU-bound processes do at once (the machine's own scaling)."""
    ctx = multiprocessing.get_context("spawn")
    pipes = []
    for _ in range(processes):
        parent, child = ctx.Pipe()
        ctx.Process(target=spin, args=(seconds, child), daemon=True).start()
        pipes.append(parent)
    return float(sum(pipe.recv() for pipe in pipes))


def run_shards(quick: bool, rounds: int) -> str:
    locations = 500 if quick else 20_000
    seconds = 4 * QUICK_SECONDS if quick else 10.0
    ids = [f"LOC{i}" for i in range(locations)]
    pairs: list[tuple[dict[str, float], dict[str, float]]] = []
    machine_ratios: list[float] = []  # what two busy processes do against one, here
    with server(k=2, mode="static", kind="raw", cpu=None) as origin:
        for _ in range(1 if quick else rounds):
            one = shards_phase(origin, ids, 1, seconds)
            two = shards_phase(origin, ids, 2, seconds)
            pairs.append((one, two))
            machine_ratios.append(ceiling(2, seconds / 2) / ceiling(1, seconds / 2))

    def med(side: int, key: str) -> float:
        return statistics.median(pair[side][key] for pair in pairs)

    ratios = sorted(two["rate"] / one["rate"] for one, two in pairs)
    cpu_ratios = sorted(two["per_cpu"] / one["per_cpu"] for one, two in pairs)
    memory = sorted(two["memory"] / one["memory"] for one, two in pairs)
    body = table(
        ["workers", "polls/s", "polls per worker CPU-s", "bytes per location"],
        [
            ["1 (every location)", f"{med(0, 'rate'):8.0f}", f"{med(0, 'per_cpu'):8.0f}",
             f"{med(0, 'memory'):6.0f}"],
            ["2 (a shard each)", f"{med(1, 'rate'):8.0f}", f"{med(1, 'per_cpu'):8.0f}",
             f"{med(1, 'memory'):6.0f}"],
            ["ratio 2 / 1 (median)", f"{statistics.median(ratios):5.2f}",
             f"{statistics.median(cpu_ratios):5.2f}", f"{statistics.median(memory):5.2f}"],
            ["range", f"{ratios[0]:.2f}-{ratios[-1]:.2f}",
             f"{cpu_ratios[0]:.2f}-{cpu_ratios[-1]:.2f}", f"{memory[0]:.2f}-{memory[-1]:.2f}"],
        ],
    )  # fmt: skip
    machine_ratios.sort()
    return (
        f"(b) shards: {locations} locations, interval=0, raw server (2 FEs, same answer), "
        f"{seconds:g} s a phase, {len(pairs)} alternating rounds\n{body}\n"
        f"this machine's own ceiling: two CPU-bound processes do "
        f"{statistics.median(machine_ratios):.2f}x the work of one "
        f"({machine_ratios[0]:.2f}-{machine_ratios[-1]:.2f}), with nothing else running"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_quick_option(parser)
    parser.add_argument("--only", choices=("sink", "shards", "visit"), help="one part")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (5)")
    args = parser.parse_args()
    print(machine())
    if args.only in (None, "sink"):
        print(run_sink(args.quick, args.rounds), "\n", sep="")
    if args.only in (None, "shards"):
        print(run_shards(args.quick, args.rounds), "\n", sep="")
    if args.only in (None, "visit"):
        print(run_visit_cost(args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
