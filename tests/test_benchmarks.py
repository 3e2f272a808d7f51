"""Each benchmark runs in its smallest mode and prints its table (its numbers are not
checked here: timings belong in benchmarks/, never in tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize(
    ("script", "flags", "headings"),
    [
        ("bench_parse.py", [], ["| us/answer |", "incremental, changing", "K=20"]),
        (
            "bench_client.py",
            ["--speedups", "off", "--server", "raw"],  # bench_watcher's (a) uses aiohttp's
            ["| client req/s |", "K=2 changing", "K=20 changing"],
        ),
        (
            "bench_watcher.py",
            ["--speedups", "off"],
            ["(a) saturation", "(b) scheduled", "(c) memory", "| ratio (median) |", "(d) metrics"],
        ),
        (
            "bench_budget.py",
            [],
            [
                "| policy | requests |",
                "| fixed 10 s |",
                "| default |",
                "most in any 1 s window",
                "bound 0.95 N/B",
                "| share 0.8 |",
            ],
        ),
        ("bench_visit.py", [], ["per completed visit", "ratio to the minimum"]),
        (
            "bench_dashboard.py",
            [],
            ["latency beyond the poll", "ratio with / without", "memory per client"],
        ),
        (
            "bench_fleet.py",
            [],
            ["(a) sink", "| events/s (median) |", "(b) shards", "ratio 2 / 1", "ceiling"],
        ),
    ],
)
def test_benchmark_runs_and_prints_its_table(
    script: str, flags: list[str], headings: list[str]
) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *flags],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for heading in headings:
        assert heading in done.stdout, (heading, done.stdout)


def test_a_misspelt_part_is_refused_by_name() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_watcher.py"), "--only", "saturaton"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "no part saturaton" in done.stderr
    assert done.stdout == ""
