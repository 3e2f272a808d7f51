"""A private ``redis-server`` for the tests: a free 127.0.0.1 port, a temporary
directory, append-only file fsynced on every write (so a restart keeps what it
acknowledged), started and stopped by a fixture. Never a fake."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

READY = b"Ready to accept connections"


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process; ``kill()`` and ``start()`` again keep its data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._drainer: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = redis_server_binary()
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--protected-mode",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                "",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        ready = threading.Event()
        seen: list[bytes] = []
        stdout = self.process.stdout
        assert stdout is not None

        def drain() -> None:  # its own log says when it listens; read on, never block it
            for line in stdout:
                seen.append(line)
                del seen[:-50]
                if READY in line:
                    ready.set()
            ready.set()  # it exited

        self._drainer = threading.Thread(target=drain, daemon=True)
        self._drainer.start()
        ready.wait()
        if self.process.poll() is not None:
            raise RuntimeError(b"redis-server did not start:\n" + b"".join(seen))

    def kill(self) -> None:
        """SIGKILL, and wait for it to be gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        if self._drainer is not None:
            self._drainer.join()  # it reads to the end of the dead server's output
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


def require_redis_server() -> None:
    if redis_server_binary() is None:
        if os.environ.get("FLIPKART_OTC_REQUIRE_REDIS"):
            pytest.fail("redis-server is not installed and FLIPKART_OTC_REQUIRE_REDIS is set")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
