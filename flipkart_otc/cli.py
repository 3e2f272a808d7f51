"""The ``flipkart-otc`` command line (also ``python -m flipkart_otc``).

Exit codes: 0 done, 1 some location failed (``fetch``) or the command could not
run (a busy port), 2 usage or missing credentials, 3 authentication failed,
130 interrupted (Ctrl+C; a second Ctrl+C stops at once), 141 standard output
closed (``| head``: the rest is dropped quietly, as a shell reports for ``cat``).

This module stays light: the commands and everything they import load inside
:func:`main`, where a Ctrl+C during start-up is caught like any other.

Why one module of some 500 lines: the parser of six commands, each option written
once with its help (the commands themselves are ``_commands``').
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._cli_base import (
    ENV_APP_ID,
    ENV_APP_SECRET,
    ENV_TOKEN,
    EXIT_CLOSED_OUTPUT,
    EXIT_INTERRUPTED,
    REDIS_URL_FROM_ENV,
)
from ._cli_base import ENV_REDIS_URL as ENV_REDIS_URL

# the names the commands share live in _cli_base; these stay importable from here
from ._cli_base import EXIT_AUTH as EXIT_AUTH
from ._cli_base import EXIT_FAILED as EXIT_FAILED
from ._cli_base import EXIT_OK as EXIT_OK
from ._cli_base import EXIT_USAGE as EXIT_USAGE
from ._cli_base import CommandError as CommandError
from ._cli_base import UsageError as UsageError
from ._version import __version__

__all__ = ["main"]

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


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = _number(0, strict=False)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def _shard(text: str) -> Any:
    from .shard import Shard  # light: pure

    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate_limit(text: str) -> Any:
    """``R`` or ``R/BURST``: a RateLimit (its own checks name the bad part)."""
    from .ratelimit import RateLimit  # light: pure

    rate_text, slash, burst_text = text.partition("/")
    try:
        rate = float(rate_text)
        burst = int(burst_text) if slash else 1
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected R or R/BURST (requests a second, a whole burst), got {text!r}"
        ) from None
    try:
        return RateLimit(rate, burst)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _share(text: str) -> float:
    value = _fraction(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0 and <= 1, got {text!r}")
    return value


def _redis_url(text: str) -> str:
    from ._checks import check_redis_url  # light: pure

    if text == REDIS_URL_FROM_ENV:  # the option alone (argparse passes its const here)
        return text
    try:
        return check_redis_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _stream_option(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--stream",
        metavar="NAME",
        default="flipkart-otc:events",
        help="the Redis stream (default flipkart-otc:events)",
    )


def _worker_options(parser: argparse._ActionsContainer) -> None:
    """A shard worker's options: ``watch`` and ``dashboard`` (a desk screen that is
    also a worker) take the same."""
    parser.add_argument(
        "--sink",
        metavar="URL",
        nargs="?",
        const=REDIS_URL_FROM_ENV,
        type=_redis_url,
        help="also write each event to a Redis stream (redis://[:PASSWORD@]HOST:PORT/DB) "
        f"with each location's state, and resume from that state at start; --sink alone "
        f"takes the URL from ${ENV_REDIS_URL} (a password there stays out of ps)",
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        type=_shard,
        help="watch only the locations of shard I of N (0-based; docs/fleet.md has the hash)",
    )


def _visit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--visit",
        action="store_true",
        help="follow each FE past the Start OTC page: scanning, each shipment, the End "
        "OTC (asked for once, when the FE is on its page) and the end of the visit",
    )
    parser.add_argument(
        "--scan-interval",
        type=_number(0, strict=True),
        default=30.0,
        help="with --visit: seconds between looks at an FE's visit (default 30, Flipkart's "
        "advice for the scanning endpoint)",
    )


def _tls_options(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--tls-cert", metavar="F", help="serve HTTPS with this certificate (PEM; with --tls-key)"
    )
    parser.add_argument("--tls-key", metavar="F", help="the certificate's private key (PEM)")


def _access_key_option(parser: argparse._ActionsContainer, what: str) -> None:
    parser.add_argument(
        "--access-key-env",
        metavar="NAME",
        help=f"environment variable holding {what}'s access key (16+ characters, 8+ "
        "different, not a part repeated); required to bind a non-loopback address",
    )


def _metrics_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("probes and metrics")
    group.add_argument(
        "--metrics-port",
        type=_port,
        metavar="P",
        help="serve /metrics (Prometheus; the metrics extra), /healthz and /readyz on port P",
    )
    group.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="H",
        help="address for --metrics-port (127.0.0.1); another needs --access-key-env, "
        "then /metrics wants 'Authorization: Bearer KEY'",
    )
    _access_key_option(group, "/metrics")
    _tls_options(group)


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


def _polling_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval",
        type=_number(0, strict=False),
        default=10.0,
        help="seconds between polls of a task waiting for its FE (default 10); faster with "
        "an FE there, every 2 minutes with no task",
    )
    parser.add_argument(
        "--fixed-interval",
        action="store_true",
        help="poll every location every --interval seconds, whatever its state",
    )
    parser.add_argument(
        "--duration", type=_number(0, strict=True), help="stop after this many seconds"
    )
    budget = parser.add_argument_group("rate budget (Flipkart throttles per application)")
    budget.add_argument(
        "--rate-limit",
        metavar="R[/BURST]",
        type=_rate_limit,
        help="at most R requests a second (BURST at once, default 1); a 429 pauses every "
        "request for its Retry-After. With --shard I/N each worker keeps to R/N, and "
        "with --sink the fleet shares R through Redis",
    )
    budget.add_argument(
        "--budget-share",
        metavar="S",
        type=_share,
        help="spend S (0 < S <= 1) of --rate-limit: the polls FEs and tasks need first, "
        "the rest spread over idle locations (faster than every 2 minutes when it allows)",
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
        "line per event, OTCs shown (they are simulated), and the live dashboard on "
        "127.0.0.1 (its URL is printed first).",
        "example: flipkart-otc demo --locations 8 --duration 60 --seed 3",
    )
    demo.add_argument("--locations", type=_count, default=6, help="how many (default 6)")
    demo.add_argument(
        "--duration", type=_number(0, strict=True), default=30.0, help="seconds (default 30)"
    )
    demo.add_argument("--seed", type=int, default=1, help="scenario seed (default 1)")
    demo.add_argument(
        "--port", type=_port, default=0, help="the dashboard's port on 127.0.0.1 (0: any free)"
    )
    demo.set_defaults(run="demo")

    watch = _subparser(
        sub,
        "watch",
        "watch locations and print an event per change",
        "Poll the locations and print arrivals, renewals, expiries, departures and status "
        "changes as they happen; --format json prints one JSON object per line (NDJSON).",
        "example: FLIPKART_ACCESS_TOKEN=... flipkart-otc watch LOC1 LOC2 --format json | jq .",
    )
    _api_options(watch)
    _polling_options(watch)
    watch.add_argument("--format", choices=("text", "json"), default="text")
    _visit_options(watch)
    bus = watch.add_argument_group("beyond one process")
    _worker_options(bus)
    _stream_option(bus)
    _metrics_options(watch)
    watch.set_defaults(run="watch")

    dashboard = _subparser(
        sub,
        "dashboard",
        "watch locations and serve a live page of FEs and their codes",
        "Watch the locations and serve a live dashboard: each location's status, the FEs "
        "at the door with their codes (masked unless --show-otc) and how long each has "
        "left, and with --visit each FE's stage of the visit, its scan count and End OTC. "
        "It binds to 127.0.0.1; another address needs an access key.",
        "example: FLIPKART_ACCESS_TOKEN=... flipkart-otc dashboard LOC1 LOC2 --port 8080",
    )
    _api_options(dashboard)
    _polling_options(dashboard)
    _visit_options(dashboard)
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    dashboard.add_argument("--port", type=_port, default=8080, help="TCP port (default 8080)")
    _access_key_option(dashboard, "the page")
    _tls_options(dashboard)
    source = dashboard.add_argument_group("beyond one process")
    _worker_options(source)
    source.add_argument(
        "--source",
        metavar="URL",
        nargs="?",
        const=REDIS_URL_FROM_ENV,
        type=_redis_url,
        help="show the events shard workers write to a Redis stream "
        "(redis://[:PASSWORD@]HOST:PORT/DB) instead of watching locations itself (no "
        f"locations or credentials then); --source alone takes the URL from "
        f"${ENV_REDIS_URL} (a password there stays out of ps)",
    )
    _stream_option(source)
    dashboard.set_defaults(run="dashboard")

    fetch = _subparser(
        sub,
        "fetch",
        "fetch each location once and print a table or JSON",
        "Call Start OTC once per location and print who is there with which code.",
        "example: FLIPKART_APP_ID=... FLIPKART_APP_SECRET=... flipkart-otc fetch LOC1 LOC2",
    )
    _api_options(fetch)
    fetch.add_argument("--format", choices=("table", "json"), default="table")
    fetch.add_argument(
        "--visit",
        action="store_true",
        help="each FE's page of the visit (initial-load) and how many shipments it scanned",
    )
    fetch.add_argument(
        "--end-otc",
        action="store_true",
        help="with --visit: also get the End OTC of each FE on the End OTC page (this "
        "makes a new code each time)",
    )
    fetch.set_defaults(run="fetch")

    tail = _subparser(
        sub,
        "tail",
        "print the events on a Redis stream as NDJSON",
        "Read the events that 'watch --sink' writes and print one JSON object per line, "
        "with its event_id (the same for an event written twice) and stream_id. With "
        "--group, read as a consumer group: each entry is acknowledged once printed, and "
        "a consumer that comes back first gets what it was given and did not acknowledge. "
        "An entry that is not an event is skipped with a line on stderr (and acknowledged).",
        "example: flipkart-otc tail redis://127.0.0.1:6379/0 --group desk --consumer d1\n"
        f"         {ENV_REDIS_URL}=redis://:PASSWORD@10.0.0.5:6379/0 flipkart-otc tail",
    )
    tail.add_argument(
        "url",
        metavar="URL",
        nargs="?",
        type=_redis_url,
        help=f"redis://[:PASSWORD@]HOST:PORT/DB (default: ${ENV_REDIS_URL}, which keeps a "
        "password out of ps)",
    )
    _stream_option(tail)
    tail.add_argument("--group", metavar="G", help="read as consumer group G")
    tail.add_argument("--consumer", metavar="C", help="this reader's name in the group")
    tail.add_argument(
        "--from-start",
        action="store_true",
        help="from the stream's first entry (default: only new ones; a new group starts "
        "there too)",
    )
    tail.add_argument("--count", type=_count, help="stop after this many events")
    tail.add_argument("--show-otc", action="store_true", help="print OTCs instead of ***")
    tail.add_argument(
        "--duration", type=_number(0, strict=True), help="stop after this many seconds"
    )
    tail.set_defaults(run="tail")

    simulate = _subparser(
        sub,
        "simulate",
        "run the local Flipkart simulator",
        "Run a local Flipkart (Start OTC API and token endpoint) on 127.0.0.1 with a "
        "seeded scenario, and print its base URL and credentials.",
        "example: flipkart-otc simulate --port 8642 --locations 20 --seed 7 --speed 10",
    )
    simulate.add_argument("--port", type=_port, default=8642, help="TCP port (0: any free one)")
    simulate.add_argument("--locations", type=_count, default=10, help="LOC1..LOCn (default 10)")
    simulate.add_argument("--seed", type=int, default=0, help="scenario seed (default 0)")
    simulate.add_argument(
        "--speed", type=_number(0, strict=True), default=1.0, help="time-lapse factor"
    )
    simulate.add_argument("--seconds", action="store_true", help="timestamps in epoch seconds")
    simulate.add_argument(
        "--visits",
        action="store_true",
        help="play whole visits: FEs use their code, scan shipments across pages, reach the "
        "End OTC page and finish (now and then one leaves while scanning)",
    )
    simulate.add_argument(
        "--fault-rate", type=_fraction, default=0.0, help="share of answers that fail (0..1)"
    )
    simulate.add_argument(
        "--duration", type=_number(0, strict=True), help="stop after this many seconds"
    )
    simulate.set_defaults(run="simulate")
    commands = {
        "demo": demo,
        "watch": watch,
        "dashboard": dashboard,
        "fetch": fetch,
        "tail": tail,
        "simulate": simulate,
    }
    return parser, commands


def _say(command: str, text: str) -> None:
    from ._render import escape  # light: no aiohttp

    print(f"flipkart-otc {command}: {escape(text)}", file=sys.stderr)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises no second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (captured): nothing to quiet
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # during start-up or after the loop closed: no traceback
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_CLOSED_OUTPUT


def _main(argv: Sequence[str] | None) -> int:
    parser, commands = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the subcommand in the usage line, as its own parser would
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    for stream in (sys.stdout, sys.stderr):  # a name the terminal cannot encode: \uXXXX
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    from . import _commands  # the heavy imports (aiohttp ...), under main()'s guard

    return _commands.run(args, sys.stdout, _say)


if __name__ == "__main__":
    sys.exit(main())
