"""A griffe extension for the API reference: the docstrings are written for Sphinx-ish
readers (``:class:`~flipkart_otc.X``` roles, ``>>>`` examples); Markdown shows a role as
its name in code, and an example as a Python block."""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|attr|data|mod|exc|obj):`(~?)([\w.]+)(?:\(\))?`")


def _role(match: re.Match[str]) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def _examples(text: str) -> str:
    """Consecutive ``>>>``/``...`` lines become one fenced Python block."""
    out: list[str] = []
    block: list[str] = []
    for line in [*text.split("\n"), ""]:
        stripped = line.lstrip()
        if stripped.startswith((">>> ", "... ")) or stripped in (">>>", "..."):
            code = stripped[4:]
            block.append(code.replace("  # doctest: +SKIP", ""))
            continue
        if block:
            out += ["```python", *block, "```"]
            block = []
        out.append(line)
    return "\n".join(out[:-1])


class RstRoles(griffe.Extension):
    """Rewrite each docstring's roles and examples for Markdown."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _examples(_ROLE.sub(_role, obj.docstring.value))
