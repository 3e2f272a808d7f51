"""Where the bearer token comes from.

:class:`StaticToken` wraps a token you already have; :class:`ClientCredentials`
gets one from Flipkart's OAuth endpoint with your app id and secret, caches it,
refreshes it ahead of its expiry and after a 401, and never lets two refreshes
run at once.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import aiohttp
import attrs

from . import _wire
from ._version import USER_AGENT
from .errors import AuthenticationError, RequestTimeoutError, ServerError, TransportError

__all__ = [
    "PRODUCTION_TOKEN_URL",
    "SANDBOX_TOKEN_URL",
    "ClientCredentials",
    "StaticToken",
    "TokenProvider",
]

PRODUCTION_TOKEN_URL = "https://api.flipkart.net/oauth-service/oauth/token"
SANDBOX_TOKEN_URL = "https://sandbox-api.flipkart.net/oauth-service/oauth/token"

logger = logging.getLogger("flipkart_otc")


@runtime_checkable
class TokenProvider(Protocol):
    """What :class:`~flipkart_otc.OtcClient` needs from an auth strategy."""

    async def token(self, session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout) -> str:
        """A token to send now."""
        ...

    async def refresh(
        self, session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout, rejected: str
    ) -> str | None:
        """A new token after the API refused ``rejected``; ``None`` when there is none."""
        ...


@attrs.define(slots=True)
class StaticToken:
    """A bearer token you already have. It cannot be refreshed: a 401 is final.

    >>> StaticToken("s3cr3t")
    StaticToken(token=***)
    """

    _token: str = attrs.field(alias="token", repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self._token, str):
            raise TypeError(f"token must be a str, got {type(self._token).__name__}")
        if not self._token.strip():
            raise ValueError("token must not be empty or blank")

    def __repr__(self) -> str:
        return "StaticToken(token=***)"

    @property
    def value(self) -> str:
        """The token itself (what :meth:`token` returns, without a coroutine)."""
        return self._token

    async def token(self, session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout) -> str:
        return self._token

    async def refresh(
        self, session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout, rejected: str
    ) -> str | None:
        return None


@attrs.define(slots=True)
class ClientCredentials:
    """OAuth2 client credentials: Flipkart's app id and app secret.

    The token is fetched on first use, cached, and fetched again once
    ``refresh_margin`` of its lifetime is left (default: a tenth of it, at
    most ten minutes) or when the API answers 401. However many requests wait,
    only one token request is in flight.

    >>> ClientCredentials("my-app-id", "my-app-secret")
    ClientCredentials(app_id='my-app-id', token_url='https://api.flipkart.net/oauth-service/oauth/token', scope='Seller_Api')
    """  # noqa: E501

    app_id: str
    app_secret: str = attrs.field(repr=False)
    token_url: str = attrs.field(default=PRODUCTION_TOKEN_URL, kw_only=True)
    scope: str = attrs.field(default="Seller_Api", kw_only=True)
    _clock: Callable[[], float] = attrs.field(
        default=time.monotonic, repr=False, alias="clock", kw_only=True
    )
    _token: str | None = attrs.field(default=None, init=False, repr=False)
    _refresh_at: float = attrs.field(default=0.0, init=False, repr=False)
    _lock: asyncio.Lock | None = attrs.field(default=None, init=False, repr=False)
    #: How many tokens this provider has fetched; handy in tests and metrics.
    fetches: int = attrs.field(default=0, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        for name in ("app_id", "app_secret", "token_url", "scope"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
            if not value.strip():
                raise ValueError(f"{name} must not be empty or blank")
        if not self.token_url.startswith(("http://", "https://")):
            raise ValueError(f"token_url must be an http(s) URL, got {self.token_url!r}")

    def _fresh(self) -> str | None:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def token(self, session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout) -> str:
        token = self._fresh()
        if token is not None:
            return token
        async with self._get_lock():
            token = self._fresh()
            if token is None:
                token = await self._fetch(session, timeout)
            return token

    async def refresh(
        self, session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout, rejected: str
    ) -> str | None:
        async with self._get_lock():
            # Another request already replaced the rejected token: use that one.
            if self._token is not None and self._token != rejected:
                return self._token
            return await self._fetch(session, timeout)

    async def _fetch(self, session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout) -> str:
        params = {"grant_type": "client_credentials", "scope": self.scope}
        credentials = base64.b64encode(f"{self.app_id}:{self.app_secret}".encode()).decode()
        headers = {"Authorization": "Basic " + credentials, "User-Agent": USER_AGENT}
        started = self._clock()
        try:
            async with session.get(
                self.token_url, params=params, headers=headers, timeout=timeout
            ) as response:
                status = response.status
                body = await response.read()
        except TimeoutError as exc:
            raise RequestTimeoutError("token request timed out") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"token request failed: {type(exc).__name__}") from exc
        logger.debug("GET token endpoint status=%s", status)
        if status != 200:
            raise self._error(status, body)
        token, expires_in = _wire.parse_token(body, status)
        margin = min(600.0, expires_in / 10)
        self._token = token
        self._refresh_at = started + expires_in - margin
        self.fetches += 1
        return token

    def _error(self, status: int, body: bytes) -> Exception:
        document = None
        try:
            document = _wire.load_json(body, None, status)
        except Exception:  # a proxy's HTML page: class it by status alone
            document = None
        code = description = None
        if isinstance(document, dict):
            code = document.get("error") if isinstance(document.get("error"), str) else None
            description = document.get("error_description")
            description = description[:300] if isinstance(description, str) else None
        message = f"token endpoint refused the credentials: {description or status}"
        if status >= 500:
            return ServerError(status, code, f"token endpoint failed: {description or status}")
        return AuthenticationError(status, code, message)
