"""Whether to use the `speedups` extra (orjson, uvloop) where it is installed.

``FLIPKART_OTC_NO_SPEEDUPS=1`` in the environment keeps to the standard library (its JSON
parser, asyncio's own loop) even where they are installed: to compare them, or to rule
them out when looking for a fault. It is read once, when the library is imported.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["NO_SPEEDUPS_ENV", "speedup"]

NO_SPEEDUPS_ENV = "FLIPKART_OTC_NO_SPEEDUPS"

_OFF = os.environ.get(NO_SPEEDUPS_ENV, "").strip().lower() not in ("", "0", "false", "no")


def speedup(name: str) -> ModuleType | None:
    """The optional module ``name`` when it is installed and speedups are not turned
    off, else None."""
    if _OFF:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
