"""What each ``flipkart-otc`` subcommand does (:mod:`flipkart_otc.cli` parses and guards)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import ipaddress
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from aiohttp import web

from . import _render
from ._checks import check_location_id, safe_url
from ._fanout import EventFeed, ReliableSink
from ._lifecycle import cancel_and_wait
from ._serialize import masked, snapshot_dict, visit_dict
from ._visit import Page, page_of
from .auth import PRODUCTION_TOKEN_URL, SANDBOX_TOKEN_URL, ClientCredentials, TokenProvider
from .cli import (
    ENV_APP_ID,
    ENV_APP_SECRET,
    ENV_TOKEN,
    EXIT_AUTH,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    UsageError,
)
from .client import PRODUCTION_BASE_URL, SANDBOX_BASE_URL, OtcClient
from .errors import AuthenticationError, FlipkartOtcError, classify
from .events import VisitWatchEvent
from .models import EndOtc, LocationStatus, ScannedShipment
from .policy import PollPolicy
from .retry import RetryPolicy
from .visit import VisitWatcher
from .watcher import OtcWatcher

__all__ = ["run"]


def run(args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]) -> int:
    """Run the parsed command; ``say(command, text)`` reports an error on one line."""
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
        )
    else:  # a Redis outage and recovery are news on one line each, even without -v
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"flipkart-otc {args.command}: %(message)s"))
        handler.set_name("flipkart-otc-cli")
        sinks = logging.getLogger("flipkart_otc.sinks")
        for old in [h for h in sinks.handlers if h.get_name() == "flipkart-otc-cli"]:
            sinks.removeHandler(old)  # main() run again in one process: one line each
        sinks.addHandler(handler)
        sinks.setLevel(logging.WARNING)
    _install_uvloop()
    command = globals()["_" + args.run]
    try:
        code: int = asyncio.run(_guarded(command(args, out, say)))
    except UsageError as exc:
        say(args.command, str(exc))
        return EXIT_USAGE
    except CommandError as exc:
        say(args.command, str(exc))
        return EXIT_FAILED
    except AuthenticationError as exc:
        say(args.command, f"authentication failed: {exc}")
        return EXIT_AUTH
    except FlipkartOtcError as exc:
        say(args.command, str(exc))
        return EXIT_FAILED
    except BrokenPipeError:
        raise  # stdout closed: cli.main() ends quietly with 141
    except Exception as exc:  # a bug: one line here, the traceback in the debug log (-v)
        logging.getLogger("flipkart_otc").debug("unexpected error", exc_info=True)
        say(args.command, f"unexpected error (a bug; -v shows where): {type(exc).__name__}")
        return EXIT_FAILED
    return code


def _install_uvloop() -> None:
    # Optional speedup (the `speedups` extra); the core meets its targets without it.
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _exit_now(signum: int, frame: object) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    os._exit(EXIT_INTERRUPTED)


async def _guarded(command: Coroutine[Any, Any, int]) -> int:
    """Run a command; before the loop closes, take its signal handlers back.

    asyncio closes the loop's wakeup pipe before it removes the loop's signal
    handlers: a Ctrl+C in between prints "Exception ignored ... wakeup fd". So the
    handlers go here, while the loop runs, and a Ctrl+C from then on (shutting
    down) ends the process at once with 130.
    """
    try:
        return await command
    finally:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        signal.signal(signal.SIGINT, _exit_now)


class _Stopper:
    """Ends a command on SIGINT/SIGTERM or after a duration, without a traceback."""

    def __init__(self, duration: float | None) -> None:
        self.event = asyncio.Event()
        self.interrupted = False
        self.out: TextIO | None = None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._interrupt)
        loop.add_signal_handler(signal.SIGTERM, self.event.set)
        if duration is not None:
            loop.call_later(duration, self.event.set)

    def _interrupt(self) -> None:
        if self.interrupted:  # a second Ctrl+C while shutting down: stop at once
            _exit_now(signal.SIGINT, None)
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
            await cancel_and_wait(task)  # again if it swallows one (redis-py connecting)
        if not task.cancelled():
            task.result()  # its exception, if it ended with one


def _print(out: TextIO, text: str) -> None:
    # a closed stdout raises BrokenPipeError: cli.main() ends the command quietly
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


def _read_ids(path: str) -> list[str]:
    """The ids in a locations file: one per line, ``#`` comments, a UTF-8 BOM ignored."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = handle.read().splitlines()
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"--locations-file {path!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} "
            f"at offset {exc.start})"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read --locations-file: {exc.strerror}: {path!r}") from None
    return [line for line in (raw.split("#", 1)[0].strip() for raw in lines) if line]


def _locations(args: argparse.Namespace, say: Callable[[str, str], None]) -> list[str]:
    """Every id named, stripped and checked; one named twice is watched once, and said so."""
    ids = list(args.locations)
    if args.locations_file:
        ids += _read_ids(args.locations_file)
    try:
        ids = [check_location_id(location_id) for location_id in ids]
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if not ids:
        raise UsageError("no locations: name some (LOC1 LOC2 ...) or pass --locations-file")
    repeated = [f"{loc} ({n} times)" for loc, n in Counter(ids).items() if n > 1]
    if repeated:
        say(args.command, "listed more than once, watched once: " + ", ".join(repeated))
    return list(dict.fromkeys(ids))


def _client(args: argparse.Namespace) -> OtcClient:
    base_url, token_url = _urls(args)
    try:  # a bad URL or credential: the client's own check names it (never the secret)
        return OtcClient(_auth(args, token_url), base_url=base_url, timeout=args.timeout)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


# -- watch ---------------------------------------------------------------------


def _emitter(args: argparse.Namespace, out: TextIO) -> Callable[[VisitWatchEvent], None]:
    if args.format == "json":
        return lambda e: _print(out, _render.json_line(e.to_dict(show_otc=args.show_otc)))
    return lambda e: _print(out, _render.event_line(e, show_otc=args.show_otc))


def _watcher(
    args: argparse.Namespace,
    client: OtcClient,
    locations: list[str],
    sink: ReliableSink | None = None,
) -> OtcWatcher | VisitWatcher:
    """The watcher ``watch`` and ``dashboard`` run, with their polling options: with
    ``--visit`` a VisitWatcher (``_sink`` refuses a sink beside it)."""
    policy = PollPolicy.fixed() if args.fixed_interval else None
    if args.visit:
        return VisitWatcher(
            client,
            locations,
            interval=args.interval,
            policy=policy,
            scan_interval=args.scan_interval,
        )
    return OtcWatcher(
        client,
        locations,
        interval=args.interval,
        policy=policy,
        sink=sink,
        shard=getattr(args, "shard", None),
    )


def _redis_module() -> Any:
    """``flipkart_otc.sinks.redis_streams``, or a usage error saying what to install."""
    try:
        return importlib.import_module("flipkart_otc.sinks.redis_streams")
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith("redis"):
            raise
        raise UsageError(
            "Redis needs the redis package: pip install 'flipkart-otc[redis]'"
        ) from None


def _sink(args: argparse.Namespace) -> contextlib.AbstractAsyncContextManager[Any]:
    """``--sink``'s RedisStreamSink (None without one), closed when the command ends."""
    if args.sink is None:
        return contextlib.nullcontext()
    if args.visit:
        raise UsageError("--sink does not carry --visit's events yet; drop one of them")
    module = _redis_module()
    return module.RedisStreamSink(args.sink, stream=args.stream, show_otc=args.show_otc)  # type: ignore[no-any-return]


async def _watch(args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]) -> int:
    locations = _locations(args, say)
    stopper = _Stopper(args.duration)
    emit = _emitter(args, out)

    async def watch() -> None:  # all of it under the stopper: a start that waits for
        # Redis (loading the saved state) ends on Ctrl+C, SIGTERM or --duration too
        async with _client(args) as client, _sink(args) as sink:
            watcher = _watcher(args, client, locations, sink)
            async with watcher:
                if sink is not None or args.shard is not None:
                    say(args.command, _fleet_line(args, watcher, len(locations)))
                async for event in watcher:
                    emit(event)

    await stopper.run_until_stopped(watch())
    return stopper.code


def _fleet_line(args: argparse.Namespace, watcher: OtcWatcher | VisitWatcher, named: int) -> str:
    """What a shard worker says once it has started (its saved state loaded)."""
    assert isinstance(watcher, OtcWatcher)
    text = f"watching {len(watcher.locations)} of {named} locations"
    if args.shard is not None:
        text = f"shard {args.shard}: " + text
    if args.sink is not None:
        text += f"; {watcher.resumed} resumed from {safe_url(args.sink)} stream {args.stream!r}"
    return text


# -- tail ------------------------------------------------------------------------------


async def _tail(args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]) -> int:
    if (args.group is None) != (args.consumer is None):
        raise UsageError("--group and --consumer go together")
    module = _redis_module()
    stopper = _Stopper(args.duration)
    reader = module.StreamTail(
        args.url,
        stream=args.stream,
        group=args.group,
        consumer=args.consumer,
        from_start=args.from_start,
    )
    printed = 0

    async def follow() -> None:
        nonlocal printed
        async for entry in reader:
            data = entry.event
            if not args.show_otc:
                data = masked(data)
            _print(
                out,
                _render.json_line(
                    data | {"event_id": entry.event_id, "stream_id": entry.stream_id}
                ),
            )
            await reader.ack(entry)
            printed += 1
            if args.count is not None and printed >= args.count:
                return

    try:
        await stopper.run_until_stopped(follow())
    finally:
        await reader.aclose()
    return stopper.code


# -- dashboard -------------------------------------------------------------------------


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _access_key(args: argparse.Namespace) -> str | None:
    name = args.access_key_env
    if name is None:
        if not _loopback(args.host):
            raise UsageError(
                f"--host {args.host} is not a loopback address: anyone who can reach it would "
                "see the page; pass --access-key-env NAME with a key of 16+ characters in $NAME"
            )
        return None
    key = os.environ.get(name, "").strip()
    if not key:
        raise UsageError(f"--access-key-env {name}: ${name} is not set or empty")
    if len(key) < 16:
        raise UsageError(f"--access-key-env {name}: the key in ${name} is shorter than 16")
    return key


async def _serve_dashboard(
    watcher: EventFeed, host: str, port: int, *, show_otc: bool, access_key: str | None
) -> tuple[web.AppRunner, str]:
    """The dashboard of ``watcher``, listening; and its URL."""
    dashboard = importlib.import_module("flipkart_otc.dashboard")
    app = dashboard.create_app(watcher, show_otc=show_otc, access_key=access_key)
    # on stop, requests still open (a browser's event stream, a request that raced
    # the stop) get 2 s, not aiohttp's 60: Ctrl+C and SIGTERM end the command soon
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown}:{bound_port}/"


def _dashboard_module_missing() -> str | None:
    try:
        importlib.import_module("flipkart_otc.dashboard")
    except ImportError as exc:
        return str(exc)
    return None


async def _dashboard(
    args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]
) -> int:
    access_key = _access_key(args)
    missing = _dashboard_module_missing()
    if missing:
        raise UsageError(missing)
    if args.source is not None:
        return await _dashboard_of_stream(args, out, access_key)
    locations = _locations(args, say)
    stopper = _Stopper(args.duration)
    async with _client(args) as client:
        watcher = _watcher(args, client, locations)
        async with watcher:

            async def consume() -> None:  # the page reads its own copy of the events
                async for _ in watcher:
                    pass

            what = f"watching {len(locations)} locations"
            await _serve_until_stopped(args, out, access_key, stopper, watcher, what, consume)
    return stopper.code


async def _dashboard_of_stream(
    args: argparse.Namespace, out: TextIO, access_key: str | None
) -> int:
    """``dashboard --source``: the page of what shard workers write to a stream."""
    if args.locations or args.locations_file:
        raise UsageError("--source shows every location on the stream: name none")
    if args.visit:
        raise UsageError("--source does not carry --visit's events yet; drop one of them")
    module = _redis_module()
    stopper = _Stopper(args.duration)
    async with module.RedisStreamFeed(args.source, stream=args.stream) as feed:
        what = (
            f"{len(feed.locations)} locations from {safe_url(args.source)} stream {args.stream!r}"
        )
        await _serve_until_stopped(args, out, access_key, stopper, feed, what, stopper.event.wait)
    return stopper.code


async def _serve_until_stopped(
    args: argparse.Namespace,
    out: TextIO,
    access_key: str | None,
    stopper: _Stopper,
    feed: EventFeed,
    what: str,
    work: Callable[[], Coroutine[Any, Any, Any]],
) -> None:
    """Serve the dashboard of ``feed``, say where, and run ``work()`` until stopped."""
    runner, url = await _serve_dashboard(
        feed, args.host, args.port, show_otc=args.show_otc, access_key=access_key
    )
    try:
        _print(out, f"flipkart-otc dashboard: {url} ({what}; Ctrl+C stops)")
        await stopper.run_until_stopped(work())
    finally:
        await runner.cleanup()


# -- fetch ---------------------------------------------------------------------------


async def _fetch(args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]) -> int:
    if args.end_otc and not args.visit:
        raise UsageError("--end-otc goes with --visit")
    if args.visit:
        return await _fetch_visit(args, out, say)
    locations = _locations(args, say)
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
        if isinstance(result, BaseException):
            verdict = classify(result)
            if verdict.fatal:
                raise result
            status = verdict.status
            if status is LocationStatus.FAILING:
                status, error, failed = "ERROR", str(result), True
        else:
            status, snapshot = LocationStatus.ACTIVE, result
        if args.format == "json":
            data = snapshot_dict(location_id, snapshot, status, error, show_otc=args.show_otc)
            _print(out, _render.json_line(data))
        else:
            rows += _render.snapshot_rows(location_id, snapshot, status, show_otc=args.show_otc)
            if error:
                rows[-1][2] = error
    if args.format == "table":
        header = ["LOCATION", "STATUS", "FE", "NAME", "PARTNER", "LOB", "OTC", "CODE"]
        _print(out, _render.table(header, rows))
    return EXIT_FAILED if failed else EXIT_OK


async def _fetch_visit(
    args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]
) -> int:
    locations = _locations(args, say)
    async with _client(args) as client:
        rows = await asyncio.gather(*(_visit(client, loc, args) for loc in locations))
    if args.format == "json":
        for data in rows:
            _print(out, _render.json_line(data))
    else:
        header = ["LOCATION", "STATUS", "FE", "NAME", "PARTNER", "PAGE", "SCANNED", "END OTC"]
        table = [row for data in rows for row in _render.visit_rows(data)]
        _print(out, _render.table(header, table))
    return EXIT_FAILED if any(data["status"] == "ERROR" for data in rows) else EXIT_OK


async def _visit(client: OtcClient, location_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """One location's visit as ``visit_dict`` gives it; a failure is its status."""
    load = None
    status: LocationStatus | str = LocationStatus.ACTIVE
    error = None
    scanned: dict[str, list[ScannedShipment]] = {}
    ends: dict[str, EndOtc] = {}
    try:
        load = await client.initial_load(location_id)
        for fe_id, fe in load.fes.items():
            page = page_of(fe.task_status)
            if page is not Page.START_OTC:  # past the Start OTC page
                shipments = client.scanned_shipments(fe.task_id, fe_id)
                scanned[fe_id] = [shipment async for shipment in shipments]
            if args.end_otc and page is Page.END_OTC:
                ends[fe_id] = await client.end_otc_details(fe_id, fe.task_id)
    except FlipkartOtcError as exc:
        verdict = classify(exc)
        if verdict.fatal:
            raise
        status = verdict.status
        if status is LocationStatus.FAILING:
            status, error = "ERROR", str(exc)
    return visit_dict(location_id, load, status, error, scanned, ends, show_otc=args.show_otc)


# -- demo -------------------------------------------------------------------------


async def _demo(args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]) -> int:
    from .simulator import TRANSIENT, Scenario, Simulator

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
            client, scenario.location_ids, interval=1.0, policy=PollPolicy.fixed()
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
        f"{faults} faults injected and handled",
    )
    return stopper.code


# -- simulate ------------------------------------------------------------------


async def _simulate(args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]) -> int:
    from .simulator import Scenario, Simulator

    scenario = Scenario(locations=args.locations, seed=args.seed, speed=args.speed)
    sim = Simulator(scenario=scenario, seconds=args.seconds, seed=args.seed, port=args.port)
    if args.fault_rate:
        sim.faults.random(args.fault_rate)
    stopper = _Stopper(args.duration)
    try:
        await sim.start()
    except OSError as exc:
        await sim.close()
        reason = exc.strerror or str(exc)
        raise CommandError(f"cannot listen on 127.0.0.1:{args.port}: {reason}") from None
    try:
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
    finally:
        await sim.close()
    return stopper.code
