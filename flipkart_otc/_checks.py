"""Checks on what callers hand in: location ids, credentials, URLs. Pure.

Every check raises ``TypeError``/``ValueError`` at once, before any request,
with a message that names the bad value without echoing a secret and quotes
at most :data:`QUOTE_MAX` characters of anything else.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

__all__ = [
    "LOCATION_ID_MAX",
    "MASK",
    "check_int",
    "check_number",
    "check_redis_url",
    "QUOTE_MAX",
    "check_credential",
    "check_id",
    "check_location_id",
    "check_url",
    "quote",
    "safe_url",
]

#: How a secret shows wherever it is hidden: JSON, text, exception messages, URLs.
MASK = "***"
#: The longest id (location, FE, task) accepted; Flipkart's are a few dozen characters.
LOCATION_ID_MAX = 256
#: How much of a bad value a message quotes.
QUOTE_MAX = 64

# C0 and C1 controls and DEL: never valid in an id or a header value.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def quote(value: str, limit: int = QUOTE_MAX) -> str:
    """``repr(value)``, cut to ``limit`` characters with its length said when longer.

    >>> quote("x" * 100, 8)
    "'xxxxxxxx'... (100 characters)"
    """
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


def check_location_id(location_id: object) -> str:
    """A usable seller location id, stripped of surrounding whitespace.

    >>> check_location_id(" LOC1\\n")
    'LOC1'
    """
    # the usual id, already clean (a poller passes the same one each poll), in C calls:
    # printable means no control character; strip() returns the very object if no
    # whitespace surrounds it
    if (
        type(location_id) is str
        and location_id.isprintable()
        and location_id.strip() is location_id
        and 0 < len(location_id) <= LOCATION_ID_MAX
    ):
        return location_id
    return check_id("location_id", location_id)


def check_id(name: str, value: object) -> str:
    """An id (location, FE, task) stripped of surrounding whitespace, else TypeError or
    ValueError naming ``name`` and quoting a little of the value."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    stripped = value.strip()
    if not stripped:
        raise ValueError(f"{name} must not be empty or blank, got {quote(value)}")
    if len(stripped) > LOCATION_ID_MAX:
        raise ValueError(
            f"{name} must be at most {LOCATION_ID_MAX} characters, got {quote(stripped)}"
        )
    if _CONTROL.search(stripped):
        raise ValueError(f"{name} must not contain control characters, got {quote(stripped)}")
    return stripped


def check_credential(name: str, value: object) -> str:
    """A token, app id or secret stripped of surrounding whitespace (a file read with its
    newline works); refused, without echoing it, when blank or holding a control character
    (which no HTTP header may carry)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    stripped = value.strip()
    if not stripped:
        raise ValueError(f"{name} must not be empty or blank")
    if _CONTROL.search(stripped):
        raise ValueError(f"{name} must not contain control characters (value not shown)")
    return stripped


def check_url(name: str, url: object) -> str:
    """An absolute http(s) URL without credentials, a query string or a fragment."""
    if not isinstance(url, str):
        raise TypeError(f"{name} must be a str, got {type(url).__name__}")
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or _CONTROL.search(url)
    ):
        raise ValueError(f"{name} must be an http(s) URL, got {quote(safe_url(url))}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"{name} must not hold credentials (pass them as auth), got {quote(safe_url(url))}"
        )
    if parts.fragment or parts.query:
        what = "a fragment" if parts.fragment else "a query string"
        raise ValueError(f"{name} must not have {what}, got {quote(safe_url(url))}")
    return url


def safe_url(url: str) -> str:
    """``url`` for a message: no user name or password, no query or fragment values.

    >>> safe_url("https://user:pw@host/sellers?token=abc")
    'https://***@host/sellers?***'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@" + netloc.rpartition("@")[2]
    text = f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else parts.path
    if parts.query:
        text += f"?{MASK}"
    if parts.fragment:
        text += f"#{MASK}"
    return text


def check_redis_url(url: object) -> str:
    """``url`` if it is a ``redis://`` or ``rediss://`` URL with a host and a good port.

    >>> check_redis_url("redis://127.0.0.1:6379/0")
    'redis://127.0.0.1:6379/0'
    """
    if not isinstance(url, str):
        raise TypeError(f"a Redis URL must be a str, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise ValueError(f"bad Redis URL (host or port): {safe_url(url)!r}") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"expected a redis://HOST:PORT/DB URL, got {safe_url(url)!r}")
    # redis-py reads a path that is not a number as database 0, silently
    if not re.fullmatch(r"/?[0-9]*", parts.path):
        raise ValueError(f"the database in a Redis URL is a number, got {safe_url(url)!r}")
    return url


def check_number(name: str, value: object, *, minimum: float) -> None:
    """``value`` is a finite number (not a bool) >= ``minimum``, else TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be finite and >= {minimum:g}, got {value!r}")


def check_int(name: str, value: object) -> None:
    """``value`` is an int (not a bool) >= 1, else TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
