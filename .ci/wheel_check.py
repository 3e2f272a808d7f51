"""Run by .ci/run with the Python of a fresh venv where the built wheel (not an editable
install) is installed: every public name imports, and the files the package ships (the
dashboard's page, the JSON Schema) are in it."""

from __future__ import annotations

import importlib
import sys
from importlib import metadata, resources
from pathlib import Path

import flipkart_otc

where = Path(flipkart_otc.__file__).resolve()
assert "site-packages" in where.parts, f"not the installed wheel: {where}"

names = 0
for name in flipkart_otc.__all__:
    getattr(flipkart_otc, name)
    names += 1
for module, public in (
    ("flipkart_otc.sinks", None),
    ("flipkart_otc.simulator", None),
    ("flipkart_otc.dashboard", None),
    ("flipkart_otc.metrics", None),
    ("flipkart_otc.probes", None),
    ("flipkart_otc.clock", None),
    ("flipkart_otc.pytest_plugin", None),
):
    loaded = importlib.import_module(module)
    for name in public or getattr(loaded, "__all__", ()):
        getattr(loaded, name)
        names += 1

# one version source: flipkart_otc/_version.py, which the build reads for the metadata
installed = metadata.version("flipkart-otc")
assert installed == flipkart_otc.__version__, (installed, flipkart_otc.__version__)

schema = flipkart_otc.json_schema()
assert schema["$schema"].startswith("https://json-schema.org/"), schema.get("$schema")
static = resources.files("flipkart_otc.dashboard").joinpath("static")
shipped = sorted(p.name for p in static.iterdir())
for needed in ("index.html", "login.html", "app.js", "app.css", "icon.svg"):
    assert needed in shipped, f"{needed} is missing from the wheel: {shipped}"
assert resources.files("flipkart_otc").joinpath("py.typed").is_file(), "py.typed is missing"
print(
    f"wheel check: {names} public names import from {where.parent}; "
    f"the schema and {len(shipped)} page files are in it (flipkart-otc {flipkart_otc.__version__})"
)
sys.exit(0)
