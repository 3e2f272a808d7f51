"""The documentation site covers every public name, and the README's links lead to its
pages (``mkdocs build --strict`` in CI checks the links between pages)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import flipkart_otc

ROOT = Path(__file__).resolve().parent.parent
API = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
DOCUMENTED = set(re.findall(r"^::: ([\w.]+)$", API, flags=re.MULTILINE))
# names of an extras package defined in another of its modules than the usual one
_ELSEWHERE = {"RedisRateLimiter": "redis_limiter"}


def test_every_public_name_has_its_entry_in_the_api_reference() -> None:
    exports: dict[str, str] = flipkart_otc._exports()
    missing = [
        f"flipkart_otc{module}.{name}"
        for name, module in exports.items()
        if f"flipkart_otc{module}.{name}" not in DOCUMENTED
    ]
    assert missing == []
    assert set(flipkart_otc.__all__) == {*exports, "__version__"}


def test_the_public_names_of_the_extras_modules_are_there_too() -> None:
    for module, documented_as in (
        ("flipkart_otc.metrics", "flipkart_otc.metrics"),
        ("flipkart_otc.probes", "flipkart_otc.probes"),
        ("flipkart_otc.dashboard", "flipkart_otc.dashboard"),
        ("flipkart_otc.sinks", "flipkart_otc.sinks.redis_streams"),
        ("flipkart_otc.simulator", "flipkart_otc.simulator"),
    ):
        names = importlib.import_module(module).__all__
        missing = [
            n
            for n in names
            if f"{documented_as}.{n}" not in DOCUMENTED
            and f"{module}.{_ELSEWHERE.get(n, '')}.{n}" not in DOCUMENTED
        ]
        assert missing == [], module


def test_every_entry_names_something_that_exists() -> None:
    for path in DOCUMENTED:
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), path


def test_the_readme_links_to_pages_that_exist_and_every_page_is_in_the_nav() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)\)", readme)
    assert len(targets) >= 10
    for target in targets:
        assert (ROOT / target).is_file(), target
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        assert f": {page.name}\n" in nav, page.name
