"""The dashboard's server side over real HTTP (aiohttp's test server on 127.0.0.1): the
event stream's protocol, replay, the drop rule, access keys, headers and the probe. The
page itself is tested in a real browser in ``test_dashboard_browser.py``."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
from _helpers import Stream
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer

from flipkart_otc import ManualClock, OtcWatcher, PollPolicy
from flipkart_otc.dashboard import create_app
from flipkart_otc.simulator import Simulator

KEY = "correct horse battery staple"
DIGITS = re.compile(r"\b\d{6}\b")


@attrs.define
class Env:
    clock: ManualClock
    sim: Simulator
    watcher: OtcWatcher
    http: TestClient[Any, Any]
    app: web.Application

    async def step(self, seconds: float = 10) -> None:
        """Move time on; every due poll runs and its events reach the hub."""
        self.clock.advance(seconds)
        await self.watcher.wait_idle()


async def _drain(watcher: OtcWatcher) -> None:
    async for _ in watcher:  # the main iterator must be read, or the pollers wait
        pass


@pytest.fixture
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    options: dict[str, Any] = getattr(request, "param", {})
    clock = ManualClock()
    async with Simulator(clock=clock) as sim:
        for loc in ("LOC1", "LOC2"):
            sim.world.open_task(loc)
        async with (
            sim.client() as client,
            OtcWatcher(
                client,
                ["LOC1", "LOC2"],
                interval=10,
                jitter=0,
                clock=clock,
                policy=PollPolicy.fixed(),
                queue_size=1 << 14,
            ) as watcher,
        ):
            drain = asyncio.create_task(_drain(watcher))
            app = create_app(watcher, **options)
            async with TestClient(TestServer(app, host="127.0.0.1")) as http:
                yield Env(clock, sim, watcher, http, app)
            drain.cancel()


async def open_stream(env: Env, **headers: str) -> Stream:
    response = await env.http.get("/events", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return Stream(response)


async def test_a_snapshot_first_then_each_event_with_its_sequence_number(env: Env) -> None:
    await env.watcher.wait_idle()  # LOC1's first poll (t=0): ACTIVE
    stream = await open_stream(env)
    snapshot = await stream.next()
    assert snapshot["event"] == "snapshot"
    assert int(snapshot["id"]) == snapshot["data"]["seq"] == env.watcher.last_seq == 1
    assert [loc["status"] for loc in snapshot["data"]["locations"]] == ["ACTIVE", None]
    assert snapshot["data"]["server_time"] == round(env.clock.time() * 1000)
    assert snapshot["data"]["show_otc"] is False and snapshot["data"]["heartbeat_ms"] == 10_000

    fe = env.sim.world.arrive("LOC1", fe_name="Ram", otc="123456", ttl=300)
    await env.step()  # LOC2's first poll at 5, LOC1's second at 10
    seen = [await stream.next() for _ in range(2)]
    assert [m["event"] for m in seen] == ["message", "message"]  # EventSource's onmessage
    assert [int(m["id"]) for m in seen] == [2, 3]
    assert [m["data"]["seq"] for m in seen] == [2, 3]
    assert seen[0]["data"]["event"] == "location_status_changed"
    arrival = seen[1]["data"]
    assert (arrival["event"], arrival["fe_id"], arrival["otc"]) == ("fe_arrived", fe, "***")


async def test_a_heartbeat_on_the_watchers_clock_carries_the_server_time(env: Env) -> None:
    stream = await open_stream(env)
    await stream.next()  # the snapshot
    await env.watcher.wait_idle()
    await env.step(10)
    beat = await stream.next(skip=("message",))
    assert beat["event"] == "time"
    assert beat["data"]["server_time"] == round(env.clock.time() * 1000)


async def test_last_event_id_replays_exactly_the_events_missed(env: Env) -> None:
    live = await open_stream(env)
    await live.next()
    env.sim.world.arrive("LOC1", fe_name="Ram", ttl=300)
    await env.step()
    first = [await live.next() for _ in range(3)]  # statuses of both, one arrival
    env.sim.world.arrive("LOC2", fe_name="Shyam", ttl=300)
    fe = next(iter(env.sim.world.fes("LOC1")))
    env.sim.world.renew("LOC1", fe, ttl=600)
    await env.step()
    missed = [await live.next() for _ in range(2)]

    resumed = await open_stream(env, **{"Last-Event-ID": first[-1]["id"]})
    resume = await resumed.next()
    assert resume["event"] == "resume" and "id" not in resume
    assert resume["data"]["seq"] == int(first[-1]["id"])
    replayed = [await resumed.next() for _ in range(2)]
    assert [(m["id"], m["data"]) for m in replayed] == [(m["id"], m["data"]) for m in missed]
    # then live, with no gap
    env.sim.world.leave("LOC2", next(iter(env.sim.world.fes("LOC2"))))
    await env.step()
    assert (await resumed.next())["id"] == (await live.next())["id"] == str(env.watcher.last_seq)


@pytest.mark.parametrize("env", [{"replay": 2}], indirect=True)
async def test_a_browser_too_far_behind_or_from_another_run_gets_a_fresh_snapshot(
    env: Env,
) -> None:
    for i in range(3):
        env.sim.world.arrive("LOC1", fe_name=f"FE{i}", ttl=300)
    await env.step()  # 2 statuses + 3 arrivals: more than the replay buffer holds
    last = env.watcher.last_seq
    for last_id in ("1", str(last + 50), "not-a-number", ""):
        stream = await open_stream(env, **{"Last-Event-ID": last_id})
        snapshot = await stream.next()
        assert snapshot["event"] == "snapshot" and snapshot["id"] == str(last), last_id
    # within the buffer: replayed
    stream = await open_stream(env, **{"Last-Event-ID": str(last - 1)})
    assert (await stream.next())["event"] == "resume"
    assert (await stream.next())["id"] == str(last)


@asynccontextmanager
async def small_buffered(app: web.Application) -> AsyncIterator[tuple[str, int]]:
    """Serve ``app`` from a socket whose connections have small send buffers (Linux
    copies them from the listening socket), so that a browser that stops reading blocks
    the server's writes after a few kB, not after the megabytes autotuning allows."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    listener.bind(("127.0.0.1", 0))
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.SockSite(runner, listener).start()
    try:
        yield listener.getsockname()
    finally:
        await runner.cleanup()


async def test_a_stalled_browser_is_dropped_and_told_to_resync_without_slowing_anyone(
    env: Env,
) -> None:
    loop = asyncio.get_running_loop()
    # a ring of 256: the stalled one falls a whole ring behind once the sockets and the
    # transport's buffer (some 150 kB) are full; the reading one never does
    app = create_app(env.watcher, replay=256, send_timeout=30)
    async with (
        small_buffered(app) as (host, port),
        ClientSession() as session,
    ):
        # a browser that stops reading: a raw socket with a tiny receive buffer
        with socket.socket() as stalled:
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.setblocking(False)
            await loop.sock_connect(stalled, (host, port))
            await loop.sock_sendall(stalled, b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received = bytearray()
            while b"event: snapshot" not in received:  # attached; from now on, it stalls
                received += await asyncio.wait_for(loop.sock_recv(stalled, 4096), 10)
            live = Stream(await session.get(f"http://{host}:{port}/events"))
            # the snapshot: the stalled one's, shared (the events after it follow)
            pictured = int((await live.next())["id"])
            # 120 locations of 15 FEs: 1,920 events (about 600 kB), far more than the
            # sockets hold, first polled over one interval
            for i in range(120):
                env.sim.world.open_task(f"BIG{i}")
                for _ in range(15):
                    env.sim.world.arrive(f"BIG{i}", ttl=3000)
                env.watcher.add(f"BIG{i}")
            planned = 2 + 120 * 16  # after LOC1's status: LOC2's, then each BIG's 16
            seqs: list[int] = []

            async def read_live() -> None:  # a browser that keeps reading
                while not seqs or seqs[-1] < planned:
                    seqs.append(int((await live.next())["id"]))

            reader = asyncio.create_task(read_live())
            for _ in range(20):  # half a second at a time: bursts well within the ring
                await env.step(0.5)  # the watcher goes on: wait_idle() returns
            assert env.watcher.last_seq == planned
            await asyncio.wait_for(reader, 30)
            assert seqs == list(range(pictured + 1, planned + 1))  # it got every event
            # once the stalled one reads again: what the sockets held, then "resync"
            while b"event: resync" not in received:
                try:
                    chunk = await asyncio.wait_for(loop.sock_recv(stalled, 65536), 10)
                except TimeoutError:
                    raise AssertionError(
                        bytes(received[:300] + b"..." + received[-300:])
                    ) from None
                assert chunk, bytes(received[-300:])
                received += chunk
    assert b'event: resync\r\ndata: {"reason":"lagged"}' in received
    assert 0 < received.count(b"\r\nid: ") < planned - 1


@pytest.mark.parametrize("show", [False, True])
async def test_otcs_leave_the_server_only_with_show_otc(
    show: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock()
    async with Simulator(clock=clock) as sim:
        sim.world.open_task("LOC1")
        sim.world.arrive("LOC1", fe_name="Ram", otc="987123", ttl=300)
        async with (
            sim.client() as client,
            OtcWatcher(client, ["LOC1"], clock=clock, jitter=0) as watcher,
        ):
            drain = asyncio.create_task(_drain(watcher))
            await watcher.wait_idle()
            app = create_app(watcher, show_otc=show)
            async with TestClient(TestServer(app, host="127.0.0.1")) as http:
                stream = Stream(await http.get("/events"))
                snapshot = await stream.next()
                sim.world.renew("LOC1", next(iter(sim.world.fes("LOC1"))), otc="555444")
                clock.advance(5)
                await watcher.wait_idle()
                renewal = await stream.next()
                page = await (await http.get("/")).text()
                script = await (await http.get("/static/app.js")).text()
            drain.cancel()
    text = bytes(stream.raw).decode()
    assert renewal["data"]["event"] == "otc_renewed"
    assert ("987123" in text, "555444" in text) == (show, show)
    assert snapshot["data"]["locations"][0]["details"][0]["otc"] == ("987123" if show else "***")
    assert not DIGITS.search(page + script)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "987123" not in logged and "555444" not in logged


@pytest.mark.parametrize("env", [{"access_key": KEY}], indirect=True)
async def test_with_an_access_key_nothing_loads_without_the_cookie(env: Env) -> None:
    page = await env.http.get("/")
    assert page.status == 401
    body = await page.text()
    assert 'action="login"' in body and "LOC1" not in body
    assert (await env.http.get("/events")).status == 401
    wrong = await env.http.post("/login", data={"key": "x" * 20}, allow_redirects=False)
    assert wrong.status == 401 and KEY not in await wrong.text()
    assert (await env.http.get("/events")).status == 401

    right = await env.http.post("/login", data={"key": KEY}, allow_redirects=False)
    assert right.status == 303
    cookie = right.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and KEY not in cookie
    assert (await env.http.get("/")).status == 200
    stream = await open_stream(env)
    assert (await stream.next())["event"] == "snapshot"


class _Source:
    async def fetch_body(self, location_id: str) -> bytes:  # pragma: no cover - not polled
        return b'{"otcDetails": {}}'


def test_a_short_access_key_is_refused_without_echoing_it() -> None:
    watcher = OtcWatcher(_Source(), [])
    with pytest.raises(ValueError, match="shorter than 16") as info:
        create_app(watcher, access_key="hunter2")
    assert "hunter2" not in str(info.value)
    with pytest.raises(TypeError, match="watcher must be an OtcWatcher"):
        create_app(object())  # type: ignore[arg-type]


async def test_the_page_is_the_packages_own_files_under_a_strict_policy(env: Env) -> None:
    page = await env.http.get("/")
    assert page.status == 200
    html = await page.text()
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "default-src 'none'" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script
    assert not re.search(r"\bstyle=", html)  # no inline style
    assert "http://" not in html and "https://" not in html  # no CDN
    for asset, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        response = await env.http.get(f"/static/{asset}")
        assert response.status == 200 and response.content_type == kind
    assert (await env.http.get("/static/../__init__.py")).status == 404
    assert (await env.http.get("/static/login.html")).status == 404


async def test_healthz_says_running_statuses_and_the_last_poll_age(env: Env) -> None:
    await env.watcher.wait_idle()
    await env.step(5)  # LOC2's first poll
    await env.step(2)
    health = await (await env.http.get("/healthz")).json()
    assert health["running"] is True
    assert health["locations"] == {"ACTIVE": 2}
    assert health["last_success_age_s"] == 2.0
    assert health["last_success"].endswith("Z")
    await env.watcher.aclose()
    response = await env.http.get("/healthz")
    assert response.status == 503 and (await response.json())["running"] is False


async def test_the_stream_says_when_the_watcher_stops(env: Env) -> None:
    stream = await open_stream(env)
    await stream.next()  # the snapshot
    await env.watcher.aclose()
    end = await stream.until_end()
    assert end[-1]["event"] == "stopped"
    assert end[-1]["data"] == {"error": None}
    assert (await env.http.get("/events")).status == 503


async def test_mounted_as_a_sub_app_under_a_prefix(env: Env) -> None:
    outer = web.Application()
    outer.add_subapp("/otc/", create_app(env.watcher))
    async with TestClient(TestServer(outer, host="127.0.0.1")) as http:
        assert (await http.get("/otc/")).status == 200
        assert (await http.get("/otc/static/app.js")).status == 200
        stream = Stream(await http.get("/otc/events"))
        assert (await stream.next())["event"] == "snapshot"


# -- issue 25: hostile pages and requests -------------------------------------------------


@pytest.mark.parametrize(
    ("host", "answered"),
    [
        ("evil.example", False),
        ("evil.example:8080", False),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example", False),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
        ("[::ffff:10.0.0.1]:80", False),
        ("[::1", False),  # unbalanced: not an address
        ("localhost", True),
        ("LOCALHOST:8080", True),
        ("desk.localhost", True),
        ("127.0.0.2", True),
        ("[::1]:8080", True),
        ("[::ffff:127.0.0.1]", True),
        ("127.0.0.1:1", True),
    ],
)
async def test_a_keyless_dashboard_answers_only_a_loopback_host_on_every_path(
    env: Env, host: str, answered: bool
) -> None:
    """DNS rebinding: a page of another name that resolves to 127.0.0.1 reads nothing."""
    env.sim.world.arrive("LOC1", fe_name="Ram", ttl=300)
    await env.step()
    for method, path in [("GET", "/"), ("GET", "/events"), ("GET", "/healthz"),
                         ("GET", "/static/app.js"), ("POST", "/login"), ("GET", "/nope"),
                         ("GET", "/metrics"), ("HEAD", "/healthz")]:  # fmt: skip
        async with env.http.request(
            method, path, headers={"Host": host}, allow_redirects=False
        ) as response:
            if answered:
                assert response.status != 421, (method, path)
                continue
            body = await response.read()
            assert response.status == 421, (method, path)
            assert b"LOC1" not in body and b"Ram" not in body and b"running" not in body
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


@pytest.mark.parametrize(
    ("env", "events"),
    [({"allowed_hosts": ["Desk.Example"]}, 200), ({"access_key": KEY}, 401)],
    indirect=["env"],
)
async def test_a_named_host_is_answered_when_allowed_or_when_a_key_guards_the_data(
    env: Env, events: int
) -> None:
    response = await env.http.get("/healthz", headers={"Host": "desk.example:8080"})
    assert response.status == 200
    stream = await env.http.get("/events", headers={"Host": "desk.example"})
    assert stream.status == events
    stream.close()


@pytest.mark.parametrize("env", [{"access_key": KEY}], indirect=True)
async def test_wrong_keys_are_throttled_per_client_and_the_key_works_once_it_passes(
    env: Env,
) -> None:
    statuses: list[int] = []
    waits: list[int] = []

    async def guess(i: int) -> None:  # many at once, from 8 connections
        for j in range(25):
            response = await env.http.post(
                "/login", data={"key": f"wrong key number {i}-{j}"}, allow_redirects=False
            )
            statuses.append(response.status)
            if response.status == 429:
                waits.append(int(response.headers["Retry-After"]))
                assert "Try again in" in await response.text()
            response.close()

    await asyncio.gather(*(guess(i) for i in range(8)))
    assert len(statuses) == 200
    assert statuses.count(401) == 5 and statuses.count(429) == 195  # 5 tried, then none
    # in the storm the right key is refused unchecked too: no guess ever gets through
    during = await env.http.post("/login", data={"key": KEY}, allow_redirects=False)
    assert during.status == 429 and "Set-Cookie" not in during.headers
    assert 1 <= int(during.headers["Retry-After"]) <= 12
    env.clock.advance(int(during.headers["Retry-After"]))  # the window passes
    after = await env.http.post("/login", data={"key": KEY}, allow_redirects=False)
    assert after.status == 303 and "Set-Cookie" in after.headers
    # a right key gives its token back: the next wrong one is still checked, not refused
    again = await env.http.post("/login", data={"key": "x" * 20}, allow_redirects=False)
    assert again.status == 401


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("aaaaaaaaaaaaaaaa", "1 different characters"),
        ("abababababababababab", "2 different characters"),
        ("0123012301230123", "4 different characters"),
        ("abcdefghabcdefgh", "a shorter part repeated"),
        ("abcdefgh", "shorter than 16 characters"),
    ],
)
def test_a_weak_access_key_is_refused_saying_why_never_showing_it(key: str, said: str) -> None:
    watcher = OtcWatcher(_Source(), [])
    with pytest.raises(ValueError, match=said) as info:
        create_app(watcher, access_key=key)
    assert key not in str(info.value)


@pytest.mark.parametrize(
    "last_id", ["\u00b2", "\u0661\u0662", "1e3", "-1", "+1", "1_0", "1 2", "0x1", "9" * 19]
)
async def test_a_last_event_id_that_is_not_ascii_digits_gets_a_fresh_snapshot(
    env: Env, last_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    await env.watcher.wait_idle()
    stream = await open_stream(env, **{"Last-Event-ID": last_id})
    assert (await stream.next())["event"] == "snapshot"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


class _CountingFeed:
    """A watcher seen through a counter of the pictures asked of it."""

    def __init__(self, watcher: OtcWatcher) -> None:
        self.watcher = watcher
        self.pictures = 0
        self.broken = False

    @property
    def clock(self) -> Any:
        return self.watcher.clock

    def now(self) -> float:
        return self.watcher.now()

    def picture(self) -> Any:
        if self.broken:
            raise ValueError("a broken feed")
        self.pictures += 1
        return self.watcher.picture()

    def subscribe(self, maxsize: int = 1024) -> Any:
        return self.watcher.subscribe(maxsize)

    def health(self) -> Any:
        return self.watcher.health()


async def test_browsers_that_connect_at_once_share_one_picture(env: Env) -> None:
    """A reconnect storm builds a picture once, not once per browser; a browser that
    comes a few events later gets that picture and the events after it."""
    await env.watcher.wait_idle()
    feed = _CountingFeed(env.watcher)
    async with TestClient(TestServer(create_app(feed), host="127.0.0.1")) as http:
        streams = [
            Stream(r) for r in await asyncio.gather(*(http.get("/events") for _ in range(30)))
        ]
        snapshots = [await s.next() for s in streams]
        assert feed.pictures == 1
        assert len({json.dumps(s["data"], sort_keys=True) for s in snapshots}) == 1
        env.sim.world.arrive("LOC1", fe_name="Ram", ttl=300)
        await env.step()
        late = Stream(await http.get("/events"))
        pictured = await late.next()
        assert feed.pictures == 1 and pictured["id"] == snapshots[0]["id"]
        missed = [await late.next() for _ in range(env.watcher.last_seq - int(pictured["id"]))]
        live = [await streams[0].next() for _ in missed]
        assert [m["data"] for m in missed] == [m["data"] for m in live]
        assert missed[-1]["data"]["event"] == "fe_arrived"


async def test_a_request_that_fails_gets_500_and_one_line_never_a_traceback(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    feed = _CountingFeed(env.watcher)
    feed.broken = True
    async with TestClient(TestServer(create_app(feed), host="127.0.0.1")) as http:
        response = await http.get("/events")
        assert response.status == 500
        assert await response.text() == "the dashboard could not answer"
    shown = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(shown) == 1 and shown[0].exc_info is None
    assert "ValueError" in shown[0].getMessage()


@pytest.mark.parametrize("env", [{"access_key": KEY}], indirect=True)
@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded; charset=klingon",
        "multipart/form-data",
        "multipart/form-data; boundary=zz",
    ],
)
async def test_a_login_body_that_is_not_a_form_gets_400(
    env: Env, content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = await env.http.post(
        "/login", data=b"key=abc", headers={"Content-Type": content_type}
    )
    assert response.status == 400 and "Enter the key" in await response.text()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_browsers_that_stall_on_their_picture_never_hold_up_the_next(env: Env) -> None:
    """Browsers take turns to start; one that does not read its (large) picture waits
    for it outside its turn, so six of them do not stop a seventh from starting."""
    loop = asyncio.get_running_loop()
    for i in range(40):  # a picture of some 150 kB: far more than the sockets hold
        env.sim.world.open_task(f"BIG{i}")
        for _ in range(15):
            env.sim.world.arrive(f"BIG{i}", ttl=3000)
        env.watcher.add(f"BIG{i}")
    await env.step()
    app = create_app(env.watcher, send_timeout=30)
    stalled: list[socket.socket] = []
    async with small_buffered(app) as (host, port), ClientSession() as session:
        try:
            for _ in range(6):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.setblocking(False)
                stalled.append(sock)
                await loop.sock_connect(sock, (host, port))
                await loop.sock_sendall(sock, b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                await asyncio.wait_for(loop.sock_recv(sock, 1), 10)  # it is being sent
            live = Stream(await session.get(f"http://{host}:{port}/events"))
            snapshot = await live.next()
            assert snapshot["event"] == "snapshot"
            assert len(snapshot["data"]["locations"]) == 42
        finally:
            for sock in stalled:
                sock.close()
