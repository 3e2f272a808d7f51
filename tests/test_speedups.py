"""``FLIPKART_OTC_NO_SPEEDUPS`` keeps the library to the standard library where the
`speedups` extra is installed: here a stand-in orjson and uvloop that say when used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flipkart_otc._speedups import NO_SPEEDUPS_ENV

FAKES = {
    "orjson.py": "import json\nused = []\n"
    "def loads(b):\n    used.append(1)\n    return json.loads(b)\n",
    "uvloop.py": "import asyncio\nclass EventLoopPolicy(asyncio.DefaultEventLoopPolicy):\n"
    "    used = True\n",
}

PROBE = """
import asyncio, sys
from flipkart_otc._wire.start_otc import parse_snapshot
from flipkart_otc._commands import _install_uvloop
from datetime import datetime, UTC
parse_snapshot(b'{"otcDetails": {}}', "LOC1", datetime.now(UTC))
_install_uvloop()
policy = asyncio.get_event_loop_policy()
print(len(sys.modules["orjson"].used) if "orjson" in sys.modules else 0,
      getattr(policy, "used", False))
"""


@pytest.mark.parametrize(("value", "expected"), [(None, "1 True"), ("1", "0 False")])
def test_the_knob_turns_the_speedups_off(tmp_path: Path, value: str | None, expected: str) -> None:
    for name, text in FAKES.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != NO_SPEEDUPS_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    if value is not None:
        env[NO_SPEEDUPS_ENV] = value
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
