"""A real Prometheus (Debian's binary, on a free loopback port with its own config and
data folder) scrapes a real ``flipkart-otc watch --metrics-port`` process watching the
simulator; and the dashboard and the probes port served over TLS with a certificate
made here by Debian's ``openssl``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flipkart_otc import _serving
from flipkart_otc.simulator import Simulator

DEADLINE = 60.0  # a guard against a hung process, never a wait for an outcome
PROMETHEUS = "/usr/bin/prometheus"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLIPKART_")}
    base["PYTHONUNBUFFERED"] = "1"
    base.update(extra)
    return base


async def until(check: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Ask ``check()`` (a coroutine function) again until it returns something true;
    bounded by ``deadline``. Prometheus scrapes on its own schedule: there is no event
    to wait on but its answers."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def cli(*args: str, environ: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flipkart_otc",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), DEADLINE)


async def line_matching(stream: asyncio.StreamReader | None, pattern: str) -> re.Match[str]:
    assert stream is not None
    seen: list[str] = []
    while True:
        raw = await asyncio.wait_for(stream.readline(), DEADLINE)
        if not raw:
            raise AssertionError(f"no line matching {pattern!r} in {seen}")
        line = raw.decode()
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found


class Prometheus:
    """One prometheus process scraping ``target`` every second."""

    def __init__(self, folder: Path, target: str, scheme: str = "http") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = folder / "prometheus.yml"
        config.write_text(
            json.dumps(  # YAML is a superset of JSON
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "flipkart-otc",
                            "scheme": scheme,
                            "static_configs": [{"targets": [target]}],
                        }
                    ],
                }
            )
        )
        (folder / "data").mkdir()
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def query(self, session: aiohttp.ClientSession, expr: str) -> list[dict[str, Any]]:
        async with session.get(self.url + "/api/v1/query", params={"query": expr}) as r:
            data = await r.json()
        assert data["status"] == "success", data
        return data["data"]["result"]  # type: ignore[no-any-return]

    async def ready(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(self.url + "/-/ready") as r:
                return r.status == 200
        except aiohttp.ClientConnectionError:
            assert self.process.poll() is None, "prometheus exited"
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def prometheus_binary() -> str:
    if shutil.which(PROMETHEUS) is None:
        if os.environ.get("FLIPKART_OTC_REQUIRE_PROMETHEUS"):
            pytest.fail("prometheus is not installed (apt-get install prometheus)")
        pytest.skip("prometheus is not installed")
    return PROMETHEUS


async def test_prometheus_scrapes_a_watch_process(prometheus_binary: str, tmp_path: Path) -> None:
    async with Simulator() as sim:
        sim.world.open_task("LOC1")
        sim.world.arrive("LOC1", fe_name="Ram", ttl=3600)
        sim.world.open_task("LOC2")  # LOC3: no task
        async with cli(
            "watch",
            "LOC1",
            "LOC2",
            "LOC3",
            "--base-url",
            sim.base_url,
            "--fixed-interval",
            "--interval",
            "0.5",
            "--metrics-port",
            "0",
            environ=env(FLIPKART_ACCESS_TOKEN=sim.token),
        ) as watch:
            found = await line_matching(watch.stderr, r"probes and metrics on http://([\d.:]+)/")
            target = found.group(1)
            server = Prometheus(tmp_path, target)
            try:
                async with aiohttp.ClientSession() as session:
                    await until(lambda: server.ready(session), "prometheus to be ready")

                    async def polled() -> float:
                        rows = await server.query(session, "sum(flipkart_otc_polls_total)")
                        return float(rows[0]["value"][1]) if rows else 0.0

                    assert await until(polled, "a scrape with polls") > 0

                    async def by_status() -> dict[str, float] | None:
                        rows = await server.query(session, "flipkart_otc_locations")
                        got = {r["metric"]["status"]: float(r["value"][1]) for r in rows}
                        want = {"ACTIVE": 2, "NO_TASK": 1, "CLOSED": 0, "FAILING": 0}
                        return got if got == want | {"PENDING": 0} else None

                    got = await until(by_status, "the locations by status")
                    assert got["ACTIVE"] == 2 and got["NO_TASK"] == 1
                    rows = await server.query(session, 'up{job="flipkart-otc"}')
                    assert [float(r["value"][1]) for r in rows] == [1.0]
                    rows = await server.query(session, "flipkart_otc_fes_present")
                    assert [float(r["value"][1]) for r in rows] == [1.0]
                    # no location id ever becomes a label
                    async with session.get(server.url + "/api/v1/labels") as r:
                        labels = (await r.json())["data"]
                    assert not {"location", "location_id"} & set(labels)
            finally:
                server.stop()
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://{target}/readyz") as r,
            ):
                assert r.status == 200
                assert (await r.json())["reasons"] == []


# -- TLS ------------------------------------------------------------------------------


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by Debian's openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=DEADLINE,
    )
    return cert, key


async def test_the_dashboard_and_the_probes_port_serve_over_tls(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    access = "a-key-of-twenty-chars"
    async with Simulator() as sim:
        sim.world.open_task("LOC1")
        tls = ("--tls-cert", str(cert), "--tls-key", str(key))
        environ = env(FLIPKART_ACCESS_TOKEN=sim.token, OTC_KEY=access)
        async with (
            cli(
                "dashboard", "LOC1", "--base-url", sim.base_url, "--port", "0",
                "--access-key-env", "OTC_KEY", *tls, environ=environ,
            ) as page,
            cli(
                "watch", "LOC1", "--base-url", sim.base_url, "--metrics-port", "0", *tls,
                environ=environ,
            ) as watch,
        ):  # fmt: skip
            page_url = (await line_matching(page.stdout, r"dashboard: (https://\S+/) ")).group(1)
            probes_url = (
                await line_matching(watch.stderr, r"probes and metrics on (https://\S+/) ")
            ).group(1)
            # unsafe: the jar keeps a cookie from an IP address (127.0.0.1)
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
                for url in (page_url, probes_url):
                    async with session.get(url + "healthz", ssl=trust) as r:
                        assert r.status == 200
                        assert (await r.json())["running"] is True
                    with pytest.raises(aiohttp.ClientConnectorCertificateError):
                        await session.get(url + "healthz")  # untrusted: refused
                    plain = url.replace("https://", "http://")
                    with pytest.raises(aiohttp.ClientError):  # no plain HTTP on that port
                        async with session.get(plain + "healthz") as r:
                            await r.read()
                async with session.get(page_url, ssl=trust) as r:
                    assert r.status == 401  # the login form: the key is needed
                    assert "access key" in await r.text()
                async with session.post(
                    page_url + "login", data={"key": access}, ssl=trust, allow_redirects=False
                ) as r:
                    assert r.status == 303
                    cookie = r.headers["Set-Cookie"]
                assert "Secure" in cookie and "HttpOnly" in cookie
                async with session.get(page_url, ssl=trust) as r:  # the cookie jar sends it
                    assert r.status == 200
                    assert "<html" in (await r.text()).lower()
                async with session.get(probes_url + "metrics", ssl=trust) as r:
                    assert r.status == 200
                    assert "flipkart_otc_polls_total" in await r.text()
        assert access not in (await page.stderr.read()).decode()  # type: ignore[union-attr]


def test_plain_http_beyond_loopback_is_warned_about_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_serving, "_warned", False)
    said: list[str] = []
    _serving.warn_if_clear("127.0.0.1", None, said.append)  # loopback: nothing to say
    assert said == []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _serving.warn_if_clear("192.0.2.7", context, said.append)  # TLS: nothing to say
    assert said == []
    _serving.warn_if_clear("192.0.2.7", None, said.append)
    _serving.warn_if_clear("192.0.2.8", None, said.append)
    assert len(said) == 1
    assert "192.0.2.7" in said[0] and "--tls-cert" in said[0] and "clear" in said[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("watch", "LOC1", "--metrics-port", "0", "--metrics-host", "192.0.2.1"),
            "--metrics-host 192.0.2.1 is not a loopback address",
        ),
        (
            ("watch", "LOC1", "--tls-cert", "c.pem", "--tls-key", "k.pem"),
            "goes with --metrics-port",
        ),
        (("watch", "LOC1", "--metrics-port", "0", "--tls-cert", "c.pem"), "go together"),
        (
            ("dashboard", "LOC1", "--tls-cert", "/nonexistent/c.pem", "--tls-key", "k.pem"),
            "--tls-cert /nonexistent/c.pem: cannot read it (no such file)",
        ),
    ],
)
async def test_bad_serving_options_are_usage_errors_before_anything_starts(
    args: tuple[str, ...], message: str
) -> None:
    environ = env(FLIPKART_ACCESS_TOKEN="t" * 20)
    base = ("--base-url", "http://127.0.0.1:9/sellers")  # never reached: refused before
    async with cli(*args, *base, environ=environ) as proc:
        _, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode == 2, err
    assert message in err.decode()
    assert "Traceback" not in err.decode()
    assert "t" * 20 not in err.decode()
