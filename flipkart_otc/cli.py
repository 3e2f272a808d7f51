"""The ``flipkart-otc`` command line (also ``python -m flipkart_otc``).

Exit codes: 0 done, 1 some location failed (``fetch``), 2 usage or missing
credentials, 3 authentication failed, 130 interrupted (Ctrl+C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from . import _render
from ._version import __version__
from .auth import PRODUCTION_TOKEN_URL, SANDBOX_TOKEN_URL, ClientCredentials, TokenProvider
from .client import PRODUCTION_BASE_URL, SANDBOX_BASE_URL, OtcClient
from .errors import (
    AuthenticationError,
    FlipkartOtcError,
    TaskNotFoundError,
    TripsheetClosedError,
)
from .events import WatchEvent
from .models import LocationStatus
from .retry import RetryPolicy
from .watcher import OtcWatcher

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_INTERRUPTED = 130

ENV_TOKEN = "FLIPKART_ACCESS_TOKEN"
ENV_APP_ID = "FLIPKART_APP_ID"
ENV_APP_SECRET = "FLIPKART_APP_SECRET"


class UsageError(Exception):
    """Bad input the parser could not catch (exit 2)."""


def _install_uvloop() -> None:
    # Optional speedup (the `speedups` extra); the core meets its targets without it.
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


class _Stopper:
    """Ends a command on SIGINT/SIGTERM or after a duration, without a traceback."""

    def __init__(self, duration: float | None) -> None:
        self.event = asyncio.Event()
        self.interrupted = False
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._interrupt)
        loop.add_signal_handler(signal.SIGTERM, self.event.set)
        if duration is not None:
            loop.call_later(duration, self.event.set)

    def _interrupt(self) -> None:
        self.interrupted = True
        self.event.set()

    @property
    def code(self) -> int:
        return EXIT_INTERRUPTED if self.interrupted else EXIT_OK

    async def run_until_stopped(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` until it ends or a stop comes; its exceptions propagate."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.event.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _print(out: TextIO, text: str) -> None:
    print(text, file=out, flush=True)


# -- credentials -------------------------------------------------------------------


def _urls(args: argparse.Namespace) -> tuple[str, str]:
    if args.sandbox:
        return SANDBOX_BASE_URL, args.token_url or SANDBOX_TOKEN_URL
    if args.base_url:
        parts = urlsplit(args.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"--base-url must be an http(s) URL, got {args.base_url!r}")
        origin = f"{parts.scheme}://{parts.netloc}"
        return args.base_url, args.token_url or origin + "/oauth-service/oauth/token"
    return PRODUCTION_BASE_URL, args.token_url or PRODUCTION_TOKEN_URL


def _auth(args: argparse.Namespace, token_url: str) -> str | TokenProvider:
    token = args.token or os.environ.get(ENV_TOKEN, "").strip()
    if token:
        return token
    app_id = args.app_id or os.environ.get(ENV_APP_ID, "").strip()
    app_secret = args.app_secret or os.environ.get(ENV_APP_SECRET, "").strip()
    if app_id and app_secret:
        return ClientCredentials(app_id, app_secret, token_url=token_url)
    raise UsageError(
        f"no credentials: set {ENV_TOKEN}, or {ENV_APP_ID} and {ENV_APP_SECRET} "
        "(or pass --token, or --app-id and --app-secret)"
    )


def _locations(args: argparse.Namespace) -> list[str]:
    ids = list(args.locations)
    if args.locations_file:
        try:
            with open(args.locations_file, encoding="utf-8") as handle:
                for line in handle:
                    line = line.split("#", 1)[0].strip()
                    if line:
                        ids.append(line)
        except OSError as exc:
            raise UsageError(f"cannot read --locations-file: {exc}") from exc
    for location_id in ids:
        if not location_id.strip():
            raise UsageError(f"a location id must not be blank, got {location_id!r}")
    if not ids:
        raise UsageError("no locations: name some (LOC1 LOC2 ...) or pass --locations-file")
    return list(dict.fromkeys(ids))


def _client(args: argparse.Namespace) -> OtcClient:
    base_url, token_url = _urls(args)
    return OtcClient(_auth(args, token_url), base_url=base_url, timeout=args.timeout)


# -- watch ---------------------------------------------------------------------


def _emitter(args: argparse.Namespace, out: TextIO) -> Callable[[WatchEvent], None]:
    if args.format == "json":
        return lambda e: _print(out, _render.json_line(e.to_dict(show_otc=args.show_otc)))
    return lambda e: _print(out, _render.event_line(e, show_otc=args.show_otc))


async def _watch(args: argparse.Namespace, out: TextIO) -> int:
    locations = _locations(args)
    stopper = _Stopper(args.duration)
    emit = _emitter(args, out)
    async with (
        _client(args) as client,
        OtcWatcher(client, locations, interval=args.interval) as watcher,
    ):

        async def consume() -> None:
            async for event in watcher:
                emit(event)

        await stopper.run_until_stopped(consume())
    return stopper.code


# -- fetch ---------------------------------------------------------------------------


async def _fetch(args: argparse.Namespace, out: TextIO) -> int:
    locations = _locations(args)
    failed = False
    rows: list[list[str]] = []
    async with _client(args) as client:
        results = await asyncio.gather(
            *(client.start_otc_details(loc) for loc in locations), return_exceptions=True
        )
    for location_id, result in zip(locations, results, strict=True):
        error: str | None = None
        snapshot = None
        status: LocationStatus | str
        if isinstance(result, AuthenticationError):
            raise result
        if isinstance(result, TaskNotFoundError):
            status = LocationStatus.NO_TASK
        elif isinstance(result, TripsheetClosedError):
            status = LocationStatus.CLOSED
        elif isinstance(result, FlipkartOtcError):
            status, error, failed = "ERROR", str(result), True
        elif isinstance(result, BaseException):
            raise result
        else:
            status, snapshot = LocationStatus.ACTIVE, result
        if args.format == "json":
            data = _render.snapshot_dict(
                location_id, snapshot, status, error, show_otc=args.show_otc
            )
            _print(out, _render.json_line(data))
        else:
            rows += _render.snapshot_rows(location_id, snapshot, status, show_otc=args.show_otc)
            if error:
                rows[-1][2] = error
    if args.format == "table":
        header = ["LOCATION", "STATUS", "FE", "NAME", "PARTNER", "LOB", "OTC", "CODE"]
        _print(out, _render.table(header, rows))
    return EXIT_FAILED if failed else EXIT_OK


# -- demo -------------------------------------------------------------------------


async def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from .simulator import TRANSIENT, Scenario, Simulator

    scenario = Scenario(
        locations=args.locations,
        seed=args.seed,
        open_share=1.0,
        mean_arrival_gap=8.0,
        otc_ttl=8.0,
        mean_stay=10.0,
        mean_task_toggle=90.0,
    )
    counts: Counter[str] = Counter()
    stopper = _Stopper(args.duration)
    started = datetime.now(UTC)
    sim = Simulator(scenario=scenario, seed=args.seed)
    sim.faults.random(0.05, TRANSIENT)  # an occasional fault, healed by retries
    retry = RetryPolicy(max_tries=5, base_delay=0.05, max_delay=0.5)
    _print(
        out,
        f"flipkart-otc demo: watching {args.locations} simulated locations for "
        f"{args.duration:g}s (Ctrl+C stops)",
    )
    async with (
        sim,
        sim.client(retry=retry, timeout=2.0) as client,
        OtcWatcher(client, scenario.location_ids, interval=1.0) as watcher,
    ):

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
        f"{faults} faults injected and handled",
    )
    return stopper.code


# -- simulate ------------------------------------------------------------------


async def _simulate(args: argparse.Namespace, out: TextIO) -> int:
    from .simulator import Scenario, Simulator

    scenario = Scenario(locations=args.locations, seed=args.seed, speed=args.speed)
    sim = Simulator(scenario=scenario, seconds=args.seconds, seed=args.seed, port=args.port)
    if args.fault_rate:
        sim.faults.random(args.fault_rate)
    stopper = _Stopper(args.duration)
    async with sim:
        ids = scenario.location_ids
        span = f"{ids[0]} .. {ids[-1]}" if ids else "none"
        _print(
            out,
            f"Flipkart simulator listening on {sim.origin}\n"
            f"  base URL    {sim.base_url}\n"
            f"  token URL   {sim.token_url}\n"
            f"  app id      {sim.app_id}\n"
            f"  app secret  {sim.app_secret}\n"
            f"  token       {sim.token}\n"
            f"  locations   {span} (seed {args.seed}, speed {args.speed:g})\n"
            f"Try: {ENV_TOKEN}={sim.token} flipkart-otc watch "
            f"--base-url {sim.base_url} {ids[0] if ids else 'LOC1'}\n"
            "Ctrl+C stops it.",
        )
        await stopper.event.wait()
    return stopper.code


# -- parser --------------------------------------------------------------------


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def _number(minimum: float, *, strict: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value == value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value < minimum or (strict and value == minimum):
            relation = ">" if strict else ">="
            raise argparse.ArgumentTypeError(f"must be {relation} {minimum:g}, got {text!r}")
        return value

    return parse


def _fraction(text: str) -> float:
    value = _number(0, strict=False)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def _subparser(
    sub: Any, name: str, help_: str, description: str, example: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_,
        description=description,
        epilog=example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging to stderr")
    return parser


def _api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("locations", nargs="*", metavar="LOC", help="seller location ids")
    parser.add_argument(
        "--locations-file", metavar="F", help="more location ids, one per line (# comments)"
    )
    parser.add_argument("--show-otc", action="store_true", help="print OTCs instead of ***")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--sandbox", action="store_true", help="use Flipkart's sandbox")
    where.add_argument("--base-url", metavar="URL", help="API base URL (e.g. a simulator's)")
    parser.add_argument("--token-url", metavar="URL", help="OAuth token URL (derived by default)")
    creds = parser.add_argument_group(
        "credentials",
        f"default: ${ENV_TOKEN}, or ${ENV_APP_ID} with ${ENV_APP_SECRET}",
    )
    creds.add_argument("--token", help=f"bearer token (prefer ${ENV_TOKEN})")
    creds.add_argument("--app-id", help=f"app id (or ${ENV_APP_ID})")
    creds.add_argument("--app-secret", help=f"app secret (prefer ${ENV_APP_SECRET})")
    parser.add_argument(
        "--timeout", type=_number(0, strict=True), default=10.0, help="seconds per attempt"
    )


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser, and each subcommand's parser by name."""
    parser = argparse.ArgumentParser(
        prog="flipkart-otc",
        description="Fetch and watch Flipkart Start OTC codes for your seller locations.",
        epilog="Run 'flipkart-otc demo' to see it work without credentials.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = _subparser(
        sub,
        "demo",
        "watch simulated locations live (no credentials, no network)",
        "Start the embedded Flipkart simulator with a lively scenario and watch it: one "
        "line per event, OTCs shown (they are simulated).",
        "example: flipkart-otc demo --locations 8 --duration 60 --seed 3",
    )
    demo.add_argument("--locations", type=_count, default=6, help="how many (default 6)")
    demo.add_argument(
        "--duration", type=_number(0, strict=True), default=30.0, help="seconds (default 30)"
    )
    demo.add_argument("--seed", type=int, default=1, help="scenario seed (default 1)")
    demo.set_defaults(run=_demo)

    watch = _subparser(
        sub,
        "watch",
        "watch locations and print an event per change",
        "Poll the locations and print arrivals, renewals, expiries, departures and status "
        "changes as they happen; --format json prints one JSON object per line (NDJSON).",
        "example: FLIPKART_ACCESS_TOKEN=... flipkart-otc watch LOC1 LOC2 --format json | jq .",
    )
    _api_options(watch)
    watch.add_argument(
        "--interval", type=_number(0, strict=False), default=10.0, help="seconds between polls"
    )
    watch.add_argument("--format", choices=("text", "json"), default="text")
    watch.add_argument(
        "--duration", type=_number(0, strict=True), help="stop after this many seconds"
    )
    watch.set_defaults(run=_watch)

    fetch = _subparser(
        sub,
        "fetch",
        "fetch each location once and print a table or JSON",
        "Call Start OTC once per location and print who is there with which code.",
        "example: FLIPKART_APP_ID=... FLIPKART_APP_SECRET=... flipkart-otc fetch LOC1 LOC2",
    )
    _api_options(fetch)
    fetch.add_argument("--format", choices=("table", "json"), default="table")
    fetch.set_defaults(run=_fetch)

    simulate = _subparser(
        sub,
        "simulate",
        "run the local Flipkart simulator",
        "Run a local Flipkart (Start OTC API and token endpoint) on 127.0.0.1 with a "
        "seeded scenario, and print its base URL and credentials.",
        "example: flipkart-otc simulate --port 8642 --locations 20 --seed 7 --speed 10",
    )
    simulate.add_argument("--port", type=int, default=8642, help="TCP port (0: any free one)")
    simulate.add_argument("--locations", type=_count, default=10, help="LOC1..LOCn (default 10)")
    simulate.add_argument("--seed", type=int, default=0, help="scenario seed (default 0)")
    simulate.add_argument(
        "--speed", type=_number(0, strict=True), default=1.0, help="time-lapse factor"
    )
    simulate.add_argument("--seconds", action="store_true", help="timestamps in epoch seconds")
    simulate.add_argument(
        "--fault-rate", type=_fraction, default=0.0, help="share of answers that fail (0..1)"
    )
    simulate.add_argument(
        "--duration", type=_number(0, strict=True), help="stop after this many seconds"
    )
    simulate.set_defaults(run=_simulate)
    commands = {"demo": demo, "watch": watch, "fetch": fetch, "simulate": simulate}
    return parser, commands


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser, commands = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the subcommand in the usage line, as its own parser would
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
        )
    _install_uvloop()
    try:
        code: int = asyncio.run(args.run(args, sys.stdout))
    except UsageError as exc:
        print(f"flipkart-otc {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AuthenticationError as exc:
        print(f"flipkart-otc {args.command}: authentication failed: {exc}", file=sys.stderr)
        return EXIT_AUTH
    except FlipkartOtcError as exc:
        print(f"flipkart-otc {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
