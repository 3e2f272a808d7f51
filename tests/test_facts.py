"""Each fact written once, or every place that repeats it held to the one definition:
the public names (the ``TYPE_CHECKING`` block of ``flipkart_otc/__init__.py``), the wire
literals, and ``OtcDetail``'s fields (``FIELDS``) in each place that lists them."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

import flipkart_otc
from flipkart_otc import Lob, LocationStatus, OtcDetail, OtcSnapshot, json_schema
from flipkart_otc._saved import decode, encode
from flipkart_otc._serialize import detail_dict
from flipkart_otc._wire.start_otc import FIELDS, Kind, _plain_detail, structure_detail, unchanged
from flipkart_otc.events import _detail

PACKAGE = Path(flipkart_otc.__file__).parent

# -- the public names ----------------------------------------------------------------


def test_the_public_names_load_from_the_one_list() -> None:
    names = flipkart_otc._exports()
    assert len(names) > 80
    assert flipkart_otc.__all__ == [*sorted(names), "__version__"]
    for name, module in names.items():
        value = getattr(flipkart_otc, name)
        assert value is getattr(importlib.import_module(module, "flipkart_otc"), name)
    assert set(names) <= set(dir(flipkart_otc))


def test_the_init_lists_the_names_once() -> None:
    """No second list of names beside the ``TYPE_CHECKING`` block (a dict, list or set
    of string literals), and every module it names exists."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    literals = [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.Dict, ast.List, ast.Set, ast.Tuple))
        and sum(isinstance(e, ast.Constant) for e in ast.walk(node)) > 3
    ]
    assert literals == []


def test_importing_the_package_stays_cheap_and_a_star_import_gets_every_name() -> None:
    probe = (
        "import sys; import flipkart_otc as f\n"
        "ours = sorted(m for m in sys.modules if m.startswith('flipkart_otc'))\n"
        "print(ours, 'ast' in sys.modules)\n"
        "ns = {}; exec('from flipkart_otc import *', ns)\n"
        "print(sorted(k for k in ns if k != '__builtins__') == sorted(f.__all__))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    first, second = done.stdout.splitlines()
    assert first == "['flipkart_otc', 'flipkart_otc._version'] False"  # no name read yet
    assert second == "True"


# -- literals of the wire ------------------------------------------------------------


def _code_constants() -> list[tuple[str, object]]:
    """Every str/bytes constant in the package's code (docstrings aside), by module."""
    found: list[tuple[str, object]] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        found += [
            (path.name, node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and id(node) not in docstrings
        ]
    return found


@pytest.mark.parametrize("literal", ["***", "RETURN", b'"errorCode"'])
def test_each_wire_literal_is_written_once(literal: object) -> None:
    assert [where for where, value in _code_constants() if value == literal] != []
    assert len([where for where, value in _code_constants() if value == literal]) == 1


def test_no_module_level_text_constant_is_defined_twice() -> None:
    seen: dict[object, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, (str, bytes)):
                seen.setdefault(value.value, []).append(path.name)
    assert {v: where for v, where in seen.items() if len(where) > 1} == {}


def test_no_two_classes_share_a_name() -> None:
    where: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(str(path.relative_to(PACKAGE)))
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}


# -- OtcDetail's fields --------------------------------------------------------------

ATTRIBUTES = [a.name for a in attrs.fields(OtcDetail)]
DETAIL = OtcDetail(
    "fe1",
    "Ram",
    "task-1",
    "123456",
    datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
    datetime(2026, 1, 1, tzinfo=UTC),
    "eKart",
    Lob.NONLARGE,
    "NONLARGE",
)
#: Another value for each attribute (``lob`` and ``lob_raw`` go together on the wire).
OTHER: dict[str, Any] = {
    "fe_id": "fe2",
    "fe_name": "Shyam",
    "task_id": "task-2",
    "otc": "654321",
    "expires_at": datetime(2026, 1, 1, 0, 6, tzinfo=UTC),
    "created_at": datetime(2026, 1, 1, 0, 1, tzinfo=UTC),
    "logistic_partner": "Delhivery",
    "lob": Lob.LARGE,
    "lob_raw": "LARGE",
}


def wire_entry(detail: OtcDetail) -> dict[str, Any]:
    """``detail`` as an ``otcDetails`` entry, built from FIELDS."""
    entry: dict[str, Any] = {}
    for field in FIELDS:
        value = getattr(detail, field.attribute)
        if field.kind is Kind.KEY or field.kind is Kind.LOB:
            continue  # the map's key; lob comes from the text lob_raw carries
        if field.kind is Kind.EPOCH:
            value = int(value.timestamp() * 1000)
        entry[field.json_name] = value
    return entry


def test_fields_name_every_attribute_in_order() -> None:
    assert [f.attribute for f in FIELDS] == ATTRIBUTES
    assert set(OTHER) == set(ATTRIBUTES)


def test_the_json_view_the_events_and_the_schema_list_every_field() -> None:
    data = detail_dict(DETAIL, show_otc=True)
    assert list(data) == ATTRIBUTES
    assert _detail(data) == DETAIL
    for name in ATTRIBUTES:
        changed = attrs.evolve(DETAIL, **{name: OTHER[name]})
        assert _detail(detail_dict(changed, show_otc=True)) == changed, name
    schema = json_schema()["$defs"]["detail"]
    assert list(schema["properties"]) == ATTRIBUTES
    assert schema["required"] == ATTRIBUTES


def test_the_saved_state_keeps_every_field() -> None:
    at = datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    for name in [None, *ATTRIBUTES]:
        detail = DETAIL if name is None else attrs.evolve(DETAIL, **{name: OTHER[name]})
        snapshot = OtcSnapshot("LOC1", at, {detail.fe_id: detail})
        saved = decode(encode("LOC1", LocationStatus.ACTIVE, snapshot, None, at))
        assert saved.snapshot is not None
        assert saved.snapshot.details == {detail.fe_id: detail}, name
        row = json.loads(encode("LOC1", None, snapshot, None, at))["details"][0]
        assert len(row) == len(ATTRIBUTES)


def test_the_wire_paths_read_and_compare_every_field() -> None:
    entry = wire_entry(DETAIL)
    assert _plain_detail("fe1", entry) == DETAIL
    assert structure_detail("fe1", entry, b"", "LOC1", 200) == DETAIL
    assert unchanged(entry, DETAIL)
    for name in ATTRIBUTES:
        if name in ("fe_id", "lob"):  # the key; lob follows lob_raw
            continue
        changed = attrs.evolve(DETAIL, **{name: OTHER[name]})
        if name == "lob_raw":
            changed = attrs.evolve(changed, lob=OTHER["lob"])
        assert not unchanged(entry, changed), name
        assert _plain_detail("fe1", wire_entry(changed)) == changed, name
