"""A watched location as the scheduler holds it: its state (``_location``), when it is
next polled, and the FEs of it followed past the Start OTC page (``visits=True``).
Slots: a watcher holds tens of thousands."""

from __future__ import annotations

import math

from ._location import LocationState
from ._visit import FollowedFe
from .models import VisitView

__all__ = ["_Location", "_Visits"]


class _Visits:
    """A location's FEs past the Start OTC page, for ``visits=True`` (only locations
    that have some carry one: the others pay one empty slot)."""

    __slots__ = ("failed", "fes", "look", "next_round", "recovering", "views")

    def __init__(self) -> None:
        self.fes: dict[str, FollowedFe] = {}
        #: The picture of them: the published events applied (``_mirror``).
        self.views: tuple[VisitView, ...] = ()
        self.next_round = math.inf  # when they are next looked at
        self.look = False  # an initial-load is owed: who is past the Start OTC page?
        self.recovering = False  # resumed from saved state: the first look bridges a gap
        self.failed = 0  # looks in a row that failed (pages left in doubt)


class _Location(LocationState):
    """A location's state, and when it is next polled (a scheduler ``Entry``)."""

    __slots__ = ("due", "failures", "loaded", "next_poll", "removed", "resumed", "visit")

    def __init__(self, location_id: str) -> None:
        super().__init__(location_id)
        self.next_poll = 0.0
        self.failures = 0  # failed polls in a row
        self.due = math.inf
        self.removed = False
        self.loaded = False  # its saved state (a ResumableSink's) was asked for
        self.resumed = False  # restored from saved state, not polled since
        self.visit: _Visits | None = None

    def __lt__(self, other: _Location) -> bool:  # heap order; one heap entry per location
        return self.due < other.due
