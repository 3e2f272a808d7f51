"""The dashboard as the person at the warehouse desk uses it, in Debian's Chromium: it
fits the screen, puts the most urgent first as time passes, says when it is stale, calls
the desk when an FE arrives or a code runs out, has a wall view and a phone view, and
passes an accessibility audit (axe-core) in every state.

Screenshots of each view go to $FLIPKART_OTC_ARTIFACTS (CI keeps them).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from _browser import STEP, Desk, artifacts, audit, browser, desk, drain, open_page, serve
from playwright.async_api import Browser, Page, expect

from flipkart_otc import OtcWatcher
from flipkart_otc.dashboard import create_app
from flipkart_otc.simulator import Fault, FaultKind

__all__ = ["browser"]  # the fixture

DESK_SCREEN = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
SIX = tuple(f"LOC{i}" for i in range(1, 7))
NAMES = ("Ramesh Kumar", "Sita Devi", "Mohammed Irfan")
PARTNERS = ("eKart", "Delhivery", "Ecom Express")

# In the page before its own script: an AudioContext and a Notification that only say
# they were called (the sound itself is no test's business; that it is asked for is).
CALLS = """
window.__calls = { tones: 0, notes: [] };
window.AudioContext = class {
  constructor() { this.state = "running"; this.currentTime = 0; this.destination = {}; }
  resume() { return Promise.resolve(); }
  createOscillator() {
    window.__calls.tones += 1;
    return { frequency: { value: 0 }, connect() {}, start() {}, stop() {} };
  }
  createGain() {
    const gain = { setValueAtTime() {}, exponentialRampToValueAtTime() {} };
    return { gain, connect() {} };
  }
};
window.Notification = class {
  constructor(title, options) { window.__calls.notes.push([title, options.body]); }
  static get permission() { return "granted"; }
  static requestPermission() { return Promise.resolve("granted"); }
};
"""


async def order(page: Page) -> list[str]:
    return list(
        await page.locator("li.card:visible").evaluate_all(
            "cards => cards.map(c => c.dataset.location)"
        )
    )


async def fill(d: Desk, locations: tuple[str, ...], fes: int = 3) -> None:
    """``fes`` FEs at each location, their codes from 5 minutes to under one."""
    for i, loc in enumerate(locations):
        for j in range(fes):
            d.sim.world.arrive(
                loc,
                fe_name=NAMES[j],
                logistic_partner=PARTNERS[j],
                lob="LARGE" if j % 2 else "NONLARGE",
                otc=f"{(i * 7 + j) % 10}{i}{j}4{j}9",
                ttl=300 - 50 * i - 20 * j,
            )
    await d.step()


async def box(page: Page, selector: str) -> dict[str, float]:
    found = await page.locator(selector).first.bounding_box()
    assert found is not None, selector
    return {"x": found["x"], "y": found["y"], "width": found["width"], "height": found["height"]}


async def test_six_locations_of_three_fes_fit_a_desk_screen(
    browser: Browser, tmp_path: Path
) -> None:
    async with desk(
        browser, locations=SIX, no_task=(), show_otc=True, page_options={"viewport": DESK_SCREEN}
    ) as d:
        page = d.page
        await fill(d, SIX)
        await expect(page.locator("li.fe")).to_have_count(18)
        await page.screenshot(path=str(artifacts(tmp_path) / "dashboard-desk-6x3.png"))
        # no page scroll, and no scroll inside either: every FE in sight
        sizes = await page.evaluate(
            """() => {
              const s = document.getElementById("scroller");
              return [document.scrollingElement.scrollHeight, window.innerHeight,
                      s.scrollHeight, s.clientHeight];
            }"""
        )
        assert sizes[0] <= sizes[1], sizes
        assert sizes[2] <= sizes[3], sizes
        for fe in await page.locator("li.fe .countdown").all():
            where = await fe.bounding_box()
            assert where is not None and where["y"] + where["height"] <= DESK_SCREEN["height"]
        await audit(page)  # busy: urgent codes, masked none, 18 FEs


async def test_past_that_the_locations_scroll_inside_and_the_rest_stays(
    browser: Browser, tmp_path: Path
) -> None:
    twelve = tuple(f"LOC{i}" for i in range(1, 13))
    async with desk(
        browser,
        locations=twelve,
        no_task=(),
        show_otc=True,
        page_options={"viewport": DESK_SCREEN},
    ) as d:
        page = d.page
        await fill(d, twelve[:6])
        await fill(d, twelve[6:], fes=2)
        await expect(page.locator("li.fe")).to_have_count(30)
        overflow = await page.evaluate(
            "document.scrollingElement.scrollHeight - window.innerHeight"
        )
        assert overflow <= 0  # the page itself never scrolls
        fixed = ["header", "#counts", "#log-title"]
        before = [await box(page, s) for s in fixed]
        scroller = page.locator("#scroller")
        assert await scroller.evaluate("s => s.scrollHeight > s.clientHeight")
        last = page.locator("li.card").last
        assert not await last.evaluate(
            "c => c.getBoundingClientRect().top < document.getElementById('scroller')"
            ".getBoundingClientRect().bottom"
        )
        await scroller.evaluate("s => s.scrollTo(0, s.scrollHeight)")
        await expect(last).to_be_in_viewport()
        assert [await box(page, s) for s in fixed] == before
        await page.screenshot(path=str(artifacts(tmp_path) / "dashboard-desk-12-scrolled.png"))


async def test_the_cards_follow_urgency_as_time_passes_but_not_under_the_pointer(
    browser: Browser,
) -> None:
    locations = ("LOC1", "LOC2", "LOC3", "LOC4", "LOC5")
    async with desk(browser, visit=True, locations=locations, show_otc=True) as d:
        page, world = d.page, d.sim.world
        await expect(page.locator(".order")).to_contain_text("Most urgent first: failing")
        # LOC4's FE reaches the End OTC page: its code is to be read out now
        kiran = world.arrive("LOC4", fe_name="Kiran", ttl=300)
        await d.step()
        world.start_scanning("LOC4", kiran)
        await d.step(30)
        world.to_end_otc("LOC4", kiran)
        await d.step(30)
        await expect(d.card("LOC4").locator("li.visit")).to_have_attribute("data-stage", "end_otc")
        # LOC1's code has 10 minutes left, LOC2's seconds: LOC2 first, whatever the names
        world.arrive("LOC1", fe_name="Asha", ttl=600)
        world.arrive("LOC2", fe_name="Ravi", ttl=12)
        await d.step()
        assert await order(page) == ["LOC4", "LOC2", "LOC1", "LOC5", "LOC3"]

        # time passes on the page: LOC2's code runs out, and an FE waiting for a new code
        # is the most urgent of all; but not while the desk points at it
        await d.card("LOC2").hover()
        await page.clock.run_for(9_000)
        await expect(d.card("LOC2").locator(".countdown")).to_contain_text("EXPIRED")
        assert await order(page) == ["LOC4", "LOC2", "LOC1", "LOC5", "LOC3"]
        await page.locator("h1").hover()
        await page.clock.run_for(1_000)
        assert await order(page) == ["LOC2", "LOC4", "LOC1", "LOC5", "LOC3"]

        # a focused card holds its place too (keyboard users)
        await d.card("LOC1").focus()
        world.arrive("LOC5", fe_name="Meena", ttl=100)
        await d.step()
        await expect(d.card("LOC5")).to_contain_text("Meena")
        assert await order(page) == ["LOC2", "LOC4", "LOC1", "LOC5", "LOC3"]
        await expect(d.card("LOC1")).to_be_focused()
        await page.evaluate("document.activeElement.blur()")
        await page.clock.run_for(1_000)
        assert await order(page) == ["LOC2", "LOC4", "LOC5", "LOC1", "LOC3"]

        # a failing location comes before everything
        d.sim.faults.script(*[Fault(FaultKind.SERVICE_UNAVAILABLE)] * 10, location="LOC3")
        world.open_task("LOC3")
        await d.step()
        await expect(page.locator("li.card").first).to_have_attribute("data-location", "LOC3")
        await audit(page)  # a visit at End OTC, a failing location, an expired code


async def test_a_lost_stream_greys_every_card_then_the_new_picture_redraws_it(
    browser: Browser, tmp_path: Path
) -> None:
    async with desk(browser, show_otc=True, page_options={"viewport": DESK_SCREEN}) as d:
        page, world = d.page, d.sim.world
        connection = page.locator("#connection")
        ram = world.arrive("LOC1", fe_name="Ram", otc="123456", ttl=300)
        await d.step()
        countdown = d.card("LOC1").locator(".countdown")
        # a step after the arrival: about 4:55 left (the page's offset to the server's
        # clock is read from a message, a second or two either way on a loaded machine)
        await expect(countdown).to_have_text(re.compile(r"^expires in 4:5\d$"))
        left = int((await countdown.text_content() or "")[-2:])
        last = await page.evaluate("Date.now()")  # the page got its last message now
        port = d.runner.addresses[0][1]
        await d.runner.cleanup()  # the server goes away

        # the heartbeat is 10 s: for 2.5 of them the page waits, counting down ...
        await page.clock.run_for(24_000)
        await expect(connection).to_have_text("Reconnecting…")
        await expect(page.locator("li.card.stale")).to_have_count(0)
        await expect(countdown).to_have_text(f"expires in 4:{left - 24:02d}")  # counting on
        # ... then every card is greyed and says as of when; the countdowns stop
        await page.clock.run_for(2_000)
        as_of = await page.evaluate("ms => new Date(ms).toTimeString().slice(0, 8)", last)
        await expect(connection).to_have_text(f"Stale since {as_of}")
        await expect(page.locator("li.card.stale")).to_have_count(3)
        for card in await page.locator("li.card").all():
            await expect(card.locator(".asof")).to_have_text(f"as of {as_of}")
        await expect(countdown).to_have_text(re.compile(r"^expires at \d\d:\d\d:\d\d$"))
        frozen = await countdown.text_content()
        await page.clock.run_for(5_000)
        await expect(countdown).to_have_text(frozen or "")
        await page.screenshot(path=str(artifacts(tmp_path) / "dashboard-stale.png"))
        await audit(page)

        # the server returns (a new watcher) while the world moved on: the new picture
        world.leave("LOC1", ram)
        world.arrive("LOC2", fe_name="Shyam", otc="222333", ttl=300)
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
            runner, _ = await serve(create_app(watcher, show_otc=True), port)
            try:
                await page.clock.run_for(2_000)  # the page tries again
                await expect(connection).to_have_text("Live", timeout=15_000)
                await expect(page.locator("li.card.stale")).to_have_count(0)
                await expect(page.locator(".asof")).to_have_count(0)
                await expect(d.card("LOC2")).to_contain_text("Shyam")
                await expect(d.card("LOC2").locator(".countdown")).to_have_text(
                    re.compile(r"^expires in 4:\d\d$")
                )
                await expect(d.card("LOC1")).to_contain_text("No FE at the door")
            finally:
                await runner.cleanup()
                reader.cancel()


async def test_counts_tell_valid_codes_from_expired_and_the_title_counts_fes_waiting(
    browser: Browser,
) -> None:
    async with desk(browser) as d:
        page, world = d.page, d.sim.world
        await expect(page).to_have_title("FE pickups · flipkart-otc")
        ram = world.arrive("LOC1", fe_name="Ram", ttl=300)
        shyam = world.arrive("LOC2", fe_name="Shyam", ttl=20)
        await d.step()
        await expect(page).to_have_title("(2) FE pickups · flipkart-otc")
        door = page.locator("#counts .count-door")
        await expect(door).to_have_text("2 FEs at the door")
        await expect(page.locator("#counts .count-expired")).to_have_count(0)
        # Shyam's code runs out: at the door still, but not with a valid code
        await d.step(20)
        await expect(door).to_have_text("1 FE at the door")
        await expect(page.locator("#counts .count-expired")).to_have_text("1 with an expired code")
        await expect(page).to_have_title("(2) FE pickups · flipkart-otc")
        world.leave("LOC1", ram)
        await d.step()
        await expect(page).to_have_title("(1) FE pickups · flipkart-otc")
        world.leave("LOC2", shyam)
        await d.step()
        await expect(page).to_have_title("FE pickups · flipkart-otc")
        await expect(door).to_have_text("0 FEs at the door")


async def calls(page: Page) -> dict[str, Any]:
    return dict(await page.evaluate("window.__calls"))


async def test_an_arrival_and_a_last_minute_call_the_desk_unless_muted(browser: Browser) -> None:
    async with desk(browser, page_options={"init_script": CALLS}) as d:
        page, world = d.page, d.sim.world
        await expect(page.locator("#connection")).to_have_text("Live")
        await expect(page.locator("#notify")).to_be_hidden()  # allowed already
        assert await calls(page) == {"tones": 0, "notes": []}

        world.arrive("LOC1", fe_name="Ram", logistic_partner="eKart", ttl=300)
        await d.step()
        await expect(page.locator("#announce")).to_have_text("FE at LOC1: Ram (eKart) arrived")
        assert await calls(page) == {"tones": 2, "notes": [["FE at LOC1", "Ram (eKart) arrived"]]}

        # a page opened now finds Ram there: nothing plays for him
        other = await page.context.new_page()
        await other.add_init_script(CALLS)
        await other.goto(d.url)
        await expect(other.locator("li.fe")).to_have_count(1)
        await other.clock.run_for(2_000)
        assert await calls(other) == {"tones": 0, "notes": []}
        await other.close()

        # his code enters its last minute: the desk is called once
        await d.step(240)
        await expect(d.card("LOC1").locator(".countdown")).to_contain_text("URGENT")
        got = await calls(page)
        assert got["tones"] == 5
        assert got["notes"][1] == ["Code expiring at LOC1", "Ram (eKart): under a minute left"]
        await d.step(10)
        assert (await calls(page))["tones"] == 5

        # muted: said on the switch, remembered by the browser, and nothing plays
        mute = page.locator("#mute")
        await mute.click()
        await expect(mute).to_have_attribute("aria-pressed", "true")
        await expect(mute).to_have_text("⊘ Sound off")
        world.arrive("LOC2", fe_name="Shyam", ttl=30)
        await d.step()
        await expect(d.card("LOC2")).to_contain_text("Shyam")
        await page.clock.run_for(2_000)
        assert (await calls(page))["tones"] == 5
        assert len((await calls(page))["notes"]) == 2
        again = await page.context.new_page()
        await again.goto(d.url)
        await expect(again.locator("#mute")).to_have_attribute("aria-pressed", "true")
        await again.locator("#mute").click()  # and back on
        await expect(again.locator("#mute")).to_have_text("♪ Sound on")
        await again.close()


async def test_the_wall_view_has_big_digits_and_no_filter_nor_log(
    browser: Browser, tmp_path: Path
) -> None:
    async with desk(browser, show_otc=True) as d:
        await fill(d, ("LOC1", "LOC2"), fes=2)
        desk_digits = await d.page.locator(".otc").first.evaluate(
            "n => parseFloat(getComputedStyle(n).fontSize)"
        )
        wall = await open_page(
            browser, d.clock, d.url + "?view=wall", viewport={"width": 1920, "height": 1080}
        )
        await expect(wall.locator("li.fe")).to_have_count(4)
        await expect(wall.locator("#filter")).to_be_hidden()
        await expect(wall.locator("#log-section")).to_be_hidden()
        for selector in (".otc", ".fe-name", ".loc"):
            big = await wall.locator(selector).first.evaluate(
                "n => parseFloat(getComputedStyle(n).fontSize)"
            )
            small = await d.page.locator(selector).first.evaluate(
                "n => parseFloat(getComputedStyle(n).fontSize)"
            )
            assert big >= 1.5 * small, (selector, big, small)
        assert desk_digits < await wall.locator(".otc").first.evaluate(
            "n => parseFloat(getComputedStyle(n).fontSize)"
        )
        await wall.screenshot(path=str(artifacts(tmp_path) / "dashboard-wall.png"))
        await audit(wall)
        await wall.close()


async def test_on_a_phone_the_fes_come_first_and_the_events_are_one_tap_away(
    browser: Browser, tmp_path: Path
) -> None:
    async with desk(browser, show_otc=True, page_options={"viewport": PHONE}) as d:
        page = d.page
        await fill(d, ("LOC1", "LOC2"), fes=2)
        first = page.locator("li.fe").first
        await expect(first).to_be_in_viewport()
        await expect(page.locator("#log")).to_be_hidden()
        # the filter's label sits with its box
        label, field = await box(page, "label[for=filter]"), await box(page, "#filter")
        assert abs((label["y"] + label["height"] / 2) - (field["y"] + field["height"] / 2)) < 4
        assert 0 <= field["x"] - (label["x"] + label["width"]) < 16
        await page.screenshot(path=str(artifacts(tmp_path) / "dashboard-phone.png"))
        await audit(page)

        await page.get_by_role("button", name="Latest events").click()
        await expect(page.locator("#log li").first).to_be_in_viewport()
        await expect(page.locator("#log li").first).to_contain_text("arrived")
        await expect(page.locator("li.card").first).to_be_hidden()
        await page.screenshot(path=str(artifacts(tmp_path) / "dashboard-phone-events.png"))
        await page.get_by_role("button", name="FEs and locations").click()
        await expect(first).to_be_in_viewport()


async def test_an_empty_page_passes_the_audit_and_every_control_is_keyboard_reachable(
    browser: Browser,
) -> None:
    async with desk(browser, no_task=("LOC1", "LOC2", "LOC3")) as d:
        page = d.page
        await expect(page.locator("#connection")).to_have_text("Live")
        await expect(page.locator("li.card")).to_have_count(3)
        await audit(page)
        # tab through: every control, each with a visible focus ring
        seen = []
        for _ in range(7):
            await page.keyboard.press("Tab")
            focused = await page.evaluate(
                """() => {
                  const e = document.activeElement;
                  const style = getComputedStyle(e);
                  return [e.id || e.dataset.location || e.tagName, style.outlineStyle,
                          parseFloat(style.outlineWidth)];
                }"""
            )
            seen.append(focused[0])
            assert focused[1] != "none" and focused[2] >= 2, focused
        assert seen == ["mute", "notify", "filter", "LOC1", "LOC2", "LOC3", "log"], seen


@pytest.mark.parametrize("width", [1366, 390])
async def test_a_failing_location_reads_as_a_sentence_with_its_details_one_click_away(
    browser: Browser, width: int
) -> None:
    viewport = {"width": width, "height": 768}
    async with desk(browser, page_options={"viewport": viewport}) as d:
        page = d.page
        d.sim.faults.script(*[Fault(FaultKind.SERVICE_UNAVAILABLE)] * 10, location="LOC2")
        await d.step()
        card = d.card("LOC2")
        await expect(card.locator(".status")).to_have_text("⚠ Flipkart is not answering; retrying")
        await expect(d.card("LOC3").locator(".status")).to_have_text(
            "\N{EN DASH} No return task today"
        )
        assert "SERVICE_UNAVAILABLE" not in await card.inner_text()
        await card.locator("summary").click()
        await expect(card.locator("details.raw code")).to_contain_text("SERVICE_UNAVAILABLE_ERROR")
        await audit(page)  # failing, the details open

        # the log says it the same way, the raw text behind its own details
        if width < 900:
            await page.get_by_role("button", name="Latest events").click()
        entry = page.locator("#log li", has_text="LOC2:").first
        await expect(entry).to_contain_text("LOC2: ⚠ Flipkart is not answering; retrying")
        assert "SERVICE_UNAVAILABLE" not in await entry.inner_text()
        await expect(entry.locator("details.raw")).to_have_count(1)

        # credentials the API no longer takes: the watcher stops, and says why in words
        d.sim.expire_tokens()
        await d.step()
        await expect(page.locator("#connection")).to_contain_text(
            "Stopped: Access refused: check the credentials"
        )
        await expect(page.locator("li.card.stale")).to_have_count(3)
        stopped = page.locator("#stopped")
        await stopped.locator("summary").click()
        await expect(stopped.locator("code")).to_contain_text("UNAUTHORIZED_ERROR")
