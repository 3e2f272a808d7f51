"""pytest fixtures for code that uses flipkart-otc (registered as a ``pytest11`` plugin).

``flipkart_simulator`` is a running :class:`~flipkart_otc.simulator.Simulator` on
127.0.0.1 with no locations; it needs pytest-asyncio::

    async def test_my_dashboard(flipkart_simulator):
        flipkart_simulator.world.open_task("LOC1")
        flipkart_simulator.world.arrive("LOC1", fe_name="Ram")
        async with flipkart_simulator.client() as client:
            snap = await client.start_otc_details("LOC1")
        assert [d.fe_name for d in snap.details.values()] == ["Ram"]
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator

from .simulator import Simulator

if importlib.util.find_spec("pytest_asyncio") is not None:  # the fixture needs it
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def flipkart_simulator() -> AsyncIterator[Simulator]:
        """A running simulator, closed after the test."""
        async with Simulator() as sim:
            yield sim
