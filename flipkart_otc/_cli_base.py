"""What the command line's entry point (``cli``) and its commands (``_commands``) share:
exit codes, the environment variables that hold credentials, and the two errors a
command raises. Both import it; neither imports the other's names."""

from __future__ import annotations

__all__ = [
    "ENV_APP_ID",
    "ENV_APP_SECRET",
    "ENV_REDIS_URL",
    "ENV_TOKEN",
    "EXIT_AUTH",
    "EXIT_CLOSED_OUTPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "REDIS_URL_FROM_ENV",
    "CommandError",
    "UsageError",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_INTERRUPTED = 130
EXIT_CLOSED_OUTPUT = 141  # 128 + SIGPIPE

ENV_TOKEN = "FLIPKART_ACCESS_TOKEN"
ENV_APP_ID = "FLIPKART_APP_ID"
ENV_APP_SECRET = "FLIPKART_APP_SECRET"
#: The Redis URL of --sink, --source and tail when none is given: kept out of ``ps``.
ENV_REDIS_URL = "FLIPKART_OTC_REDIS_URL"
#: What --sink or --source alone stands for: the URL in $FLIPKART_OTC_REDIS_URL.
REDIS_URL_FROM_ENV = "$" + ENV_REDIS_URL


class UsageError(Exception):
    """Bad input the parser could not catch (exit 2)."""


class CommandError(Exception):
    """The command could not run (exit 1), e.g. its port is taken."""
