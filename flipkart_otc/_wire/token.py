"""The OAuth token endpoint's answers: a token and its lifetime, or the error. Pure.

RFC 6749 makes ``expires_in`` optional: without it a token is taken to live
:data:`DEFAULT_LIFETIME` seconds (a 401 refreshes it sooner anyway).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from .._checks import check_credential
from ..errors import AuthenticationError, FlipkartOtcError, ResponseFormatError, ServerError
from .common import MESSAGE_KEEP, format_error, load_json, scrub

__all__ = ["DEFAULT_LIFETIME", "ENDPOINT", "parse_token", "token_error"]

ENDPOINT = "token endpoint"
#: Seconds a token is taken to live when the answer says nothing (Flipkart's live ~60 days).
DEFAULT_LIFETIME = 3600.0


def _lifetime(value: Any) -> float | None:
    """``expires_in`` as positive seconds (a number or a numeric string); None if not."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def parse_token(body: bytes, status: int, secrets: Iterable[str] = ()) -> tuple[str, float]:
    """(access_token, lifetime in seconds) from the token endpoint's 200 answer."""
    secrets = tuple(secrets)
    document = load_json(body, ENDPOINT, status=status, secrets=secrets)

    def bad(reason: str, field: str | None = None) -> ResponseFormatError:
        return format_error(ENDPOINT, reason, body, status=status, field=field, secrets=secrets)

    if not isinstance(document, dict):
        raise bad(f"expected a JSON object, got {type(document).__name__}")
    token = document.get("access_token")
    if not isinstance(token, str) or not token.strip():
        raise bad("missing or not a non-empty string", "access_token")
    try:
        token = check_credential("access_token", token)
    except ValueError:
        raise bad("holds a control character", "access_token") from None
    raw = document.get("expires_in")
    if raw is None:
        return token, DEFAULT_LIFETIME
    lifetime = _lifetime(raw)
    if lifetime is None:
        raise bad("not a positive number of seconds", "expires_in")
    return token, lifetime


def token_error(status: int, body: bytes, secrets: Iterable[str] = ()) -> FlipkartOtcError:
    """The exception for a non-200 answer of the token endpoint (OAuth's ``error`` and
    ``error_description``, scrubbed of the credentials it was sent)."""
    secrets = tuple(secrets)
    document = None
    try:
        document = load_json(body, ENDPOINT, status=status, secrets=secrets)
    except FlipkartOtcError:  # a proxy's HTML page: class it by status alone
        document = None
    code = description = None
    if isinstance(document, dict):
        raw_code, raw_description = document.get("error"), document.get("error_description")
        if isinstance(raw_code, str):
            code = scrub(raw_code, secrets)[:MESSAGE_KEEP]
        if isinstance(raw_description, str):
            description = scrub(raw_description, secrets)[:MESSAGE_KEEP]
    if status >= 500:
        return ServerError(status, code, f"token endpoint failed: {description or status}")
    return AuthenticationError(
        status, code, f"token endpoint refused the credentials: {description or status}"
    )
