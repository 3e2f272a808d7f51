"""What the commands share: stopping on a signal or a duration, the credentials and
locations they take, the client, watcher and sink their options make."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TextIO
from urllib.parse import urlsplit

import attrs

from .._checks import check_location_id, check_redis_url, safe_url
from .._cli_base import (
    ENV_APP_ID,
    ENV_APP_SECRET,
    ENV_REDIS_URL,
    ENV_TOKEN,
    EXIT_INTERRUPTED,
    EXIT_OK,
    REDIS_URL_FROM_ENV,
    UsageError,
)
from .._fanout import ReliableSink
from .._lifecycle import cancel_and_wait
from .._observe import Observer
from ..auth import PRODUCTION_TOKEN_URL, SANDBOX_TOKEN_URL, ClientCredentials, TokenProvider
from ..client import PRODUCTION_BASE_URL, SANDBOX_BASE_URL, OtcClient
from ..policy import PollPolicy
from ..ratelimit import RateLimit
from ..watcher import OtcWatcher


def _exit_now(signum: int, frame: object) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    os._exit(EXIT_INTERRUPTED)


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


@contextlib.asynccontextmanager
async def _client(
    args: argparse.Namespace, observer: Observer | None = None
) -> AsyncIterator[OtcClient]:
    """The command's client, with ``--rate-limit``: a shard worker keeps to its part
    (R/N), or with ``--sink`` shares R with the fleet through Redis."""
    base_url, token_url = _urls(args)
    limit, limiter = getattr(args, "rate_limit", None), None
    if getattr(args, "budget_share", None) is not None and limit is None:
        raise UsageError("--budget-share needs --rate-limit: there is no budget to share")
    shard = getattr(args, "shard", None)
    if limit is not None and shard is not None:
        if getattr(args, "sink", None) is not None:
            module, url = _redis_module("redis_limiter"), _redis_url(args.sink, "--sink")
            limiter = _redis(lambda: module.RedisRateLimiter(url, limit, workers=shard.count))
        else:
            limit = RateLimit(limit.rate / shard.count, -(-limit.burst // shard.count))
    try:  # a bad URL or credential: the client's own check names it (never the secret)
        client = OtcClient(
            _auth(args, token_url),
            base_url=base_url,
            timeout=args.timeout,
            observer=observer,
            rate_limit=limit,
            limiter=limiter,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    try:
        async with client:
            yield client
    finally:
        if limiter is not None:
            await limiter.aclose()


def _watcher(
    args: argparse.Namespace,
    client: OtcClient,
    locations: list[str],
    sink: ReliableSink | None = None,
    observer: Observer | None = None,
) -> OtcWatcher:
    """The watcher ``watch`` and ``dashboard`` run, with every option of theirs: one
    engine, whatever they combine (``--visit``, ``--sink``, ``--shard``)."""
    policy = PollPolicy.fixed() if args.fixed_interval else PollPolicy()
    if args.budget_share is not None:
        policy = attrs.evolve(policy, budget_share=args.budget_share)
    if args.visit:
        policy = attrs.evolve(policy, scanning=args.scan_interval)
    return OtcWatcher(
        client,
        locations,
        interval=args.interval,
        policy=policy,
        sink=sink,
        shard=getattr(args, "shard", None),
        visits=bool(args.visit),
        observer=observer,
    )


def _redis_url(given: str | None, option: str) -> str:
    """The Redis URL of ``option``: the one given, else $FLIPKART_OTC_REDIS_URL's."""
    if given is not None and given != REDIS_URL_FROM_ENV:
        return given
    url = os.environ.get(ENV_REDIS_URL, "").strip()
    if not url:
        raise UsageError(f"{option}: no URL given, and ${ENV_REDIS_URL} is not set or empty")
    try:
        return check_redis_url(url)
    except ValueError as exc:  # it names the URL without its password
        raise UsageError(f"${ENV_REDIS_URL}: {exc}") from None


def _redis(make: Callable[[], Any]) -> Any:
    """A Redis reader or writer; a bad option in its URL is a usage error."""
    try:
        return make()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _redis_module(name: str = "redis_streams") -> Any:
    """``flipkart_otc.sinks.<name>``, or a usage error saying what to install."""
    try:
        return importlib.import_module("flipkart_otc.sinks." + name)
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
    module = _redis_module()
    args.sink = _redis_url(args.sink, "--sink")
    return _redis(  # type: ignore[no-any-return]
        lambda: module.RedisStreamSink(args.sink, stream=args.stream, show_otc=args.show_otc)
    )


def _timed(metrics: Any, sink: Any) -> Any:
    """``sink`` with its writes timed into ``metrics`` (as it is without either)."""
    return metrics.timed_sink(sink) if metrics is not None and sink is not None else sink


def _fleet_line(args: argparse.Namespace, watcher: OtcWatcher, named: int) -> str:
    """What a shard worker says once it has started (its saved state loaded)."""
    text = f"watching {len(watcher.locations)} of {named} locations"
    if args.shard is not None:
        text = f"shard {args.shard}: " + text
    if args.sink is not None:
        text += f"; {watcher.resumed} resumed from {safe_url(args.sink)} stream {args.stream!r}"
    return text
