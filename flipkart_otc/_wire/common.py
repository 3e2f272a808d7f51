"""What every endpoint's wire module shares: JSON loading, error answers, ``Retry-After``,
and keeping secrets out of whatever an exception stores. Pure: no I/O, no clock.

Text that comes from a server (a body, an error ``message``) is stored in an
exception only after two passes: every value of a secret field (see
:data:`SECRET_FIELDS`) is masked, and every secret the caller knows (the token
it sent, the app secret and its Basic form) is replaced by ``***``. Both run on
the whole text before it is cut to size, so no prefix of a secret survives a cut.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

from .._checks import MASK, safe_url
from .._speedups import speedup
from ..errors import (
    ERROR_CODES,
    STATUS_CLASSES,
    TIMEOUT_STATUSES,
    ApiError,
    FlipkartOtcError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseFormatError,
    ServerError,
)

__all__ = [
    "BODY_KEEP",
    "ERROR_KEY",
    "MASK",
    "SECRET_FIELDS",
    "TASK_TYPE",
    "error_from_answer",
    "error_from_document",
    "error_in_success",
    "format_error",
    "load_json",
    "mask_body",
    "retry_after_seconds",
    "scrub",
    "success_document",
]

#: The one task type the returns endpoints take (``taskType``).
TASK_TYPE = "RETURN"
#: What every error answer holds, a success answer never: one byte search tells them apart.
ERROR_KEY = b'"errorCode"'
#: How many characters of a body an exception keeps.
BODY_KEEP = 512
#: How many characters of a server's error message or code an exception keeps.
MESSAGE_KEEP = 300
CODE_KEEP = 100

#: Fields whose values are secrets in any answer of any endpoint: the Start and End
#: OTCs, and the OAuth token endpoint's tokens.
SECRET_FIELDS = frozenset({"otc", "access_token", "refresh_token", "id_token"})

_names = "|".join(sorted(SECRET_FIELDS))
# A JSON member `"otc": <value>`: a string (also one cut short by a truncated body) or
# a bare scalar; and a form-encoded `access_token=<value>`, as some OAuth servers answer.
_JSON_SECRET = re.compile(rf'("(?:{_names})"\s*:\s*)("(?:[^"\\]|\\.)*(?:"|\\?$)|[^,}}\]\s]+)')
_FORM_SECRET = re.compile(rf"(\b(?:{_names})=)[^&\s]+")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each known secret replaced by ``***`` (longest first, so a token's
    ``Bearer`` form and a secret inside a Basic form go whole)."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_body(body: bytes | str, secrets: Iterable[str] = ()) -> str:
    """The start of a body for diagnostics: secret fields masked, known secrets scrubbed."""
    text = body if isinstance(body, str) else body.decode("utf-8", "replace")
    text = _JSON_SECRET.sub(rf'\1"{MASK}"', text)
    text = _FORM_SECRET.sub(rf"\1{MASK}", text)
    return scrub(text, secrets)[:BODY_KEEP]


def format_error(
    endpoint: str,
    reason: str,
    body: bytes,
    *,
    location_id: str | None = None,
    status: int,
    field: str | None = None,
    secrets: Iterable[str] = (),
) -> ResponseFormatError:
    """The ResponseFormatError for a malformed answer of ``endpoint`` (e.g. "Start OTC")."""
    if field:
        reason = f"{field}: {reason}"
    secrets = tuple(secrets)
    return ResponseFormatError(
        scrub(f"malformed {endpoint} answer: {reason}", secrets),
        field=field,
        body=mask_body(body, secrets),
        location_id=location_id,
        status=status,
    )


_DECODER = json.JSONDecoder()
scan: Callable[[str, int], Any] = _DECODER.scan_once  # type: ignore[attr-defined]


def decode(text: str) -> Any:
    """``json.loads(text)``, minus its Python-level layers on the usual answer (an
    object, nothing around it); anything else, errors included, goes the full way."""
    if text[:1] == "{":
        try:
            value, end = scan(text, 0)
        except StopIteration:
            pass
        else:
            if end == len(text):
                return value
    return _DECODER.decode(text)


def stdlib_loads(body: bytes) -> Any:
    """``body`` decoded by the standard library (what :func:`loads` is without orjson)."""
    return decode(body.decode("utf-8"))


_orjson = speedup("orjson")  # the `speedups` extra: 3-5x faster on one-shot answers
loads: Callable[[bytes], Any] = stdlib_loads if _orjson is None else _orjson.loads


def load_json(
    body: bytes,
    endpoint: str,
    *,
    location_id: str | None = None,
    status: int,
    secrets: Iterable[str] = (),
) -> Any:
    """``body`` as JSON, or a ResponseFormatError for bytes that are not UTF-8 JSON.

    The decoder's own exception is not chained: it holds the whole body (``doc``),
    secrets and all. The cause chained instead says where decoding stopped.
    """
    try:
        return loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        where = getattr(exc, "pos", None)
        cause = ValueError(
            f"{type(exc).__name__} at position {where}"
            if where is not None
            else type(exc).__name__
        )
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            reason = "body is not UTF-8"
        else:
            reason = "body is not valid JSON"
    raise format_error(
        endpoint, reason, body, location_id=location_id, status=status, secrets=secrets
    ) from cause


def retry_after_seconds(
    value: str | None, now: datetime, server_date: str | None = None
) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date. A date is
    read against the answer's own ``Date`` header (``server_date``) when it has one: a
    server whose clock runs an hour fast asks for seconds, not an hour."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        sent = _http_date(server_date)
        seconds = (when - (sent if sent is not None else now)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _http_date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def error_from_document(
    status: int,
    document: Any,
    location_id: str | None,
    retry_after: float | None = None,
    *,
    secrets: Iterable[str] = (),
    url: str | None = None,
) -> FlipkartOtcError:
    """The exception for an error answer whose body is already decoded (or None).

    ``url`` is named in the message of an answer that carries no ``errorCode``
    (a proxy's page, a 404 from a wrong base URL), without credentials or query.
    """
    secrets = tuple(secrets)
    code: str | None = None
    message = ""
    if isinstance(document, dict):
        raw_code = document.get("errorCode")
        if isinstance(raw_code, str) and raw_code:
            code = scrub(raw_code, secrets)[:CODE_KEEP]
        raw_message = document.get("message")
        if isinstance(raw_message, str):
            message = scrub(raw_message, secrets)[:MESSAGE_KEEP]
    if not message:
        message = _phrase(status) or ("connection timed out" if status in (499, 599) else "")
    if code is None and url is not None:
        message = f"{message} (from {safe_url(url)})" if message else f"from {safe_url(url)}"
    if status in TIMEOUT_STATUSES:
        text = code or "request timed out"
        text = f"{text}: {message}" if message else text
        return RequestTimeoutError(text, location_id=location_id, status=status)
    if status == 429:
        return RateLimitedError(
            status, code, message, location_id=location_id, retry_after=retry_after
        )
    cls = ERROR_CODES.get(code) if code else None
    if cls is None:
        cls = STATUS_CLASSES.get(status) or (ServerError if 500 <= status < 600 else ApiError)
    return cls(status, code, message, location_id=location_id)


def error_from_answer(
    status: int,
    body: bytes,
    location_id: str | None,
    retry_after: float | None = None,
    *,
    secrets: Iterable[str] = (),
    url: str | None = None,
) -> FlipkartOtcError:
    """The exception for a non-200 answer; a non-JSON body is classed by status."""
    try:
        document = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        document = None
    return error_from_document(
        status, document, location_id, retry_after, secrets=secrets, url=url
    )


def error_in_success(
    body: bytes, success_key: str, location_id: str | None, *, secrets: Iterable[str] = ()
) -> FlipkartOtcError | None:
    """The error a 200 answer carries instead of ``success_key`` (Flipkart sometimes
    answers ``200 {"errorCode": ...}``), or None. Costs one byte search on a success."""
    if ERROR_KEY not in body:
        return None
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None  # the endpoint's parser names what is wrong with it
    return _carried(document, success_key, 200, location_id, tuple(secrets))


def _carried(
    document: Any, success_key: str, status: int, location_id: str | None, secrets: tuple[str, ...]
) -> FlipkartOtcError | None:
    """The error a success answer's document carries in place of ``success_key``."""
    if isinstance(document, dict) and success_key not in document and "errorCode" in document:
        return error_from_document(status, document, location_id, secrets=secrets)
    return None


def success_document(
    body: bytes,
    endpoint: str,
    success_key: str,
    *,
    location_id: str | None = None,
    status: int = 200,
) -> Any:
    """A success answer's JSON document; a ResponseFormatError for one that is not JSON,
    or the ApiError a 200 carrying an ``errorCode`` (and no ``success_key``) means."""
    document = load_json(body, endpoint, location_id=location_id, status=status)
    error = _carried(document, success_key, status, location_id, ())
    if error is not None:
        raise error
    return document
