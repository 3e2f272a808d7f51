"""Microseconds per answer to parse, structure and diff, against plain ``json.loads``.

    python benchmarks/bench_parse.py [--quick]

Rows: json.loads alone (the floor); a full parse of every answer (what
``OtcClient.start_otc_details`` does) plus the diff; and the watcher's
incremental path for an answer where one FE's OTC changed ("changing") and
for the same bytes again ("static"). With orjson installed (the ``speedups``
extra) the same paths are timed again with it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import answer, machine, table

from flipkart_otc._diff import advance, earliest_due
from flipkart_otc._wire import common, start_otc, start_otc_incremental

NOW = datetime(2026, 11, 27, tzinfo=UTC)
NOW_TS = NOW.timestamp()
NO_KEYS: frozenset[tuple[str, str, datetime]] = frozenset()


def per_call_us(fns: list[Callable[[int], object]], seconds: float) -> list[float]:
    """Microseconds per call of each function: the best of many short slices, taken in
    turn (A B C A B C ...) so a noisy, shared machine disturbs them all alike."""
    best = [float("inf")] * len(fns)
    rounds = 10
    for _ in range(rounds):
        for n, fn in enumerate(fns):
            calls, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds / rounds:
                for i in range(50):
                    fn(calls + i)
                calls += 50
            best[n] = min(best[n], elapsed / calls * 1e6)
    return best


def bench(k: int, seconds: float) -> list[list[str]]:
    bodies = [answer(k, otc0=f"{n:06d}") for n in range(64)]  # one FE's OTC changes
    static = bodies[0]

    def floor(i: int) -> object:
        return json.loads(bodies[i % 64])

    base, memo = start_otc_incremental.parse_incremental(static, "LOC1", None, None)
    due = earliest_due(base, NO_KEYS)

    def full(i: int) -> object:
        snap = start_otc.parse_snapshot(bodies[i % 64], "LOC1", NOW)
        return advance("LOC1", base, snap.details, NO_KEYS, due, NOW_TS)

    def incremental_changing(i: int) -> object:
        details, _ = start_otc_incremental.parse_incremental(
            bodies[1 + i % 63], "LOC1", base, memo
        )
        return advance("LOC1", base, details, NO_KEYS, due, NOW_TS)

    def incremental_static(i: int) -> object:
        details, _ = start_otc_incremental.parse_incremental(static, "LOC1", base, memo)
        return advance("LOC1", base, details, NO_KEYS, due, NOW_TS)

    paths: list[tuple[str, Callable[[int], object]]] = [
        ("json.loads (floor)", floor),
        ("full parse + diff", full),
        ("incremental, changing", incremental_changing),
        ("incremental, static", incremental_static),
    ]
    try:
        fast_loads = importlib.import_module("orjson").loads
    except ImportError:
        fast_loads = None
    if fast_loads is not None:  # the same paths again with the `speedups` extra's parser

        def with_orjson(fn: Callable[[int], object]) -> Callable[[int], object]:
            def run(i: int) -> object:
                common.loads = fast_loads
                try:
                    return fn(i)
                finally:
                    common.loads = common.stdlib_loads

            return run

        paths += [(f"{name} + orjson", with_orjson(fn)) for name, fn in paths[1:]]
    common.loads = common.stdlib_loads  # the core, without speedups
    timings = per_call_us([fn for _, fn in paths], seconds)
    return [
        [f"K={k}", name, f"{us:8.2f}", f"{us / timings[0]:5.2f}x"]
        for (name, _), us in zip(paths, timings, strict=True)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    args = parser.parse_args()
    seconds = 0.2 if args.quick else 2.0
    rows = bench(2, seconds) + bench(20, seconds)
    print(f"bench_parse on {machine()}")
    print(table(["answer", "path", "us/answer", "vs json.loads"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
