"""A watcher's source with no socket: the simulator's world answered in-process, through
the same wire parsers as the client, with scripted faults. What the engine tests run on."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from flipkart_otc import EndOtc, InitialLoad, ServiceUnavailableError, ShipmentPage
from flipkart_otc._wire import end_otc, initial_load, shipments
from flipkart_otc._wire.common import error_from_answer
from flipkart_otc.simulator import World

PAGE_SIZE = 5


class WorldSource:
    """A :class:`~flipkart_otc.VisitSource` over ``world``. ``fault_rate``: the share of
    calls that fail as a 503 would (before the world sees them: an End OTC that fails
    made no code). ``hang``: every Start OTC call waits for ever (a source that stopped
    answering)."""

    def __init__(self, world: World, *, fault_rate: float = 0.0, seed: int = 0) -> None:
        self.world = world
        self.fault_rate = fault_rate
        self.hang = False
        self.calls: Counter[str] = Counter()
        self.faults = 0
        self.patience: list[float] = []
        self._rng = random.Random(seed)

    def _call(self, endpoint: str) -> None:
        self.calls[endpoint] += 1
        if self.fault_rate and self._rng.random() < self.fault_rate:
            self.faults += 1
            raise ServiceUnavailableError(503, "SERVICE_UNAVAILABLE_ERROR", "scripted")

    @staticmethod
    def _ok(answer: tuple[int, bytes], location_id: str | None = None) -> bytes:
        status, body = answer
        if status != 200:
            raise error_from_answer(status, body, location_id)
        return body

    async def fetch_body(self, location_id: str, *, patience: float = 0.0) -> bytes:
        self.patience.append(patience)
        if self.hang:
            await asyncio.get_running_loop().create_future()  # never answers
        self._call("start-otc")
        return self._ok(self.world.answer(location_id), location_id)

    async def initial_load(self, location_id: str, *, patience: float = 0.0) -> InitialLoad:
        self._call("initial-load")
        body = self._ok(self.world.initial_load(location_id), location_id)
        now = datetime.fromtimestamp(self.world.clock.time(), UTC)
        return initial_load.parse_initial_load(body, location_id, now)

    async def shipment_pages(
        self,
        task_id: str,
        fe_id: str,
        *,
        cursor: str | None = None,
        stop_short: bool = False,
        patience: float = 0.0,
    ) -> AsyncIterator[ShipmentPage]:
        after = cursor
        while True:
            self._call("shipments")
            page = shipments.parse_page(
                self._ok(self.world.shipments_page(task_id, fe_id, PAGE_SIZE, after))
            )
            if page.next_url is None:
                yield ShipmentPage(tuple(page.shipments), after, False)
                return
            token = json.loads(base64.b64decode(page.next_url.rsplit("/", 1)[-1]))
            after = token["etag"]
            yield ShipmentPage(tuple(page.shipments), after, True)
            if not page.shipments or (stop_short and len(page.shipments) < PAGE_SIZE):
                return

    async def end_otc_details(self, fe_id: str, task_id: str) -> EndOtc:
        self._call("end-otc")
        return end_otc.parse_end_otc(self._ok(self.world.end_otc(fe_id, task_id)), fe_id, task_id)
