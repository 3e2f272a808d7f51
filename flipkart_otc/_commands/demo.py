"""``flipkart-otc demo``: the embedded simulator, watched live, with its dashboard."""

from __future__ import annotations

import argparse
import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

import attrs

from .. import _render
from ..policy import PollPolicy
from ..retry import RetryPolicy
from ..watcher import OtcWatcher
from .common import _print, _Stopper
from .dashboard import _dashboard_module_missing, _serve_dashboard


async def _demo(args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]) -> int:
    from ..simulator import TRANSIENT, Scenario, Simulator

    scenario = Scenario(
        locations=args.locations,
        seed=args.seed,
        open_share=1.0,
        mean_arrival_gap=8.0,
        # codes live minutes, as real ones do; a few live seconds, so that the page also
        # shows urgent and expired codes
        otc_ttl=300.0,
        short_otc_share=0.3,
        short_otc_ttl=6.0,
        mean_stay=15.0,
        mean_task_toggle=90.0,
        visits=True,  # FEs go on to scan, reach the End OTC page and finish
        shipments=(2, 5),
        scan_gap=2.0,
        end_otc_stay=6.0,
    )
    counts: Counter[str] = Counter()
    stopper = _Stopper(args.duration)
    started = datetime.now(UTC)
    sim = Simulator(scenario=scenario, seed=args.seed)
    sim.faults.random(0.05, TRANSIENT)  # an occasional fault, healed by retries
    retry = RetryPolicy(max_tries=5, base_delay=0.05, max_delay=0.5)
    missing = _dashboard_module_missing()
    async with (
        sim,
        sim.client(retry=retry, timeout=2.0) as client,
        # every second, whatever the state: the demo's story runs twenty times faster
        OtcWatcher(
            client,
            scenario.location_ids,
            interval=1.0,
            policy=attrs.evolve(PollPolicy.fixed(), scanning=2.0, end_otc=1.0),
            visits=True,
        ) as watcher,
        contextlib.AsyncExitStack() as stack,
    ):
        if missing:
            page = f"not served ({missing})"
        else:
            runner, page = await _serve_dashboard(
                watcher, "127.0.0.1", args.port, show_otc=True, access_key=None
            )
            stack.push_async_callback(runner.cleanup)
        _print(
            out,
            f"flipkart-otc demo: watching {args.locations} simulated locations for "
            f"{args.duration:g}s (Ctrl+C stops)\ndashboard: {page}",
        )

        async def consume() -> None:
            async for event in watcher:
                counts[type(event).__name__] += 1
                _print(out, _render.event_line(event, show_otc=True))

        await stopper.run_until_stopped(consume())
        faults = len(sim.faults.injected)
    took = (datetime.now(UTC) - started).total_seconds()
    fe_events = sum(counts[n] for n in ("FeArrived", "OtcRenewed", "OtcExpired", "FeDeparted"))
    _print(
        out,
        f"demo: {fe_events} FE events in {took:.0f}s across {args.locations} locations "
        f"({counts['FeArrived']} arrived, {counts['OtcRenewed']} renewed, "
        f"{counts['OtcExpired']} expired, {counts['FeDeparted']} departed, "
        f"{counts['LocationStatusChanged']} status changes); "
        f"{counts['ScanningStarted']} FEs scanned {counts['ShipmentScanned']} shipments, "
        f"{counts['EndOtcReady']} End OTCs, {counts['VisitCompleted']} visits completed; "
        f"{faults} faults injected and handled",
    )
    return stopper.code
