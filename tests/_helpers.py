"""What several test modules share: sample answers, a stand-in server, the secret
check, the command line as a subprocess, the location model's fixtures, and JSON values
for fuzzing. Tests import these from here, never from another test module."""

from __future__ import annotations

import asyncio
import base64
import enum
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _redis_server import RedisServer
from aiohttp import ClientResponse, web
from hypothesis import strategies as st

from flipkart_otc import (
    Lob,
    LocationStatus,
    OtcDetail,
    ServiceUnavailableError,
    TaskNotFoundError,
    TripsheetClosedError,
)
from flipkart_otc._location import LocationState, Step, commit
from flipkart_otc.errors import FlipkartOtcError
from flipkart_otc.events import OtcEvent
from flipkart_otc.simulator import Simulator

# -- answers as Flipkart sends them, and secrets to look for -------------------------

CANARY_TOKEN = "tok-CANARY-7f3a9"
CANARY_SECRET = "secret-CANARY-41c2"
CANARY_OTC = "987123"


def entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "feName": "Ram",
        "taskId": "123",
        "otc": "123456",
        "expiryTime": 1739382981000,
        "createdAt": 1739382681000,
        "logisticPartner": "eKart",
        "lob": "LARGE",
    }
    base.update(overrides)
    return base


def answer(**fes: dict[str, Any]) -> bytes:
    return json.dumps({"otcDetails": fes}).encode()


def error_body(code: str, message: str = "oops") -> dict[str, str]:
    return {"errorCode": code, "message": message}


BASIC = base64.b64encode(f"app:{CANARY_SECRET}".encode()).decode()


# -- a misbehaving Flipkart, and where a secret may show -----------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(routes: Mapping[tuple[str, str], Handler]) -> AsyncIterator[str]:
    """A misbehaving Flipkart on 127.0.0.1; yields its origin."""
    app = web.Application()
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)  # many connect at once
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def reachable(value: object, seen: set[int] | None = None) -> Iterator[str]:
    """Every text an exception exposes: str, repr, args, attributes, causes, contexts."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, (str, bytes)):
        yield value if isinstance(value, str) else value.decode("utf-8", "replace")
        return
    if isinstance(value, (int, float, bool)) or value is None:
        return
    yield repr(value)
    if isinstance(value, (type, enum.Enum)) or callable(value):
        return  # classes, enum members, functions: their repr is what they show
    if isinstance(value, BaseException):
        yield str(value)
        for part in (*value.args, value.__cause__, value.__context__):
            yield from reachable(part, seen)
    if isinstance(value, dict):
        for key, item in value.items():
            yield from reachable(key, seen)
            yield from reachable(item, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from reachable(item, seen)
    for name in getattr(value, "__dict__", {}):
        yield from reachable(getattr(value, name), seen)
    for name in getattr(type(value), "__slots__", ()):
        yield from reachable(getattr(value, name, None), seen)


def assert_no_secret(*things: object, secrets: tuple[str, ...] = ()) -> None:
    secrets = secrets or (CANARY_TOKEN, CANARY_SECRET, BASIC, CANARY_OTC)
    blob = "\n".join(text for thing in things for text in reachable(thing))
    for secret in secrets:
        assert secret not in blob


# -- the command line as a subprocess -------------------------------------------------

DEADLINE = 60  # a guard against a hung subprocess, never a wait for an outcome


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLIPKART_")}
    base["PYTHONUNBUFFERED"] = "1"
    base.update(extra)
    return base


async def spawn(*args: str, environ: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """``python -m flipkart_otc ARGS`` with piped output."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flipkart_otc",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ or env(),
    )


async def run(*args: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await spawn(*args, environ=environ)
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def token_env(sim: Simulator) -> dict[str, str]:
    return env(FLIPKART_ACCESS_TOKEN=sim.token)


# -- the location model --------------------------------------------------------------

T0 = 1_767_225_600.0
FAILURES: dict[LocationStatus, FlipkartOtcError] = {
    LocationStatus.NO_TASK: TaskNotFoundError(400, "TRIPSHEET_TASK_NOT_FOUND"),
    LocationStatus.CLOSED: TripsheetClosedError(400, "TRIPSHEET_CLOSED_ERROR"),
    LocationStatus.FAILING: ServiceUnavailableError(503, "SERVICE_UNAVAILABLE_ERROR"),
}


def detail(fe_id: str, otc: str, expires: float, created: float = T0) -> OtcDetail:
    return OtcDetail(
        fe_id,
        "Ram",
        "t1",
        otc,
        datetime.fromtimestamp(expires, UTC),
        datetime.fromtimestamp(created, UTC),
        "eKart",
        Lob.LARGE,
        "LARGE",
    )


def step(state: LocationState, transition: object, now: float) -> list[OtcEvent]:
    """What the watcher does: take the step's events, then commit it."""
    if transition is None:
        return []
    assert isinstance(transition, Step)
    commit(state, transition, now)
    return list(transition.events)


# -- arbitrary JSON, for fuzzing parsers ---------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


# -- a dashboard's event stream ----------------------------------------------------


class Stream:
    """The messages of one event stream, as a browser's EventSource parses them."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response
        self.raw = bytearray()

    async def next(self, *, skip: tuple[str, ...] = ("time",)) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = {}
            data: list[str] = []
            while True:
                line = await asyncio.wait_for(self.response.content.readline(), 10)
                assert line, f"the stream ended; got so far {bytes(self.raw)!r}"
                self.raw += line
                text = line.decode().rstrip("\r\n")
                if not text:
                    if data or message:
                        break
                    continue
                if text.startswith(":"):
                    continue
                name, _, value = text.partition(":")
                value = value.removeprefix(" ")
                if name == "data":
                    data.append(value)
                else:
                    message[name] = value
            message["data"] = json.loads("\n".join(data))
            message.setdefault("event", "message")  # what EventSource calls an unnamed one
            if message.get("event") not in skip:
                return message

    async def until_end(self) -> list[dict[str, Any]]:
        messages = []
        while True:
            try:
                messages.append(await self.next(skip=()))
            except AssertionError:
                return messages


# -- shard workers writing to one Redis stream ---------------------------------------

STREAM = "fleet:events"
INTERVAL = 0.25
SHARDS = 2


class Worker:
    """One shard worker process, restartable."""

    def __init__(self, shard: int, sim: Simulator, server: RedisServer, ids: Path) -> None:
        self.shard = shard
        self.args = [
            "watch", "--locations-file", str(ids), "--base-url", sim.base_url,
            "--interval", str(INTERVAL), "--fixed-interval", "--show-otc",
            "--sink", server.url, "--stream", STREAM, "--shard", f"{shard}/{SHARDS}",
        ]  # fmt: skip
        self.environ = env(FLIPKART_ACCESS_TOKEN=sim.token)
        self.process: asyncio.subprocess.Process | None = None
        self.gaps: list[tuple[float, float]] = []  # (killed, running again)
        self.resumed: list[int] = []

    async def start(self) -> None:
        spawned = time.time()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flipkart_otc", *self.args,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.environ,
        )  # fmt: skip
        assert self.process.stderr is not None
        # it says so once its saved state is loaded and polling starts
        line = await asyncio.wait_for(self.process.stderr.readline(), DEADLINE)
        assert b"watching" in line, line
        self.resumed.append(int(line.split(b"; ")[1].split()[0]))
        self.gaps.append((spawned, time.time() + INTERVAL))

    async def kill_and_restart(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        await self.start()  # its gap: from the old process's death (well, the new one's
        # spawn, a moment later) to its first polls

    async def stop(self) -> str:
        assert self.process is not None and self.process.stderr is not None
        self.process.send_signal(signal.SIGTERM)
        err = await asyncio.wait_for(self.process.stderr.read(), DEADLINE)
        code = await self.process.wait()
        assert code == 0, err
        return err.decode()


async def stream_entries(url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The fleet stream's events: every entry as written (raw), and each event once,
    de-duplicated by its event id (what a reader keeps)."""
    import redis.asyncio as aioredis  # the `redis` extra: only the fleet tests need it

    async with aioredis.Redis.from_url(url) as r:
        rows: Any = await r.xrange(STREAM)
    raw = [(f[b"id"].decode(), json.loads(f[b"event"])) for _, f in rows]
    unique: dict[str, dict[str, Any]] = {}
    for event_id, event in raw:
        unique.setdefault(event_id, event)
    return [event for _, event in raw], list(unique.values())


async def stream_length_reaches(server: RedisServer, count: int) -> None:
    """Block on the stream (XREAD BLOCK) until it holds ``count`` entries."""
    import redis.asyncio as aioredis  # the `redis` extra: only the fleet tests need it

    async with aioredis.Redis.from_url(server.url) as r:
        last = "0-0"
        while await r.xlen(STREAM) < count:
            await r.xread({STREAM: last}, count=1000, block=1000)
            tail: Any = await r.xrevrange(STREAM, count=1)
            last = tail[0][0].decode() if tail else last
