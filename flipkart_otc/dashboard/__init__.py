"""A live dashboard of a watcher: which FEs are where, their OTCs and how long each has
left (and, of a ``VisitWatcher``, each FE's stage of the visit), pushed to browsers over
Server-Sent Events.

``create_app(watcher)`` is an ``aiohttp.web.Application``: run it, or mount it in your
own service. The page is served by the package itself (plain HTML, CSS and JavaScript:
no CDN, no build step), so it works on an offline warehouse LAN::

    from aiohttp import web
    from flipkart_otc.dashboard import create_app

    app = web.Application()
    app.add_subapp("/otc/", create_app(watcher))  # the watcher started beside it

Routes, relative to where it is mounted: ``/`` the page, ``/events`` the event stream,
``/healthz`` and ``/readyz`` JSON probes and ``/metrics`` (see
:class:`~flipkart_otc.probes.Probes`), ``/login`` where the access key is entered. Needs the
``dashboard`` extra: ``pip install 'flipkart-otc[dashboard]'``.

Why one module of some 410 lines: the app's routes, its middlewares (Host rule,
access key, security headers) and the event stream; the page is ``static/``, the
fan-out to browsers ``_hub``, the access rules ``_access``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from importlib import resources

import attrs
from aiohttp import web

try:
    from aiohttp_sse import EventSourceResponse
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "the dashboard needs aiohttp-sse: pip install 'flipkart-otc[dashboard]'"
    ) from exc

from .._checks import check_int, check_number
from .._fanout import EventFeed
from ..clock import monotonic_of
from ..probes import Probes
from ._access import (
    COOKIE,
    LoginThrottle,
    check_key,
    client_of,
    host_allowed,
    key_matches,
    retry_after,
    session_value,
    valid_session,
)
from ._hub import Hub, Lagged

__all__ = ["create_app"]

logger = logging.getLogger("flipkart_otc.dashboard")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.frozen
class _Settings:
    key: str | None  # the access key, if any
    session: str | None  # the cookie value that proves it was entered
    heartbeat: float
    send_timeout: float
    allowed_hosts: frozenset[str]  # names a keyless server answers besides loopback
    monotonic: Callable[[], float]  # the watcher's: the login throttle's time


_HUB = web.AppKey("flipkart_otc_hub", Hub)
_SETTINGS = web.AppKey("flipkart_otc_settings", _Settings)
_THROTTLE = web.AppKey("flipkart_otc_login_throttle", LoginThrottle)
_STATIC = {"app.js": "text/javascript", "app.css": "text/css", "icon.svg": "image/svg+xml"}
# No inline script or style, nothing from elsewhere: the page is the package's own files.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@functools.cache  # read once: a page reload storm costs no disk reads on the loop
def _asset(name: str) -> bytes:
    return resources.files(__name__).joinpath("static", name).read_bytes()


def create_app(
    watcher: EventFeed,
    *,
    show_otc: bool = False,
    access_key: str | None = None,
    replay: int = 4096,
    heartbeat: float = 10.0,
    send_timeout: float = 30.0,
    allowed_hosts: Iterable[str] = (),
    probes: Probes | None = None,
) -> web.Application:
    """The dashboard of ``watcher`` (started and closed by its owner, not by the app):
    an :class:`~flipkart_otc.OtcWatcher`, or any :class:`~flipkart_otc.EventFeed` such
    as a :class:`~flipkart_otc.sinks.RedisStreamFeed` reading shard workers' stream.

    - ``show_otc``: put the OTCs in the page and its event stream (masked otherwise:
      the digits never leave the server).
    - ``access_key``: when set (16 characters or more, 8 or more of them different, not
      a shorter part repeated), the page and its data need it, entered once and kept in
      an ``HttpOnly``, ``SameSite=Strict`` cookie; bind to a non-loopback address only
      with one. Wrong keys are throttled per client and overall (429 with
      ``Retry-After``), on the watcher's clock.
    - ``allowed_hosts``: without a key, every answer (any route of the app, those added
      later too) goes only to a request whose ``Host`` is a loopback name or address,
      the address it came in on, or one of these names (a proxy's, say); any other
      gets 421 before any data, so a page whose name was made to resolve to this
      server (DNS rebinding) reads nothing.
    - ``replay``: how many recent events the server keeps (serialized once, shared by
      every browser): a browser that reconnects with ``Last-Event-ID`` gets those it
      missed, and one that falls further behind (it stopped reading) is told to
      resync and starts again from a fresh picture; a stalled browser never slows
      polling or other browsers.
    - ``heartbeat``: seconds between messages carrying the server's time when nothing
      happens (the page counts down against it and shows "stale" without them).
    - ``send_timeout``: a browser that takes longer than this to take a message is
      disconnected.
    - ``probes``: what ``/healthz``, ``/readyz`` and ``/metrics`` answer (a
      :class:`~flipkart_otc.probes.Probes` of the watcher, without metrics, by
      default); ``/metrics`` needs the access cookie or the key as a bearer token.

    >>> app = create_app(watcher, show_otc=True)  # doctest: +SKIP
    >>> web.run_app(app, host="127.0.0.1", port=8080)  # doctest: +SKIP
    """
    if not isinstance(watcher, EventFeed):
        raise TypeError(
            f"watcher must be an OtcWatcher or an EventFeed, got {type(watcher).__name__}"
        )
    if not isinstance(show_otc, bool):
        raise TypeError(f"show_otc must be a bool, got {type(show_otc).__name__}")
    check_int("replay", replay)
    check_number("heartbeat", heartbeat, minimum=0.01)
    check_number("send_timeout", send_timeout, minimum=0.01)
    key = check_key(access_key) if access_key is not None else None
    if isinstance(allowed_hosts, str):
        raise TypeError("allowed_hosts must be a collection of names, not one str")
    hosts = frozenset(str(name).strip().lower().rstrip(".") for name in allowed_hosts)
    # outermost first: every answer hardened, then the Host rule, then no traceback
    app = web.Application(middlewares=[_security_headers, _host_guard, _contained])
    app[_HUB] = Hub(watcher, show_otc=show_otc, replay=replay)
    app[_SETTINGS] = _Settings(
        key,
        session_value(key) if key else None,
        float(heartbeat),
        float(send_timeout),
        hosts,
        monotonic_of(watcher.clock),
    )
    app[_THROTTLE] = LoginThrottle()
    app.router.add_get("/", _index)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/events", _events)
    probes = probes if probes is not None else Probes(watcher)
    probes.add_routes(app, allowed=_reader_allowed, extra=lambda: {"clients": app[_HUB].clients})
    app.router.add_post("/login", _login)
    app.cleanup_ctx.append(_run_hub)
    return app


async def _run_hub(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[_HUB].run(), name="flipkart-otc-dashboard-hub")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    if not response.prepared:  # the event stream sets its own before it starts
        _harden(response)
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def _host_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Without a key, only a loopback or known ``Host``: see ``allowed_hosts``."""
    settings = request.app[_SETTINGS]
    if settings.key is None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        local = sockname[0] if isinstance(sockname, tuple) and sockname else None
        if not host_allowed(request.headers.get("Host"), local, settings.allowed_hosts):
            raise web.HTTPMisdirectedRequest(
                text="this dashboard answers only to its own address (the Host is not it)"
            )
    return await handler(request)


@web.middleware
async def _contained(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request that fails unexpectedly gets 500 and one log line (the traceback at
    debug level): no request prints a traceback."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        _failed(request, exc)
        raise web.HTTPInternalServerError(text="the dashboard could not answer") from None


def _failed(request: web.Request, exc: Exception) -> None:
    logger.debug("%s %s failed", request.method, request.rel_url.path, exc_info=True)
    logger.error(
        "dashboard: %s %s failed: %s (a bug; debug logging shows where)",
        request.method,
        request.rel_url.path[:100],
        type(exc).__name__,
    )


def _harden(response: web.StreamResponse) -> None:
    headers = response.headers
    headers["Content-Security-Policy"] = _CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Cache-Control"] = "no-store"


def _allowed(request: web.Request) -> bool:
    session = request.app[_SETTINGS].session
    return session is None or valid_session(session, request.cookies.get(COOKIE))


def _login_page(status: int, message: str) -> web.Response:
    page = _asset("login.html").decode().replace("{message}", message)
    return web.Response(status=status, text=page, content_type="text/html")


async def _index(request: web.Request) -> web.StreamResponse:
    if not _allowed(request):
        return _login_page(401, "Enter the dashboard's access key.")
    return web.Response(body=_asset("index.html"), content_type="text/html", charset="utf-8")


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    kind = _STATIC.get(name)
    if kind is None:
        raise web.HTTPNotFound()
    return web.Response(body=_asset(name), content_type=kind, charset="utf-8")


async def _login(request: web.Request) -> web.StreamResponse:
    settings = request.app[_SETTINGS]
    key = settings.key
    if key is None:
        raise web.HTTPSeeOther("./")
    # the token is taken before the key is read: many at once count each
    throttle, client = request.app[_THROTTLE], client_of(request.remote)
    wait = throttle.attempt(client, settings.monotonic())
    if wait:
        page = _login_page(429, f"Too many wrong keys. Try again in {retry_after(wait)} s.")
        page.headers["Retry-After"] = retry_after(wait)
        return page
    try:
        form = await request.post()
    except (ValueError, LookupError):  # not a form, or in a charset nobody knows
        return _login_page(400, "Enter the key in the form.")
    offered = form.get("key")
    if not isinstance(offered, str) or not key_matches(key, offered.strip()):
        return _login_page(401, "That key is not right. Try again.")
    throttle.succeeded(client, settings.monotonic())
    response = web.HTTPSeeOther("./")
    response.set_cookie(
        COOKIE,
        session_value(key),
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path=request.path.rsplit("/", 1)[0] + "/",
    )
    return response


def _reader_allowed(request: web.Request) -> bool:
    """Who may read ``/metrics``: the page's cookie, or the key as a bearer token (what
    Prometheus sends)."""
    key = request.app[_SETTINGS].key
    if _allowed(request):
        return True
    offered = request.headers.get("Authorization", "")
    return key is not None and offered.startswith("Bearer ") and key_matches(key, offered[7:])


def _json(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))


async def _events(request: web.Request) -> web.StreamResponse:
    if not _allowed(request):
        raise web.HTTPUnauthorized(text="the dashboard's access key is needed")
    hub = request.app[_HUB]
    settings = request.app[_SETTINGS]
    # A reconnect storm: browsers start a few at a time, the loop turning between them
    # (polls go on); each takes its turn to be attached and to hand its opening to the
    # socket, and waits for a slow reader outside it.
    async with hub.turns:
        try:
            picture, cursor = hub.attach(request.headers.get("Last-Event-ID"))
        except RuntimeError:
            raise web.HTTPServiceUnavailable(text="the watcher has stopped") from None
        response = EventSourceResponse(
            send_timeout=settings.send_timeout, ping_interval=10 * settings.heartbeat
        )
        _harden(response)
        try:
            await response.prepare(request)
        except (ConnectionError, RuntimeError):
            return response  # the browser went away
        opening = asyncio.ensure_future(
            response.write(_opening(hub, settings.heartbeat, picture, cursor))
        )
        await asyncio.sleep(0)  # its first step: the bytes handed to the socket
    hub.clients += 1
    try:
        async with asyncio.timeout(settings.send_timeout):
            await opening
        await _stream(response, hub, cursor, settings.heartbeat, settings.send_timeout)
    except TimeoutError:  # it stalled past the send timeout: a stalled peer never drains
        if request.transport is not None:
            request.transport.abort()
    except (ConnectionError, RuntimeError):
        pass  # the browser went away
    except Exception as exc:  # the stream is open: a 500 can no longer be sent
        _failed(request, exc)
        if request.transport is not None:
            request.transport.abort()
    finally:
        hub.clients -= 1
        opening.cancel()  # done by now, unless this ended early
    return response


def _opening(hub: Hub, heartbeat: float, picture: bytes | None, cursor: int) -> bytes:
    """A stream's first message: the picture, or "resume" when the ring has what the
    browser missed; with the server's time and run."""
    about = _json(
        {
            "instance": hub.instance,
            "server_time": hub.now_ms(),
            "show_otc": hub.show_otc,
            "heartbeat_ms": round(heartbeat * 1000),
        }
    )
    if picture is None:  # Last-Event-ID still in the ring: what it missed follows
        resume = about[:-1] + f',"seq":{cursor}}}'
        return f"event: resume\r\nretry: 1000\r\ndata: {resume}\r\n\r\n".encode()
    # a fresh start: every location, then the events after it. The picture's bytes
    # are shared by every browser: this one's own fields go in front, among them the
    # newest event now (``caught_up``): the events up to it happened before the browser
    # came, so the page calls nobody for them
    about = about[:-1] + f',"caught_up":{hub.last}}}'
    head = f"id: {cursor}\r\nevent: snapshot\r\nretry: 1000\r\ndata: {about[:-1]},"
    return b"".join((head.encode(), memoryview(picture)[1:], b"\r\n\r\n"))


async def _stream(
    response: EventSourceResponse, hub: Hub, cursor: int, heartbeat: float, send_timeout: float
) -> None:
    """Send every event after ``cursor`` as it comes, and the time when nothing does."""
    clock = hub.watcher.clock
    monotonic = monotonic_of(clock)
    loop = asyncio.get_running_loop()
    while True:
        arrived = hub.signal()
        try:
            last, block = hub.since(cursor)
        except Lagged:  # it fell a whole ring behind: what it holds is stale
            await response.send(_json({"reason": "lagged"}), event="resync")
            return
        if block:
            # the ring holds each event as a whole SSE message: one write for many
            async with asyncio.timeout(send_timeout):
                await response.write(block)
            cursor = last
            continue
        if hub.done:
            error = hub.stopped
            await response.send(_json({"error": str(error) if error else None}), event="stopped")
            return
        # the heartbeat runs on the watcher's clock: the page counts down against it
        beat: asyncio.Future[None] = loop.create_future()
        timer = clock.call_at(monotonic() + heartbeat, functools.partial(_resolve, beat))
        waiter = asyncio.ensure_future(arrived.wait())
        try:
            await asyncio.wait((waiter, beat), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            waiter.cancel()
        if not arrived.is_set():
            await response.send(_json({"server_time": hub.now_ms()}), event="time")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
