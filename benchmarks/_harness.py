"""What the benchmarks share: a minimal Start OTC server in its own process (pinned to
one core), the bare aiohttp loop that sets the floor, and the measuring helpers.

The server answers ``POST /sellers/v3/returns/otc/start/details`` with K FEs:
"changing" changes one FE's OTC on every answer, "static" answers the same bytes
every time; with ``locations`` it answers per location, each with its own
expiry times (for the scheduled and memory benchmarks). ``GET /count`` says how
many Start OTC requests it has answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp

#: The library's knob that keeps it to the standard library where the `speedups` extra
#: is installed (README, "Install").
NO_SPEEDUPS = "FLIPKART_OTC_NO_SPEEDUPS"

QUICK_HELP = (
    "the smallest run that prints every figure, in a few seconds: what the smoke tests run "
    "(its numbers show the benchmark works, not what the code costs)"
)
#: How long one timed phase lasts under ``--quick``, in every benchmark.
QUICK_SECONDS = 0.1

PATH = "/sellers/v3/returns/otc/start/details"
TOKEN = "bench-token"
CLIENT_CPU, SERVER_CPU = 0, 1
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01: no benchmark code expires by accident


def pin(cpu: int | None) -> None:
    """Run this process on one core, when the machine has more than one (None: any)."""
    if cpu is None:
        return
    with contextlib.suppress(AttributeError, OSError):
        if len(os.sched_getaffinity(0)) > 1:
            os.sched_setaffinity(0, {cpu})


def entry(i: int, otc: str, expires_ms: int) -> dict[str, Any]:
    return {
        "feName": f"FE {i}",
        "taskId": f"task-{i}",
        "otc": otc,
        "expiryTime": expires_ms,
        "createdAt": expires_ms - 300_000,
        "logisticPartner": "eKart",
        "lob": "LARGE" if i % 2 else "NONLARGE",
    }


def answer(
    k: int, otc0: str = "000000", expires_ms: int = FAR_FUTURE_MS, step_ms: int = 0
) -> bytes:
    """K FEs; FE i's code expires at ``expires_ms + i * step_ms``."""
    fes = {
        f"fe{i:05d}": entry(i, otc0 if i == 0 else f"{i:06d}", expires_ms + i * step_ms)
        for i in range(k)
    }
    return json.dumps({"otcDetails": fes}).encode()


def _answers(k: int, mode: str) -> Callable[[int], bytes]:
    """The body of the n-th answer: the same bytes each time ("static"), or FE 0's OTC
    set to n ("changing")."""
    marker = b"000000"
    template = answer(k, otc0=marker.decode())
    if mode == "static":
        return lambda n: template
    head, _, tail = template.partition(marker)
    return lambda n: head + b"%06d" % (n % 1_000_000) + tail


def _serve(
    port_pipe: Any, k: int, mode: str, locations: dict[str, tuple[int, int]] | None, cpu: int
) -> None:
    from aiohttp import web

    pin(cpu)
    count = 0
    nth_answer = _answers(k, mode)
    per_location = (
        {
            loc: answer(k, expires_ms=first, step_ms=step)
            for loc, (first, step) in locations.items()
        }
        if locations
        else None
    )

    async def start_otc(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        if per_location is not None:
            location_id = json.loads(await request.read())["sellerLocationId"]
            return web.Response(body=per_location[location_id], content_type="application/json")
        await request.read()
        return web.Response(body=nth_answer(count), content_type="application/json")

    async def counter(request: web.Request) -> web.Response:
        return web.Response(text=str(count))

    async def main() -> None:
        app = web.Application()
        app.router.add_post(PATH, start_otc)
        app.router.add_get("/count", counter)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port_pipe.send(runner.addresses[0][1])
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def _serve_raw(port_pipe: Any, k: int, mode: str, locations: None, cpu: int) -> None:
    """The same answers from a bare asyncio protocol: a server that costs next to nothing
    per request, so the client's own cost sets the rate even where the client and the
    server share one core's worth of CPU."""
    pin(cpu)
    count = 0
    nth_answer = _answers(k, mode)
    status = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"

    class Http(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            nonlocal count
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                lines = self.buffer[:end].split(b"\r\n")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(self.buffer) < end + 4 + length:
                    return  # the body is still on its way
                self.buffer = self.buffer[end + 4 + length :]
                if lines[0].startswith(b"GET /count "):
                    body = b"%d" % count
                elif lines[0].startswith(b"POST " + PATH.encode() + b" "):
                    count += 1
                    body = nth_answer(count)
                else:
                    self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                self.transport.write(status % len(body) + body)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(Http, "127.0.0.1", 0, backlog=4096)
        port_pipe.send(srv.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


SERVERS = ("aiohttp", "raw")


@contextlib.contextmanager
def server(
    k: int = 2,
    mode: str = "changing",
    locations: dict[str, tuple[int, int]] | None = None,
    kind: str = "aiohttp",
    cpu: int | None = SERVER_CPU,
) -> Iterator[str]:
    """Run the benchmark server in a child process on the other core; yields its base URL.

    ``locations`` maps each id to (first expiry ms, ms between its FEs' expiries).
    ``kind`` is "aiohttp" (the issue's minimal aiohttp server) or "raw" (a bare asyncio
    protocol, for K and mode only). ``cpu`` is the core it is pinned to (None: any).
    """
    if kind not in SERVERS or (kind == "raw" and locations):
        raise ValueError(f"no {kind!r} server for these answers")
    target = _serve_raw if kind == "raw" else _serve
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child, k, mode, locations, cpu), daemon=True)
    proc.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the benchmark server did not start")
        yield f"http://127.0.0.1:{parent.recv()}"
    finally:
        proc.terminate()
        proc.join(10)


async def server_count(origin: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(origin + "/count") as resp:
        return int(await resp.text())


def bare_worker(origin: str, location_id: str = "LOC1") -> Callable[[], Awaitable[None]]:
    """The floor: one aiohttp session, POST the same JSON, ``await response.json()``."""
    session: aiohttp.ClientSession | None = None
    url = origin + PATH
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    payload = json.dumps({"sellerLocationId": location_id, "taskType": "RETURN"}).encode()

    async def one() -> None:
        nonlocal session
        if session is None:
            session = aiohttp.ClientSession()
        async with session.post(url, data=payload, headers=headers) as response:
            await response.json()

    async def close() -> None:
        if session is not None:
            await session.close()

    one.close = close  # type: ignore[attr-defined]
    return one


async def run_workers(
    one: Callable[[], Awaitable[None]], seconds: float, concurrency: int = 16
) -> int:
    """Call ``one`` from ``concurrency`` workers for ``seconds``; returns how many calls."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await one()
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


class Measured:
    """Requests per second and client CPU per request over one timed phase."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.requests = 0

    @contextlib.contextmanager
    def phase(self) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu

    @property
    def rate(self) -> float:
        return self.requests / self.wall if self.wall else 0.0

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.requests * 1e6 if self.requests else 0.0


def pairs_row(label: str, pairs: list[tuple[Measured, Measured]]) -> list[str]:
    """A table row for (bare, ours) pairs of phases: the medians of each side's rate and
    CPU per request, the median of the pairs' ratios (ours / bare) and their range."""
    ratios = sorted(ours.rate / bare.rate for bare, ours in pairs)
    return [
        label,
        f"{statistics.median(b.rate for b, _ in pairs):8.0f}",
        f"{statistics.median(o.rate for _, o in pairs):8.0f}",
        f"{statistics.median(b.cpu_us for b, _ in pairs):6.1f}",
        f"{statistics.median(o.cpu_us for _, o in pairs):6.1f}",
        f"{statistics.median(ratios):5.2f}",
        f"{ratios[0]:.2f}-{ratios[-1]:.2f}",
    ]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def rss_bytes() -> int:
    """Resident set size now (Linux), else the peak."""
    with contextlib.suppress(OSError), open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def machine(speedups: list[str] | None = None) -> str:
    extras = ", ".join(speedups) if speedups else "no speedups"
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, {extras}"
    )


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]
    ]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


def add_speedups_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--speedups",
        choices=("auto", "off"),
        default="auto",
        help="auto: uvloop and orjson where installed; off: the core alone",
    )


def add_server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default="aiohttp",
        help="aiohttp: the issue's minimal aiohttp server; raw: a bare asyncio protocol that "
        "costs next to nothing per request, so the client's own cost sets the rate "
        "(bench_watcher: for (a) only)",
    )


def use_speedups(enabled: bool) -> list[str]:
    """Turn the `speedups` extra (uvloop, orjson) on where installed, or off; returns
    what is on. Off measures the core alone: the library's knob, read when it is
    imported, so a script that must turn them off starts again with the knob set."""
    installed = [name for name in ("uvloop", "orjson") if importlib.util.find_spec(name)]
    if os.environ.get(NO_SPEEDUPS) == "1":
        return []
    if not enabled:
        if installed:
            os.environ[NO_SPEEDUPS] = "1"
            sys.stdout.flush()
            os.execv(sys.executable, [sys.executable, *sys.argv])
        return []
    if "uvloop" in installed:
        uvloop = importlib.import_module("uvloop")
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return installed


def add_quick_option(parser: argparse.ArgumentParser) -> None:
    """``--quick``: :data:`QUICK_HELP`."""
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
