"""The Start OTC endpoint on the wire: its request body, and its answer as models. Pure.

One private cattrs converter is the definition of how an entry structures; a
hand-written path takes entries as Flipkart sends them for less, held equal to
the converter by a property test. Nothing here does I/O or reads a clock:
callers pass ``fetched_at``.

Two parsing styles, on purpose: cattrs here alone, as the reference definition that
the hand-written path (every poll's hot path) is held equal to; the other endpoints,
read once per visit look, are their hand-written ``kinds.field`` reads.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from ..errors import ResponseFormatError
from ..models import Lob, OtcDetail, OtcSnapshot
from .common import TASK_TYPE, format_error, success_document
from .kinds import (
    FLOAT_EXACT_MS,
    LOBS,
    SECONDS_BELOW,
    SHARED,
    epoch,
    lob,
    lob_raw,
    same_instant,
    shared,
    shared_str,
    strict_str,
)

__all__ = [
    "ENDPOINT",
    "FIELDS",
    "NO_DETAILS",
    "PATH",
    "SUCCESS_KEY",
    "parse_snapshot",
    "request_body",
    "reuse_or_structure",
    "structure_detail",
    "success_details",
    "unchanged",
]

ENDPOINT = "Start OTC"
PATH = "/v3/returns/otc/start/details"
#: The key a success answer holds (an answer without it is an error or malformed).
SUCCESS_KEY = "otcDetails"
# Injected into each raw entry so cattrs can fill fe_id; no JSON key Flipkart sends can clash.
_FE_ID_KEY = "\x00feId"
_json_str = json.encoder.encode_basestring_ascii
_TASK_RETURN = b', "taskType": ' + json.dumps(TASK_TYPE).encode() + b"}"


class Kind(enum.Enum):
    """How a wire field's value becomes an attribute (the hooks in :mod:`.kinds`)."""

    KEY = "the otcDetails key"
    TEXT = "a string"
    SHARED_TEXT = "a string, one object per distinct value"
    EPOCH = "epoch seconds or milliseconds"
    LOB = "LARGE/NONLARGE/NON_LARGE, any case; else UNKNOWN"
    LOB_RAW = "lob as sent"


@attrs.frozen
class WireField:
    """One attribute of :class:`OtcDetail` on the wire."""

    attribute: str
    json_name: str
    kind: Kind


#: OtcDetail's fields as Flipkart sends them: written once. The converter and error
#: messages derive from it; the hand-written fast path, ``unchanged``, the JSON view and
#: the simulator are held to it by a test that enumerates it.
FIELDS = (
    WireField("fe_id", "feId", Kind.KEY),
    WireField("fe_name", "feName", Kind.SHARED_TEXT),
    WireField("task_id", "taskId", Kind.TEXT),
    WireField("otc", "otc", Kind.TEXT),
    WireField("expires_at", "expiryTime", Kind.EPOCH),
    WireField("created_at", "createdAt", Kind.EPOCH),
    WireField("logistic_partner", "logisticPartner", Kind.SHARED_TEXT),
    WireField("lob", "lob", Kind.LOB),
    WireField("lob_raw", "lob", Kind.LOB_RAW),
)
# Field names as Flipkart spells them, for error messages.
_JSON_NAMES = {f.attribute: f.json_name for f in FIELDS}
_HOOKS: dict[Kind, Callable[[object, object], object]] = {
    Kind.SHARED_TEXT: shared_str,
    Kind.LOB_RAW: lob_raw,
}


def _override(field: WireField) -> Any:
    if field.kind is Kind.KEY:
        return override(rename=_FE_ID_KEY)
    hook = _HOOKS.get(field.kind)
    if hook is None:  # text, epoch, lob: the converter's hook for the attribute's type
        return override(rename=field.json_name)
    return override(rename=field.json_name, struct_hook=hook)


def _make_converter(detailed: bool) -> cattrs.Converter:
    """The wire converter: camelCase renames, strict strings, tolerant ``lob``, epoch
    seconds or milliseconds, unknown keys ignored."""
    converter = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
    converter.register_structure_hook(str, strict_str)
    converter.register_structure_hook(datetime, epoch)
    converter.register_structure_hook(Lob, lob)
    converter.register_structure_hook(
        OtcDetail,
        make_dict_structure_fn(
            OtcDetail,
            converter,
            _cattrs_detailed_validation=detailed,
            **{field.attribute: _override(field) for field in FIELDS},
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
    epochs the fast case of :func:`epoch` takes. The converter stays the
    definition: a property test holds this to equal it on any entry.
    """
    get = entry.get
    fe_name = get("feName")
    task_id = get("taskId")
    otc = get("otc")
    expiry = get("expiryTime")
    created = get("createdAt")
    partner = get("logisticPartner")
    lob_text = get("lob")
    if not (
        type(fe_name) is str
        and type(task_id) is str
        and type(otc) is str
        and type(partner) is str
        and type(lob_text) is str
        and type(expiry) is int
        and type(created) is int
        and 0 <= expiry < FLOAT_EXACT_MS
        and 0 <= created < FLOAT_EXACT_MS
    ):
        return None
    # epoch()'s fast case and the hits of shared() and lob(), inlined: calling them
    # would give back about half of what this path saves (benchmarks/README.md)
    return OtcDetail(
        fe_id,
        SHARED.get(fe_name) or shared(fe_name),
        task_id,
        otc,
        _fromtimestamp(expiry / 1000 if expiry >= SECONDS_BELOW else expiry, UTC),
        _fromtimestamp(created / 1000 if created >= SECONDS_BELOW else created, UTC),
        SHARED.get(partner) or shared(partner),
        LOBS.get(lob_text) or lob(lob_text, None),
        SHARED.get(lob_text) or shared(lob_text),
    )


def request_body(location_id: str) -> bytes:
    """The JSON body of a Start OTC request (what json.dumps of the dict gives, 20x faster)."""
    return b'{"sellerLocationId": ' + _json_str(location_id).encode() + _TASK_RETURN


def _format_error(
    reason: str, body: bytes, location_id: str | None, status: int, field: str | None = None
) -> ResponseFormatError:
    return format_error(
        ENDPOINT, reason, body, location_id=location_id, status=status, field=field
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
    document = success_document(
        body, ENDPOINT, SUCCESS_KEY, location_id=location_id, status=status
    )
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
        and same_instant(entry.get("expiryTime"), detail.expires_at)
        and same_instant(entry.get("createdAt"), detail.created_at)
    )


NO_DETAILS: Mapping[str, OtcDetail] = {}


def reuse_or_structure(
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
    old = previous.details if previous is not None else NO_DETAILS
    return OtcSnapshot(
        location_id, fetched_at, reuse_or_structure(raw, old, body, location_id, status)
    )


#: What the incremental parser remembers of a location's last answer: the body's hash,
#: then, if that answer was plain (see :func:`parse_incremental`), the hash of each FE's
#: part of its text, in the order of its ``otcDetails``.
