"""The simulator's HTTP side: Flipkart's Start OTC and OAuth token endpoints on 127.0.0.1.

Why one module of some 460 lines: the handlers of five endpoints and the token
endpoint, each checking what Flipkart checks; the world and the faults are apart.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Any, Self

from aiohttp import web

from .._lifecycle import Closing
from .._wire.common import TASK_TYPE
from .._wire.end_otc import PATH as END_OTC_PATH
from .._wire.initial_load import PATH as INITIAL_LOAD_PATH
from .._wire.shipments import PATH as SHIPMENTS_PATH
from ..client import START_OTC_PATH, OtcClient
from ..clock import Clock, SystemClock, sleep_until
from ..retry import RetryPolicy
from ._codes import UNREADABLE
from ._day import DayDriver, DayScenario
from ._faults import Fault, FaultKind, FaultPlan
from ._scenario import Scenario, ScenarioDriver
from ._world import SHIPMENTS_PAGE_PATH, World

__all__ = ["Simulator"]

API_PATH = "/sellers" + START_OTC_PATH
TOKEN_PATH = "/oauth-service/oauth/token"
DEFAULT_TOKEN_LIFETIME = 60 * 24 * 3600.0  # what Flipkart issues: about 60 days

_HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
_JSON = "application/json"


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _location_body(raw: bytes) -> tuple[Any, str | None]:
    """A request's JSON body, and its ``sellerLocationId`` (None when there is none)."""
    body = _json_body(raw)
    location_id = body.get("sellerLocationId") if isinstance(body, dict) else None
    if not isinstance(location_id, str) or not location_id.strip():
        location_id = None
    return body, location_id


def _ids(body: Any) -> tuple[str, str]:
    """The ``taskId`` and ``feId`` of a request body or page cursor ("" when missing)."""
    if not isinstance(body, dict):
        return "", ""
    task_id, fe_id = body.get("taskId"), body.get("feId")
    return (
        task_id if isinstance(task_id, str) else "",
        fe_id if isinstance(fe_id, str) else "",
    )


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    body = json.dumps({"errorCode": code, "message": message}).encode()
    return web.Response(status=status, body=body, content_type=_JSON, headers=headers)


class Simulator(Closing):
    """A local Flipkart: the Start OTC API and the OAuth token endpoint over real HTTP.

    It checks what Flipkart checks (content type, bearer token, JSON body,
    ``taskType``), answers from its :attr:`world`, injects :attr:`faults`, and
    records every change of the world in :attr:`history` (the ground truth).

    >>> async with Simulator() as sim:  # doctest: +SKIP
    ...     sim.world.open_task("LOC1")
    ...     sim.world.arrive("LOC1", fe_name="Ram")
    ...     async with sim.client() as client:
    ...         snap = await client.start_otc_details("LOC1")

    ``scenario`` plays a seeded random story on the world as ``clock`` moves: a
    :class:`Scenario` (FEs coming and going all the time) or a :class:`DayScenario`
    (a realistic day at a network of warehouses).
    """

    def __init__(
        self,
        *,
        scenario: Scenario | DayScenario | None = None,
        clock: Clock | None = None,
        seconds: bool = False,
        seed: int | None = 0,
        token_lifetime: float = DEFAULT_TOKEN_LIFETIME,
        app_id: str = "sim-app-id",
        app_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if token_lifetime <= 0:
            raise ValueError(f"token_lifetime must be > 0, got {token_lifetime!r}")
        self.clock: Clock = clock or SystemClock()
        self.world = World(self.clock, seconds=seconds, seed=seed)
        self.faults = FaultPlan(seed)
        self.scenario = scenario
        self.token_lifetime = token_lifetime
        self.app_id = app_id
        self.app_secret = app_secret or "sim-secret-" + secrets.token_hex(8)
        #: Start OTC requests received, per location id (None: no usable id).
        self.requests: Counter[str | None] = Counter()
        #: Start OTC requests being handled now, and the most there ever were at once.
        self.in_flight = 0
        self.peak_in_flight = 0
        self._requests_seen = 0
        self._request_waiters: list[tuple[int, asyncio.Future[None]]] = []
        #: Requests to the rest of the visit's endpoints, by endpoint.
        self.visit_requests: Counter[str] = Counter()
        #: Make the scanning endpoint give the same next URL again and again.
        self.repeat_cursor = False
        self._first_next_url: str | None = None
        #: Token requests answered with a token.
        self.tokens_issued = 0
        self._host, self._port = host, port
        self._tokens: dict[str, float] = {}
        self._runner: web.AppRunner | None = None
        self._driver: ScenarioDriver | DayDriver | None = None
        self._driver_task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self.token = self.issue_token()

    def __repr__(self) -> str:
        return f"<Simulator {self.base_url if self._runner else 'stopped'}>"

    # -- addresses and credentials -------------------------------------------

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError("the simulator is not running")
        return self._port

    @property
    def origin(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``OtcClient(base_url=...)``."""
        return self.origin + "/sellers"

    @property
    def token_url(self) -> str:
        """What to pass as ``ClientCredentials(token_url=...)``."""
        return self.origin + TOKEN_PATH

    @property
    def history(self) -> list[Any]:
        """The ground truth: every change of the world, in order."""
        return self.world.history

    def issue_token(self) -> str:
        """A new valid bearer token (also what the token endpoint does)."""
        token = "sim-token-" + secrets.token_hex(12)
        self._tokens[token] = self.clock.time() + self.token_lifetime
        return token

    def expire_tokens(self) -> None:
        """Every token issued so far stops working: the API answers 401."""
        self._tokens.clear()

    def _token_valid(self, token: str) -> bool:
        expiry = self._tokens.get(token)
        return expiry is not None and self.clock.time() < expiry

    async def wait_for_requests(self, count: int) -> None:
        """Wait until the Start OTC endpoint has received ``count`` requests in all.

        The wait ends as a request arrives, before it is answered: handy to act
        while a request is under way (say, a ``SLOW`` fault).
        """
        if self._requests_seen >= count:
            return
        waiter = (count, asyncio.get_running_loop().create_future())
        self._request_waiters.append(waiter)
        try:
            await waiter[1]
        finally:
            self._request_waiters.remove(waiter)

    def client(self, **kwargs: Any) -> OtcClient:
        """An :class:`OtcClient` for this simulator with a static token and fast retries.

        Keyword arguments go to :class:`OtcClient` (``auth`` included); its ``clock``
        is the simulator's unless given, so a 429's pause runs on the same time.
        """
        kwargs.setdefault("retry", RetryPolicy(base_delay=0))
        kwargs.setdefault("clock", self.clock)
        auth = kwargs.pop("auth", self.token)
        return OtcClient(auth, base_url=self.base_url, **kwargs)

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Listen on the host and port (port 0: a free one) and start the scenario."""
        app = web.Application()
        app.router.add_post(API_PATH, self._start_otc)
        app.router.add_post("/sellers" + INITIAL_LOAD_PATH, self._initial_load)
        app.router.add_post("/sellers" + SHIPMENTS_PATH, self._shipments)
        app.router.add_get(SHIPMENTS_PAGE_PATH + "{token:.+}", self._shipments_next)
        app.router.add_post("/sellers" + END_OTC_PATH, self._end_otc)
        app.router.add_get(TOKEN_PATH, self._token)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, backlog=4096)
        await site.start()
        self._port = self._runner.addresses[0][1]
        if self.scenario is not None:
            self._driver = self.scenario.driver(self.world, self.clock.time())
            self._driver_task = asyncio.create_task(self._drive(self._driver))

    async def _drive(self, driver: ScenarioDriver | DayDriver) -> None:
        while (when := driver.next_at) is not None:
            await sleep_until(self.clock, when)
            driver.advance_to(self.clock.time())

    def advance_scenario(self) -> int:
        """Apply the scenario's actions due at the clock's time now (for manual clocks)."""
        return self._driver.advance_to(self.clock.time()) if self._driver else 0

    async def close(self) -> None:
        """Stop the scenario and the server. Safe to call twice."""
        self._closing.set()
        task, self._driver_task = self._driver_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def aclose(self) -> None:
        """The same as :meth:`close` (what ``async with`` calls)."""
        await self.close()

    # -- handlers --------------------------------------------------------------

    async def _start_otc(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self._requests_seen += 1
        for waiter in self._request_waiters:
            if self._requests_seen >= waiter[0] and not waiter[1].done():
                waiter[1].set_result(None)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body, location_id = _location_body(await request.read())
        self.requests[location_id] += 1
        return await self._for_location(request, body, location_id, self.world.answer, "start-otc")

    async def _for_location(
        self,
        request: web.Request,
        body: Any,
        location_id: str | None,
        answer: Callable[[str], tuple[int, bytes]],
        endpoint: str,
    ) -> web.StreamResponse:
        """An endpoint that takes ``{"sellerLocationId", "taskType"}``: the checks, then
        the world's ``answer`` for the location."""
        refused = await self._check(request, body, location_id, endpoint)
        if refused is not None:
            return refused
        if body.get("taskType") != TASK_TYPE:
            return _error(400, "INVALID_TASK_TYPE_ERROR", "Task type is not Return")
        if location_id is None:  # no location: it has no task
            return _error(400, "TRIPSHEET_TASK_NOT_FOUND", "sellerLocationId is mandatory")
        status, payload = answer(location_id)
        return web.Response(status=status, body=payload, content_type=_JSON)

    async def _check(
        self,
        request: web.Request,
        body: Any,
        location_id: str | None,
        endpoint: str,
        *,
        get: bool = False,
    ) -> web.StreamResponse | None:
        """What every endpoint checks first: a fault planned for the location (and the
        endpoint), then the content type, the bearer token and a JSON object body (an
        error answer), or None when the request may go on. A request it cannot read gets
        the endpoint's :data:`UNREADABLE` code, one its docs list."""
        fault = self.faults.take(location_id, endpoint)
        if fault is not None:
            answer = await self._fault(request, fault, location_id)
            if answer is not None:
                return answer
        if request.content_type != _JSON:
            return _error(400, UNREADABLE[endpoint], "Content-Type must be application/json")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self._token_valid(token.strip()):
            return _error(401, "UNAUTHORIZED_ERROR", "Authentication failed")
        if not get and not isinstance(body, dict):
            return _error(400, UNREADABLE[endpoint], "Request body must be a JSON object")
        return None

    # -- the rest of the visit ---------------------------------------------------

    async def _initial_load(self, request: web.Request) -> web.StreamResponse:
        self.visit_requests["initial-load"] += 1
        body, location_id = _location_body(await request.read())
        return await self._for_location(
            request, body, location_id, self.world.initial_load, "initial-load"
        )

    async def _for_visit(
        self, request: web.Request, endpoint: str
    ) -> tuple[dict[str, Any], str, str] | web.StreamResponse:
        """An endpoint that takes ``{"taskId", "feId", ...}``: the checks (faults by the
        visit's location), then the body and the two ids, or the error answer."""
        body = _json_body(await request.read())
        task_id, fe_id = _ids(body)
        location_id = self.world.location_of(task_id, fe_id) if task_id and fe_id else None
        refused = await self._check(request, body, location_id, endpoint)
        if refused is not None:
            return refused
        if not task_id or not fe_id:
            return _error(400, UNREADABLE[endpoint], "taskId and feId are mandatory")
        return body, task_id, fe_id

    async def _shipments(self, request: web.Request) -> web.StreamResponse:
        self.visit_requests["shipments"] += 1
        checked = await self._for_visit(request, "shipments")
        if isinstance(checked, web.StreamResponse):
            return checked
        body, task_id, fe_id = checked
        page_size = body.get("pageSize", 25)
        if type(page_size) is not int or not 1 <= page_size <= 1000:
            return _error(400, UNREADABLE["shipments"], "pageSize must be a whole number 1..1000")
        return self._page(task_id, fe_id, page_size, None)

    async def _shipments_next(self, request: web.Request) -> web.StreamResponse:
        self.visit_requests["shipments-next"] += 1
        try:
            cursor = json.loads(base64.b64decode(request.match_info["token"], validate=True))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            cursor = None
        task_id, fe_id = _ids(cursor)
        location_id = self.world.location_of(task_id, fe_id) if task_id and fe_id else None
        refused = await self._check(request, None, location_id, "shipments-next", get=True)
        if refused is not None:
            return refused
        etag, page_size = (cursor or {}).get("etag"), (cursor or {}).get("pageSize")
        if not task_id or not fe_id or type(etag) is not str or type(page_size) is not int:
            return _error(
                400, UNREADABLE["shipments-next"], "the page token is not one this server gave"
            )
        return self._page(task_id, fe_id, page_size, etag)

    def _page(self, task_id: str, fe_id: str, page_size: int, after: str | None) -> web.Response:
        status, payload = self.world.shipments_page(task_id, fe_id, page_size, after)
        if status == 200 and self.repeat_cursor:  # a server that hands out one page again
            document = json.loads(payload)
            key = "nextUrl" if "nextUrl" in document else "next_url"
            if document[key] is not None:
                self._first_next_url = self._first_next_url or document[key]
                document[key] = self._first_next_url
                payload = json.dumps(document).encode()
        return web.Response(status=status, body=payload, content_type=_JSON)

    async def _end_otc(self, request: web.Request) -> web.StreamResponse:
        self.visit_requests["end-otc"] += 1
        checked = await self._for_visit(request, "end-otc")
        if isinstance(checked, web.StreamResponse):
            return checked
        body, task_id, fe_id = checked
        if body.get("taskType") != TASK_TYPE:
            return _error(400, "INVALID_TASK_TYPE_ERROR", "Task type is not Return")
        status, payload = self.world.end_otc(fe_id, task_id)
        return web.Response(status=status, body=payload, content_type=_JSON)

    async def _fault(
        self, request: web.Request, fault: Fault, location_id: str | None
    ) -> web.StreamResponse | None:
        kind = fault.kind
        if kind is FaultKind.EXPIRED_TOKEN:
            self.expire_tokens()
            return None
        if kind is FaultKind.SLOW:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.delay)
            return None
        if kind is FaultKind.DROP:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()  # never sent: the connection is gone
        if kind is FaultKind.RATE_LIMITED:
            return _error(
                429,
                "TOO_MANY_REQUESTS",
                "Rate limit exceeded",
                **{"Retry-After": f"{fault.retry_after:g}"},
            )
        if kind is FaultKind.CONNECTION_TIMED_OUT:
            return web.Response(status=499, text="connection timed out")
        if kind is FaultKind.HTML_BAD_GATEWAY:
            return web.Response(status=502, body=_HTML_502, content_type="text/html")
        if kind is FaultKind.TRUNCATED_JSON:
            _, payload = self.world.answer(location_id or "")
            return web.Response(status=200, body=payload[: len(payload) // 2], content_type=_JSON)
        if kind is FaultKind.INVALID_JSON:
            return web.Response(
                status=200, body=b"<otcDetails>oops</otcDetails>", content_type=_JSON
            )
        status = {
            FaultKind.INTERNAL_SERVER_ERROR: 500,
            FaultKind.BAD_GATEWAY: 502,
            FaultKind.SERVICE_UNAVAILABLE: 503,
            FaultKind.GATEWAY_TIMEOUT: 504,
        }[kind]
        return _error(status, kind.value, kind.value.replace("_", " ").lower())

    async def _token(self, request: web.Request) -> web.Response:
        if request.query.get("grant_type") != "client_credentials":
            return web.json_response(
                {"error": "unsupported_grant_type", "error_description": "Unsupported grant type"},
                status=400,
            )
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            app_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            app_id = secret = ""
        if scheme.lower() != "basic" or (app_id, secret) != (self.app_id, self.app_secret):
            return web.json_response(
                {"error": "unauthorized", "error_description": "Bad credentials"}, status=401
            )
        self.tokens_issued += 1
        return web.json_response(
            {
                "access_token": self.issue_token(),
                "token_type": "bearer",
                "expires_in": int(self.token_lifetime),
                "scope": request.query.get("scope", "Seller_Api"),
            }
        )
