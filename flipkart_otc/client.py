"""``OtcClient``: the one place that sends Start OTC requests."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from types import TracebackType

import aiohttp

from . import _wire
from ._version import USER_AGENT
from .auth import StaticToken, TokenProvider
from .errors import RequestTimeoutError, TransportError
from .models import OtcSnapshot
from .retry import RetryPolicy

__all__ = [
    "PRODUCTION_BASE_URL",
    "SANDBOX_BASE_URL",
    "START_OTC_PATH",
    "USER_AGENT",
    "OtcClient",
    "check_location_id",
]

PRODUCTION_BASE_URL = "https://api.flipkart.net/sellers"
SANDBOX_BASE_URL = "https://sandbox-api.flipkart.net/sellers"
START_OTC_PATH = "/v3/returns/otc/start/details"
TASK_TYPE = "RETURN"

logger = logging.getLogger("flipkart_otc")
logger.addHandler(logging.NullHandler())


def check_location_id(location_id: object) -> str:
    """``location_id`` if it is a usable seller location id, else TypeError/ValueError."""
    if not isinstance(location_id, str):
        raise TypeError(f"location_id must be a str, got {type(location_id).__name__}")
    if not location_id.strip():
        raise ValueError(f"location_id must not be empty or blank, got {location_id!r}")
    return location_id


class OtcClient:
    """Async client for ``POST /v3/returns/otc/start/details``.

    ``auth`` is a bearer token string or a :class:`~flipkart_otc.TokenProvider`
    such as :class:`~flipkart_otc.ClientCredentials`. A ``session`` you pass is
    borrowed and never closed; one the client creates is closed by
    :meth:`aclose` or by leaving ``async with``. ``timeout`` bounds each
    attempt; ``retry`` says which failures are retried and how.

    >>> async with OtcClient(ClientCredentials(app_id, app_secret)) as client:  # doctest: +SKIP
    ...     snap = await client.start_otc_details("LOC1")
    ...     for fe_id, detail in snap.details.items():
    ...         print(fe_id, detail.fe_name, detail.expires_at)
    """

    def __init__(
        self,
        auth: str | TokenProvider,
        *,
        base_url: str = PRODUCTION_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if isinstance(auth, str):
            auth = StaticToken(auth)
        elif not isinstance(auth, TokenProvider):
            raise TypeError(
                f"auth must be a token string or a TokenProvider, got {type(auth).__name__}"
            )
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if retry is None:
            retry = RetryPolicy()
        elif not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        self._auth = auth
        # read as is on each request: one coroutine fewer than auth.token()
        self._static = auth.value if type(auth) is StaticToken else None
        self._url = base_url.rstrip("/") + START_OTC_PATH
        self._timeout = aiohttp.ClientTimeout(total=float(timeout))
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._fetch = retry.wrap(self._attempt)

    def __repr__(self) -> str:
        return f"<OtcClient url={self._url!r} auth={type(self._auth).__name__}>"

    @property
    def auth(self) -> TokenProvider:
        """The token provider this client uses."""
        return self._auth

    @property
    def url(self) -> str:
        """The full Start OTC URL requests go to."""
        return self._url

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has run."""
        return self._closed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this OtcClient is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        return self._session

    async def __aenter__(self) -> OtcClient:
        self._get_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if the client created it. Safe to call twice."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def start_otc_details(
        self, location_id: str, *, task_type: str = TASK_TYPE
    ) -> OtcSnapshot:
        """The FEs now on the Start OTC page of ``location_id``, with their codes.

        Transient failures are retried per the client's :class:`RetryPolicy`;
        what is left raises a :class:`~flipkart_otc.FlipkartOtcError`.
        """
        body = await self.fetch_body(location_id, task_type=task_type)
        return _wire.parse_snapshot(body, location_id, datetime.now(UTC))

    def fetch_body(self, location_id: str, *, task_type: str = TASK_TYPE) -> Awaitable[bytes]:
        """The raw body of a successful (HTTP 200) answer, retried like any call:
        ``body = await client.fetch_body("LOC1")``.

        For callers that parse incrementally (the watcher does); most code
        wants :meth:`start_otc_details`. Bad arguments raise at the call. It
        hands back the request's own coroutine, so that a poll does not pay
        for one more coroutine layer at each of the request's waits.
        """
        check_location_id(location_id)
        if task_type != TASK_TYPE:
            raise ValueError(f"task_type must be {TASK_TYPE!r}, got {task_type!r}")
        return self._fetch(location_id, _wire.request_body(location_id))

    async def _attempt(self, location_id: str, payload: bytes) -> bytes:
        # One coroutine for the request and its 401 refresh: every frame between the
        # caller and aiohttp is resumed again at each of a request's waits.
        session = self._session if self._session is not None else self._get_session()
        token = self._static
        if token is None:
            token = await self._auth.token(session, self._timeout)
        refreshed = False
        while True:
            headers = {
                "Authorization": "Bearer " + token,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            }
            started = time.perf_counter()
            outcome: object = "-"
            try:
                async with session.post(
                    self._url, data=payload, headers=headers, timeout=self._timeout
                ) as response:
                    status = outcome = response.status
                    body = await response.read()
                    retry_after = response.headers.get("Retry-After") if status == 429 else None
            except TimeoutError as exc:
                outcome = "timeout"
                raise RequestTimeoutError(
                    f"no answer within {self._timeout.total:g}s", location_id=location_id
                ) from exc
            except aiohttp.ClientError as exc:
                outcome = type(exc).__name__
                raise TransportError(
                    f"request failed: {type(exc).__name__}: {exc}", location_id=location_id
                ) from exc
            finally:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "POST %s location=%s status=%s %.1fms",
                        START_OTC_PATH,
                        location_id,
                        outcome,
                        (time.perf_counter() - started) * 1000,
                    )
            if status == 200:
                return body
            if status != 401 or refreshed:
                break
            fresh = await self._auth.refresh(session, self._timeout, token)
            if fresh is None:
                break
            token, refreshed = fresh, True
        wait = None
        if retry_after is not None:
            wait = _wire.retry_after_seconds(retry_after, datetime.now(UTC))
        raise _wire.error_from_answer(status, body, location_id, wait)
