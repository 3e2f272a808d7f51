"""Who may see the dashboard: an access key, entered once, kept as a cookie. Pure.

The cookie holds a keyed hash of the key, never the key itself, so a copied cookie does
not reveal it, and it stays valid across a server restart with the same key.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["COOKIE", "check_key", "key_matches", "session_value", "valid_session"]

COOKIE = "flipkart_otc_session"
_CONTEXT = b"flipkart-otc dashboard session v1"


def check_key(key: object) -> str:
    """An access key is a string of at least 16 characters; else ValueError (the key
    itself is never in the message)."""
    if not isinstance(key, str):
        raise TypeError(f"access_key must be a str, got {type(key).__name__}")
    if len(key.strip()) < 16:
        raise ValueError(f"access_key must have at least 16 characters, got {len(key.strip())}")
    return key.strip()


def session_value(key: str) -> str:
    """The cookie value that proves the key was entered."""
    return hmac.new(key.encode("utf-8", "replace"), _CONTEXT, hashlib.sha256).hexdigest()


def valid_session(expected: str, cookie: str | None) -> bool:
    """Whether ``cookie`` is the session value (compared in constant time)."""
    return cookie is not None and hmac.compare_digest(
        expected.encode(), cookie.encode("utf-8", "replace")
    )


def key_matches(key: str, offered: str) -> bool:
    """Whether an offered key is the access key (compared in constant time)."""
    return hmac.compare_digest(session_value(key), session_value(offered))
