"""After-commit effects of seat changes: the shield and the catalog's seat map follow PostgreSQL.

A leaf (imports no flow): booking's and payments' flows register these with
`UnitOfWork.after_commit`. Each is best effort; the map and the shield rebuild from PostgreSQL.
A change's commands are issued together (`MuxRedis.one_write`: one write, one wait for Redis),
and a caller with more Redis work of its own issues it in the same write (`issue_seat_changes`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import structlog

from boxoffice.booking import repository, shield
from boxoffice.booking.rules import SeatStatus
from boxoffice.catalog.cache import issue_seat_changes as issue_map_patch
from boxoffice.catalog.seatmap import changed as seat_map_changed
from boxoffice.runtime import Runtime

log = structlog.get_logger("boxoffice.booking")


@dataclass(frozen=True, slots=True)
class SeatChanges:
    """A committed change's commands, written (issue_seat_changes) and not yet awaited (settle)."""

    show_id: int
    shield: Awaitable[Any] | None  # the shield's mark (sold) or release; None for a hold
    shield_failure: str  # what its failure is logged as
    patch: Awaitable[Any] | None  # the seat map's patch; None when nothing changed


async def publish_seat_changes(
    runtime: Runtime, show_id: int, user_id: int, seat_ids: list[int], status: str
) -> None:
    """After a commit: keep the shield and the catalog's seat map in step. Never fails the caller."""
    with runtime.hot_redis.one_write():
        changes = issue_seat_changes(runtime, show_id, user_id, seat_ids, status)
    await settle(runtime, changes)


def issue_seat_changes(
    runtime: Runtime, show_id: int, user_id: int, seat_ids: list[int], status: str
) -> SeatChanges:
    """The shield's and the seat map's commands for a committed change, written now (inside the
    caller's one_write block: in one write with the caller's own); `settle` awaits them."""
    if not seat_ids:
        return SeatChanges(show_id, None, "", None)
    redis = runtime.hot_redis
    marks: Awaitable[Any] | None = None
    failure = ""
    if status == SeatStatus.RESERVED:
        marks, failure = shield.issue_sold(redis, show_id, user_id, seat_ids), "shield_sold_failed"
    elif status == SeatStatus.AVAILABLE:
        # The fan's hold (or order) ended: the seats go back on sale for everyone else at once,
        # and to this fan only after the re-hold cool-down (no holding seats for ever by
        # cancelling and holding them again).
        marks = shield.issue_release(
            redis,
            show_id,
            user_id,
            seat_ids,
            now=runtime.clock.now(),
            cool_seconds=runtime.settings.rehold_cooldown_seconds,
        )
        failure = "shield_release_failed"
    patch = issue_map_patch(redis, show_id, [(s, str(status)) for s in seat_ids])
    return SeatChanges(show_id, marks, failure, patch)


async def settle(runtime: Runtime, changes: SeatChanges) -> None:
    """Await a change's commands. A failure is logged, never raised: the map rebuilds from
    PostgreSQL, and a missed shield mark only sends a request on to PostgreSQL."""
    if changes.shield is not None:
        try:
            await changes.shield
        except Exception as exc:
            log.warning(
                changes.shield_failure,
                show_id=changes.show_id,
                error=type(exc).__name__,
                reason=str(exc)[:200],
            )
    if changes.patch is None:
        return
    try:
        await changes.patch
    except Exception as exc:
        log.warning("seat_map_patch_failed", show_id=changes.show_id, error=type(exc).__name__)
        return
    seat_map_changed(runtime, changes.show_id)


async def publish_closed(runtime: Runtime, closed: list[repository.Closed]) -> None:
    """Closed reservations' seats back on sale: every command in one write."""
    with runtime.hot_redis.one_write():
        issued = [
            issue_seat_changes(runtime, c.show_id, c.user_id, c.seat_ids, SeatStatus.AVAILABLE)
            for c in closed
        ]
    for changes in issued:
        await settle(runtime, changes)
