"""The README's two set-up commands are the ones CI and the demo test run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    top = readme.split("\n## ", 1)[0]  # the blocks above the first section
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", top, flags=re.DOTALL)]


def test_exactly_two_setup_blocks_on_top() -> None:
    assert len(setup_blocks()) == 2
    assert all("\n" not in block for block in setup_blocks())  # one copy-paste line each


def test_the_test_block_is_what_ci_runs() -> None:
    _, tests = setup_blocks()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert tests in ci
    assert tests.endswith("python -m pytest")


def test_the_demo_block_runs_the_demo_the_tests_run() -> None:
    demo, _ = setup_blocks()
    setup, _, command = demo.rpartition(" && ")
    assert command == "flipkart-otc demo"  # test_cli runs `python -m flipkart_otc demo`
    assert setup == (
        "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dashboard]'"
    )
    assert '"aiohttp-sse' in pyproject_extra("dashboard")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'flipkart-otc = "flipkart_otc.cli:main"' in pyproject
    main = (ROOT / "flipkart_otc" / "__main__.py").read_text(encoding="utf-8")
    assert "from .cli import main" in main


def pyproject_extra(name: str) -> str:
    """The lines of one optional-dependency group of pyproject.toml."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return pyproject.split(f"\n{name} = [", 1)[1].split("]", 1)[0]
