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
import weakref
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import aiohttp
import attrs

from ._checks import check_credential, check_url, safe_url
from ._transport import (
    MAX_BODY,
    read_body,
    redirect_error,
    timeout_error,
    too_long,
    transport_error,
)
from ._version import USER_AGENT
from ._wire.token import parse_token, token_error
from .errors import AuthenticationError, FlipkartOtcError

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

    Surrounding whitespace is stripped (``StaticToken(open(path).read())`` works);
    a blank token or one holding a control character raises ``ValueError``
    without showing it.

    >>> StaticToken("s3cr3t")
    StaticToken(token=***)
    """

    _token: str = attrs.field(alias="token", repr=False)

    def __attrs_post_init__(self) -> None:
        self._token = check_credential("token", self._token)

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
    # One lock per event loop: an asyncio.Lock is bound to the loop it first waits on,
    # and the same credentials may serve several asyncio.run() calls (pytest does).
    _locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = attrs.field(
        factory=weakref.WeakKeyDictionary, init=False, repr=False
    )
    #: How many tokens this provider has fetched; handy in tests and metrics.
    fetches: int = attrs.field(default=0, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.app_id = check_credential("app_id", self.app_id)
        self.app_secret = check_credential("app_secret", self.app_secret)
        self.token_url = check_url("token_url", self.token_url)
        self.scope = check_credential("scope", self.scope)

    def _fresh(self) -> str | None:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    def _get_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def _basic(self) -> str:
        return base64.b64encode(f"{self.app_id}:{self.app_secret}".encode()).decode()

    def _secrets(self) -> tuple[str, ...]:
        """What must never appear in a message: the app secret, its Basic form, the token."""
        return (self.app_secret, self._basic(), *((self._token,) if self._token else ()))

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
        headers = {"Authorization": "Basic " + self._basic(), "User-Agent": USER_AGENT}
        started = self._clock()
        failure: FlipkartOtcError | None = None
        try:
            async with session.get(
                self.token_url,
                params=params,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,  # never send the credentials on to another URL
                raise_for_status=False,  # a borrowed session's setting must not class answers
            ) as response:
                status = response.status
                body = await read_body(response)
                location = response.headers.get("Location")
        except TimeoutError as exc:
            failure = timeout_error(exc, "token request", timeout.total or 0, location_id=None)
        except aiohttp.ClientError as exc:
            failure = transport_error(
                exc, "token request", location_id=None, secrets=self._secrets()
            )
        if failure is not None:  # raised outside the handler: no __context__ with the request
            raise failure from failure.__cause__
        logger.debug("GET %s status=%s", safe_url(self.token_url), status)
        if 300 <= status < 400:
            redirect = redirect_error(status, location, self.token_url, location_id=None)
            raise AuthenticationError(status, None, redirect.message)
        if status != 200:
            raise token_error(status, body, self._secrets())
        if len(body) > MAX_BODY:
            raise too_long("token endpoint", body, None, self._secrets())
        token, expires_in = parse_token(body, status, self._secrets())
        margin = min(600.0, expires_in / 10)
        self._token = token
        self._refresh_at = started + expires_in - margin
        self.fetches += 1
        return token
