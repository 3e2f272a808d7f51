"""Wire format: bytes from Flipkart in, models or exceptions out.

Pure functions around one private cattrs converter. Nothing here does I/O or
reads a clock: callers pass ``fetched_at`` and ``now``.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from itertools import compress
from operator import is_, ne
from typing import Any

import cattrs
from cattrs.gen import make_dict_structure_fn, override

from .errors import (
    ERROR_CODES,
    STATUS_CLASSES,
    TIMEOUT_STATUSES,
    ApiError,
    FlipkartOtcError,
    RateLimitedError,
    RequestTimeoutError,
    ResponseFormatError,
    ServerError,
)
from .models import Lob, OtcDetail, OtcSnapshot

UTC = UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Below this an epoch value is in seconds (10^11 s is the year 5138; 10^11 ms is 1973).
_SECONDS_BELOW = 10**11
_FLOAT_EXACT_MS = 2**32 * 1000  # up to the year 2106
_BODY_KEEP = 512
# Injected into each raw entry so cattrs can fill fe_id; no JSON key Flipkart sends can clash.
_FE_ID_KEY = "\x00feId"

_LOBS = {"LARGE": Lob.LARGE, "NONLARGE": Lob.NONLARGE, "NON_LARGE": Lob.NONLARGE}
_json_str = json.encoder.encode_basestring_ascii
_TASK_RETURN = b', "taskType": "RETURN"}'
_OTC_VALUE = re.compile(r'("otc"\s*:\s*)("(?:[^"\\]|\\.)*"|-?[\d.eE+-]+)')

# Field names as Flipkart spells them, for error messages.
_JSON_NAMES = {
    "fe_id": "feId",
    "fe_name": "feName",
    "task_id": "taskId",
    "otc": "otc",
    "expires_at": "expiryTime",
    "created_at": "createdAt",
    "logistic_partner": "logisticPartner",
    "lob": "lob",
    "lob_raw": "lob",
}


def epoch_to_datetime(value: object) -> datetime:
    """An epoch timestamp in seconds or milliseconds (int or numeric string) as aware UTC.

    A value below 10^11 is taken as seconds: the spec says milliseconds but
    every published sample is 10 digits.
    """
    return _epoch(value, datetime)


def _epoch(value: object, _: object) -> datetime:  # the converter's hook: no extra call
    if type(value) is int and 0 <= value < _FLOAT_EXACT_MS:  # what Flipkart sends
        return datetime.fromtimestamp(value / 1000 if value >= _SECONDS_BELOW else value, UTC)
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
    millis = number * 1000 if number < _SECONDS_BELOW else number
    if millis < _FLOAT_EXACT_MS:
        # twice as fast as timedelta arithmetic, and exact here: a float's error on
        # millis / 1000 stays far below the half microsecond fromtimestamp rounds to
        return datetime.fromtimestamp(millis / 1000, UTC)
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise ValueError(f"epoch timestamp out of range: {number!r}") from None


def _same_instant(value: object, when: datetime) -> bool:
    """Cheap check that ``value`` would parse to ``when``; False means "parse it".

    Both sides are the exact rational millis/1000 rounded once, so float
    equality is exact here.
    """
    if type(value) is not int or value < 0:
        return False
    millis = value * 1000 if value < _SECONDS_BELOW else value
    return millis / 1000 == when.timestamp()


def _strict_str(value: object, _: object) -> str:
    if type(value) is str:
        return value
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _lob(value: object, _: object) -> Lob:
    if type(value) is str:
        return _LOBS.get(value) or _LOBS.get(value.strip().upper(), Lob.UNKNOWN)
    return Lob.UNKNOWN


# Partners, lines of business and first names repeat across thousands of FEs: share
# one string object each (a bounded cache, so odd data cannot grow it without end).
_SHARED: dict[str, str] = {}
_SHARED_MAX = 4096


def _shared(text: str) -> str:
    known = _SHARED.get(text)
    if known is not None:
        return known
    if len(_SHARED) < _SHARED_MAX:
        _SHARED[text] = text
    return text


def _shared_str(value: object, _: object) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    known = _SHARED.get(value)  # _shared() inlined: this runs twice per structured FE
    if known is not None:
        return known
    return _shared(value)


def _lob_raw(value: object, _: object) -> str:
    if value is None:
        return ""
    if type(value) is str:
        return _shared(value)
    if type(value) is float and value.is_integer():
        value = int(value)  # 1.0 and 1 are one JSON number: give them one text
    return json.dumps(value)[:64]


def _make_converter(detailed: bool) -> cattrs.Converter:
    """The wire converter: camelCase renames, strict strings, tolerant ``lob``, epoch
    seconds or milliseconds, unknown keys ignored."""
    converter = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(datetime, _epoch)
    converter.register_structure_hook(Lob, _lob)
    converter.register_structure_hook(
        OtcDetail,
        make_dict_structure_fn(
            OtcDetail,
            converter,
            _cattrs_detailed_validation=detailed,
            fe_id=override(rename=_FE_ID_KEY),
            fe_name=override(rename="feName", struct_hook=_shared_str),
            task_id=override(rename="taskId"),
            expires_at=override(rename="expiryTime"),
            created_at=override(rename="createdAt"),
            logistic_partner=override(rename="logisticPartner", struct_hook=_shared_str),
            lob_raw=override(rename="lob", struct_hook=_lob_raw),
        ),
    )
    return converter


# One converter configuration, built twice: the plain generated hook structures
# what _plain_detail() leaves (about half the cost of converter.structure() with
# detailed validation); only an entry that fails it is structured again with
# detailed validation, to name the bad field.
_converter = _make_converter(detailed=True)
_structure_fast = _make_converter(detailed=False).get_structure_hook(OtcDetail)
_fromtimestamp = datetime.fromtimestamp


def _plain_detail(fe_id: str, entry: dict[str, Any]) -> OtcDetail | None:
    """The converter's OtcDetail for an entry as Flipkart sends them, for three
    quarters of its cost (most of the rest is attrs' frozen ``__init__`` and the two
    datetimes); None for any other entry, which the converter structures.

    Plain: every field present, the text fields strings, both times integer
    epochs the fast case of :func:`_epoch` takes. The converter stays the
    definition: a property test holds this to equal it on any entry.
    """
    get = entry.get
    fe_name = get("feName")
    task_id = get("taskId")
    otc = get("otc")
    expiry = get("expiryTime")
    created = get("createdAt")
    partner = get("logisticPartner")
    lob = get("lob")
    if not (
        type(fe_name) is str
        and type(task_id) is str
        and type(otc) is str
        and type(partner) is str
        and type(lob) is str
        and type(expiry) is int
        and type(created) is int
        and 0 <= expiry < _FLOAT_EXACT_MS
        and 0 <= created < _FLOAT_EXACT_MS
    ):
        return None
    # _epoch()'s fast case and the hits of _shared() and _lob(), inlined: calling them
    # would give back half of what this path saves (3.9 k instructions of 7.5 k)
    return OtcDetail(
        fe_id,
        _SHARED.get(fe_name) or _shared(fe_name),
        task_id,
        otc,
        _fromtimestamp(expiry / 1000 if expiry >= _SECONDS_BELOW else expiry, UTC),
        _fromtimestamp(created / 1000 if created >= _SECONDS_BELOW else created, UTC),
        _SHARED.get(partner) or _shared(partner),
        _LOBS.get(lob) or _lob(lob, None),
        _SHARED.get(lob) or _shared(lob),
    )


def request_body(location_id: str) -> bytes:
    """The JSON body of a Start OTC request (what json.dumps of the dict gives, 20x faster)."""
    return b'{"sellerLocationId": ' + _json_str(location_id).encode() + _TASK_RETURN


def mask_body(body: bytes | str) -> str:
    """The start of a body for diagnostics, with every ``otc`` value masked."""
    text = body if isinstance(body, str) else body[: _BODY_KEEP * 2].decode("utf-8", "replace")
    return _OTC_VALUE.sub(r'\1"***"', text)[:_BODY_KEEP]


def _format_error(
    message: str, body: bytes, location_id: str | None, status: int, field: str | None = None
) -> ResponseFormatError:
    if field:
        message = f"{field}: {message}"
    return ResponseFormatError(
        f"malformed Start OTC answer: {message}",
        field=field,
        body=mask_body(body),
        location_id=location_id,
        status=status,
    )


def _explain(exc: Exception, fe_id: str) -> tuple[str, str]:
    """(field path, reason) of the first failure inside a cattrs validation error."""
    if isinstance(exc, cattrs.ClassValidationError):
        with_notes, _ = exc.group_exceptions()
        if with_notes:
            inner, note = with_notes[0]
            name = _JSON_NAMES.get(note.name, note.name)
            reason = "required field missing" if isinstance(inner, KeyError) else str(inner)
            return f"otcDetails.{fe_id}.{name}", reason
    return f"otcDetails.{fe_id}", str(exc) or type(exc).__name__


_DECODER = json.JSONDecoder()
_scan: Callable[[str, int], Any] = _DECODER.scan_once  # type: ignore[attr-defined]


def _decode(text: str) -> Any:
    """``json.loads(text)``, minus its Python-level layers on the usual answer (an
    object, nothing around it); anything else, errors included, goes the full way."""
    if text[:1] == "{":
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            pass
        else:
            if end == len(text):
                return value
    return _DECODER.decode(text)


def _stdlib_loads(body: bytes) -> Any:
    return _decode(body.decode("utf-8"))


_loads: Callable[[bytes], Any]
try:  # the `speedups` extra: 3-5x faster on the answers the watcher has to parse
    _loads = importlib.import_module("orjson").loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = _stdlib_loads


def load_json(body: bytes, location_id: str | None, status: int) -> Any:
    """``body`` as JSON, or ResponseFormatError for bytes that are not UTF-8 JSON."""
    try:
        return _loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            reason = "body is not UTF-8"
        else:
            reason = "body is not valid JSON"
        raise _format_error(reason, body, location_id, status) from exc


def otc_details(document: Any, body: bytes, location_id: str, status: int) -> Mapping[str, Any]:
    """The raw ``otcDetails`` map of a success document ({} for null)."""
    if not isinstance(document, dict):
        raise _format_error(
            f"expected a JSON object, got {type(document).__name__}", body, location_id, status
        )
    if "otcDetails" not in document:
        raise _format_error("required field missing", body, location_id, status, "otcDetails")
    raw = document["otcDetails"]
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _format_error(
            f"expected an object, got {type(raw).__name__}",
            body,
            location_id,
            status,
            "otcDetails",
        )
    return raw


def success_details(body: bytes, location_id: str, status: int) -> Mapping[str, Any]:
    """The raw ``otcDetails`` of a success answer; a 200 carrying an ``errorCode`` raises
    that error, anything else malformed a ResponseFormatError."""
    document = load_json(body, location_id, status)
    if isinstance(document, dict) and "otcDetails" not in document and "errorCode" in document:
        raise error_from_document(status, document, location_id, None)
    return otc_details(document, body, location_id, status)


def structure_detail(
    fe_id: str, entry: Any, body: bytes, location_id: str, status: int
) -> OtcDetail:
    """One raw ``otcDetails`` entry as an :class:`OtcDetail`."""
    if not fe_id:
        raise _format_error("empty FE id", body, location_id, status, "otcDetails")
    if not isinstance(entry, dict):
        raise _format_error(
            f"expected an object, got {type(entry).__name__}",
            body,
            location_id,
            status,
            f"otcDetails.{fe_id}",
        )
    plain = _plain_detail(fe_id, entry)
    if plain is not None:
        return plain
    entry[_FE_ID_KEY] = fe_id
    try:
        detail: OtcDetail = _structure_fast(entry, OtcDetail)
    except Exception:
        try:
            _converter.structure(entry, OtcDetail)
        except Exception as exc:
            field, reason = _explain(exc, fe_id)
            raise _format_error(reason, body, location_id, status, field) from exc
        raise  # the detailed pass accepted what the fast one refused: a bug, not bad data
    return detail


def unchanged(entry: Any, detail: OtcDetail) -> bool:
    """Whether a raw entry would structure to exactly ``detail`` (fast, no allocation)."""
    return (
        type(entry) is dict
        and entry.get("otc") == detail.otc
        and entry.get("taskId") == detail.task_id
        and entry.get("feName") == detail.fe_name
        and entry.get("logisticPartner") == detail.logistic_partner
        and type(entry.get("lob")) is str
        and entry["lob"] == detail.lob_raw
        and _same_instant(entry.get("expiryTime"), detail.expires_at)
        and _same_instant(entry.get("createdAt"), detail.created_at)
    )


_NO_DETAILS: Mapping[str, OtcDetail] = {}


def _reuse_or_structure(
    raw: Mapping[str, Any],
    old: Mapping[str, OtcDetail],
    body: bytes,
    location_id: str,
    status: int,
) -> dict[str, OtcDetail]:
    """Each raw entry as an OtcDetail: ``old``'s own object where it would parse alike."""
    details: dict[str, OtcDetail] = {}
    for fe_id, entry in raw.items():
        known = old.get(fe_id)
        if known is not None and unchanged(entry, known):
            details[fe_id] = known
        else:
            details[fe_id] = structure_detail(fe_id, entry, body, location_id, status)
    return details


def parse_snapshot(
    body: bytes,
    location_id: str,
    fetched_at: datetime,
    *,
    status: int = 200,
    previous: OtcSnapshot | None = None,
) -> OtcSnapshot:
    """Parse a 200 answer into an :class:`OtcSnapshot`.

    With ``previous``, an FE whose raw entry is unchanged keeps its previous
    :class:`OtcDetail` object; the result equals a full parse either way.
    Raises :class:`ResponseFormatError` for anything the spec does not allow,
    or the matching :class:`ApiError` for a 200 that carries an ``errorCode``.
    """
    raw = success_details(body, location_id, status)
    old = previous.details if previous is not None else _NO_DETAILS
    return OtcSnapshot(
        location_id, fetched_at, _reuse_or_structure(raw, old, body, location_id, status)
    )


#: What the incremental parser remembers of a location's last answer: the body's hash,
#: then, if that answer was plain (see :func:`parse_incremental`), the hash of each FE's
#: part of its text, in the order of its ``otcDetails``.
Memo = tuple[int, ...]

_WHITESPACE = " \t\n\r"  # JSON's


def _plain(text: str, count: int) -> dict[str, Any] | None:
    """The raw ``otcDetails`` of a plain answer of ``count`` FEs; None for any other.

    Plain: an object holding ``otcDetails`` with ``count`` FEs, and ``count + 2``
    closing braces in all: none is left for an object inside an entry (an entry
    that is not an object fails to structure anyway), for another object, for a
    string, or for an FE id given twice (JSON keeps the last). Cutting the text
    at each ``}`` then gives one part per FE, the i-th holding FE i's key and
    entry up to its closing brace, then three parts of whitespace.
    """
    try:
        document = _decode(text)
    except (ValueError, RecursionError):
        return None
    raw = document.get("otcDetails") if type(document) is dict else None
    return raw if type(raw) is dict and len(raw) == count else None


def _member(part: str, first: bool) -> tuple[str, Any] | None:
    """The (FE id, entry) that an FE's part of a plain answer holds, if the part is one:
    it is decoded on its own, with the closing braces it lacks put back. A part
    holds no ``}``, so those must close the entry and what holds it: a lone
    member's value is then that entry, an object."""
    if first:  # '{"otcDetails": {"fe1": {...' and whitespace
        text = part + "}}}"
    else:  # ', "fe2": {...' and whitespace
        before, _, after = part.partition(",")
        if before.strip(_WHITESPACE):  # this holds the key if there is no comma
            return None
        text = "{" + after + "}}"
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return None
    if end != len(text):  # what it ends with must be the braces put back
        return None
    members = value.get("otcDetails") if first else value
    if type(members) is dict and len(members) == 1:
        return members.popitem()
    return None


def _changed_parts(
    parts: list[str],
    prints: list[int],
    memo: Memo,
    old: Mapping[str, OtcDetail],
    body: bytes,
    location_id: str,
) -> Mapping[str, OtcDetail] | None:
    """The details of a plain answer whose FE parts are ``old``'s, some changed (those
    whose ``prints`` differ from the ``memo``'s); None if a changed part is not a
    plain answer's part for the FE ``old`` has in its place: decode it whole then.
    Only the changed parts are decoded; ``old`` itself comes back if no FE changed.
    """
    fe_ids = list(old)
    details = None
    for i in compress(range(len(fe_ids)), map(ne, prints, memo[1:])):
        member = _member(parts[i], i == 0)
        if member is None or member[0] != fe_ids[i]:
            return None
        fe_id, entry = member
        known = old[fe_id]
        if not unchanged(entry, known):
            if details is None:
                details = dict(old)
            details[fe_id] = structure_detail(fe_id, entry, body, location_id, 200)
    return old if details is None else details


def parse_incremental(
    body: bytes,
    location_id: str,
    previous: Mapping[str, OtcDetail] | None,
    memo: Memo | None,
) -> tuple[Mapping[str, OtcDetail], Memo]:
    """Parse an answer the way a poller does, paying only for what changed.

    ``previous`` is the last answer's details (None if there is none) and
    ``memo`` what this returned with them. Same bytes as last time (by hash):
    no parsing at all, and ``previous`` itself comes back. A plain answer
    (``{"otcDetails": ...}`` with flat entries, as Flipkart sends them) is cut
    at each ``}`` into one part per FE. When the last answer was plain too, an
    FE whose part reads as its part did last time keeps its previous
    :class:`OtcDetail` without being decoded: JSON's grammar is context free,
    so that part is well formed in its place again. Only the other parts are
    decoded, each on its own, and the whitespace after the last is checked; a
    changed part that holds another FE than its place did, or anything else, is
    decoded whole. Either way an FE whose entry would parse as
    before keeps its previous object, only new or changed FEs are structured,
    and an answer that changed no FE returns ``previous`` itself. Returns the
    details, which equal a full parse of ``body``, and the memo for the next
    call.
    """
    body_hash = hash(body)
    if previous is not None and memo is not None and memo[0] == body_hash:
        return previous, memo
    old = previous if previous is not None else _NO_DETAILS
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = ""  # decoded whole below, which raises the right error
    parts = text.split("}")
    count = len(parts) - 3  # FEs, if the answer is plain
    prints = list(map(hash, parts[:count])) if count > 0 else []
    if (
        memo is not None
        and count > 0
        and len(memo) == count + 1 == len(old) + 1
        and not "".join(parts[count:]).strip(_WHITESPACE)
    ):
        details = _changed_parts(parts, prints, memo, old, body, location_id)
        if details is not None:
            return details, (body_hash, *prints)
    raw: Mapping[str, Any] | None = _plain(text, count) if count >= 0 else None
    if raw is None:  # not plain, not JSON, an error ...: decode it whole
        raw, prints = success_details(body, location_id, 200), []
    details = _reuse_or_structure(raw, old, body, location_id, 200)
    if (
        previous is not None  # never hand out the shared empty mapping
        and len(details) == len(previous)
        and all(map(is_, details.values(), previous.values()))
    ):
        details = previous
    return details, (body_hash, *prints)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def error_from_document(
    status: int, document: Any, location_id: str, retry_after: float | None
) -> FlipkartOtcError:
    """The exception for an error answer whose body is already decoded (or None)."""
    code: str | None = None
    message = ""
    if isinstance(document, dict):
        raw_code = document.get("errorCode")
        if isinstance(raw_code, str) and raw_code:
            code = raw_code[:100]
        raw_message = document.get("message")
        if isinstance(raw_message, str):
            message = raw_message[:300]
    if not message:
        message = _phrase(status) or ("connection timed out" if status == 499 else "")
    if status in TIMEOUT_STATUSES:
        text = code or "request timed out"
        text = f"{text}: {message}" if message else text
        return RequestTimeoutError(text, location_id=location_id, status=status)
    if status == 429:
        return RateLimitedError(
            status, code, message, location_id=location_id, retry_after=retry_after
        )
    cls = ERROR_CODES.get(code) if code else None
    if cls is None:
        cls = STATUS_CLASSES.get(status) or (ServerError if 500 <= status < 600 else ApiError)
    return cls(status, code, message, location_id=location_id)


def error_from_answer(
    status: int, body: bytes, location_id: str, retry_after: float | None = None
) -> FlipkartOtcError:
    """The exception for a non-200 answer; a non-JSON body is classed by status."""
    try:
        document = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        document = None
    return error_from_document(status, document, location_id, retry_after)


def parse_token(body: bytes, status: int) -> tuple[str, float]:
    """(access_token, expires_in seconds) from the OAuth token endpoint's answer."""
    document = load_json(body, None, status)
    if not isinstance(document, dict):
        raise ResponseFormatError(
            f"token answer: expected a JSON object, got {type(document).__name__}", status=status
        )
    token = document.get("access_token")
    if not isinstance(token, str) or not token:
        raise ResponseFormatError(
            "token answer: access_token missing or not a string",
            field="access_token",
            status=status,
        )
    expires_in = document.get("expires_in")
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, (int, float))
        or not math.isfinite(expires_in)
        or expires_in <= 0
    ):
        raise ResponseFormatError(
            "token answer: expires_in missing or not a positive number",
            field="expires_in",
            status=status,
        )
    return token, float(expires_in)
