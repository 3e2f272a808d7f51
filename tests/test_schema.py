"""The JSON view against its shipped JSON Schema: every event kind and every snapshot the
simulator can produce, masked and shown."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from flipkart_otc import (
    SCHEMA_VERSION,
    LocationStatus,
    ManualClock,
    OtcWatcher,
    RetryPolicy,
    json_schema,
)
from flipkart_otc._serialize import snapshot_dict
from flipkart_otc.simulator import TRANSIENT, FaultKind, Scenario, Simulator

KINDS = {"fe_arrived", "otc_renewed", "otc_expired", "fe_departed", "location_status_changed"}


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert f"v{SCHEMA_VERSION}" in schema["$id"]
    return jsonschema.Draft202012Validator(schema)


async def test_every_event_and_snapshot_of_a_faulty_scenario_validates(
    validator: jsonschema.protocols.Validator,
) -> None:
    clock = ManualClock()
    scenario = Scenario(locations=12, seed=5, speed=5, mean_task_toggle=600)
    seen: set[str] = set()
    snapshots: list[dict[str, Any]] = []
    async with Simulator(clock=clock, scenario=scenario, seed=5) as sim:
        sim.faults.random(0.2, TRANSIENT)
        sim.faults.script(FaultKind.TRUNCATED_JSON, location="LOC1")  # one FAILING status
        async with (
            sim.client(retry=RetryPolicy(max_tries=3, base_delay=0)) as client,
            OtcWatcher(client, scenario.location_ids, interval=10, jitter=0, clock=clock) as w,
        ):
            for _ in range(900):
                clock.advance(1)
                sim.advance_scenario()
                await w.wait_idle()
                for _ in range(w.queued):
                    event = await anext(w)
                    for show in (False, True):
                        data = event.to_dict(show_otc=show)
                        validator.validate(data)
                        seen.add(data["event"])
            for loc in scenario.location_ids:
                status = w.status(loc)
                assert status is not None
                snapshots.append(snapshot_dict(loc, w.snapshot(loc), status, None, show_otc=False))
    assert seen == KINDS
    for data in snapshots:
        validator.validate(data)
    statuses = {s["status"] for s in snapshots}
    assert LocationStatus.ACTIVE.value in statuses


@pytest.mark.parametrize("status", ["NO_TASK", "CLOSED", "ERROR"])
def test_snapshots_without_an_answer_validate(
    status: str, validator: jsonschema.protocols.Validator
) -> None:
    error = "BAD_GATEWAY_ERROR: bad gateway" if status == "ERROR" else None
    validator.validate(snapshot_dict("LOC1", None, status, error, show_otc=False))


@pytest.mark.parametrize(
    "broken",
    [
        {"event": "fe_arrived", "location_id": "L", "observed_at": "2026-01-01T00:00:00Z"},
        {
            "event": "location_status_changed",
            "location_id": "L",
            "observed_at": "2026-01-01T00:00:00+05:30",
            "status": "ACTIVE",
            "previous": None,
            "error": None,
        },
        {"event": "location_status_changed", "location_id": "L", "observed_at": "x"},
        {"location_id": "L", "status": "GONE", "fetched_at": None, "details": [], "error": None},
    ],
)
def test_the_schema_refuses_what_the_view_never_writes(
    broken: dict[str, Any], validator: jsonschema.protocols.Validator
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)
