"""Requests per FE visit with ``VisitWatcher`` at its defaults, on a seeded day.

    python benchmarks/bench_visit.py [--quick] [--locations 50] [--seed 0]

One ``DayScenario(visits=True)`` (FEs scan their shipments, reach the End OTC page and
leave) is played on the simulator over HTTP on a manual clock moved a second at a time,
watched by a ``VisitWatcher`` (``scan_interval=30``, the default ``PollPolicy``).

Printed, for each reading of the scanning answer's has-more flag the simulator can
play (``world.has_more``: "scanning", the docs' "false once all shipments are scanned",
the default; "page", another page now): the visits completed, the requests to the
visit's endpoints (initial-load, scanned shipments and their next pages, End OTC) per
completed visit, against the minimum the documented advice allows (one scanning call
per 30 s while the FE scans or waits on the End OTC page, and the End OTC once); how
late ``EndOtcReady`` comes after the FE reaches the End OTC page; and whether the events
match the ground truth. Target (issue 17): within 20 % of the minimum.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import add_quick_option, percentile

from flipkart_otc import (
    EndOtcReady,
    ManualClock,
    RetryPolicy,
    ShipmentScanned,
    VisitCompleted,
    VisitWatcher,
)
from flipkart_otc.simulator import ChangeKind, DayScenario, Simulator

SCAN = 30.0


async def run(locations: int, seed: int, hours: float, has_more: str) -> dict[str, str]:
    """One day under one reading of the has-more flag: the table's column."""
    clock = ManualClock()
    scenario = DayScenario(locations=locations, seed=seed, visits=True)
    started = time.perf_counter()
    events: list[object] = []
    async with (
        Simulator(clock=clock, scenario=scenario, seed=seed) as sim,
        sim.client(retry=RetryPolicy(max_tries=3, base_delay=0)) as client,
        VisitWatcher(client, scenario.location_ids, scan_interval=SCAN, clock=clock) as watcher,
    ):
        sim.world.has_more = has_more
        end = clock.time() + hours * 3600
        while clock.time() < end:
            sim.advance_scenario()
            await watcher.wait_idle()
            events += [await anext(watcher) for _ in range(watcher.queued)]
            clock.advance(1)
        start_otc = sum(sim.requests.values())
        visit_requests = Counter(sim.visit_requests)
    history = sim.history
    reached: dict[tuple[str, str], float] = {}
    began: dict[tuple[str, str], float] = {}
    done: dict[tuple[str, str], float] = {}
    shipments: Counter[tuple[str, str]] = Counter()
    for change in history:
        key = (change.location_id, change.fe_id or "")
        if change.kind is ChangeKind.SCANNING_STARTED:
            began[key] = change.at
        elif change.kind is ChangeKind.END_OTC_PAGE:
            reached[key] = change.at
        elif change.kind is ChangeKind.VISIT_COMPLETED:
            done[key] = change.at
        elif change.kind is ChangeKind.SHIPMENT_SCANNED:
            shipments[key] += 1
    minimum = sum(math.ceil((done[k] - began[k]) / SCAN) + 1 for k in done)
    spent = sum(visit_requests.values())
    ready = {(e.location_id, e.fe_id): e for e in events if isinstance(e, EndOtcReady)}
    latency = [ready[k].observed_at.timestamp() - reached[k] for k in done if k in ready]
    completed = {(e.location_id, e.fe_id) for e in events if isinstance(e, VisitCompleted)}
    scanned = Counter((e.location_id, e.fe_id) for e in events if isinstance(e, ShipmentScanned))
    wrong = sum(1 for k in done if scanned[k] != shipments[k]) + len(set(done) - completed)
    visits = max(len(done), 1)
    return {
        "visits completed": f"{len(done)}",
        "shipments": f"{sum(shipments[k] for k in done):,}",
        "visit requests": f"{spent:,}",
        "  initial-load": f"{visit_requests['initial-load']:,}",
        "  scanned shipments (POST / next URL)": (
            f"{visit_requests['shipments']:,} / {visit_requests['shipments-next']:,}"
        ),
        "  End OTC": f"{visit_requests['end-otc']:,}",
        "per completed visit": f"{spent / visits:.1f}",
        "minimum by the scanning advice, per visit": f"{minimum / visits:.1f}",
        "**ratio to the minimum** (target <= 1.20)": f"**{spent / max(minimum, 1):.2f}**",
        "EndOtcReady after the End OTC page, p50 / p95 s": (
            f"{statistics.median(latency) if latency else math.nan:.0f} / "
            f"{percentile(latency, 95):.0f}"
        ),
        "visits whose events differ from the ground truth": f"{wrong}",
        "Start OTC requests (the default PollPolicy)": f"{start_otc:,}",
        "run, s": f"{time.perf_counter() - started:.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locations", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hours", type=float, default=24.0)
    add_quick_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.locations, args.hours = 4, 12.0
    readings = ("scanning", "page")
    columns = [asyncio.run(run(args.locations, args.seed, args.hours, r)) for r in readings]
    print(f"{args.locations} locations, {args.hours:g} h, seed {args.seed}")
    print()
    print("| has-more flag means | " + " | ".join(f"{r!r}" for r in readings) + " |")
    print("|---|" + "---:|" * len(readings))
    for row in columns[0]:
        print(f"| {row} | " + " | ".join(column[row] for column in columns) + " |")


if __name__ == "__main__":
    main()
