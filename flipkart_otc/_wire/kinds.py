"""The kinds of value Flipkart's answers hold, as structuring hooks. Pure.

Timestamps come as epoch seconds or milliseconds (the spec says milliseconds;
every published sample is 10 digits), integers or numeric strings; text must be
a string; ``lob`` is tolerant. Strings that repeat across thousands of FEs
(partners, lines of business, first names) share one object each.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from ..models import Lob

__all__ = [
    "FLOAT_EXACT_MS",
    "LOBS",
    "FieldError",
    "count",
    "field",
    "obj",
    "SECONDS_BELOW",
    "SHARED",
    "epoch",
    "epoch_to_datetime",
    "lob",
    "lob_raw",
    "same_instant",
    "shared",
    "shared_str",
    "strict_str",
]

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Below this an epoch value is in seconds (10^11 s is the year 5138; 10^11 ms is 1973).
SECONDS_BELOW = 10**11
FLOAT_EXACT_MS = 2**32 * 1000  # up to the year 2106

LOBS = {"LARGE": Lob.LARGE, "NONLARGE": Lob.NONLARGE, "NON_LARGE": Lob.NONLARGE}


def epoch_to_datetime(value: object) -> datetime:
    """An epoch timestamp in seconds or milliseconds (int or numeric string) as aware UTC.

    A value below 10^11 is taken as seconds: the spec says milliseconds but
    every published sample is 10 digits.
    """
    return epoch(value, datetime)


def epoch(value: object, _: object) -> datetime:  # the converter's hook: no extra call
    if type(value) is int and 0 <= value < FLOAT_EXACT_MS:  # what Flipkart sends
        return datetime.fromtimestamp(value / 1000 if value >= SECONDS_BELOW else value, UTC)
    number: int | float
    if type(value) is int:
        number = value
    elif type(value) is str:
        try:
            number = int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"expected an epoch timestamp, got {value[:32]!r}") from None
    elif type(value) is float:
        number = value
    else:
        raise TypeError(f"expected an epoch timestamp, got {type(value).__name__}")
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"expected an epoch timestamp, got {number!r}")
    if number < 0:
        raise ValueError(f"expected a non-negative epoch timestamp, got {number!r}")
    millis = number * 1000 if number < SECONDS_BELOW else number
    if millis < FLOAT_EXACT_MS:
        # twice as fast as timedelta arithmetic, and exact here: a float's error on
        # millis / 1000 stays far below the half microsecond fromtimestamp rounds to
        return datetime.fromtimestamp(millis / 1000, UTC)
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise ValueError(f"epoch timestamp out of range: {number!r}") from None


def same_instant(value: object, when: datetime) -> bool:
    """Cheap check that ``value`` would parse to ``when``; False means "parse it".

    Both sides are the exact rational millis/1000 rounded once, so float
    equality is exact here.
    """
    if type(value) is not int or value < 0:
        return False
    millis = value * 1000 if value < SECONDS_BELOW else value
    return millis / 1000 == when.timestamp()


def strict_str(value: object, _: object) -> str:
    if type(value) is str:
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def lob(value: object, _: object) -> Lob:
    if type(value) is str:
        return LOBS.get(value) or LOBS.get(value.strip().upper(), Lob.UNKNOWN)
    return Lob.UNKNOWN


# Partners, lines of business and first names repeat across thousands of FEs: share
# one string object each (a bounded cache, so odd data cannot grow it without end).
SHARED: dict[str, str] = {}
SHARED_MAX = 4096


def shared(text: str) -> str:
    known = SHARED.get(text)
    if known is not None:
        return known
    if len(SHARED) < SHARED_MAX:
        SHARED[text] = text
    return text


def shared_str(value: object, _: object) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    known = SHARED.get(value)  # shared() inlined: this runs twice per structured FE
    if known is not None:
        return known
    return shared(value)


def lob_raw(value: object, _: object) -> str:
    if value is None:
        return ""
    if type(value) is str:
        return shared(value)
    if type(value) is float and value.is_integer():
        value = int(value)  # 1.0 and 1 are one JSON number: give them one text
    return json.dumps(value)[:64]


def count(value: object, _: object) -> int:
    """A non-negative whole number (a JSON integer, not a bool)."""
    if type(value) is int and value >= 0:
        return value
    raise TypeError(f"expected a non-negative integer, got {type(value).__name__}")


class FieldError(Exception):
    """A field that is missing or of the wrong kind, at ``path`` (e.g. ``feDetails.fe1.lob``)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def obj(value: object, path: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else FieldError at ``path``."""
    if type(value) is not dict:
        raise FieldError(path, f"expected an object, got {type(value).__name__}")
    return value


def field(document: dict[str, Any], key: str, hook: Callable[[object, object], T], path: str) -> T:
    """``document[key]`` through ``hook`` (one of this module's kinds); a missing key or a
    value the hook refuses is a FieldError naming ``path.key``."""
    where = f"{path}.{key}" if path else key
    if key not in document:
        raise FieldError(where, "required field missing")
    try:
        return hook(document[key], None)
    except (TypeError, ValueError) as exc:
        raise FieldError(where, str(exc)) from None
