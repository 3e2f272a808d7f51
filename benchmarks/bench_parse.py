"""Microseconds per answer to parse, structure and diff, against plain ``json.loads``.

    python benchmarks/bench_parse.py [--quick]

Rows: json.loads alone (the floor); a full parse of every answer (what
``OtcClient.start_otc_details`` does) plus the diff; and the watcher's
incremental path for an answer where one FE's OTC changed ("changing") and
for the same bytes again ("static"). With orjson installed (the ``speedups``
extra) the same paths are timed again with it, in a process of its own: the library
parses with orjson unless ``FLIPKART_OTC_NO_SPEEDUPS=1``, and each run sets that knob.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import NO_SPEEDUPS, QUICK_SECONDS, add_quick_option, answer, machine, table

from flipkart_otc._diff import advance, earliest_due
from flipkart_otc._wire import start_otc, start_otc_incremental

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


def bench(k: int, seconds: float) -> tuple[list[float], list[str]]:
    """Microseconds per answer of each path with the parser this process has."""
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
    return per_call_us([fn for _, fn in paths], seconds), [name for name, _ in paths]


def rows(k: int, seconds: float) -> list[list[str]]:
    """The core's timings; with orjson installed, the paths again with it. Each parser
    runs in a process of its own, chosen by the library's public knob."""
    core, names = timed(k, seconds, speedups=False)
    found = [
        [f"K={k}", n, f"{us:8.2f}", f"{us / core[0]:5.2f}x"]
        for n, us in zip(names, core, strict=True)
    ]
    if importlib.util.find_spec("orjson") is not None:  # the `speedups` extra's parser
        fast, _ = timed(k, seconds, speedups=True)
        found += [
            [f"K={k}", f"{n} + orjson", f"{us:8.2f}", f"{us / core[0]:5.2f}x"]
            for n, us in zip(names[1:], fast[1:], strict=True)
        ]
    return found


def timed(k: int, seconds: float, *, speedups: bool) -> tuple[list[float], list[str]]:
    env = {**os.environ, NO_SPEEDUPS: "" if speedups else "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--timings", str(k), str(seconds)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    timings, names = json.loads(out)
    return timings, names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_quick_option(parser)
    parser.add_argument("--timings", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.timings:  # a child: one parser's timings, as JSON
        print(json.dumps(bench(int(args.timings[0]), float(args.timings[1]))))
        return 0
    seconds = QUICK_SECONDS if args.quick else 2.0
    found = rows(2, seconds) + rows(20, seconds)
    print(f"bench_parse on {machine()}")
    print(table(["answer", "path", "us/answer", "vs json.loads"], found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
