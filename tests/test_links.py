"""Every relative link in the repository's documents points at a file in the
repository: a clone has nothing beside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [
    ROOT / "README.md",
    ROOT / "benchmarks" / "README.md",
    *sorted(ROOT.glob("docs/*.md")),
]

#: ``[text](target)`` and ``![alt](target)``, the target up to a space or ``)``.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)")
#: A path in a code span: has a slash and a file suffix (``docs/x.md``, ``../a/b.txt``).
PATH = re.compile(r"`(\.{0,2}/?[\w.-]+(?:/[\w.-]+)+\.[a-z]{2,5})`")


def targets(document: Path) -> list[str]:
    text = document.read_text(encoding="utf-8")
    links = [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z+.-]*:|#", t)]
    return links + PATH.findall(text)


def resolves(document: Path, target: str) -> bool:
    path = target.split("#", 1)[0]
    for base in (document.parent, ROOT):  # relative to the document, or to the root
        candidate = (base / path).resolve()
        if candidate.is_relative_to(ROOT) and candidate.is_file():
            return True
    return False


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_is_a_file_in_the_repository(document: Path) -> None:
    found = targets(document)
    assert [t for t in found if not resolves(document, t)] == []


def test_the_link_finder_sees_links_and_paths() -> None:
    assert "docs/getting-started.md" in targets(ROOT / "README.md")  # a markdown link
    assert "dashboard.png" in targets(ROOT / "docs" / "dashboard.md")  # an image
    assert not resolves(ROOT / "README.md", "../shared/spec/visit-endpoints.md")
    assert not resolves(ROOT / "docs" / "deployment.md", "../../README.md")  # outside
