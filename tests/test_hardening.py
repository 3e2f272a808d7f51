"""What a new user and an adversarial server found (issue 13), each over real HTTP on
127.0.0.1: a misbehaving aiohttp app, or the simulator."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import aiohttp
import pytest
from _helpers import (
    BASIC,
    CANARY_OTC,
    CANARY_SECRET,
    CANARY_TOKEN,
    Handler,
    answer,
    assert_no_secret,
    entry,
    serve,
)
from aiohttp import web

from flipkart_otc import (
    ApiError,
    AuthenticationError,
    ClientCredentials,
    FeArrived,
    LocationStatus,
    ManualClock,
    OtcClient,
    OtcExpired,
    OtcWatcher,
    PollPolicy,
    ResponseFormatError,
    RetryPolicy,
    StaticToken,
    TaskNotFoundError,
)
from flipkart_otc.simulator import Fault, FaultKind, Simulator

FAST = RetryPolicy(max_tries=2, base_delay=0)
CHROMIUM = Path("/usr/bin/chromium")
HAS_CHROMIUM = CHROMIUM.exists()


# -- 1, 2: secrets in errors -------------------------------------------------------


def _token_answer(body: bytes, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/json")

    return handler


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, f'{{"access_token": "{CANARY_TOKEN}", "expires_in": 36'.encode()),  # cut short
        (200, f'{{"access_token": "{CANARY_TOKEN}'.encode()),  # cut inside the token
        (200, f"access_token={CANARY_TOKEN}&expires_in=3600".encode()),  # form-encoded
        (200, f'{{"access_token": "{CANARY_TOKEN}", "expires_in": "soon"}}'.encode()),
        (200, f'{{"access_token": "{CANARY_TOKEN}\\n", "expires_in": 60}}'.encode()),
        (401, f'{{"error": "unauthorized", "error_description": "Basic {BASIC}"}}'.encode()),
        (400, f'{{"error": "{CANARY_SECRET}", "error_description": "x"}}'.encode()),
        (502, f"<html>app:{CANARY_SECRET} Basic {BASIC}</html>".encode()),
    ],
)
async def test_token_endpoint_errors_never_carry_a_secret(
    status: int, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    routes = {("GET", "/token"): _token_answer(body, status)}
    async with serve(routes) as origin:
        creds = ClientCredentials("app", CANARY_SECRET, token_url=origin + "/token")
        async with OtcClient(creds, base_url=origin + "/sellers", retry=FAST) as client:
            with pytest.raises((ResponseFormatError, ApiError)) as info:
                await client.start_otc_details("LOC1")
    error = info.value
    assert "Start OTC" not in str(error)  # the message names the endpoint that failed
    if isinstance(error, ResponseFormatError):
        assert "token endpoint" in str(error)
    assert_no_secret(error, [r.getMessage() for r in caplog.records], repr(creds))


async def test_api_error_messages_echoing_the_authorization_header_are_scrubbed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    async def echo(request: web.Request) -> web.Response:
        header = request.headers["Authorization"]
        body = {"errorCode": f"BAD {header}", "message": f"refused {header} " + "x" * 290}
        return web.json_response(body, status=400)

    async with (
        serve({("POST", "/sellers/v3/returns/otc/start/details"): echo}) as origin,
        OtcClient(CANARY_TOKEN, base_url=origin + "/sellers", retry=FAST) as client,
    ):
        with pytest.raises(ApiError) as info:
            await client.start_otc_details("LOC1")
        async with OtcWatcher(client, ["LOC1"], interval=60) as watcher:
            status = await anext(watcher)
    assert "refused Bearer ***" in info.value.message
    assert_no_secret(info.value, status, [r.getMessage() for r in caplog.records])


async def test_a_truncated_start_otc_answer_keeps_no_otc(caplog: pytest.LogCaptureFixture) -> None:
    body = answer(fe1=entry(otc=CANARY_OTC))
    for cut in range(len(body) // 2, len(body) - 1, 7):

        async def truncated(request: web.Request, cut: int = cut) -> web.Response:
            return web.Response(body=body[:cut], content_type="application/json")

        async with (
            serve({("POST", "/sellers/v3/returns/otc/start/details"): truncated}) as o,
            OtcClient(CANARY_TOKEN, base_url=o + "/sellers", retry=FAST) as client,
        ):
            with pytest.raises(ResponseFormatError) as info:
                await client.start_otc_details("LOC1")
        assert "malformed Start OTC answer" in str(info.value)
        assert_no_secret(info.value)


# -- 8, 13: what callers hand in -----------------------------------------------------


async def test_a_token_read_from_a_file_with_its_newline_works() -> None:
    async with Simulator() as sim:
        sim.world.open_task("LOC1")
        assert StaticToken(sim.token + "\n").value == sim.token
        async with sim.client(auth=f" {sim.token}\r\n") as client:
            assert len(await client.start_otc_details("LOC1")) == 0


@pytest.mark.parametrize("token", [f"{CANARY_TOKEN}\nX-Evil: 1", f"a\x00{CANARY_TOKEN}", "\t "])
def test_tokens_with_control_characters_are_refused_without_echo(token: str) -> None:
    with pytest.raises(ValueError, match="token must not") as info:
        StaticToken(token)
    assert_no_secret(info.value)
    with pytest.raises(ValueError, match="app_secret must not"):
        ClientCredentials("app", f"{CANARY_SECRET}\x1b")


async def test_location_ids_are_stripped_and_a_huge_one_gets_a_short_message() -> None:
    async with Simulator() as sim:
        sim.world.open_task("LOC1")
        sim.world.arrive("LOC1", fe_name="Ram")
        async with sim.client() as client:
            snap = await client.start_otc_details(" LOC1\n")
            assert snap.location_id == "LOC1" and len(snap) == 1
            with pytest.raises(ValueError, match="at most 256") as info:
                await client.start_otc_details("L" * 1_000_000)
            assert len(str(info.value)) < 200
            with pytest.raises(ValueError, match="control"):
                await client.start_otc_details("LOC\x1b1")
            watcher = OtcWatcher(client, ["LOC1", " LOC1 ", "LOC1\n"])
            assert watcher.locations == ["LOC1"]
    assert sim.requests["LOC1"] == 1 and sim.requests[" LOC1\n"] == 0


# -- 9: one ClientCredentials across event loops ------------------------------------


def test_client_credentials_serve_a_second_event_loop() -> None:
    creds: list[ClientCredentials] = []

    async def once(port: int) -> int:
        async with Simulator(app_secret="loop-secret", port=port) as sim:
            sim.world.open_task("LOC1")
            if not creds:
                creds.append(ClientCredentials(sim.app_id, "loop-secret", token_url=sim.token_url))
            async with sim.client(auth=creds[0]) as client:
                sim.expire_tokens()  # every request 401s and waits on the one refresh
                await asyncio.gather(*(client.start_otc_details("LOC1") for _ in range(5)))
            return sim.port

    port = asyncio.run(once(0))
    asyncio.run(once(port))  # the same object, a new loop: its lock must not be the old one's
    assert creds[0].fetches >= 2


# -- 11: a borrowed session's settings, redirects -------------------------------------


async def test_a_borrowed_raise_for_status_session_still_gets_typed_errors() -> None:
    async with Simulator() as sim:
        async with aiohttp.ClientSession(raise_for_status=True) as session:
            async with sim.client(session=session) as client:
                with pytest.raises(TaskNotFoundError):
                    await client.start_otc_details("NOPE")
            async with sim.client(session=session, auth="revoked-token") as client:
                with pytest.raises(AuthenticationError):
                    await client.start_otc_details("NOPE")
        assert sim.requests["NOPE"] == 2  # neither was retried


async def test_a_redirect_is_not_followed() -> None:
    gets: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(location="/elsewhere")

    async def elsewhere(request: web.Request) -> web.Response:
        gets.append(request.headers.get("Authorization", ""))
        return web.json_response({"otcDetails": {}})

    routes = {
        ("POST", "/sellers/v3/returns/otc/start/details"): moved,
        ("*", "/elsewhere"): elsewhere,
    }
    async with (
        serve(routes) as origin,
        OtcClient(CANARY_TOKEN, base_url=origin + "/sellers", retry=FAST) as client,
    ):
        with pytest.raises(ApiError, match="redirect to /elsewhere") as info:
            await client.start_otc_details("LOC1")
    assert info.value.status == 301 and gets == []


# -- 16, 17: token answers and 200 errors ----------------------------------------------


@pytest.mark.parametrize("expires", [None, '"3600"', "3600.5"])
async def test_expires_in_may_be_missing_or_a_numeric_string(expires: str | None) -> None:
    lifetime = f', "expires_in": {expires}' if expires else ""
    async with Simulator() as sim:
        sim.world.open_task("LOC1")

        async def token(request: web.Request) -> web.Response:
            return web.Response(
                text=f'{{"access_token": "{sim.token}"{lifetime}}}',
                content_type="application/json",
            )

        async with serve({("GET", "/token"): token}) as origin:
            creds = ClientCredentials("app", "secret", token_url=origin + "/token")
            async with sim.client(auth=creds) as client:
                assert len(await client.start_otc_details("LOC1")) == 0
    assert creds.fetches == 1


async def test_a_200_carrying_unauthorized_error_refreshes_the_token_once() -> None:
    async with Simulator() as sim:
        sim.world.open_task("LOC1")
        tokens: list[str] = []

        async def api(request: web.Request) -> web.Response:
            sent = request.headers["Authorization"].removeprefix("Bearer ")
            tokens.append(sent)
            if len(tokens) == 1:
                return web.json_response({"errorCode": "UNAUTHORIZED_ERROR", "message": "no"})
            return web.json_response({"otcDetails": {}})

        async with serve({("POST", "/sellers/v3/returns/otc/start/details"): api}) as origin:
            creds = ClientCredentials(sim.app_id, sim.app_secret, token_url=sim.token_url)
            async with OtcClient(creds, base_url=origin + "/sellers", retry=FAST) as client:
                assert len(await client.start_otc_details("LOC1")) == 0
        assert sim.tokens_issued == 2 and len(tokens) == 2 and tokens[0] != tokens[1]


# -- 18: a wrong base URL ---------------------------------------------------------------


async def test_a_base_url_without_sellers_names_the_url_tried() -> None:
    async with Simulator() as sim:
        origin = sim.origin
        async with OtcClient(sim.token, base_url=origin, retry=FAST) as client:
            with pytest.raises(ApiError) as info:
                await client.start_otc_details("LOC1")
    assert info.value.status == 404
    assert f"{origin}/v3/returns/otc/start/details" in str(info.value)
    with pytest.raises(ValueError, match="query string"):
        OtcClient("t", base_url="https://api.flipkart.net/sellers?token=abc")
    with pytest.raises(ValueError, match="credentials") as refused:
        OtcClient("t", base_url=f"https://u:{CANARY_SECRET}@api.flipkart.net/sellers")
    assert_no_secret(refused.value)


# -- 6: the connection pool fits the concurrency, waits are not timed ------------------


async def test_more_pollers_than_aiohttps_default_pool_all_succeed_within_the_timeout() -> None:
    count, delay = 250, 0.4  # three rounds of aiohttp's default 100 connections: 1.2 s

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)  # the server is slow; the test waits on events
        return web.json_response({"otcDetails": {}})

    retry = RetryPolicy(max_tries=1)
    ids = [f"LOC{i}" for i in range(count)]
    async with serve({("POST", "/sellers/v3/returns/otc/start/details"): slow}) as origin:
        async with (
            OtcClient("t", base_url=origin + "/sellers", timeout=1.0, retry=retry) as c,
            # a tiny interval: every first poll is due at once (they stagger over one)
            OtcWatcher(c, ids, interval=0.001, max_concurrency=count) as watcher,
        ):
            statuses = [await anext(watcher) for _ in ids]
        # the client alone, past its 100 connections: waiting for a turn is not timed
        async with OtcClient("t", base_url=origin + "/sellers", timeout=1.0, retry=retry) as c:
            snaps = await asyncio.gather(*(c.start_otc_details(i) for i in ids))
    assert {getattr(s, "status", None) for s in statuses} == {LocationStatus.ACTIVE}
    assert len(snaps) == count


# -- 5: pollers are started for work, not for slots ------------------------------------


async def test_a_huge_max_concurrency_starts_no_more_pollers_than_due_locations() -> None:
    async with Simulator() as sim:
        sim.world.open_task("LOC1")
        async with (
            sim.client() as client,
            OtcWatcher(client, ["LOC1", "LOC2"], max_concurrency=10**6) as watcher,
        ):
            await anext(watcher)
            tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("otc-watcher")]
            assert len(tasks) <= 3  # the scheduler and one poller per location at most


# -- 7: a long Retry-After holds every poll ----------------------------------------------


async def test_a_429_beyond_the_in_call_wait_holds_every_location_until_retry_after() -> None:
    clock = ManualClock()
    async with Simulator(clock=clock) as sim:
        for loc in ("LOC1", "LOC2"):
            sim.world.open_task(loc)
        sim.faults.script(Fault(FaultKind.RATE_LIMITED, retry_after=120), location="LOC1")
        async with sim.client(retry=FAST) as client:
            watcher = OtcWatcher(client, ["LOC1", "LOC2"], interval=1, jitter=0, clock=clock)
            async with watcher:
                await watcher.wait_idle()  # LOC1 at t=0: 429 for 120 s
                for _ in range(60):  # a minute of one-second polls
                    clock.advance(1)
                    await watcher.wait_idle()
                    while watcher.queued:
                        await anext(watcher)
                assert sim.requests["LOC1"] == 1
                assert sim.requests["LOC2"] == 0  # its first poll (t=0.5) came after the 429
                assert watcher.status("LOC1") is LocationStatus.FAILING
                clock.advance(61)
                await watcher.wait_idle()
                assert sim.requests["LOC1"] == 2 and sim.requests["LOC2"] == 1


# -- 4: a stepped wall clock ---------------------------------------------------------------


@pytest.mark.parametrize("step", [-3600.0, 3600.0])
async def test_a_stepped_wall_clock_neither_stops_polls_nor_fires_expiries_early(
    step: float,
) -> None:
    clock = ManualClock()
    async with Simulator(clock=clock) as sim:
        sim.world.open_task("LOC1")
        sim.world.arrive("LOC1", fe_id="fe1", ttl=300)
        async with sim.client() as client:
            watcher = OtcWatcher(
                client, ["LOC1"], interval=10, jitter=0, clock=clock, policy=PollPolicy.fixed()
            )
            async with watcher:
                await watcher.wait_idle()
                first = [await anext(watcher) for _ in range(watcher.queued)]
                assert any(isinstance(e, FeArrived) for e in first)
                for _ in range(100):
                    clock.advance(1)
                    await watcher.wait_idle()
                clock.step_wall(step)
                seen: list[object] = []
                for _ in range(190):  # t = 101 .. 290: the code is still valid
                    clock.advance(1)
                    await watcher.wait_idle()
                    seen += [await anext(watcher) for _ in range(watcher.queued)]
                assert seen == []
                assert sim.requests["LOC1"] == 30  # t = 0, 10, ... 290: one every 10 s
                clock.advance(10)  # t = 300: the code expires, by the monotonic clock
                await watcher.wait_idle()
                (expired,) = [await anext(watcher) for _ in range(watcher.queued)]
                assert isinstance(expired, OtcExpired)


# -- more of the same classes: an endless answer, an unencodable name ----------------------


async def test_an_endless_answer_is_cut_off_not_held_whole() -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"otcDetails": {"fe1": {"feName": "')
        chunk = b"x" * 65536
        for _ in range(256):  # 16 MiB, no Content-Length
            await response.write(chunk)
        return response

    async with (
        serve({("POST", "/sellers/v3/returns/otc/start/details"): endless}) as origin,
        OtcClient(CANARY_TOKEN, base_url=origin + "/sellers", retry=FAST) as client,
    ):
        with pytest.raises(ResponseFormatError, match="longer than") as info:
            await client.start_otc_details("LOC1")
    assert len(info.value.body) <= 512


# -- issue 25, 1: DNS rebinding, in a real browser -------------------------------------


async def test_a_page_of_another_name_resolving_to_the_dashboard_reads_nothing() -> None:
    """Chromium maps evil.example to 127.0.0.1, as a rebinding DNS server would once the
    attacker's page is loaded: the page's fetches go to the keyless dashboard, same
    origin, with ``Host: evil.example:PORT``."""
    if not HAS_CHROMIUM and not os.environ.get("FLIPKART_OTC_REQUIRE_BROWSER"):
        pytest.skip(f"no {CHROMIUM} (apt-get install chromium)")
    from playwright.async_api import async_playwright

    from flipkart_otc.dashboard import create_app

    clock = ManualClock()
    async with Simulator(clock=clock) as sim:
        sim.world.open_task("LOC1")
        sim.world.arrive("LOC1", fe_name="Ram", otc="987123", ttl=300)
        async with (
            sim.client() as client,
            OtcWatcher(client, ["LOC1"], clock=clock, jitter=0) as watcher,
        ):
            await watcher.wait_idle()
            runner = web.AppRunner(create_app(watcher, show_otc=True), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            port = runner.addresses[0][1]
            try:
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(
                        executable_path=str(CHROMIUM),
                        args=[
                            "--no-sandbox",
                            "--disable-gpu",
                            "--host-resolver-rules=MAP evil.example 127.0.0.1",
                        ],
                    )
                    page = await browser.new_page()
                    # the attacker's page, once its name points here: same origin as /events
                    direct = await page.goto(f"http://evil.example:{port}/")
                    shown = await page.content()
                    got = await page.evaluate(
                        """async () => {
                            const out = {};
                            for (const path of ["/events", "/healthz", "/"]) {
                                const c = new AbortController();
                                const r = await fetch(path, {signal: c.signal});
                                const reader = r.body.getReader();
                                const {value} = await reader.read();
                                c.abort();
                                const text = new TextDecoder().decode(value);
                                out[path] = [r.status, text];
                            }
                            return out;
                        }"""
                    )
                    # the same browser at the dashboard's own address sees it
                    own = await page.goto(f"http://127.0.0.1:{port}/healthz")
                    assert own is not None and own.status == 200
                    await browser.close()
            finally:
                await runner.cleanup()
    assert direct is not None and "Ram" not in shown
    assert got["/events"][0] == 421, got["/events"][1][:200]  # before: 200, the picture
    assert direct.status == 421
    for path, (status, body) in got.items():
        assert status == 421, path
        assert "987123" not in body and "Ram" not in body and "LOC1" not in body


# -- issue 25, 2 and 13: the CLI's dashboard ---------------------------------------------


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("aaaaaaaaaaaaaaaa", "1 different characters"),
        ("0101010101010101", "2 different characters"),
        ("Abcdefgh12Abcdefgh12", "a shorter part repeated"),
    ],
)
async def test_a_weak_key_for_another_address_exits_2_saying_why(key: str, said: str) -> None:
    from _helpers import env, run

    code, out, err = await run(
        "dashboard", "LOC1", "--token", "t", "--host", "0.0.0.0", "--access-key-env", "KEY",
        environ=env(KEY=key),
    )  # fmt: skip
    assert (code, out) == (2, "") and said in err and key not in err and "Traceback" not in err


async def test_no_request_makes_the_cli_print_a_traceback() -> None:
    from _helpers import DEADLINE, spawn

    demo = await spawn("demo", "--port", "0", "--duration", "60", "--locations", "2")
    assert demo.stdout is not None
    await asyncio.wait_for(demo.stdout.readline(), DEADLINE)
    url = (await asyncio.wait_for(demo.stdout.readline(), DEADLINE)).decode().split()[1]
    async with aiohttp.ClientSession() as http:
        for last_id in ("\u00b2", "\u0661", "1" * 40, "-5"):
            async with http.get(url + "events", headers={"Last-Event-ID": last_id}) as r:
                assert r.status == 200 and (await r.content.readline()).startswith(b"id: ")
        async with http.get(url + "events", headers={"Host": "evil.example"}) as r:
            assert r.status == 421
        async with http.post(url + "login", data=b"\xff\xfe", headers={
            "Content-Type": "multipart/form-data; boundary=x"}) as r:  # fmt: skip
            assert r.status < 500
        async with http.get(url + "static/%2e%2e%2f__init__.py") as r:
            assert r.status == 404
    demo.terminate()
    _, err = await asyncio.wait_for(demo.communicate(), DEADLINE)
    assert "Traceback" not in err.decode() and "Error" not in err.decode(), err.decode()
