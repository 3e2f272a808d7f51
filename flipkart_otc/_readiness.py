"""Liveness and readiness, from a feed's health and its sink's state. Pure.

Liveness: the watcher runs (a probe that fails it restarts the process). Readiness:
every location polled at least once, the API answered a poll recently, and the sink
(if any) writing: a probe that fails it takes the process out of service until it
recovers. Each says why when it fails.
"""

from __future__ import annotations

from typing import Any

from ._serialize import iso_utc
from ._views import WatcherHealth

__all__ = ["liveness", "readiness"]


def _common(health: WatcherHealth) -> dict[str, Any]:
    body: dict[str, Any] = {
        "running": health.running,
        "locations": health.by_status,
        "last_success": iso_utc(health.last_success) if health.last_success else None,
        "last_success_age_s": None
        if health.last_success_age is None
        else round(health.last_success_age, 3),
        "hold_s": round(health.hold, 3),  # a 429's pause left: no poll is sent before
    }
    if health.target_rate is not None:  # PollPolicy(budget_share=...)
        idle = health.idle_interval
        body["budget"] = {
            "target_rate": round(health.target_rate, 3),
            "rate_spent": round(health.rate_spent or 0.0, 3),
            "idle_interval_s": None if idle is None or idle == float("inf") else round(idle, 3),
        }
    return body


def liveness(health: WatcherHealth) -> tuple[bool, dict[str, Any]]:
    """Whether the feed runs and its polls still end (``health.healthy``), and the JSON
    body that says so (with the reason when not)."""
    body = _common(health)
    if not health.healthy:
        body["reason"] = health.reason or "the watcher has stopped"
    return health.healthy, body


def readiness(
    health: WatcherHealth,
    *,
    stall_after: float | None,
    sink_healthy: bool | None = None,
    sink_backlog: int | None = None,
    sink_error: str | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Whether the feed is ready (``reasons`` empty), and the JSON body with the reasons.

    Not ready: not live (stopped, or polls no longer ending); a location not polled
    yet; no poll answered for more than ``stall_after`` seconds (the API down, or
    polling stalled; None: no such limit, for a feed that reads a stream); the sink not
    writing.
    """
    reasons: list[str] = []
    if not health.healthy:  # stopped, or its polls no longer end
        reasons.append(health.reason or "the watcher has stopped")
    total = sum(health.by_status.values())
    pending = health.by_status.get("PENDING", 0)
    failing = health.by_status.get("FAILING", 0)
    if pending:
        reasons.append(f"{pending} of {total} locations not polled yet")
    age = health.last_success_age
    if total and not pending and age is None:
        reasons.append(f"no poll answered yet ({failing} of {total} locations failing)")
    elif age is not None and stall_after is not None and age > stall_after:
        reasons.append(
            f"no poll answered for {age:.0f}s (over {stall_after:g}s; "
            f"{failing} of {total} locations failing)"
        )
    body = _common(health)
    if sink_healthy is not None:
        body["sink"] = {"healthy": sink_healthy, "backlog": sink_backlog}
        if sink_error is not None:
            reasons.append(f"the sink stopped: {sink_error}")
        elif not sink_healthy:
            reasons.append("the sink cannot write (its store is unavailable)")
    body["ready"] = not reasons
    body["reasons"] = reasons
    return not reasons, body
