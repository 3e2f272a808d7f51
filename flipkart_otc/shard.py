"""Static sharding of locations across worker processes. Pure.

A location belongs to shard ``shard_of(location_id, count)``: the MD5 digest of the
id's UTF-8 bytes, its last 8 bytes read as a big-endian unsigned integer, modulo
``count``. That is Prometheus' ``hashmod`` relabelling, so any tool can compute it::

    python -c "import hashlib,sys; d=hashlib.md5(sys.argv[1].encode()).digest(); \\
print(int.from_bytes(d[8:], 'big') % int(sys.argv[2]))" LOC1 3

Shards are numbered from 0, as a Kubernetes StatefulSet numbers its pods, so pod
``watcher-2`` of 3 runs ``--shard 2/3``. The hash depends on nothing but the id and
``count``: ``count`` may change between runs, and each location then moves to its
new shard (with its saved state, where a sink keeps one).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

import attrs

__all__ = ["Shard", "shard_of"]

_FORM = re.compile(r"\s*(\d{1,9})\s*/\s*(\d{1,9})\s*")


def shard_of(location_id: str, count: int) -> int:
    """The shard (0 .. ``count`` - 1) of ``location_id`` among ``count`` shards.

    >>> shard_of("LOC1", 1)
    0
    """
    digest = hashlib.md5(location_id.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % count


def _check(instance: Shard, _: attrs.Attribute[int], __: int) -> None:
    for name, value in (("index", instance.index), ("count", instance.count)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"shard {name} must be an int, got {type(value).__name__}")
    if instance.count < 1:
        raise ValueError(f"shard count must be >= 1, got {instance.count!r}")
    if not 0 <= instance.index < instance.count:
        raise ValueError(f"shard index must be in 0..{instance.count - 1}, got {instance.index!r}")


@attrs.frozen
class Shard:
    """Shard ``index`` of ``count``: the locations this worker watches.

    >>> shard = Shard.parse("1/3")
    >>> shard.select(["LOC1", "LOC2", "LOC3", "LOC4"])
    ['LOC3']
    """

    index: int = attrs.field(validator=_check)
    count: int = attrs.field(validator=_check)

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` (e.g. ``"0/4"``) as a :class:`Shard`; ``ValueError`` names a bad one."""
        match = _FORM.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"a shard is I/N, e.g. 0/4, got {str(text)[:64]!r}")
        return cls(int(match[1]), int(match[2]))

    def owns(self, location_id: str) -> bool:
        """Whether ``location_id`` belongs to this shard."""
        return self.count == 1 or shard_of(location_id, self.count) == self.index

    def select(self, location_ids: Iterable[str]) -> list[str]:
        """The ids of ``location_ids`` this shard owns, in their order."""
        return [location_id for location_id in location_ids if self.owns(location_id)]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
