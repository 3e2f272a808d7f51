"""``flipkart-otc dashboard``: watch locations (or read a stream) and serve the live page."""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import ssl
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

from aiohttp import web

from .. import _serving
from .._checks import safe_url
from .._cli_base import (
    UsageError,
)
from .._fanout import EventFeed
from ..probes import Probes
from .common import (
    _client,
    _fleet_line,
    _locations,
    _print,
    _redis,
    _redis_module,
    _redis_url,
    _sink,
    _Stopper,
    _timed,
    _watcher,
)


async def _serve_dashboard(
    watcher: EventFeed,
    host: str,
    port: int,
    *,
    show_otc: bool,
    access_key: str | None,
    context: ssl.SSLContext | None = None,
    probes: Probes | None = None,
) -> tuple[web.AppRunner, str]:
    """The dashboard of ``watcher`` (with ``probes``' routes), listening; and its URL."""
    dashboard = importlib.import_module("flipkart_otc.dashboard")
    app = dashboard.create_app(watcher, show_otc=show_otc, access_key=access_key, probes=probes)
    return await _serving.listen(app, host, port, context)


def _dashboard_module_missing() -> str | None:
    try:
        importlib.import_module("flipkart_otc.dashboard")
    except ImportError as exc:
        return str(exc)
    return None


async def _dashboard(
    args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]
) -> int:
    missing = _dashboard_module_missing()
    if missing:
        raise UsageError(missing)
    access_key = _serving.access_key(args.host, args.access_key_env)
    _serving.tls_context(args)  # a bad certificate: a usage error before anything starts
    if args.source is not None:
        return await _dashboard_of_stream(args, out, say, access_key)
    locations = _locations(args, say)
    stopper = _Stopper(args.duration)
    metrics = _serving.new_metrics(required=False)  # /metrics, with the metrics extra

    async def serve() -> None:  # under the stopper: a start that waits for Redis ends too
        async with (
            _client(args, metrics) as client,
            _sink(args) as sink,
            # nobody iterates it: the page and the sink are its readers
            _watcher(args, client, locations, _timed(metrics, sink), metrics) as watcher,
        ):
            what = f"watching {len(locations)} locations"
            if sink is not None or args.shard is not None:
                what = _fleet_line(args, watcher, len(locations))
            await _serve_until_stopped(
                args, out, say, access_key, stopper, watcher, what, watcher.wait_stopped,
                metrics, sink,
            )

    await stopper.run_until_stopped(serve())
    return stopper.code


async def _dashboard_of_stream(
    args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None], access_key: str | None
) -> int:
    """``dashboard --source``: the page of what shard workers write to a stream."""
    if args.locations or args.locations_file:
        raise UsageError("--source shows every location on the stream: name none")
    if args.sink is not None or args.shard is not None:
        raise UsageError("--source shows what workers write: it takes no --sink or --shard")
    module = _redis_module()
    source = _redis_url(args.source, "--source")
    feed = _redis(lambda: module.RedisStreamFeed(source, stream=args.stream))
    stopper = _Stopper(args.duration)
    async with feed:
        what = f"{len(feed.locations)} locations from {safe_url(source)} stream {args.stream!r}"
        metrics = _serving.new_metrics(required=False)
        # until stopped, or until Redis refuses the feed (exit 1, one line)
        await _serve_until_stopped(
            args, out, say, access_key, stopper, feed, what, feed.wait, metrics
        )
    return stopper.code


async def _serve_until_stopped(
    args: argparse.Namespace,
    out: TextIO,
    say: Callable[[str, str], None],
    access_key: str | None,
    stopper: _Stopper,
    feed: EventFeed,
    what: str,
    work: Callable[[], Coroutine[Any, Any, Any]],
    metrics: Any,
    sink: Any = None,
) -> None:
    """Serve the dashboard of ``feed`` (and its probes and metrics), say where, and run
    ``work()`` until stopped."""
    context = _serving.tls_context(args)
    # a stream's reader (--source) hears nothing while nothing happens: no stall limit
    stall = None if args.source is not None else _serving.stall_after(args)
    probes = Probes(feed, metrics=metrics, sink=sink, stall_after=stall, access_key=access_key)
    _serving.warn_if_clear(args.host, context, functools.partial(say, args.command))
    runner, url = await _serve_dashboard(
        feed,
        args.host,
        args.port,
        show_otc=args.show_otc,
        access_key=access_key,
        context=context,
        probes=probes,
    )
    try:
        _print(out, f"flipkart-otc dashboard: {url} ({what}; Ctrl+C stops)")
        async with (
            metrics.attached(feed, sink=sink) if metrics is not None else contextlib.nullcontext()
        ):
            await stopper.run_until_stopped(work())
    finally:
        await runner.cleanup()
