"""Each benchmark runs in its quick mode and prints every figure, and each figure is sane:
counts above zero, rates and ratios positive and finite, percentiles in order. Whether a
figure meets its target is for the benchmark to say, never for a test (timings on a shared
machine are noise).

The scripts start together, each in its own process, so the file takes about as long as
the slowest of them."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

#: Each run: its script and flags. A script with parts of some length runs one process a
#: part, so that no run is much longer than the others.
RUNS: dict[str, list[str]] = {
    "parse": ["bench_parse.py"],
    # bench_watcher's (a) uses aiohttp's server: here the raw one
    "client": ["bench_client.py", "--speedups", "off", "--server", "raw"],
    "watcher saturation": ["bench_watcher.py", "--speedups", "off", "--only", "saturation"],
    "watcher scheduled": ["bench_watcher.py", "--speedups", "off", "--only", "scheduled"],
    "watcher memory": ["bench_watcher.py", "--speedups", "off", "--only", "memory"],
    "watcher metrics": ["bench_watcher.py", "--speedups", "off", "--only", "metrics"],
    "budget": ["bench_budget.py", "--only", "budget"],
    "budget cap": ["bench_budget.py", "--only", "cap"],
    "budget share": ["bench_budget.py", "--only", "share"],
    "visit": ["bench_visit.py"],
    "dashboard": ["bench_dashboard.py"],
    "dashboard storm": ["bench_dashboard.py", "--storm"],
    "fleet sink": ["bench_fleet.py", "--only", "sink"],
    "fleet shards": ["bench_fleet.py", "--only", "shards"],
    "fleet visit": ["bench_fleet.py", "--only", "visit"],
}

#: A number; a minus only where no digit comes before (``0.80-0.95`` is a range).
NUMBER = re.compile(r"(?<![\d.])-?\d[\d,]*(?:\.\d+)?|nan|inf")


def numbers(text: str) -> list[float]:
    """Every number in ``text``, thousands separators and all (``nan`` and ``inf`` too)."""
    return [float(n.replace(",", "")) for n in NUMBER.findall(text)]


def row(out: str, label: str) -> list[list[float]]:
    """The numbers of each cell after the label, in the one table row that starts with
    ``label`` (either table style the benchmarks print; ``"K=2 | json"``: two cells, the
    last one's start)."""
    *whole, start = [part.strip() for part in label.split("|")]
    found = []
    for line in out.splitlines():
        cells = [c.strip().strip("*").strip() for c in line.strip().strip("|").split("|")]
        n = len(whole)
        if len(cells) > n + 1 and cells[:n] == whole and cells[n].startswith(start):
            found.append([numbers(c) for c in cells[n + 1 :]])
    assert len(found) == 1, (label, out)
    return found[0]


def positive(*values: float) -> None:
    for value in values:
        assert math.isfinite(value) and value > 0, values


def ordered(*values: float, rounded_last: bool = False) -> None:
    """Finite, at least 0 (a latency may round to 0), and each at most the next; a last
    value printed to whole units (a max beside percentiles with a decimal) may be up to
    half a unit below the one before it."""
    positive(*(v + 1 for v in values))
    slack = [0.0] * (len(values) - 1)
    if slack and rounded_last:
        slack[-1] = 0.5
    for value, following, allowed in zip(values[:-1], values[1:], slack, strict=True):
        assert value <= following + allowed, values


def check_parse(out: str) -> None:
    for k in (2, 20):
        (floor,), (one,) = row(out, f"K={k} | json.loads")
        positive(floor)
        assert one == 1.0  # the floor's ratio to itself
        for path in ("full parse", "incremental, changing", "incremental, static"):
            (us,), (ratio,) = row(out, f"K={k} | {path}")
            positive(us, ratio)


def check_pairs(out: str, labels: tuple[str, ...]) -> None:
    """Rows of :func:`_harness.pairs_row`: two rates, two CPU costs, a median ratio and
    its range."""
    for label in labels:
        cells = row(out, label)
        (bare,), (ours,), (bare_us,), (our_us,), (ratio,) = cells[:5]
        low, high = cells[5]
        positive(bare, ours, bare_us, our_us, ratio, low, high)
        assert low <= ratio <= high


def check_client(out: str) -> None:
    check_pairs(out, ("K=2 changing", "K=2 static", "K=20 changing"))


def check_saturation(out: str) -> None:
    check_pairs(out, ("K=2 changing", "K=20 changing", "K=2 static"))


def check_scheduled(out: str) -> None:
    achieved_intended, (ratio,), *_ = row(out, "poll rate")
    positive(*achieved_intended, ratio)
    lag, (polls, lag_max), *_ = row(out, "schedule lag")
    ordered(*lag, lag_max, rounded_last=True)
    positive(polls)
    late, (expiries, late_max), *_ = row(out, "OtcExpired delay")
    ordered(*late, late_max, rounded_last=True)
    positive(expiries)


def check_memory(out: str) -> None:
    (per_location, kib), (seconds,), (gc_ms,), *_ = row(out, "1,000")
    positive(per_location, kib)
    ordered(seconds)
    ordered(gc_ms)


def check_metrics(out: str) -> None:
    check_pairs(out, ("K=2 changing", "K=2 static"))
    hooks = re.search(r"([\d.]+) us a poll; one scrape of [\d,]+ locations: ([\d.]+) ms", out)
    assert hooks is not None
    positive(float(hooks.group(1)), float(hooks.group(2)))


def check_budget(out: str) -> None:
    truth = dict(re.findall(r"(\w+) (\d+)", out.split("ground truth: ", 1)[1].splitlines()[0]))
    positive(int(truth["arrived"]))
    for policy in ("fixed 10 s", "default"):
        requests, (vs_fixed,), (per_event,), arrival, renewal, (never,), _ = row(out, policy)
        positive(*requests, vs_fixed, per_event)
        ordered(*arrival)
        ordered(*renewal)
        assert never == 0
    assert row(out, "fixed 10 s")[1] == [1.0]


def check_share(out: str) -> None:
    for scenario, rate in [("short lead", r) for r in ("2", "5", "20")] + [("seeded day", "20")]:
        for policy in ("default", "share 0.8"):
            cells = row(out, f"{scenario} | {rate} | {policy}")
            (requests,), (most,), (cap,), (idle,), (spare,), (bound,), arrival = cells[:7]
            positive(requests, cap, idle, spare, bound)
            assert 0 < most <= cap  # never above the cap in any second
            ordered(*arrival)
            (ratio,) = cells[7]
            positive(ratio)


def check_cap(out: str) -> None:
    (sent,), (most,), (cap,), (rate,) = row(out, "100")
    positive(sent, most, cap, rate)


def check_visit(out: str) -> None:
    for label in ("visits completed", "shipments", "visit requests", "per completed visit"):
        positive(*[n for cell in row(out, label) for n in cell])
    positive(*[n for cell in row(out, "ratio to the minimum") for n in cell])
    assert row(out, "visits whose events differ") == [[0], [0]]  # the ground truth
    for reading in row(out, "EndOtcReady after the End OTC page"):
        ordered(*reading)


def check_dashboard(out: str) -> None:
    latency, *_ = row(out, "latency beyond the poll")
    *percentiles, events = latency
    ordered(*percentiles, rounded_last=True)
    positive(events)
    rates, *_ = row(out, "polls/s without / with clients")
    positive(*rates)
    assert len(rates) == 4
    (ratio,), *_ = row(out, "ratio with / without")
    positive(ratio)
    memory, *_ = row(out, "server memory per client")
    assert len(memory) == 2 and all(map(math.isfinite, memory))


def check_storm(out: str) -> None:
    for label in ("longest event-loop stall", "longest cyclic GC pass", "until every browser"):
        before, after, *_ = row(out, label)
        ordered(*before)
        ordered(*after)
    (polls_before,), (polls_after,), *_ = row(out, "polls/s during the storm")
    positive(polls_before, polls_after)


def check_sink(out: str) -> None:
    if shutil.which("redis-server") is None:
        assert "(a) sink: skipped, no redis-server" in out
        return
    (batched,), (ratio, low, high) = row(out, "batched (256 a pipeline)")
    positive(batched, ratio, low, high)
    positive(row(out, "one per round trip")[0][0], row(out, "batched, writers not")[0][0])


def check_visit_cost(out: str) -> None:
    if shutil.which("redis-server") is None:
        assert "skipped" in out
        return
    for events in ("start", "visit"):
        (commands,), (received,) = row(out, events)
        positive(commands, received)


def check_shards(out: str) -> None:
    for label in ("1 (every location)", "2 (a shard each)", "ratio 2 / 1"):
        positive(*[n for cell in row(out, label) for n in cell])
    ceiling = re.search(r"do ([\d.]+)x the work of one", out)
    assert ceiling is not None
    positive(float(ceiling.group(1)))


CHECKS: dict[str, Callable[[str], None]] = {
    "parse": check_parse,
    "client": check_client,
    "watcher saturation": check_saturation,
    "watcher scheduled": check_scheduled,
    "watcher memory": check_memory,
    "watcher metrics": check_metrics,
    "budget": check_budget,
    "budget cap": check_cap,
    "budget share": check_share,
    "visit": check_visit,
    "dashboard": check_dashboard,
    "dashboard storm": check_storm,
    "fleet sink": check_sink,
    "fleet shards": check_shards,
    "fleet visit": check_visit_cost,
}


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, subprocess.Popen[str]]]:
    started = {
        run: subprocess.Popen(
            [sys.executable, str(BENCHMARKS / script), "--quick", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its servers too can be stopped as one group
        )
        for run, (script, *flags) in RUNS.items()
    }
    try:
        yield started
    finally:
        for proc in started.values():
            # a run cut short (a failure, a deselected test) takes its servers with it:
            # they hold its output open
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


@pytest.mark.parametrize("run", list(RUNS))
def test_benchmark_prints_every_figure_and_each_is_sane(
    runs: dict[str, subprocess.Popen[str]], run: str
) -> None:
    out, err = runs[run].communicate(timeout=120)
    assert runs[run].returncode == 0, err
    try:
        CHECKS[run](out)
    except (AssertionError, ValueError) as exc:  # say which figure, with the whole output
        raise AssertionError(f"{run}: {exc!r}\n{out}\n{err}") from exc


def test_every_script_is_run() -> None:
    assert {script for script, *_ in RUNS.values()} == {
        path.name for path in BENCHMARKS.glob("bench_*.py")
    }


def test_the_checks_refuse_a_figure_that_is_not_sane() -> None:
    table = "K=2 changing | 100 | 90 | 10.0 | 11.0 | 0.90 | 0.80-0.95"
    check_pairs(table, ("K=2 changing",))
    for bad in ("0.00 | 0.00-0.00", "nan | nan-nan", "0.99 | 0.80-0.95"):
        with pytest.raises(AssertionError):
            check_pairs(table.replace("0.90 | 0.80-0.95", bad), ("K=2 changing",))
    with pytest.raises(AssertionError):
        row(table, "K=20")  # a figure not printed
    ordered(20.1, 358.1, 358, rounded_last=True)  # the max printed to whole ms
    for values in ((20.1, 358.1, 357), (358.1, 20.1, 400), (1.0, math.nan)):
        with pytest.raises(AssertionError):
            ordered(*values, rounded_last=True)


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
