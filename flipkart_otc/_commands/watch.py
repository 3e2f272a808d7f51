"""``flipkart-otc watch``: watch locations and print an event per change."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import TextIO

from .. import _render, _serving
from ..events import WatchEvent
from .common import _client, _fleet_line, _locations, _print, _sink, _Stopper, _timed, _watcher


def _emitter(args: argparse.Namespace, out: TextIO) -> Callable[[WatchEvent], None]:
    if args.format == "json":
        return lambda e: _print(out, _render.json_line(e.to_dict(show_otc=args.show_otc)))
    return lambda e: _print(out, _render.event_line(e, show_otc=args.show_otc))


async def _watch(args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]) -> int:
    locations = _locations(args, say)
    stopper = _Stopper(args.duration)
    emit = _emitter(args, out)
    _serving.probes_settings(args)  # a bad key, host or certificate: before anything starts
    metrics = _serving.new_metrics(required=False) if args.metrics_port is not None else None

    async def watch() -> None:  # all of it under the stopper: a start that waits for
        # Redis (loading the saved state) ends on Ctrl+C, SIGTERM or --duration too
        async with _client(args, metrics) as client, _sink(args) as sink:
            watcher = _watcher(args, client, locations, _timed(metrics, sink), metrics)
            tell = functools.partial(say, args.command)
            async with watcher, _serving.probes_port(args, watcher, metrics, sink, tell) as url:
                if url is not None:
                    say(args.command, f"probes and metrics on {url} (metrics, healthz, readyz)")
                if sink is not None or args.shard is not None:
                    say(args.command, _fleet_line(args, watcher, len(locations)))
                async for event in watcher:
                    emit(event)

    await stopper.run_until_stopped(watch())
    return stopper.code
