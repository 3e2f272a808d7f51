"""How a request that got no usable answer becomes this library's exception.

aiohttp's response errors carry the request's headers (``request_info``), the
bearer token or the Basic credentials among them: such an error is never
chained as it is. A stand-in with its class name and scrubbed text is chained
instead, so a traceback still says what went wrong.
"""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp

from ._checks import safe_url
from ._wire.common import BODY_KEEP, format_error, scrub
from .errors import ApiError, RequestTimeoutError, ResponseFormatError, TransportError

__all__ = [
    "MAX_BODY",
    "read_body",
    "redirect_error",
    "timeout_error",
    "too_long",
    "transport_error",
]

#: The largest answer read, in bytes: a Start OTC answer is a few hundred per FE, so
#: this is thousands of FEs; a larger one is cut off rather than held whole in memory.
MAX_BODY = 8 * 1024 * 1024


class _Detached(aiohttp.ClientError):
    """An aiohttp error's class and text, without the request it held."""


def _safe_cause(exc: BaseException, secrets: Iterable[str]) -> BaseException:
    if getattr(exc, "request_info", None) is None and getattr(exc, "history", None) is None:
        return exc
    return _Detached(scrub(f"{type(exc).__name__}: {exc}", secrets))


async def read_body(response: aiohttp.ClientResponse, limit: int = MAX_BODY) -> bytes:
    """The answer's body, or its first ``limit + 1`` bytes when it is longer (which the
    caller refuses): one read when the length is declared and within the limit."""
    length = response.content_length
    if length is not None and length <= limit:
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)[: limit + 1]


def too_long(
    where: str, body: bytes, location_id: str | None, secrets: Iterable[str]
) -> ResponseFormatError:
    """The error for a 200 answer longer than :data:`MAX_BODY` (its start kept, masked)."""
    return format_error(
        where,
        f"longer than {MAX_BODY} bytes: not read further",
        body[: BODY_KEEP * 4],
        location_id=location_id,
        status=200,
        secrets=secrets,
    )


def transport_error(
    exc: BaseException, what: str, *, location_id: str | None, secrets: Iterable[str] = ()
) -> TransportError:
    """A TransportError for an aiohttp failure, its ``__cause__`` set to a safe one.

    Raise it outside the ``except`` block that caught ``exc`` (``raise error from
    error.__cause__``): raised inside, Python would keep ``exc`` as its ``__context__``.
    """
    secrets = tuple(secrets)
    error = TransportError(
        scrub(f"{what} failed: {type(exc).__name__}: {exc}", secrets), location_id=location_id
    )
    error.__cause__ = _safe_cause(exc, secrets)
    return error


def timeout_error(
    exc: BaseException, what: str, seconds: float, *, location_id: str | None
) -> RequestTimeoutError:
    """A RequestTimeoutError for an attempt that timed out (``__cause__`` set to ``exc``)."""
    error = RequestTimeoutError(f"{what}: no answer within {seconds:g}s", location_id=location_id)
    error.__cause__ = exc
    return error


def redirect_error(
    status: int, location: str | None, url: str, *, location_id: str | None
) -> ApiError:
    """A 3xx: never followed (it would turn a POST into a GET and send the token on)."""
    target = f" to {safe_url(location)}" if location else ""
    return ApiError(
        status,
        None,
        f"unexpected redirect{target} from {safe_url(url)}: check the URL",
        location_id=location_id,
    )
