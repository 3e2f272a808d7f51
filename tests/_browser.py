"""What the browser tests share: Debian's Chromium through Playwright, and a desk: the
simulator, a watcher of it, its dashboard on 127.0.0.1 and a page open on it. Time moves
by hand on both sides: the simulator's and the watcher's ManualClock, and Playwright's
clock for the page's countdowns."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Browser, Page, async_playwright

from flipkart_otc import ManualClock, OtcWatcher, PollPolicy, VisitWatcher
from flipkart_otc.dashboard import create_app
from flipkart_otc.simulator import Simulator

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and not os.environ.get("FLIPKART_OTC_REQUIRE_BROWSER"):
    pytest.skip(f"no {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


KEY = "a key for the warehouse desk"
STEP = 5.0  # the watcher's interval, and how far each step moves time


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--disable-background-networking",  # nothing but 127.0.0.1
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield browser
        finally:
            await browser.close()


@attrs.define
class Desk:
    """A simulator, a watcher of it, its dashboard on 127.0.0.1, and a page open on it."""

    clock: ManualClock
    sim: Simulator
    watcher: OtcWatcher | VisitWatcher
    runner: web.AppRunner
    url: str
    page: Page

    async def step(self, seconds: float = STEP) -> None:
        """Time passes, in the page and on the server, by whole steps (the page first: what
        the server then sends, it receives at the same time on its own clock)."""
        while seconds > 0:
            moved = min(seconds, STEP)
            await self.page.clock.run_for(round(moved * 1000))
            self.clock.advance(moved)
            await self.watcher.wait_idle()
            seconds -= moved

    def card(self, location_id: str) -> Any:
        return self.page.locator(f'li.card[data-location="{location_id}"]')


async def serve(app: web.Application, port: int = 0) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/"


async def drain(watcher: OtcWatcher | VisitWatcher) -> None:
    async for _ in watcher:
        pass


async def open_page(
    browser: Browser,
    clock: ManualClock,
    url: str,
    *,
    init_script: str | None = None,
    **options: Any,
) -> Page:
    """A page on ``url``; ``init_script`` runs in it before the dashboard's own script."""
    context = await browser.new_context(**options)  # its pages share storage and clock
    page = await context.new_page()
    if init_script is not None:
        await page.add_init_script(init_script)
    # the page's clock moves only when the test says. It need not agree with the
    # server's: the page counts down against the server's time (so this one is a minute
    # ahead, and the countdowns must still be right)
    await page.clock.install(time=clock.time())
    await page.clock.pause_at(clock.time() + 60)
    await page.goto(url)
    return page


@asynccontextmanager
async def desk(
    browser: Browser,
    *,
    visit: bool = False,
    locations: Sequence[str] = ("LOC1", "LOC2", "LOC3"),
    no_task: Sequence[str] = ("LOC3",),
    page_options: dict[str, Any] | None = None,
    **options: Any,
) -> AsyncIterator[Desk]:
    """With ``visit``, the page of a VisitWatcher (its rounds every 30 s). Every location
    has an open RETURN task but those in ``no_task``; ``page_options`` go to
    :func:`open_page` (``init_script``, ``viewport`` ...), the rest to ``create_app``."""
    clock = ManualClock()
    async with Simulator(clock=clock) as sim:
        for loc in locations:
            sim.world.open_task(loc)
        for loc in no_task:
            sim.world.remove_task(loc)
        kind: type[OtcWatcher] | type[VisitWatcher] = VisitWatcher if visit else OtcWatcher
        async with (
            sim.client() as client,
            kind(
                client,
                list(locations),
                interval=STEP,
                jitter=0,
                clock=clock,
                policy=PollPolicy.fixed(),
            ) as watcher,
        ):
            reader = asyncio.create_task(drain(watcher))
            clock.advance(STEP)  # every location's first poll
            await watcher.wait_idle()
            runner, url = await serve(create_app(watcher, **options))
            try:
                page = await open_page(browser, clock, url, **(page_options or {}))
                yield Desk(clock, sim, watcher, runner, url, page)
            finally:
                await runner.cleanup()
                reader.cancel()


def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: $FLIPKART_OTC_ARTIFACTS (CI keeps it), else a temp dir."""
    folder = Path(os.environ.get("FLIPKART_OTC_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def audit(page: Page) -> None:
    """axe-core (the copy in the axe-playwright-python package: nothing fetched) finds no
    serious or critical violation. axe waits on timers: the page's clock runs meanwhile
    (a second or two), and stops again after."""
    await page.clock.resume()
    try:
        results = await Axe().run(page)
    finally:
        await page.clock.pause_at(await page.evaluate("Date.now()") / 1000 + 2)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']}: {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, bad
