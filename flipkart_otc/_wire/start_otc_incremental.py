"""Start OTC answers parsed the way a poller needs them: paying only for what changed.

See :func:`parse_incremental`. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import compress
from operator import is_, ne
from typing import Any

from ..models import OtcDetail
from .common import decode, scan
from .start_otc import NO_DETAILS, reuse_or_structure, structure_detail, success_details, unchanged

__all__ = ["Memo", "parse_incremental"]

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
        document = decode(text)
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
        value, end = scan(text, 0)
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

    Every changed part is checked before any is structured: a part that names
    another FE's id (an id given twice, whose last copy JSON keeps) sends the
    whole answer to the full decode, so an earlier copy is never judged alone.
    """
    fe_ids = list(old)
    members = []
    for i in compress(range(len(fe_ids)), map(ne, prints, memo[1:])):
        member = _member(parts[i], i == 0)
        if member is None or member[0] != fe_ids[i]:
            return None
        members.append(member)
    details = None
    for fe_id, entry in members:
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
    old = previous if previous is not None else NO_DETAILS
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
    details = reuse_or_structure(raw, old, body, location_id, 200)
    if (
        previous is not None  # never hand out the shared empty mapping
        and len(details) == len(previous)
        and all(map(is_, details.values(), previous.values()))
    ):
        details = previous
    return details, (body_hash, *prints)
