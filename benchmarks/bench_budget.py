"""Requests spent and detection latency: fixed 10 s polling against ``PollPolicy``.

    python benchmarks/bench_budget.py [--locations 1000] [--hours 24] [--seed 0]
                                      [--step 0.5] [--quick] [--policy NAME=k=v,...]
                                      [--lead MIN MEAN]

One seeded :class:`~flipkart_otc.simulator.DayScenario` (a day at a network of
warehouses: a share never has a task, visits cluster around milk runs) is played
once per policy, side by side, on a manual clock moved ``--step`` seconds at a time
(latencies are exact to that step). The watcher polls the simulator's world in
process (a day of 10 s polling at 1,000 locations is 8.6 million requests: over
HTTP that would take hours, and the transport is not what is measured here).

Printed per policy: requests, requests per FE event of the ground truth (arrivals,
renewals, departures), arrival detection latency (ground truth arrival ->
``FeArrived``) and renewal detection latency (ground truth renewal -> the event
that first carries the new code) p50/p95, and how many were never seen. Target:
the default policy makes at most a third of fixed 10 s polling's requests, with
arrival and renewal p95 no worse.

Part "cap" (``--only cap``): a watcher polling flat out through a client with
``rate_limit=RateLimit(50, burst=5)``, at 100, 1,000 and 10,000 locations, against a
server on 127.0.0.1 that stamps each request: the most requests it saw in any one-second
window (never more than rate + burst).

Part "share" (``--only share``): ``PollPolicy(budget_share=0.8)`` against today's
default, both through a client with ``rate_limit=RateLimit(R, burst=BURST)``, for R in
``--rates`` (2, 5, 20), on the "short lead" scenario (tasks open 0 s + mean 60 s before
their FE); and the seeded day at R = 20. The client's own pacing runs on the manual
clock (an ``OtcClient`` whose request is the world's answer in process). Printed: the
most requests in any one-second window against the cap, the arrival p50/p95 against
the bound ``0.95 N_idle / B_spare`` (N_idle: the idle locations, sampled every 10 s;
B_spare: the idle polls a second actually made), renewals, and arrivals never seen.

``--policy`` adds a variant, e.g. ``--policy idle60=idle=60``; ``--lead`` changes
how long before its FE a task opens (the one assumption the savings rest on).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import add_quick_option, percentile
from aiohttp import web

from flipkart_otc import (
    FeArrived,
    LocationStatus,
    ManualClock,
    OtcClient,
    OtcRenewed,
    OtcWatcher,
    PollPolicy,
    RateLimit,
    RetryPolicy,
)
from flipkart_otc._wire.common import error_from_answer
from flipkart_otc.errors import TaskNotFoundError, TripsheetClosedError
from flipkart_otc.simulator import ChangeKind, DayScenario, World

INTERVAL = 10.0


class WorldSource:
    """The simulator's answers, in process: the same bytes and errors as over HTTP."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.requests = 0

    async def fetch_body(self, location_id: str) -> bytes:
        self.requests += 1
        status, body = self.world.answer(location_id)
        if status != 200:
            raise error_from_answer(status, body, location_id)
        return body


class WorldClient(OtcClient):
    """An ``OtcClient`` whose requests are the world's answers in process, paced by the
    client's own rate limit, budget share and pauses on the manual clock."""

    def __init__(self, world: World, clock: ManualClock, limit: RateLimit) -> None:
        super().__init__(
            "bench",
            base_url="http://127.0.0.1:9/sellers",
            rate_limit=limit,
            clock=clock,
            retry=RetryPolicy(max_tries=1),
        )
        self.world = world
        self.clock = clock
        self.requests = 0
        self.idle_polls = 0  # answered "no task" or "closed"
        self.sent: list[float] = []

    async def fetch_body(
        self,
        location_id: str,
        *,
        task_type: str = "RETURN",
        patience: float = 0.0,
        share: float = 1.0,
    ) -> bytes:
        if share != 1.0:
            await self._lane(share).turn(location_id, patience)
        await self._pacer.turn(location_id, patience)
        self.requests += 1
        self.sent.append(self.clock.monotonic())
        status, body = self.world.answer(location_id)
        if status != 200:
            error = error_from_answer(status, body, location_id)
            if isinstance(error, TaskNotFoundError | TripsheetClosedError):
                self.idle_polls += 1
            raise error
        return body


async def settle(client: WorldClient, watcher: OtcWatcher) -> None:
    """Let every poll that can go at this instant go (a poll waiting for its turn under
    the cap waits for the clock, which ``wait_idle`` would wait for forever)."""
    last: tuple[int, int] | None = None
    quiet = 0
    while quiet < 4:
        await asyncio.sleep(0)
        mark = (client.requests, watcher.queued)
        quiet = quiet + 1 if mark == last else 0
        last = mark


def most_in_a_second(times: list[float]) -> int:
    most, j = 0, 0
    for i, start in enumerate(times):  # every one-second window from a request on
        while j < len(times) and times[j] < start + 1.0 - 1e-9:
            j += 1
        most = max(most, j - i)
    return most


async def play(
    scenario: DayScenario,
    policy: PollPolicy,
    hours: float,
    step: float,
    limit: RateLimit | None = None,
) -> dict[str, Any]:
    clock = ManualClock()
    world = World(clock, seed=scenario.seed)
    driver = scenario.driver(world, clock.time())
    source: WorldSource | WorldClient = (
        WorldSource(world) if limit is None else WorldClient(world, clock, limit)
    )
    idle_samples: list[int] = []
    next_sample = clock.time()
    end = clock.time() + hours * 3600
    first_seen: dict[tuple[str, str, str], float] = {}  # (loc, fe, otc) -> observed
    arrivals_seen: dict[tuple[str, str], float] = {}
    started = time.perf_counter()
    async with OtcWatcher(
        source,
        scenario.location_ids,
        interval=INTERVAL,
        clock=clock,
        policy=policy,
        queue_size=1 << 16,
        max_concurrency=256,
        seed=scenario.seed,
    ) as watcher:
        while clock.time() < end:
            driver.advance_to(clock.time())
            if isinstance(source, WorldClient):
                await settle(source, watcher)
            else:
                await watcher.wait_idle()
            if limit is not None and clock.time() >= next_sample:
                by_status = watcher.health().by_status
                idle_samples.append(
                    by_status.get(LocationStatus.NO_TASK.value, 0)
                    + by_status.get(LocationStatus.CLOSED.value, 0)
                )
                next_sample += 10.0
            for _ in range(watcher.queued):
                event = await anext(watcher)
                if isinstance(event, FeArrived | OtcRenewed):
                    at = event.observed_at.timestamp()
                    key = (event.location_id, event.fe_id, event.detail.otc)
                    first_seen.setdefault(key, at)
                    if isinstance(event, FeArrived):
                        arrivals_seen.setdefault((event.location_id, event.fe_id), at)
            clock.advance(step)
    truth = [c for c in world.history if c.at < end]
    kinds = Counter(c.kind for c in truth)
    arrival, renewal, missed = [], [], Counter[str]()
    for change in truth:
        if change.kind is ChangeKind.ARRIVED:
            seen = arrivals_seen.get((change.location_id, change.fe_id or ""))
            (arrival.append(seen - change.at) if seen else missed.update(["arrival"]))
        elif change.kind is ChangeKind.RENEWED:
            seen = first_seen.get((change.location_id, change.fe_id or "", change.otc or ""))
            (renewal.append(seen - change.at) if seen else missed.update(["renewal"]))
    fe_events = kinds[ChangeKind.ARRIVED] + kinds[ChangeKind.RENEWED] + kinds[ChangeKind.LEFT]
    paced: dict[str, Any] = {}
    if isinstance(source, WorldClient):
        n_idle = statistics.fmean(idle_samples) if idle_samples else 0.0
        b_spare = source.idle_polls / (hours * 3600)
        paced = {
            "most": most_in_a_second(source.sent),
            "n_idle": n_idle,
            "b_spare": b_spare,
            "bound": 0.95 * n_idle / b_spare if b_spare else math.inf,
        }
    return {
        **paced,
        "requests": source.requests,
        "per_event": source.requests / max(fe_events, 1),
        "arrival": arrival,
        "renewal": renewal,
        "missed": missed,
        "truth": kinds,
        "seconds": time.perf_counter() - started,
    }


def parse_variant(text: str) -> tuple[str, PollPolicy]:
    name, _, spec = text.partition("=")
    fields: dict[str, float | None] = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        fields[key] = None if value == "none" else float(value)
    return name, PollPolicy(**fields)  # type: ignore[arg-type]


async def cap(locations: int, limit: RateLimit, seconds: float) -> tuple[int, int, float]:
    """A watcher of ``locations`` polling as fast as it can (demand far above the cap)
    through a client with ``rate_limit=limit``, against a server on 127.0.0.1 that
    stamps each request: (requests, the most in any one-second window, their rate)."""
    arrivals: list[float] = []

    async def api(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        return web.Response(body=b'{"otcDetails": {}}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/sellers/v3/returns/otc/start/details", api)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}/sellers"
    ids = [f"LOC{i}" for i in range(locations)]
    async with (
        OtcClient("t", base_url=base, rate_limit=limit) as client,
        OtcWatcher(client, ids, interval=0, policy=PollPolicy.fixed(), max_concurrency=256),
    ):
        await asyncio.sleep(seconds)  # the run's length, not a wait for an outcome
    await runner.cleanup()
    most, j = 0, 0
    for i, start in enumerate(arrivals):  # every one-second window from a request on
        while j < len(arrivals) and arrivals[j] < start + 1.0:
            j += 1
        most = max(most, j - i)
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 1.0
    return len(arrivals), most, (len(arrivals) - 1) / span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locations", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--step", type=float, default=0.5)
    add_quick_option(parser)
    parser.add_argument("--policy", action="append", default=[], type=parse_variant)
    parser.add_argument(
        "--lead",
        type=float,
        nargs=2,
        metavar=("MIN", "MEAN"),
        help="from a task opening to its FE's arrival, seconds (the scenario's 600 3600)",
    )
    parser.add_argument(
        "--rates", default="2,5,20", help="part share: the rate limits (requests a second)"
    )
    parser.add_argument("--share", type=float, default=0.8, help="part share: budget_share")
    parser.add_argument("--burst", type=int, default=2, help="part share: the cap's burst")
    parser.add_argument("--no-day", action="store_true", help="part share: short lead only")
    parser.add_argument(
        "--share-hours", type=float, help="part share: simulated hours (default --hours)"
    )
    parser.add_argument("--only", default="budget,cap,share", help="parts: budget, cap, share")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    known = {"budget", "cap", "share"}
    if parts - known:
        parser.error(f"no part {', '.join(sorted(parts - known))}")
    if args.quick:
        args.locations, args.hours, args.step = 10, 12.0, 2.0
    if "budget" in parts:
        budget(args)
    if "share" in parts:
        share(args)
    if "cap" in parts:
        limit = RateLimit(rate=50.0, burst=5)
        print()
        print(f"rate cap: RateLimit(rate={limit.rate:g}, burst={limit.burst}), polling flat out")
        print("| locations | requests | most in any 1 s window | cap + burst | mean rate/s |")
        print("|---:|---:|---:|---:|---:|")
        for locations in (100,) if args.quick else (100, 1000, 10_000):
            sent, most, rate = asyncio.run(cap(locations, limit, 1.2 if args.quick else 10.0))
            print(
                f"| {locations:,} | {sent:,} | {most} | "
                f"{int(limit.rate) + limit.burst} | {rate:.1f} |"
            )


def budget(args: argparse.Namespace) -> None:
    scenario = DayScenario(locations=args.locations, seed=args.seed)
    if args.lead:
        scenario = attrs.evolve(scenario, min_lead=args.lead[0], lead=max(args.lead[1], 1e-3))
    policies = [("fixed 10 s", PollPolicy.fixed()), ("default", PollPolicy()), *args.policy]
    print(
        f"{args.locations} locations, {args.hours:g} h, seed {args.seed}, "
        f"clock step {args.step:g} s, base interval {INTERVAL:g} s, task lead "
        f"{scenario.min_lead:g} s + mean {scenario.lead:g} s"
    )
    rows = [(name, asyncio.run(play(scenario, p, args.hours, args.step))) for name, p in policies]
    truth = rows[0][1]["truth"]
    print(
        "ground truth: "
        + ", ".join(f"{kind.value} {truth[kind]}" for kind in ChangeKind if truth[kind])
    )
    print()
    print(
        "| policy | requests | vs fixed | per FE event | arrival p50/p95 s "
        "| renewal p50/p95 s | never seen | run s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    base = rows[0][1]["requests"]
    for name, r in rows:
        arrival, renewal = r["arrival"], r["renewal"]
        missed = ", ".join(f"{k} {v}" for k, v in r["missed"].items()) or "0"
        print(
            f"| {name} | {r['requests']:,} | {r['requests'] / base:.3f} | {r['per_event']:.1f} "
            f"| {statistics.median(arrival) if arrival else float('nan'):.1f} / "
            f"{percentile(arrival, 95):.1f} "
            f"| {statistics.median(renewal) if renewal else float('nan'):.1f} / "
            f"{percentile(renewal, 95):.1f} | {missed} | {r['seconds']:.0f} |"
        )


def share(args: argparse.Namespace) -> None:
    hours = args.share_hours or args.hours
    rates = [float(r) for r in args.rates.split(",")]
    short = attrs.evolve(
        DayScenario(locations=args.locations, seed=args.seed), min_lead=0.0, lead=60.0
    )
    budgeted = PollPolicy(budget_share=args.share)
    print()
    print(
        f"budget share: {args.locations} locations, {hours:g} h, seed {args.seed}, clock "
        f"step {args.step:g} s, base interval {INTERVAL:g} s, RateLimit(R, burst={args.burst})"
    )
    header = (
        "| scenario | R | policy | requests | most in any 1 s window | cap (R + burst) "
        "| N_idle | B_spare/s | bound 0.95 N/B s | arrival p50/p95 s | p95 / bound "
        "| renewal p50/p95 s | never seen (of arrivals, renewals) |"
    )
    print(header)
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    runs = [("short lead", short, rate) for rate in rates]
    if not args.no_day:
        runs.append(("seeded day", DayScenario(locations=args.locations, seed=args.seed), 20.0))
    for name, scenario, rate in runs:
        limit = RateLimit(rate, burst=args.burst)
        for label, policy in (("default", PollPolicy()), (f"share {args.share:g}", budgeted)):
            r = asyncio.run(play(scenario, policy, hours, args.step, limit))
            arrival, renewal = r["arrival"], r["renewal"]
            p95 = percentile(arrival, 95)
            truth = r["truth"]
            missed = (
                f"{r['missed']['arrival']}, {r['missed']['renewal']} "
                f"(of {truth[ChangeKind.ARRIVED]}, {truth[ChangeKind.RENEWED]})"
            )
            print(
                f"| {name} | {rate:g} | {label} | {r['requests']:,} | {r['most']} "
                f"| {int(rate) + args.burst} | {r['n_idle']:.0f} | {r['b_spare']:.2f} "
                f"| {r['bound']:.1f} "
                f"| {statistics.median(arrival) if arrival else math.nan:.1f} / {p95:.1f} "
                f"| {p95 / r['bound']:.2f} "
                f"| {statistics.median(renewal) if renewal else math.nan:.1f} / "
                f"{percentile(renewal, 95):.1f} | {missed} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
