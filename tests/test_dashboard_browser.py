"""The dashboard page in a real headless Chromium (Debian's, driven by Playwright), fed by
a watcher of the simulator. Time moves by hand on both sides: the simulator's and the
watcher's ManualClock, and Playwright's clock for the page's countdowns.

Without /usr/bin/chromium these tests are skipped, unless FLIPKART_OTC_REQUIRE_BROWSER
is set (CI sets it, and installs Debian's chromium).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from _browser import KEY, STEP, artifacts, audit, browser, desk, drain, open_page, serve
from playwright.async_api import Browser, expect

from flipkart_otc import OtcWatcher
from flipkart_otc.dashboard import create_app
from flipkart_otc.simulator import ChangeKind, Fault, FaultKind

__all__ = ["browser"]  # the fixture


async def test_the_desk_sees_an_fe_come_renew_expire_and_go(
    browser: Browser, tmp_path: Path
) -> None:
    async with desk(browser, show_otc=True) as d:
        page = d.page
        await expect(page.locator("#connection")).to_have_text("Live")
        await expect(d.card("LOC1")).to_contain_text("No FE at the door")
        await expect(d.card("LOC3")).to_contain_text("No return task today")

        # an FE arrives: its card, its code in large digits, the countdown
        fe = d.sim.world.arrive(
            "LOC1", fe_name="Ram", otc="123456", ttl=300, logistic_partner="eKart", lob="LARGE"
        )
        await d.step()
        fe_card = d.card("LOC1").locator(f'li.fe[data-fe="{fe}"]')
        await expect(fe_card.locator(".fe-name")).to_contain_text("Ram")
        await expect(fe_card.locator(".fe-meta")).to_have_text("eKart · LARGE")
        await expect(fe_card.locator(".otc")).to_have_text("123456")
        await expect(fe_card.locator(".countdown")).to_have_text("expires in 4:55")
        await expect(page.locator("#log li").first).to_contain_text("LOC1 Ram (eKart) arrived")
        # FEs at the door come before locations without one
        await expect(page.locator("li.card").first).to_have_attribute("data-location", "LOC1")

        # its code is renewed: the new code, the countdown reset
        d.sim.world.renew("LOC1", fe, otc="654321", ttl=300)
        await d.step()
        await expect(fe_card.locator(".otc")).to_have_text("654321")
        await expect(fe_card.locator(".countdown")).to_have_text("expires in 4:55")

        # it counts down against the server's time, turns urgent under a minute ...
        await d.step(240)
        await expect(fe_card.locator(".countdown")).to_have_text("URGENT · 0:55 left")
        await expect(fe_card).to_have_class(re.compile(r"\burgent\b"))
        await page.set_viewport_size({"width": 1366, "height": 768})
        await page.screenshot(path=str(artifacts(tmp_path) / "dashboard.png"))
        # ... and says when it expired
        await d.step(60)
        await expect(fe_card.locator(".countdown")).to_have_text("EXPIRED · new code needed")
        await expect(page.locator("#log li").first).to_contain_text(
            "Ram (eKart) has an expired code"
        )

        # the FE leaves: its card goes
        d.sim.world.leave("LOC1", fe)
        await d.step()
        await expect(fe_card).to_have_count(0)
        await expect(d.card("LOC1")).to_contain_text("No FE at the door")

        # the task closes: the status changes
        d.sim.world.close_task("LOC1")
        await d.step()
        await expect(d.card("LOC1").locator(".status")).to_have_text("■ Return task closed")
        await expect(page.locator("#connection")).to_have_text("Live")


async def test_the_desk_follows_an_fe_through_its_visit(browser: Browser, tmp_path: Path) -> None:
    async with desk(browser, visit=True) as d:
        page, world = d.page, d.sim.world
        await expect(page.locator("#connection")).to_have_text("Live")
        fe = world.arrive("LOC1", fe_name="Ram", ttl=300, logistic_partner="eKart")
        await d.step()
        world.start_scanning("LOC1", fe)  # its code was read out
        await d.step()
        card = d.card("LOC1")
        visit = card.locator(f'li.visit[data-fe="{fe}"]')
        await expect(card.locator("li.fe")).to_have_count(0)  # off the Start OTC page
        await expect(visit).to_have_attribute("data-stage", "scanning")
        await expect(visit.locator(".fe-name")).to_contain_text("Ram")
        await expect(visit.locator(".stage")).to_have_text("Scanning")
        await expect(visit.locator(".progress")).to_have_text("0 scanned")
        await audit(page)  # a visit, scanning
        await expect(page.locator("#log li").first).to_contain_text("Ram (eKart) started scanning")

        for accepted in (True, True, True, False):
            world.scan("LOC1", fe, accepted=accepted)
        await d.step(30)
        await expect(visit.locator(".progress")).to_have_text("4 scanned (1 rejected)")
        await expect(page.locator("#log li").first).to_contain_text("Ram (eKart) scanned")

        world.to_end_otc("LOC1", fe)
        await d.step(30)
        await expect(visit).to_have_attribute("data-stage", "end_otc")
        await expect(visit.locator(".stage")).to_have_text("End OTC ready")
        await expect(visit.locator(".otc")).to_have_text("••••••")  # no show_otc: masked
        (code,) = [c.otc for c in world.history if c.kind is ChangeKind.END_OTC_ISSUED]
        assert code is not None and code not in await page.content()
        # an End OTC to read out comes first
        await expect(page.locator("li.card").first).to_have_attribute("data-location", "LOC1")
        await page.set_viewport_size({"width": 1366, "height": 768})
        await page.screenshot(path=str(artifacts(tmp_path) / "dashboard-visit.png"))

        # a page opened now draws the same from the picture
        fresh = await open_page(browser, d.clock, d.url)
        again = fresh.locator(f'li.card[data-location="LOC1"] li.visit[data-fe="{fe}"]')
        await expect(again).to_have_attribute("data-stage", "end_otc")
        await expect(again.locator(".progress")).to_have_text("4 scanned (1 rejected)")
        await expect(again.locator(".fe-meta")).to_have_text("eKart")
        await fresh.close()

        world.complete("LOC1", fe)
        await d.step(30)
        await expect(visit).to_have_count(0)
        await expect(card).to_contain_text("No FE at the door")
        await expect(page.locator("#log li").first).to_contain_text(
            "Ram (eKart) finished the visit: 4 scanned"
        )


async def test_a_failing_location_comes_first_and_says_why(browser: Browser) -> None:
    async with desk(browser) as d:
        d.sim.faults.script(*[Fault(FaultKind.SERVICE_UNAVAILABLE)] * 10, location="LOC2")
        await d.step()
        card = d.card("LOC2")
        # a sentence for the desk; the raw code one click away, never the headline
        await expect(card.locator(".status")).to_have_text("⚠ Flipkart is not answering; retrying")
        raw = card.locator("details.raw code")
        await expect(raw).to_be_hidden()
        await card.locator("details.raw summary").click()
        await expect(raw).to_contain_text("SERVICE_UNAVAILABLE_ERROR")
        assert "SERVICE_UNAVAILABLE" not in (await card.locator(".card-head").inner_text())
        await expect(d.page.locator("li.card").first).to_have_attribute("data-location", "LOC2")


async def test_without_show_otc_no_code_reaches_the_page(browser: Browser) -> None:
    async with desk(browser) as d:
        fe = d.sim.world.arrive("LOC1", fe_name="Ram", otc="123456", ttl=300)
        await d.step()
        fe_card = d.card("LOC1").locator(f'li.fe[data-fe="{fe}"]')
        await expect(fe_card.locator(".otc")).to_have_text("••••••")
        await expect(fe_card.locator(".otc")).to_have_attribute("aria-label", "OTC hidden")
        html = await d.page.content()
        assert "123456" not in html
        assert not re.search(r"\d{6}", await d.page.locator("#locations").inner_text())


async def test_after_a_server_restart_the_page_shows_what_a_fresh_page_shows(
    browser: Browser,
) -> None:
    async with desk(browser, show_otc=True) as d:
        d.sim.world.arrive("LOC1", fe_name="Ram", otc="123456", ttl=300)
        await d.step()
        await expect(d.card("LOC1")).to_contain_text("Ram")
        port = d.runner.addresses[0][1]
        await d.runner.cleanup()  # the server goes away ...
        await expect(d.page.locator("#connection")).not_to_have_text("Live")
        # ... and comes back on the same port, with a new watcher, while the world moves on
        d.sim.world.arrive("LOC2", fe_name="Shyam", otc="222333", ttl=300)
        d.sim.world.close_task("LOC1")
        async with (
            d.sim.client() as client,
            OtcWatcher(
                client, ["LOC1", "LOC2", "LOC3"], interval=STEP, jitter=0, clock=d.clock
            ) as watcher,
        ):
            reader = asyncio.create_task(drain(watcher))
            await watcher.wait_idle()
            d.clock.advance(STEP)
            await watcher.wait_idle()
            runner, url = await serve(create_app(watcher, show_otc=True), port)
            try:
                await expect(d.page.locator("#connection")).to_have_text("Live", timeout=15_000)
                fresh = await open_page(browser, d.clock, url)
                await expect(fresh.locator("#connection")).to_have_text("Live")
                await expect(fresh.locator("#locations")).to_contain_text("Shyam")
                expected = await fresh.locator("#locations").text_content() or ""
                assert "Shyam" in expected and "Ram" not in expected
                await expect(d.page.locator("#locations")).to_have_text(expected)
            finally:
                await runner.cleanup()
                reader.cancel()


async def test_with_an_access_key_the_page_needs_it_once(browser: Browser) -> None:
    async with desk(browser, access_key=KEY) as d:
        page = d.page
        await expect(page.locator("form")).to_be_visible()
        assert await page.locator("li.card").count() == 0  # no data before the key
        await page.fill("#key", "not the key at all")
        await page.click("button[type=submit]")
        await expect(page.locator("form")).to_contain_text("not right")
        await page.fill("#key", KEY)
        await page.keyboard.press("Enter")
        await expect(page.locator("#connection")).to_have_text("Live")
        await expect(d.card("LOC1")).to_be_visible()
        cookies = await page.context.cookies()
        (session,) = [c for c in cookies if c["name"] == "flipkart_otc_session"]
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        assert KEY not in session["value"]


async def test_the_filter_is_keyboard_reachable_and_narrows_the_cards(browser: Browser) -> None:
    async with desk(browser) as d:
        d.sim.world.arrive("LOC2", fe_name="Shyam", ttl=300)
        await d.step()
        await expect(d.card("LOC2")).to_contain_text("Shyam")
        # the controls in the header first (sound, notifications), then the filter
        focused: list[str] = []
        while "filter" not in focused and len(focused) < 4:
            await d.page.keyboard.press("Tab")
            focused.append(await d.page.evaluate("document.activeElement.id"))
        assert focused == ["mute", "notify", "filter"]
        await expect(d.page.locator("#filter")).to_be_focused()
        await d.page.keyboard.type("shy")
        await expect(d.page.locator("li.card:visible")).to_have_count(1)
        await expect(d.card("LOC2")).to_be_visible()
        await d.page.fill("#filter", "loc3")
        await expect(d.page.locator("li.card:visible")).to_have_count(1)
        await d.page.fill("#filter", "nobody")
        await expect(d.page.locator("#empty")).to_be_visible()


async def test_on_a_phone_nothing_overflows_sideways(browser: Browser) -> None:
    async with desk(browser, show_otc=True) as d:
        d.sim.world.arrive("LOC1", fe_name="Ram", otc="123456", ttl=300)
        await d.step()
        await d.page.set_viewport_size({"width": 390, "height": 844})
        await expect(d.card("LOC1")).to_contain_text("123456")
        overflow = await d.page.evaluate(
            "document.scrollingElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0


async def test_a_silent_stream_shows_stale_since_when_then_reconnects(browser: Browser) -> None:
    async with desk(browser) as d:
        connection = d.page.locator("#connection")
        await expect(connection).to_have_text("Live")
        # no message for 26 s of the page's time (the server's clock does not move, so
        # no heartbeat comes): more than two heartbeats missed
        await d.page.clock.run_for(26_000)
        await expect(connection).to_have_text(re.compile(r"^Stale since \d\d:\d\d:\d\d$"))
        await expect(connection).to_have_attribute("data-state", "stale")
        await d.page.clock.run_for(2_000)  # then it opens a new stream
        await expect(connection).to_have_text("Live")
