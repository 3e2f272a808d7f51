"""The ``flipkart-otc`` command line (also ``python -m flipkart_otc``)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from ._version import __version__

__all__ = ["main"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Interrupted(Exception):
    """SIGINT arrived: end quietly with exit code 130."""


def _stop_on_signals(stop: asyncio.Event, interrupted: list[bool]) -> None:
    loop = asyncio.get_running_loop()

    def on_sigint() -> None:
        interrupted.append(True)
        stop.set()

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    loop.add_signal_handler(signal.SIGTERM, stop.set)


# -- simulate ------------------------------------------------------------------


async def _simulate(args: argparse.Namespace, out: TextIO) -> int:
    from .simulator import Scenario, Simulator

    scenario = Scenario(locations=args.locations, seed=args.seed, speed=args.speed)
    sim = Simulator(scenario=scenario, seconds=args.seconds, seed=args.seed, port=args.port)
    if args.fault_rate:
        sim.faults.random(args.fault_rate)
    stop, interrupted = asyncio.Event(), list[bool]()
    _stop_on_signals(stop, interrupted)
    async with sim:
        ids = scenario.location_ids
        span = f"{ids[0]} .. {ids[-1]}" if ids else "none"
        print(
            f"Flipkart simulator listening on {sim.origin}\n"
            f"  base URL    {sim.base_url}\n"
            f"  token URL   {sim.token_url}\n"
            f"  app id      {sim.app_id}\n"
            f"  app secret  {sim.app_secret}\n"
            f"  token       {sim.token}\n"
            f"  locations   {span} (seed {args.seed}, speed {args.speed:g})\n"
            f"Try: FLIPKART_ACCESS_TOKEN={sim.token} flipkart-otc watch "
            f"--base-url {sim.base_url} {ids[0] if ids else 'LOC1'}\n"
            "Ctrl+C stops it.",
            file=out,
            flush=True,
        )
        await stop.wait()
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


# -- parser --------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flipkart-otc",
        description="Watch Flipkart Start OTC codes for your seller locations.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    simulate = sub.add_parser(
        "simulate",
        help="run the local Flipkart simulator",
        description="Run a local Flipkart (Start OTC API and token endpoint) on 127.0.0.1 "
        "with a seeded scenario, and print its base URL and credentials.",
        epilog="example: flipkart-otc simulate --port 8642 --locations 20 --seed 7 --speed 10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument("--port", type=int, default=8642, help="TCP port (0: any free one)")
    simulate.add_argument("--locations", type=_count, default=10, help="LOC1..LOCn (default 10)")
    simulate.add_argument("--seed", type=int, default=0, help="scenario seed (default 0)")
    simulate.add_argument("--speed", type=_positive, default=1.0, help="time-lapse factor")
    simulate.add_argument("--seconds", action="store_true", help="timestamps in epoch seconds")
    simulate.add_argument(
        "--fault-rate", type=_fraction, default=0.0, help="share of answers that fail (0..1)"
    )
    simulate.set_defaults(run=_simulate)
    return parser


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        code: int = asyncio.run(args.run(args, sys.stdout))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
