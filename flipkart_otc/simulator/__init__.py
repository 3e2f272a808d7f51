"""A faithful local Flipkart for tests, benchmarks and demos.

:class:`Simulator` serves the Start OTC API and the OAuth token endpoint on
127.0.0.1 over real HTTP, from a :class:`World` you control (or a seeded
:class:`Scenario` plays), with :class:`FaultPlan` faults in front and a
ground-truth log of every change.

>>> async with Simulator() as sim:  # doctest: +SKIP
...     sim.world.open_task("LOC1")
...     fe_id = sim.world.arrive("LOC1", fe_name="Ram", ttl=300)
...     async with sim.client() as client:
...         snap = await client.start_otc_details("LOC1")
"""

from ._day import DayDriver, DayScenario
from ._faults import ENDPOINTS, TRANSIENT, Fault, FaultKind, FaultPlan
from ._scenario import Scenario, ScenarioDriver
from ._server import API_PATH, DEFAULT_TOKEN_LIFETIME, TOKEN_PATH, Simulator
from ._world import Change, ChangeKind, FeVisit, Shipment, Stage, TaskState, World

__all__ = [
    "API_PATH",
    "DEFAULT_TOKEN_LIFETIME",
    "ENDPOINTS",
    "TOKEN_PATH",
    "TRANSIENT",
    "Change",
    "ChangeKind",
    "DayDriver",
    "DayScenario",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FeVisit",
    "Scenario",
    "ScenarioDriver",
    "Shipment",
    "Simulator",
    "Stage",
    "TaskState",
    "World",
]
