"""OtcClient transport edge cases, with aioresponses standing in for the server."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from _helpers import CANARY_OTC, CANARY_SECRET, CANARY_TOKEN, answer, entry, error_body
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from flipkart_otc import (
    ApiError,
    AuthenticationError,
    BadGatewayError,
    ClientCredentials,
    FlipkartOtcError,
    GatewayTimeoutError,
    InternalServerError,
    InvalidTaskTypeError,
    OtcClient,
    RateLimitedError,
    RequestTimeoutError,
    ResponseFormatError,
    RetryPolicy,
    ServiceUnavailableError,
    TaskNotFoundError,
    TransportError,
    TripsheetClosedError,
    __version__,
)
from flipkart_otc.ratelimit import MAX_HOLD

BASE = "http://fk.test/sellers"
URL_ = BASE + "/v3/returns/otc/start/details"
TOKEN_URL = "http://fk.test/oauth-service/oauth/token"
TOKEN_PATTERN = re.compile(r"^http://fk\.test/oauth-service/oauth/token\?.*$")
FAST = RetryPolicy(max_tries=4, base_delay=0)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def client() -> AsyncIterator[OtcClient]:
    async with OtcClient(CANARY_TOKEN, base_url=BASE, retry=FAST) as c:
        yield c


def awaiting(task: asyncio.Task[Any]) -> list[str]:
    """Names of the coroutines ``task`` is suspended in, outermost first."""
    names = []
    coro: Any = task.get_coro()
    while hasattr(coro, "cr_code"):
        names.append(coro.cr_code.co_name)
        coro = coro.cr_await
    return names


def attempts(m: aioresponses) -> int:
    return len(m.requests.get(("POST", URL(URL_)), []))


async def test_success_sends_the_spec_request(mocked: aioresponses, client: OtcClient) -> None:
    mocked.post(URL_, body=answer(fe1=entry()))
    snap = await client.start_otc_details("LOC1")
    assert snap.details["fe1"].fe_name == "Ram"
    (call,) = mocked.requests[("POST", URL(URL_))]
    headers = call.kwargs["headers"]
    assert headers["Authorization"] == f"Bearer {CANARY_TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"flipkart-otc/{__version__}"
    assert call.kwargs["data"] == b'{"sellerLocationId": "LOC1", "taskType": "RETURN"}'
    assert call.kwargs["timeout"].total == 10.0


NOT_RETRIED = [
    (400, "TRIPSHEET_TASK_NOT_FOUND", TaskNotFoundError),
    (400, "INVALID_TASK_TYPE_ERROR", InvalidTaskTypeError),
    (400, "TRIPSHEET_CLOSED_ERROR", TripsheetClosedError),
    (401, "UNAUTHORIZED_ERROR", AuthenticationError),
    (400, "SOMETHING_NEW", ApiError),
]
RETRIED = [
    (500, "INTERNAL_SERVER_ERROR", InternalServerError),
    (502, "BAD_GATEWAY_ERROR", BadGatewayError),
    (503, "SERVICE_UNAVAILABLE_ERROR", ServiceUnavailableError),
    (504, "GATEWAY_TIMEOUT_ERROR", GatewayTimeoutError),
]


@pytest.mark.parametrize(("status", "code", "cls"), NOT_RETRIED)
async def test_final_errors_are_not_retried(
    mocked: aioresponses, client: OtcClient, status: int, code: str, cls: type[ApiError]
) -> None:
    mocked.post(URL_, status=status, payload=error_body(code), repeat=True)
    with pytest.raises(cls) as info:
        await client.start_otc_details("LOC1")
    assert type(info.value) is cls
    assert info.value.error_code == code
    assert attempts(mocked) == 1


@pytest.mark.parametrize(("status", "code", "cls"), RETRIED)
async def test_server_errors_are_retried_until_max_tries(
    mocked: aioresponses, client: OtcClient, status: int, code: str, cls: type[ApiError]
) -> None:
    mocked.post(URL_, status=status, payload=error_body(code), repeat=True)
    with pytest.raises(cls):
        await client.start_otc_details("LOC1")
    assert attempts(mocked) == 4


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (502, BadGatewayError),
        (503, ServiceUnavailableError),
        (499, RequestTimeoutError),
        (408, RequestTimeoutError),
        (429, RateLimitedError),
    ],
)
async def test_transient_statuses_with_html_bodies_are_retried_then_heal(
    mocked: aioresponses, client: OtcClient, status: int, cls: type[FlipkartOtcError]
) -> None:
    html = "<html><body><h1>Oops</h1></body></html>"
    mocked.post(URL_, status=status, body=html, content_type="text/html")
    mocked.post(URL_, status=status, body=html, content_type="text/html")
    mocked.post(URL_, body=answer(fe1=entry()))
    snap = await client.start_otc_details("LOC1")
    assert set(snap.details) == {"fe1"}
    assert attempts(mocked) == 3

    mocked.post(URL_, status=status, body=html, repeat=True)
    with pytest.raises(cls) as info:
        await client.start_otc_details("LOC1")
    assert info.value.status == status
    assert attempts(mocked) == 3 + 4


@pytest.mark.parametrize("status", [404, 405, 403])
async def test_other_client_errors_are_final(
    mocked: aioresponses, client: OtcClient, status: int
) -> None:
    mocked.post(URL_, status=status, body="nope", repeat=True)
    with pytest.raises(ApiError):
        await client.start_otc_details("LOC1")
    assert attempts(mocked) == 1


@pytest.mark.parametrize(
    ("exception", "cls"),
    [
        (aiohttp.ClientConnectionError("refused"), TransportError),
        (aiohttp.ServerDisconnectedError(), TransportError),
        (TimeoutError(), RequestTimeoutError),
        (aiohttp.ClientPayloadError("truncated"), TransportError),
    ],
)
async def test_connection_faults_and_timeouts_are_retried(
    mocked: aioresponses, client: OtcClient, exception: Exception, cls: type[FlipkartOtcError]
) -> None:
    mocked.post(URL_, exception=exception, repeat=True)
    with pytest.raises(cls) as info:
        await client.start_otc_details("LOC1")
    assert info.value.__cause__ is exception
    assert info.value.location_id == "LOC1"
    assert attempts(mocked) == 4


async def test_malformed_success_body_is_not_retried(
    mocked: aioresponses, client: OtcClient
) -> None:
    mocked.post(URL_, body=b'{"otcDetails": {"fe1": {"feName": "x"', repeat=True)
    with pytest.raises(ResponseFormatError):
        await client.start_otc_details("LOC1")
    assert attempts(mocked) == 1


async def test_retry_after_within_the_cap_is_honoured(mocked: aioresponses) -> None:
    policy = RetryPolicy(max_tries=3, base_delay=0, max_retry_after=60)
    waits = policy.delays()
    next(waits)
    limited = RateLimitedError(429, None, location_id="L", retry_after=42.0)
    assert waits.send(limited) == 42.0
    assert waits.send(InternalServerError(500, None)) == 0.0

    mocked.post(URL_, status=429, headers={"Retry-After": "0"})
    mocked.post(URL_, body=answer())
    async with OtcClient("t", base_url=BASE, retry=policy) as c:
        assert (await c.start_otc_details("LOC1")).details == {}
    assert attempts(mocked) == 2


async def test_retry_after_above_the_cap_is_raised_at_once(mocked: aioresponses) -> None:
    policy = RetryPolicy(max_tries=5, base_delay=0, max_retry_after=5)
    mocked.post(URL_, status=429, headers={"Retry-After": "3600"}, repeat=True)
    async with OtcClient("t", base_url=BASE, retry=policy) as c:
        with pytest.raises(RateLimitedError) as info:
            await c.start_otc_details("LOC1")
    assert info.value.retry_after == MAX_HOLD  # 3600 asked; the pause kept is capped
    assert attempts(mocked) == 1


async def test_retry_after_beyond_max_time_is_raised_at_once(mocked: aioresponses) -> None:
    policy = RetryPolicy(max_tries=5, base_delay=0, max_time=10, max_retry_after=60)
    mocked.post(URL_, status=429, headers={"Retry-After": "30"}, repeat=True)
    async with OtcClient("t", base_url=BASE, retry=policy) as c:
        with pytest.raises(RateLimitedError):
            await c.start_otc_details("LOC1")
    assert attempts(mocked) == 1


def test_backoff_is_exponential_with_full_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(max_tries=10, base_delay=0.5, max_delay=3.0)
    for _ in range(200):
        waits = policy.delays()
        next(waits)
        got = [waits.send(InternalServerError(500, None)) for _ in range(6)]
        caps = [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
        assert all(0 <= g <= c for g, c in zip(got, caps, strict=True))


def test_max_tries_one_switches_retries_off() -> None:
    async def attempt() -> int:
        return 1

    assert RetryPolicy(max_tries=1).wrap(attempt) is attempt


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"max_tries": 0}, "max_tries must be >= 1, got 0"),
        ({"max_tries": 1.5}, "max_tries must be an int"),
        ({"base_delay": -1}, "base_delay must be finite and >= 0, got -1"),
        ({"max_time": float("inf")}, "max_time must be finite"),
        ({"max_time": 0}, "max_time must be > 0"),
        ({"base_delay": 5, "max_delay": 1}, "max_delay (1) must be >= base_delay (5)"),
    ],
)
def test_bad_retry_policies_are_refused(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        RetryPolicy(**kwargs)
    assert words in str(info.value)


async def test_cancelling_during_the_backoff_sleep_stops_at_once(mocked: aioresponses) -> None:
    policy = RetryPolicy(max_tries=5, base_delay=0, max_time=600, max_retry_after=600)
    mocked.post(URL_, status=429, headers={"Retry-After": "300"}, repeat=True)
    async with OtcClient("t", base_url=BASE, retry=policy) as c:
        task = asyncio.create_task(c.start_otc_details("LOC1"))
        while "sleep" not in awaiting(task):
            assert not task.done()
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=2)
    assert attempts(mocked) == 1


# -- arguments ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "error", "words"),
    [
        ("", ValueError, "''"),
        ("   ", ValueError, "'   '"),
        ("\t\n", ValueError, "'\\t\\n'"),
        (None, TypeError, "NoneType"),
        (42, TypeError, "int"),
    ],
)
async def test_bad_location_ids_fail_before_any_request(
    mocked: aioresponses, client: OtcClient, location: Any, error: type, words: str
) -> None:
    with pytest.raises(error) as info:
        await client.start_otc_details(location)
    assert "location_id" in str(info.value) and words in str(info.value)
    assert mocked.requests == {}


async def test_a_task_type_other_than_return_fails_before_any_request(
    mocked: aioresponses, client: OtcClient
) -> None:
    with pytest.raises(ValueError, match="task_type must be 'RETURN', got 'PICKUP'"):
        await client.start_otc_details("LOC1", task_type="PICKUP")
    assert mocked.requests == {}


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"timeout": 0}, ValueError, "timeout must be a positive number of seconds, got 0"),
        ({"timeout": -1.5}, ValueError, "got -1.5"),
        ({"timeout": float("nan")}, ValueError, "got nan"),
        ({"timeout": "10"}, TypeError, "got str"),
        ({"base_url": "ftp://x"}, ValueError, "'ftp://x'"),
        ({"retry": 3}, TypeError, "retry must be a RetryPolicy, got int"),
    ],
)
def test_bad_client_arguments_fail_at_once(
    kwargs: dict[str, Any], error: type, words: str
) -> None:
    with pytest.raises(error) as info:
        OtcClient("t", **kwargs)
    assert words in str(info.value)


@pytest.mark.parametrize("token", ["", "  "])
def test_blank_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValueError, match="token must not be empty"):
        OtcClient(token)


# -- sessions ----------------------------------------------------------------


async def test_borrowed_session_is_not_closed(mocked: aioresponses) -> None:
    mocked.post(URL_, body=answer())
    async with aiohttp.ClientSession() as session:
        async with OtcClient("t", base_url=BASE, session=session) as c:
            await c.start_otc_details("LOC1")
        assert not session.closed
        assert c.closed


async def test_owned_session_is_closed_and_a_closed_client_refuses_work(
    mocked: aioresponses,
) -> None:
    c = OtcClient("t", base_url=BASE)
    mocked.post(URL_, body=answer())
    await c.start_otc_details("LOC1")
    session = c._session
    assert session is not None
    await c.aclose()
    await c.aclose()
    assert session.closed
    with pytest.raises(RuntimeError, match="closed"):
        await c.start_otc_details("LOC1")


# -- auth --------------------------------------------------------------------


class FakeFlipkart:
    """Token endpoint + API behind aioresponses: the API accepts only the newest token."""

    def __init__(self, mocked: aioresponses) -> None:
        self.issued = 0
        self.valid: str | None = None
        self.api_calls = 0
        self.hold_until = 0  # hold API requests until this many are in flight
        self._all_in = asyncio.Event()
        mocked.get(TOKEN_PATTERN, callback=self.token, repeat=True)
        mocked.post(URL_, callback=self.api, repeat=True)

    def token(self, url: URL, **kwargs: Any) -> CallbackResult:
        assert url.query["grant_type"] == "client_credentials"
        assert url.query["scope"] == "Seller_Api"
        assert kwargs["headers"]["User-Agent"] == f"flipkart-otc/{__version__}"
        basic = base64.b64encode(f"app:{CANARY_SECRET}".encode()).decode()
        if kwargs["headers"]["Authorization"] != f"Basic {basic}":
            return CallbackResult(
                status=401,
                payload={"error": "unauthorized", "error_description": "Bad credentials"},
            )
        self.issued += 1
        self.valid = f"{CANARY_TOKEN}-{self.issued}"
        return CallbackResult(
            payload={"access_token": self.valid, "token_type": "bearer", "expires_in": 5183999}
        )

    async def api(self, url: URL, **kwargs: Any) -> CallbackResult:
        self.api_calls += 1
        if self.hold_until:
            if self.api_calls >= self.hold_until:
                self.hold_until = 0
                self._all_in.set()
            await self._all_in.wait()
        if kwargs["headers"]["Authorization"] != f"Bearer {self.valid}":
            return CallbackResult(status=401, payload=error_body("UNAUTHORIZED_ERROR"))
        return CallbackResult(body=answer(fe1=entry(otc=CANARY_OTC)))


async def test_fifty_concurrent_401s_cause_exactly_one_refresh(mocked: aioresponses) -> None:
    fake = FakeFlipkart(mocked)
    creds = ClientCredentials("app", CANARY_SECRET, token_url=TOKEN_URL)
    async with OtcClient(creds, base_url=BASE, retry=FAST) as c:
        await c.start_otc_details("LOC1")
        assert (fake.issued, creds.fetches) == (1, 1)
        fake.valid = "revoked"  # the server expires the cached token
        fake.hold_until = fake.api_calls + 50
        snaps = await asyncio.gather(*(c.start_otc_details(f"L{i}") for i in range(50)))
    assert all(s.details["fe1"].otc == CANARY_OTC for s in snaps)
    assert (fake.issued, creds.fetches) == (2, 2)
    assert fake.api_calls == 1 + 50 + 50


async def test_a_second_401_raises_authentication_error(mocked: aioresponses) -> None:
    fake = FakeFlipkart(mocked)
    mocked._matches.clear()
    mocked.get(TOKEN_PATTERN, callback=fake.token, repeat=True)
    mocked.post(
        URL_, status=401, payload=error_body("UNAUTHORIZED_ERROR", "expired token"), repeat=True
    )
    creds = ClientCredentials("app", CANARY_SECRET, token_url=TOKEN_URL)
    async with OtcClient(creds, base_url=BASE, retry=FAST) as c:
        with pytest.raises(AuthenticationError, match="expired token"):
            await c.start_otc_details("LOC1")
    assert attempts(mocked) == 2
    assert fake.issued == 2


async def test_a_static_token_is_not_refreshed(mocked: aioresponses, client: OtcClient) -> None:
    mocked.post(URL_, status=401, payload=error_body("UNAUTHORIZED_ERROR"), repeat=True)
    with pytest.raises(AuthenticationError):
        await client.start_otc_details("LOC1")
    assert attempts(mocked) == 1


async def test_bad_credentials_give_flipkarts_description(mocked: aioresponses) -> None:
    fake = FakeFlipkart(mocked)
    creds = ClientCredentials("app", "wrong-" + CANARY_SECRET, token_url=TOKEN_URL)
    async with OtcClient(creds, base_url=BASE, retry=FAST) as c:
        with pytest.raises(AuthenticationError) as info:
            await c.start_otc_details("LOC1")
    assert "Bad credentials" in str(info.value)
    assert info.value.status == 401
    assert CANARY_SECRET not in str(info.value)
    assert fake.api_calls == 0


async def test_token_is_refreshed_ahead_of_expires_in(mocked: aioresponses) -> None:
    fake = FakeFlipkart(mocked)
    now = [1000.0]
    creds = ClientCredentials("app", CANARY_SECRET, token_url=TOKEN_URL, clock=lambda: now[0])
    async with OtcClient(creds, base_url=BASE, retry=FAST) as c:
        await c.start_otc_details("LOC1")
        now[0] += 5183999 - 601  # just before the refresh margin (600 s)
        await c.start_otc_details("LOC1")
        assert fake.issued == 1
        now[0] += 2
        await c.start_otc_details("LOC1")
        assert fake.issued == 2
    assert fake.api_calls == 3


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"access_token": 5, "expires_in": 10}',
        b'{"access_token": "x", "expires_in": -1}',
        b"<html>",
    ],
)
async def test_malformed_token_answers_raise_format_errors(
    mocked: aioresponses, body: bytes
) -> None:
    mocked.get(TOKEN_PATTERN, body=body)
    creds = ClientCredentials("app", CANARY_SECRET, token_url=TOKEN_URL)
    async with OtcClient(creds, base_url=BASE, retry=FAST) as c:
        with pytest.raises(ResponseFormatError):
            await c.start_otc_details("LOC1")


def test_credentials_are_validated_and_hidden() -> None:
    creds = ClientCredentials("app", CANARY_SECRET)
    assert CANARY_SECRET not in repr(creds)
    with pytest.raises(ValueError, match="app_secret must not be empty"):
        ClientCredentials("app", " ")
    with pytest.raises(ValueError, match="token_url must be an http"):
        ClientCredentials("app", "s", token_url="nope")


# -- secrets -----------------------------------------------------------------


async def test_canary_secrets_never_reach_logs_reprs_or_errors(
    mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeFlipkart(mocked)
    creds = ClientCredentials("app", CANARY_SECRET, token_url=TOKEN_URL)
    texts: list[str] = [repr(creds)]
    async with OtcClient(creds, base_url=BASE, retry=FAST) as c:
        texts.append(repr(c))
        snap = await c.start_otc_details("LOC1")  # success, after a token fetch
        texts += [repr(snap), str(snap), repr(snap.details["fe1"])]
        fake.valid = "revoked"
        await c.start_otc_details("LOC1")  # 401, refresh, resend
        mocked._matches.clear()
        mocked.post(URL_, status=503, payload=error_body("SERVICE_UNAVAILABLE_ERROR"))
        mocked.post(URL_, body=answer(fe1=entry(otc=CANARY_OTC, createdAt="bad")))
        for expected in (ResponseFormatError, FlipkartOtcError):
            try:
                await c.start_otc_details("LOC1")
            except expected as exc:
                texts += [str(exc), repr(exc), repr(exc.__cause__)]
                if isinstance(exc, ResponseFormatError):
                    texts.append(exc.body)
        mocked.post(URL_, status=401, payload=error_body("UNAUTHORIZED_ERROR"), repeat=True)
        mocked.get(TOKEN_PATTERN, status=401, payload={"error_description": "Bad credentials"})
        with pytest.raises(AuthenticationError) as info:
            await c.start_otc_details("LOC1")
        texts += [str(info.value), repr(info.value)]
    texts += [r.getMessage() for r in caplog.records]
    assert any("LOC1" in r.getMessage() for r in caplog.records)  # the debug lines ran
    blob = "\n".join(texts)
    for canary in (CANARY_TOKEN, CANARY_SECRET, CANARY_OTC):
        assert canary not in blob
