"""After-commit effects of seat changes: the shield and the catalog's seat map follow PostgreSQL.

A leaf (imports no flow): booking's and payments' flows register these with
`UnitOfWork.after_commit`. Each is best effort; the map and the shield rebuild from PostgreSQL.
"""

from __future__ import annotations

import structlog

from boxoffice.booking import repository, shield
from boxoffice.booking.rules import SeatStatus
from boxoffice.catalog.cache import apply_seat_changes
from boxoffice.catalog.seatmap import changed as seat_map_changed
from boxoffice.runtime import Runtime

log = structlog.get_logger("boxoffice.booking")


async def publish_seat_changes(
    runtime: Runtime, show_id: int, user_id: int, seat_ids: list[int], status: str
) -> None:
    """After a commit: keep the shield and the catalog's seat map in step. Never fails the caller."""
    if not seat_ids:
        return
    if status == SeatStatus.RESERVED:
        # In turn, not gathered (see payments.flows._Confirmed).
        await shield.mark_sold(runtime.hot_redis, show_id, user_id, seat_ids)
        await _patch_seat_map(runtime, show_id, seat_ids, status)
        return
    if status == SeatStatus.AVAILABLE:
        # The fan's hold (or order) ended: the seats go back on sale for everyone else at once,
        # and to this fan only after the re-hold cool-down (no holding seats for ever by
        # cancelling and holding them again).
        await shield.release(
            runtime.hot_redis,
            show_id,
            user_id,
            seat_ids,
            now=runtime.clock.now(),
            cool_seconds=runtime.settings.rehold_cooldown_seconds,
        )
    await _patch_seat_map(runtime, show_id, seat_ids, status)


async def _patch_seat_map(runtime: Runtime, show_id: int, seat_ids: list[int], status: str) -> None:
    try:
        await apply_seat_changes(runtime.hot_redis, show_id, [(s, str(status)) for s in seat_ids])
        seat_map_changed(runtime, show_id)
    except Exception as exc:  # the map rebuilds from PostgreSQL; a stale patch is not an error
        log.warning("seat_map_patch_failed", show_id=show_id, error=type(exc).__name__)


async def publish_closed(runtime: Runtime, closed: list[repository.Closed]) -> None:
    for c in closed:
        await publish_seat_changes(runtime, c.show_id, c.user_id, c.seat_ids, SeatStatus.AVAILABLE)
