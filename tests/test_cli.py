"""The command line, run as real subprocesses against the simulator."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jsonschema
import pytest
from _helpers import DEADLINE, env, run, spawn, token_env

from flipkart_otc import json_schema
from flipkart_otc._commands.common import _Stopper
from flipkart_otc.simulator import ChangeKind, Fault, FaultKind, Simulator


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator() as s:
        s.world.open_task("LOC1")
        s.world.open_task("LOC2")
        yield s


# -- demo ------------------------------------------------------------------------


async def test_demo_runs_for_its_duration_and_shows_the_story() -> None:
    started = time.monotonic()
    code, out, err = await run("demo", "--duration", "10", "--locations", "6", "--seed", "1")
    took = time.monotonic() - started
    assert code == 0, err
    assert took < 10 + 20
    lines = out.splitlines()
    assert any(" arrived " in line for line in lines)
    assert any(" expired " in line for line in lines)
    assert any(" off page " in line for line in lines)
    assert lines[1].startswith("dashboard: http://127.0.0.1:")
    assert lines[-1].startswith("demo: ")
    assert "faults injected" in lines[-1]
    assert "Traceback" not in out + err


# -- watch -----------------------------------------------------------------------


async def read_json_events(stream: asyncio.StreamReader, count: int) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    while len(events) < count:
        line = await asyncio.wait_for(stream.readline(), DEADLINE)
        assert line, "watch ended early"
        events.append(json.loads(line))
    return events


async def test_watch_json_events_match_the_ground_truth(sim: Simulator) -> None:
    fe1 = sim.world.arrive("LOC1", fe_name="Ram", otc="123456", ttl=300)
    proc = await spawn(
        "watch",
        "LOC1",
        "LOC2",
        "--base-url",
        sim.base_url,
        "--interval",
        "0.2",
        "--format",
        "json",
        environ=token_env(sim),
    )
    assert proc.stdout is not None
    try:
        first = await read_json_events(proc.stdout, 3)  # two statuses, one arrival
        arrival = next(e for e in first if e["event"] == "fe_arrived")
        assert (arrival["location_id"], arrival["fe_id"], arrival["initial"]) == (
            "LOC1",
            fe1,
            True,
        )
        assert arrival["otc"] == "***"
        assert arrival["fe_name"] == "Ram"
        assert str(arrival["expires_at"]).endswith("Z")

        fe2 = sim.world.arrive("LOC2", fe_name="Shyam", ttl=300)
        sim.world.renew("LOC1", fe1, ttl=600)
        changes = await read_json_events(proc.stdout, 2)
        sim.world.leave("LOC1", fe1)
        changes += await read_json_events(proc.stdout, 1)
        sim.world.close_task("LOC2")
        changes += await read_json_events(proc.stdout, 2)
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), DEADLINE)
    assert code == 130
    names = {
        ChangeKind.ARRIVED: "fe_arrived",
        ChangeKind.RENEWED: "otc_renewed",
        ChangeKind.LEFT: "fe_departed",
    }
    truth = [
        (names[c.kind], c.location_id, c.fe_id)
        for c in sim.history
        if c.kind in names and c.fe_id is not None
    ][1:]  # after fe1's first arrival, which the first poll saw
    fe_events = [(e["event"], e["location_id"], e["fe_id"]) for e in changes if "fe_id" in e]
    assert sorted(fe_events) == sorted(truth)
    assert ("fe_departed", "LOC2", fe2) in fe_events
    statuses = [(e["location_id"], e["status"]) for e in changes if "status" in e]
    assert statuses == [("LOC2", "CLOSED")]


async def test_watch_text_masks_otcs_unless_asked(sim: Simulator) -> None:
    sim.world.arrive("LOC1", fe_name="Ram", otc="424242")
    for flag, shown in (([], False), (["--show-otc"], True)):
        code, out, err = await run(
            "watch",
            "LOC1",
            "--base-url",
            sim.base_url,
            "--interval",
            "0.2",
            "--duration",
            "1",
            *flag,
            environ=token_env(sim),
        )
        assert code == 0, err
        assert "Ram" in out
        assert ("424242" in out) is shown
        assert ("OTC ***" in out) is not shown
        assert sim.token not in out + err


async def test_sigint_ends_watch_quietly_with_130(sim: Simulator) -> None:
    proc = await spawn(
        "watch", "LOC1", "--base-url", sim.base_url, "--interval", "0.2", environ=token_env(sim)
    )
    assert proc.stdout is not None
    await asyncio.wait_for(proc.stdout.readline(), DEADLINE)  # it is running
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 130
    assert b"Traceback" not in out + err


async def test_no_credentials_says_which_variables_to_set() -> None:
    code, _, err = await run("watch", "LOC1", "--base-url", "http://127.0.0.1:9/sellers")
    assert code == 2
    assert "FLIPKART_ACCESS_TOKEN" in err
    assert "FLIPKART_APP_ID" in err
    assert "FLIPKART_APP_SECRET" in err


async def test_authentication_failure_exits_3_with_flipkarts_description(
    sim: Simulator,
) -> None:
    environ = env(FLIPKART_APP_ID=sim.app_id, FLIPKART_APP_SECRET="wrong-secret")
    for command in ("watch", "fetch"):
        code, out, err = await run(command, "LOC1", "--base-url", sim.base_url, environ=environ)
        assert code == 3, (command, err)
        assert "Bad credentials" in err
        assert "wrong-secret" not in out + err
        assert "Traceback" not in err


async def test_client_credentials_from_the_environment_work(sim: Simulator) -> None:
    sim.world.arrive("LOC1", fe_name="Ram")
    environ = env(FLIPKART_APP_ID=sim.app_id, FLIPKART_APP_SECRET=sim.app_secret)
    code, out, err = await run("fetch", "LOC1", "--base-url", sim.base_url, environ=environ)
    assert code == 0, err
    assert "Ram" in out
    assert sim.tokens_issued == 1


async def test_unknown_flag_prints_usage_and_exits_2() -> None:
    code, _, err = await run("watch", "--no-such-flag")
    assert code == 2
    assert "usage: flipkart-otc watch" in err


@pytest.mark.parametrize("command", ["demo", "watch", "fetch", "simulate"])
async def test_every_subcommand_has_help_with_an_example(command: str) -> None:
    code, out, _ = await run(command, "--help")
    assert code == 0
    assert f"usage: flipkart-otc {command}" in out
    assert "example: flipkart-otc" in out or "example: FLIPKART_" in out


# -- fetch -----------------------------------------------------------------------


async def test_fetch_prints_a_table_and_json(sim: Simulator) -> None:
    sim.world.arrive("LOC1", fe_id="fe1", fe_name="Ram", otc="555777")
    sim.world.close_task("LOC2")
    code, out, err = await run(
        "fetch", "LOC1", "LOC2", "LOC3", "--base-url", sim.base_url, environ=token_env(sim)
    )
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][:3] == ["LOCATION", "STATUS", "FE"]
    assert rows[1][:4] == ["LOC1", "ACTIVE", "fe1", "Ram"]
    assert "***" in rows[1]
    assert rows[2] == ["LOC2", "CLOSED"]
    assert rows[3] == ["LOC3", "NO_TASK"]
    assert "555777" not in out

    code, out, err = await run(
        "fetch",
        "LOC1",
        "--format",
        "json",
        "--show-otc",
        "--base-url",
        sim.base_url,
        environ=token_env(sim),
    )
    assert code == 0, err
    (data,) = [json.loads(line) for line in out.splitlines()]
    assert data["status"] == "ACTIVE"
    assert data["details"][0]["otc"] == "555777"


async def test_fetch_exits_1_when_a_location_fails(sim: Simulator) -> None:
    from flipkart_otc.simulator import FaultKind

    sim.faults.script(*[FaultKind.BAD_GATEWAY] * 10, location="LOC2")
    code, out, _ = await run(
        "fetch",
        "LOC1",
        "LOC2",
        "--timeout",
        "2",
        "--base-url",
        sim.base_url,
        environ=token_env(sim),
    )
    assert code == 1
    assert "BAD_GATEWAY_ERROR" in out


# -- hardening: no traceback, the documented exit code -------------------------------


async def test_a_stop_ends_a_command_that_swallows_a_cancellation() -> None:
    """redis-py can swallow a cancellation that lands while it connects (``tail``, the
    sink): Ctrl+C, SIGTERM or --duration must end the command all the same."""
    stopper = _Stopper(None)
    waiting, swallowed = asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        try:
            waiting.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()  # and goes on, as redis-py may
        await asyncio.Event().wait()

    run = asyncio.ensure_future(stopper.run_until_stopped(stubborn()))
    await waiting.wait()
    stopper.event.set()  # as SIGTERM does
    await asyncio.wait({run}, timeout=DEADLINE)  # a guard: without the fix, it waits on
    assert run.done(), "the command did not end"
    run.result()
    assert swallowed.is_set() and stopper.code == 0


def watch_args(sim: Simulator, *extra: str) -> tuple[str, ...]:
    return ("watch", "LOC1", "--base-url", sim.base_url, "--interval", "0.2", *extra)


async def test_a_closed_stdout_ends_watch_quietly(sim: Simulator) -> None:
    sim.world.arrive("LOC1", fe_name="Ram", ttl=300)
    proc = await spawn(*watch_args(sim, "--format", "json"), environ=token_env(sim))
    assert proc.stdout is not None and proc.stderr is not None
    await read_json_events(proc.stdout, 2)  # what `| head -2` reads, then it exits
    sim.world.arrive("LOC1", fe_name="Shyam", ttl=300)  # the next line meets a closed pipe
    proc.stdout.feed_eof()
    transport = proc._transport  # type: ignore[attr-defined]
    transport.get_pipe_transport(1).close()
    err = await asyncio.wait_for(proc.stderr.read(), DEADLINE)
    code = await asyncio.wait_for(proc.wait(), DEADLINE)
    assert code == 141
    assert err.decode() == ""


async def test_ctrl_c_at_start_up_and_twice_at_shutdown_print_no_traceback(
    sim: Simulator,
) -> None:
    proc = await spawn(*watch_args(sim), environ=token_env(sim))
    proc.send_signal(signal.SIGINT)  # at once: during imports and start-up
    _, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    # before Python installs its handler the signal itself ends the process: a shell
    # reports that as 130 too
    assert proc.returncode in (130, -signal.SIGINT) and "Traceback" not in err.decode()

    sim.faults.script(Fault(FaultKind.SLOW, delay=30), location="LOC1")
    proc = await spawn(*watch_args(sim), environ=token_env(sim))
    await asyncio.wait_for(sim.wait_for_requests(1), DEADLINE)  # its first poll hangs
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)  # impatient: the second stops it at once
    _, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    # when the first has already ended the command (a busy machine can hold the second
    # back), Python's finalization has put the default handler back: the signal itself
    # ends the process, which a shell reports as 130 too
    assert proc.returncode in (130, -signal.SIGINT) and "Traceback" not in err.decode()


async def test_bad_files_and_ports_get_one_line_and_their_exit_code(
    sim: Simulator, tmp_path: Path
) -> None:
    latin = tmp_path / "locations.txt"
    latin.write_bytes("LOC1\nLOC\xe92\n".encode("latin-1"))
    code, _, err = await run(
        *watch_args(sim, "--locations-file", str(latin)), environ=token_env(sim)
    )
    assert code == 2 and "not UTF-8" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1

    code, _, err = await run("simulate", "--port", "70000")
    assert code == 2 and "0..65535" in err and "Traceback" not in err

    code, _, err = await run("simulate", "--port", str(sim.port), "--duration", "1")
    assert code == 1 and f"cannot listen on 127.0.0.1:{sim.port}" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


async def test_a_locations_file_with_a_bom_and_repeats_fetches_each_once(
    sim: Simulator, tmp_path: Path
) -> None:
    sim.world.open_task("LOC5")
    listed = tmp_path / "locations.txt"
    listed.write_text("LOC5\n LOC2 \nLOC5  # again\n", encoding="utf-8-sig")
    code, out, err = await run(
        "fetch",
        "--locations-file",
        str(listed),
        "--base-url",
        sim.base_url,
        "--format",
        "json",
        environ=token_env(sim),
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["location_id"], r["status"]) for r in rows] == [
        ("LOC5", "ACTIVE"),
        ("LOC2", "ACTIVE"),
    ]
    assert all(r["fetched_at"] is not None for r in rows)  # ACTIVE with no FE: still fetched
    assert "LOC5 (2 times)" in err
    assert sim.requests["LOC5"] == 1 and sim.requests["\ufeffLOC5"] == 0


async def test_text_output_escapes_control_characters_from_the_server(sim: Simulator) -> None:
    sim.world.arrive("LOC1", fe_name="Ram\n12:00:00  LOC9  arrived  forged\x1b[2J", ttl=300)
    proc = await spawn(*watch_args(sim), environ=token_env(sim))
    assert proc.stdout is not None
    try:
        lines = [await asyncio.wait_for(proc.stdout.readline(), DEADLINE) for _ in range(2)]
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), DEADLINE)
    arrival = lines[1].decode()
    assert "Ram\\x0a12:00:00  LOC9  arrived  forged\\x1b[2J" in arrival
    assert "\x1b" not in arrival and arrival.count("\n") == 1


@pytest.mark.parametrize(
    "bad",
    [
        ("--base-url", "https://api.example.test/sellers?token=abc"),
        ("--token", "tok\x01en"),
        ("--token-url", "ftp://example.test/token"),
    ],
)
async def test_a_bad_url_or_credential_is_one_line_and_exit_2(bad: tuple[str, str]) -> None:
    base = () if bad[0] == "--base-url" else ("--base-url", "http://127.0.0.1:9/sellers")
    creds = ("--app-id", "a", "--app-secret", "b") if bad[0] == "--token-url" else ()
    code, _, err = await run("fetch", "LOC1", *base, *creds, *bad, environ=env())
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "abc" not in err and "tok\x01en" not in err  # neither a query value nor a secret


async def test_a_name_the_terminal_cannot_encode_is_escaped(sim: Simulator) -> None:
    sim.world.arrive("LOC1", fe_name="R\u0101m", ttl=300)
    code, out, err = await run(
        "fetch",
        "LOC1",
        "--base-url",
        sim.base_url,
        environ=token_env(sim) | {"PYTHONIOENCODING": "ascii"},
    )
    assert code == 0 and "Traceback" not in err
    assert "R\\u0101m" in out


async def test_watch_fixed_interval_polls_a_location_with_no_task_at_the_interval(
    sim: Simulator,
) -> None:
    # adaptive, a location with no task is polled every two minutes, past the deadline
    proc = await spawn(
        "watch",
        "LOC9",
        "--base-url",
        sim.base_url,
        "--interval",
        "0.2",
        "--fixed-interval",
        "--format",
        "json",
        environ=token_env(sim),
    )
    assert proc.stdout is not None
    try:
        (first,) = await read_json_events(proc.stdout, 1)
        assert first["status"] == "NO_TASK"
        sim.world.open_task("LOC9")
        (second,) = await read_json_events(proc.stdout, 1)
        assert (second["location_id"], second["status"]) == ("LOC9", "ACTIVE")
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), DEADLINE) == 130


# -- dashboard ---------------------------------------------------------------------


async def test_dashboard_serves_the_page_and_its_probe_then_stops_on_ctrl_c(
    sim: Simulator,
) -> None:
    proc = await spawn(
        "dashboard",
        "LOC1",
        "--base-url",
        sim.base_url,
        "--port",
        "0",
        "--interval",
        "0.2",
        environ=token_env(sim),
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), DEADLINE)).decode()
        assert line.startswith("flipkart-otc dashboard: http://127.0.0.1:"), line
        url = line.split()[2]
        async with aiohttp.ClientSession() as http:
            page = await http.get(url)
            assert page.status == 200 and "static/app.js" in await page.text()
            await sim.wait_for_requests(1)
            health = await (await http.get(url + "healthz")).json()
            assert health["running"] is True
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), DEADLINE)
    assert code == 130
    assert proc.stderr is not None
    assert "Traceback" not in (await proc.stderr.read()).decode()


@pytest.mark.parametrize(
    ("extra", "environ", "message"),
    [
        ([], {}, "--host 0.0.0.0 is not a loopback address"),
        (["--access-key-env", "KEY"], {}, "$KEY is not set or empty"),
        (["--access-key-env", "KEY"], {"KEY": "hunter2"}, "shorter than 16"),
    ],
)
async def test_dashboard_on_another_address_needs_an_access_key(
    sim: Simulator, extra: list[str], environ: dict[str, str], message: str
) -> None:
    code, out, err = await run(
        "dashboard",
        "LOC1",
        "--base-url",
        sim.base_url,
        "--host",
        "0.0.0.0",
        *extra,
        environ=token_env(sim) | environ,
    )
    assert code == 2
    assert message in err and out == ""
    assert "hunter2" not in err and "Traceback" not in err
    assert sum(sim.requests.values()) == 0  # refused before polling anything


async def test_dashboard_with_a_busy_port_says_so(sim: Simulator) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = await run(
            "dashboard",
            "LOC1",
            "--base-url",
            sim.base_url,
            "--port",
            str(port),
            environ=token_env(sim),
        )
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


# -- fetch --visit -----------------------------------------------------------------


@pytest.fixture
async def visit() -> AsyncIterator[Simulator]:
    """LOC1 with an FE on each page of the visit; LOC2 without a task."""
    async with Simulator() as s:
        world = s.world
        world.open_task("LOC1")
        world.arrive("LOC1", fe_id="fe1", fe_name="Ram", ttl=300)
        world.arrive("LOC1", fe_id="fe2", fe_name="Asha", ttl=300)
        world.start_scanning("LOC1", "fe2")
        world.scan("LOC1", "fe2")
        world.scan("LOC1", "fe2", accepted=False)
        world.arrive("LOC1", fe_id="fe3", fe_name="Ravi", ttl=300)
        world.start_scanning("LOC1", "fe3")
        for _ in range(3):
            world.scan("LOC1", "fe3", obd_eligible=True, obd_ok=False)
        world.to_end_otc("LOC1", "fe3")
        yield s


async def test_fetch_visit_shows_each_fes_page_and_scans_as_json(visit: Simulator) -> None:
    args = ["fetch", "LOC1", "LOC2", "--visit", "--format", "json", "--base-url"]
    code, out, err = await run(*args, visit.base_url, environ=token_env(visit))
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    for row in rows:
        jsonschema.validate(row, json_schema())
    loc1, loc2 = rows
    assert (loc2["status"], loc2["visit"]) == ("NO_TASK", [])
    fes = {fe["fe_id"]: fe for fe in loc1["visit"]}
    assert {k: (v["page"], v["scanned"], v["rejected"]) for k, v in fes.items()} == {
        "fe1": ("StartOtc", None, None),
        "fe2": ("Scanning", 2, 1),
        "fe3": ("EndOtc", 3, 0),
    }
    assert all(fe["end_otc"] is None for fe in fes.values())  # not asked for: none made
    assert not [c for c in visit.history if c.kind is ChangeKind.END_OTC_ISSUED]


async def test_fetch_visit_end_otc_only_when_asked_and_masked_unless_shown(
    visit: Simulator,
) -> None:
    args = ["fetch", "LOC1", "--visit", "--end-otc", "--base-url", visit.base_url]
    code, out, err = await run(*args, environ=token_env(visit))
    assert code == 0, err
    assert "Scanning  2 (1 rejected)" in out
    assert "OTC *** (3 scanned, 3 OBD and 0 flyer checks failed)" in out
    code, out, err = await run(*args, "--show-otc", "--format", "json", environ=token_env(visit))
    assert code == 0, err
    (row,) = [json.loads(line) for line in out.splitlines()]
    (fe3,) = [fe for fe in row["visit"] if fe["fe_id"] == "fe3"]
    issued = [c.otc for c in visit.history if c.kind is ChangeKind.END_OTC_ISSUED]
    assert len(issued) == 2 and fe3["end_otc"]["otc"] == issued[-1]


async def test_fetch_end_otc_needs_visit(visit: Simulator) -> None:
    code, out, err = await run(
        "fetch", "LOC1", "--end-otc", "--base-url", visit.base_url, environ=token_env(visit)
    )
    assert code == 2 and "--end-otc goes with --visit" in err and out == ""


async def test_dashboard_visit_shows_each_fes_stage_and_scans(visit: Simulator) -> None:
    proc = await spawn(
        "dashboard", "LOC1", "--visit", "--scan-interval", "0.2", "--interval", "0.2",
        "--base-url", visit.base_url, "--port", "0", environ=token_env(visit),
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), DEADLINE)).decode()
        url = line.split()[2]
        async with aiohttp.ClientSession() as http, http.get(url + "events") as stream:
            # fe1 is at the door (the Start OTC part of the page), fe2 scanning, fe3 on the
            # End OTC page with its code (masked: no --show-otc)
            expected = {"fe2": ("scanning", False), "fe3": ("end_otc", True)}
            stages: dict[str, tuple[object, object]] = {}
            while stages != expected:  # the picture, then the events, until both are seen
                raw = await asyncio.wait_for(stream.content.readline(), DEADLINE)
                if not raw.startswith(b"data: "):
                    continue
                data = json.loads(raw[6:])
                for location in data.get("locations", []):
                    for v in location["visits"]:
                        stages[v["fe_id"]] = (v["stage"], v["end_otc"] is not None)
                if data.get("event") == "scanning_started":
                    stages[data["fe_id"]] = ("scanning", False)
                elif data.get("event") == "end_otc_ready":
                    stages[data["fe_id"]] = ("end_otc", data["otc"] == "***")
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), DEADLINE)
    assert code == 130


async def test_dashboard_source_takes_no_worker_options() -> None:
    for extra in (["--sink", "redis://127.0.0.1:1/0"], ["--shard", "0/2"]):
        code, out, err = await run("dashboard", "--source", "redis://127.0.0.1:1/0", *extra)
        assert (code, out) == (2, "") and "takes no --sink or --shard" in err
        assert "Traceback" not in err


# -- watch --visit -------------------------------------------------------------------


async def test_watch_visit_prints_the_whole_visit_as_json(sim: Simulator) -> None:
    world = sim.world
    fe = world.arrive("LOC1", fe_name="Ram", ttl=300)
    proc = await spawn(
        "watch",
        "LOC1",
        "--visit",
        "--interval",
        "0.2",
        "--scan-interval",
        "0.2",
        "--fixed-interval",
        "--format",
        "json",
        "--base-url",
        sim.base_url,
        environ=token_env(sim),
    )
    assert proc.stdout is not None
    try:

        async def until(kind: str) -> list[dict[str, object]]:
            got: list[dict[str, object]] = []
            while not got or got[-1]["event"] != kind:
                got += await read_json_events(proc.stdout, 1)  # type: ignore[arg-type]
            return got

        seen = await until("fe_arrived")
        world.start_scanning("LOC1", fe)
        seen += await until("scanning_started")
        tracking = world.scan("LOC1", fe, accepted=False, reason="Torn")
        seen += await until("shipment_scanned")
        world.to_end_otc("LOC1", fe)
        seen += await until("end_otc_ready")
        world.complete("LOC1", fe)
        seen += await until("visit_completed")
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), DEADLINE)
    assert code == 130
    for event in seen:
        jsonschema.validate(event, json_schema())
    scanned = next(e for e in seen if e["event"] == "shipment_scanned")
    assert (scanned["tracking_id"], scanned["status"], scanned["reason"]) == (
        tracking,
        "REJECTED",
        "Torn",
    )
    end = next(e for e in seen if e["event"] == "end_otc_ready")
    assert (end["otc"], end["total_scanned"]) == ("***", 1)
    assert seen[-1] == seen[-1] | {"fe_id": fe, "scanned": 1}
