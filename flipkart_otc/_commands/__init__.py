"""What each ``flipkart-otc`` subcommand does, one module each (:mod:`flipkart_otc.cli`
parses and guards): :data:`COMMANDS` finds a command by the name its parser sets."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

from .._cli_base import (
    EXIT_AUTH,
    EXIT_FAILED,
    EXIT_USAGE,
    CommandError,
    UsageError,
)
from .._speedups import speedup
from ..errors import AuthenticationError, FlipkartOtcError
from .common import _exit_now
from .dashboard import _dashboard
from .demo import _demo
from .fetch import _fetch
from .simulate import _simulate
from .tail import _tail
from .watch import _watch

__all__ = ["COMMANDS", "run"]


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
    command = COMMANDS[args.run]
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
    uvloop = speedup("uvloop")
    if uvloop is not None:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


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


#: Each command's coroutine, by the name its parser sets (``set_defaults(run=...)``).
COMMANDS: dict[
    str,
    Callable[[argparse.Namespace, TextIO, Callable[[str, str], None]], Coroutine[Any, Any, int]],
] = {
    "demo": _demo,
    "watch": _watch,
    "dashboard": _dashboard,
    "fetch": _fetch,
    "tail": _tail,
    "simulate": _simulate,
}
