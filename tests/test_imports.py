"""The package's imports, read with ``ast``: no cycle (imports inside functions count,
``if TYPE_CHECKING:`` ones do not), no arrow that was turned around comes back, and no
test module imports another (what they share is in ``tests/_helpers.py``)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "flipkart_otc"

#: Import cycles kept on purpose, each as the edge that closes it, with the reason.
#: A new cycle fails the test; so does an edge here that no longer exists.
ALLOWED: dict[tuple[str, str], str] = {}

#: Arrows that ran up and were turned around: (importer, imported prefix).
FORBIDDEN = [
    # data does not depend on its JSON view, nor on how the CLI shows it
    ("flipkart_otc.models", "flipkart_otc._serialize"),
    ("flipkart_otc.events", "flipkart_otc._serialize"),
    ("flipkart_otc.errors", "flipkart_otc._serialize"),
    ("flipkart_otc.models", "flipkart_otc._render"),
    ("flipkart_otc.events", "flipkart_otc._render"),
    # the exception tree does not depend on the data it describes
    ("flipkart_otc.errors", "flipkart_otc.models"),
    ("flipkart_otc.errors", "flipkart_otc.events"),
    # the edges do not depend on one another's insides
    ("flipkart_otc.sinks", "flipkart_otc._render"),
    ("flipkart_otc.sinks", "flipkart_otc.cli"),
    ("flipkart_otc.sinks", "flipkart_otc._commands"),
    ("flipkart_otc.dashboard", "flipkart_otc.cli"),
    ("flipkart_otc.dashboard", "flipkart_otc._commands"),
    # the commands do not reach back into the entry point that parsed their options
    ("flipkart_otc._commands", "flipkart_otc.cli"),
]


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, but not what only ``if TYPE_CHECKING:`` runs (its ``else`` runs)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            for other in node.orelse:
                yield other
                yield from _statements(other)
            continue
        yield node
        yield from _statements(node)


def imports(name: str, known: Mapping[str, Path]) -> set[str]:
    """The package's modules that importing (or running any function of) ``name`` may
    import: ``import``, ``from ... import`` (a module named in it too), and
    ``importlib.import_module("flipkart_otc...")`` with a literal name. A parent
    package counts (it runs first), except the module's own packages."""
    path = known[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            module = ".".join(parts[:end])
            if module in known and module != name and not name.startswith(module + "."):
                found.add(module)

    for node in _statements(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            add(target)
            for alias in node.names:
                add(f"{target}.{alias.name}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            add(node.args[0].value)
    return found


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(name, known) for name in known}


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_but_the_allowed_ones() -> None:
    edges = graph()
    for (importer, imported), why in ALLOWED.items():
        assert imported in edges[importer], f"{importer} -> {imported} is gone: drop it"
        assert why
        edges[importer] = edges[importer] - {imported}
    assert cycles(edges) == []


def test_no_arrow_that_was_turned_around_comes_back() -> None:
    edges = graph()
    wrong = [
        (importer, imported)
        for importer, targets in edges.items()
        for imported in targets
        for above, below in FORBIDDEN
        if (importer == above or importer.startswith(above + "."))
        and (imported == below or imported.startswith(below + "."))
    ]
    assert wrong == []


def test_the_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .. import c\n")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from . import d\n"
        "def f():\n    from .sub import e\n"
    )
    (package / "b.py").write_text("import importlib\nimportlib.import_module('pkg.a')\n")
    (package / "c.py").write_text("from . import b\n")
    (package / "d.py").write_text("from .a import f\n")
    (package / "sub" / "e.py").write_text("")
    edges = graph(package)
    assert edges["pkg.a"] == {"pkg.sub", "pkg.sub.e"}  # in a function; not TYPE_CHECKING
    assert edges["pkg.sub.e"] == set()  # its own package is no edge
    assert edges["pkg.d"] == {"pkg.a"}
    assert cycles(edges) == [["pkg.a", "pkg.b", "pkg.c", "pkg.sub"]]


def test_no_test_module_imports_another() -> None:
    tests = {path.stem for path in (ROOT / "tests").glob("test_*.py")}
    wrong = [
        (path.name, node.module if isinstance(node, ast.ImportFrom) else None)
        for path in sorted((ROOT / "tests").glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module in tests
    ]
    assert wrong == []


def test_each_command_is_found_in_the_table() -> None:
    """The CLI finds a command's coroutine in ``_commands.COMMANDS``, by the name its
    parser sets, never by a name looked up in a module's globals."""
    from flipkart_otc._commands import COMMANDS
    from flipkart_otc.cli import _parser

    _, parsers = _parser()
    runs = {name: parser.get_default("run") for name, parser in parsers.items()}
    assert set(runs.values()) == set(COMMANDS)
    assert all(callable(command) for command in COMMANDS.values())
    for module in (PACKAGE / "_commands").glob("*.py"):
        assert "globals()" not in module.read_text(encoding="utf-8"), module


def test_only_the_entry_points_import_the_cli() -> None:
    """``cli`` parses and guards; what it shares with the commands is in ``_cli_base``."""
    importers = {name for name, targets in graph().items() if "flipkart_otc.cli" in targets}
    assert importers <= {"flipkart_otc.__main__", "flipkart_otc.simulator.__main__"}


ARCHITECTURE = PACKAGE.parent / "ARCHITECTURE.md"
LAYERS = ("Core", "Runtime", "Edges")
#: What a core module may not import: the event loop, or anything that does I/O.
IMPURE = ("asyncio", "aiohttp", "redis", "socket", "prometheus_client")


def layers() -> dict[str, int]:
    """Each module ARCHITECTURE.md lists, and the rank of its layer (0: core)."""
    found: dict[str, int] = {}
    rank = -1
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            names = [i for i, layer in enumerate(LAYERS) if line[3:].startswith(layer)]
            rank = names[0] if names else -1
        elif (match := re.match(r"- `([\w.]+)`", line)) and rank >= 0:
            name = f"flipkart_otc.{match[1]}"
            assert name not in found, f"{name} is listed twice"
            found[name] = rank
    return found


def test_architecture_lists_every_module_once_under_its_layer() -> None:
    listed = layers()
    known = set(modules()) - {"flipkart_otc"}  # the facade that re-exports the names
    assert set(listed) == known, (sorted(known - set(listed)), sorted(set(listed) - known))


def test_imports_never_run_up_a_layer() -> None:
    rank = layers()
    up = [
        (importer, imported)
        for importer, targets in graph().items()
        for imported in targets
        if importer in rank and imported in rank and rank[imported] > rank[importer]
    ]
    assert up == []


def test_the_core_does_no_io() -> None:
    core = [name for name, layer in layers().items() if layer == 0]
    known = modules()
    impure = []
    for name in core:
        tree = ast.parse(known[name].read_text(encoding="utf-8"))
        for node in _statements(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            impure += [(name, n) for n in names if n.split(".")[0] in IMPURE]
    assert impure == []


def test_a_long_module_says_at_its_top_why_it_stays_one() -> None:
    """One concern per module: past 400 lines, its docstring says why it is one piece."""
    silent = [
        name
        for name, path in modules().items()
        if len((text := path.read_text(encoding="utf-8")).splitlines()) > 400
        and "Why one module" not in (ast.get_docstring(ast.parse(text)) or "")
    ]
    assert silent == []
