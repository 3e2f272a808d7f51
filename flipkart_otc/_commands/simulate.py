"""``flipkart-otc simulate``: the simulator, standalone."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TextIO

from .._cli_base import (
    ENV_TOKEN,
    CommandError,
)
from .common import _print, _Stopper


async def _simulate(args: argparse.Namespace, out: TextIO, say: Callable[[str, str], None]) -> int:
    from ..simulator import Scenario, Simulator

    scenario = Scenario(
        locations=args.locations, seed=args.seed, speed=args.speed, visits=args.visits
    )
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
