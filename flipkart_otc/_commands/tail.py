"""``flipkart-otc tail``: the events on a Redis stream, as NDJSON."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TextIO

from .. import _render
from .._cli_base import (
    UsageError,
)
from .._serialize import masked
from .common import _print, _redis, _redis_module, _redis_url, _Stopper


async def _tail(args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]) -> int:
    if (args.group is None) != (args.consumer is None):
        raise UsageError("--group and --consumer go together")
    module = _redis_module()
    url = _redis_url(args.url, "URL")
    reader = _redis(
        lambda: module.StreamTail(
            url,
            stream=args.stream,
            group=args.group,
            consumer=args.consumer,
            from_start=args.from_start,
        )
    )
    stopper = _Stopper(args.duration)
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
