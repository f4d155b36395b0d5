"""Catalog domain operations on the session they are given; they never commit (the request's unit
of work does, or `catalog/flows.py` for the inventory_recount job).

Other domains call: `get_show`, `get_remaining`, `get_unsold`, `refresh_inventory` (and
`cache.issue_seat_changes` as an after-commit effect of their seat changes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.catalog import cache, layout, repository
from boxoffice.catalog.schemas import (
    ConcertIn,
    ConcertPatch,
    Show,
    ShowIn,
    ShowPatch,
    VenueIn,
)
from boxoffice.db.outbox import emit
from boxoffice.db.uow import after_commit
from boxoffice.errors import (
    ConcertHasLiveShows,
    ConcertNotFound,
    DomainError,
    SaleStarted,
    ShowHasBookings,
    ShowNotFound,
    Unprocessable,
    VenueNotFound,
    error_class,
)
from boxoffice.kit.clock import Clock
from boxoffice.kit.timefmt import DEFAULT_ZONE
from boxoffice.redis.client import RedisClient

__all__ = ["Show", "get_remaining", "get_show", "get_unsold", "refresh_inventory"]

log = structlog.get_logger("boxoffice.catalog")

RECOUNT_AFTER_START = timedelta(days=1)  # seats of a show that started a day ago no longer move


def _problems(problems: Sequence[layout.Problem], code: str, detail: str, **extra: Any) -> DomainError:
    """A 422 shaped like request validation errors: every offending field with its location
    (VENUE_NOT_FOUND too, when the venue is a field of the request)."""
    errors = [{"loc": ["body", *map(str, loc)], "msg": msg, "type": "value_error"} for loc, msg in problems]
    return error_class(code)(detail, status=422, errors=errors, **extra)


# ---- reads other domains use ----------------------------------------------------------------------


async def get_show(session: AsyncSession, show_id: int) -> Show:
    row = await repository.fetch_show(session, show_id)
    if row is None:
        raise ShowNotFound(f"Show {show_id} not found", show_id=show_id)
    return Show(**row)


async def get_remaining(session: AsyncSession, show_id: int) -> int:
    """inventory.remaining: what listings show, kept within ~1 s of the seats by the recount job."""
    remaining = await repository.fetch_remaining(session, show_id)
    if remaining is None:
        raise ShowNotFound(f"Show {show_id} not found", show_id=show_id)
    return remaining


async def get_unsold(session: AsyncSession, show_id: int) -> int:
    """Seats that may still sell (AVAILABLE or TEMP_RESERVED, live or lapsed); 0 means sold out."""
    return await repository.fetch_unsold(session, show_id)


# ---- venues ----------------------------------------------------------------------------------------


def _seat_count(section: dict[str, Any]) -> int:
    lengths = section.get("row_lengths")
    return sum(lengths) if lengths else int(section["rows"] * section["seats_per_row"])


def _venue_out(venue: dict[str, Any], sections: list[dict[str, Any]]) -> dict[str, Any]:
    out_sections = [{**s, "seat_count": _seat_count(s)} for s in sections]
    return {
        "id": venue["id"],
        "name": venue["name"],
        "time_zone": venue.get("time_zone", DEFAULT_ZONE),
        "sections": out_sections,
        "seat_count": sum(s["seat_count"] for s in out_sections),
        "created_at": venue["created_at"],
    }


def venue_layout(data: VenueIn) -> list[layout.Section]:
    """The sections of a venue request, or 422 INVALID_LAYOUT naming every offending field."""
    problems: list[layout.Problem] = []
    sections: list[layout.Section] = []
    for i, s in enumerate(data.sections):
        rows, width, shape = layout.section_shape(s.rows, s.seats_per_row, s.row_lengths)
        problems += [(("sections", i, *loc), msg) for loc, msg in shape]
        lengths = tuple(s.row_lengths) if s.row_lengths else None
        sections.append(layout.Section(s.name, rows, width, lengths))
    problems += layout.layout_problems(sections)
    if problems:
        raise _problems(problems, "INVALID_LAYOUT", "The venue layout is invalid")
    return sections


async def create_venue(session: AsyncSession, data: VenueIn) -> dict[str, Any]:
    sections = venue_layout(data)
    venue = await repository.insert_venue(session, data.name, data.time_zone)
    rows = [
        {
            "name": s.name,
            "rows": s.rows,
            "seats_per_row": s.seats_per_row,
            "row_lengths": list(s.row_lengths) if s.row_lengths else None,
        }
        for s in sections
    ]
    await repository.insert_sections(session, venue["id"], rows)
    return await get_venue(session, venue["id"])


async def list_venues(session: AsyncSession) -> list[dict[str, Any]]:
    venues = await repository.list_venues(session)
    sections = await repository.fetch_sections_of(session, [v["id"] for v in venues])
    return [_venue_out(v, sections.get(v["id"], [])) for v in venues]


async def get_venue(session: AsyncSession, venue_id: int) -> dict[str, Any]:
    venue = await repository.fetch_venue(session, venue_id)
    if venue is None:
        raise VenueNotFound(f"Venue {venue_id} not found", venue_id=venue_id)
    return _venue_out(venue, await repository.fetch_sections(session, venue_id))


async def find_venue_id(session: AsyncSession, name: str) -> int | None:
    return await repository.find_venue_by_name(session, name)


async def serialize_seeding(session: AsyncSession) -> None:
    """A transaction-scoped lock so two seeders (two `boxoffice up`) never both create the demo."""
    await repository.lock_demo_seed(session)


# ---- concerts --------------------------------------------------------------------------------------


async def create_concert(session: AsyncSession, data: ConcertIn) -> dict[str, Any]:
    if await repository.fetch_venue(session, data.venue_id) is None:
        raise _problems(
            [(("venue_id",), "no such venue")], "VENUE_NOT_FOUND", f"Venue {data.venue_id} not found"
        )
    concert_id = await repository.insert_concert(session, data.model_dump())
    return await _concert(session, concert_id)


async def _concert(session: AsyncSession, concert_id: int, *, for_update: bool = False) -> dict[str, Any]:
    row = await repository.fetch_concert(session, concert_id, for_update=for_update)
    if row is None:
        raise ConcertNotFound(f"Concert {concert_id} not found", concert_id=concert_id)
    return row


async def get_concert(session: AsyncSession, concert_id: int) -> dict[str, Any]:
    """The concert with its venue and sections."""
    row = await _concert(session, concert_id)
    return {**row, "venue": await get_venue(session, row["venue_id"])}


async def list_concerts(
    session: AsyncSession,
    *,
    q: str | None = None,
    artist: str | None = None,
    starts_from: datetime | None = None,
    starts_to: datetime | None = None,
    limit: int = 20,
    offset: int = 0,
    include_retired: bool = False,
) -> dict[str, Any]:
    if starts_from is not None and starts_to is not None and starts_to <= starts_from:
        raise Unprocessable(
            "starts_to must be after starts_from",
            errors=[
                {"loc": ["query", "starts_to"], "msg": "must be after starts_from", "type": "value_error"}
            ],
        )
    items, total = await repository.list_concerts(
        session,
        text=q,
        artist=artist,
        starts_from=starts_from,
        starts_to=starts_to,
        limit=limit,
        offset=offset,
        include_retired=include_retired,
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


async def update_concert(
    session: AsyncSession, clock: Clock, concert_id: int, data: ConcertPatch
) -> dict[str, Any]:
    await _concert(session, concert_id, for_update=True)
    values = data.model_dump(exclude_unset=True)
    if values:
        await repository.update_concert(session, concert_id, values, clock.now())
    return await _concert(session, concert_id)


async def retire_concert(session: AsyncSession, clock: Clock, concert_id: int) -> dict[str, Any]:
    """Out of the public listing, history kept. Refused (409 CONCERT_HAS_LIVE_SHOWS) while a show is
    still to come with its sale not closed: close or delete those shows first."""
    await _concert(session, concert_id, for_update=True)
    now = clock.now()
    live = await repository.live_shows(session, concert_id, now)
    if live:
        raise ConcertHasLiveShows(
            f"Concert {concert_id} still has shows to come whose sale is not closed "
            f"(shows {', '.join(map(str, live))}): close their sale or delete them first",
            show_ids=live,
        )
    await repository.retire_concert(session, concert_id, now)
    return await _concert(session, concert_id)


async def delete_concert(session: AsyncSession, redis: RedisClient, concert_id: int) -> None:
    await _concert(session, concert_id, for_update=True)
    show_ids = await repository.lock_concert_shows(session, concert_id)
    if show_ids:
        await _ensure_untouched(session, show_ids)
        await repository.delete_shows(session, show_ids)
    await repository.delete_concert(session, concert_id)
    for show_id in show_ids:
        await emit(session, "show.deleted", aggregate_type="show", aggregate_id=show_id, show_id=show_id)
        _forget_seat_map(session, redis, show_id)


# ---- shows -----------------------------------------------------------------------------------------


def _show_out(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "id": row["id"],
        "concert_id": row["concert_id"],
        "starts_at": row["starts_at"],
        "sale_opens_at": row["sale_opens_at"],
        "sale_closes_at": row["sale_closes_at"],
        "pre_queue_opens_at": row["pre_queue_opens_at"],
        "hold_seconds": row["hold_seconds"],
        "max_seats_per_reservation": row["max_seats_per_reservation"],
        "refund_cutoff_hours": row["refund_cutoff_hours"],
        "hold_requires_verified_email": row["hold_requires_verified_email"],
        "reentry": row["reentry"],
        "max_tickets_per_fan": row["max_tickets_per_fan"],
        "queue": {
            "admit_per_second": row["queue_admit_per_second"],
            "max_active": row["queue_max_active"],
            "token_ttl_seconds": row["queue_token_ttl_seconds"],
            "oversubscription": row["queue_oversubscription"],
            "paused": row["queue_paused"],
            "pow_difficulty": row["queue_pow_difficulty"],
            "adaptive": row["queue_adaptive"],
        },
        "currency": row["currency"],
        "time_zone": row["time_zone"],
        "prices": row["prices"],
        "on_sale": layout.is_on_sale(now, row["sale_opens_at"], row["sale_closes_at"]),
        "total": row["total"],
        "remaining": row["remaining"],
    }


async def get_show_details(session: AsyncSession, clock: Clock, show_id: int) -> dict[str, Any]:
    rows = await repository.fetch_show_listing(session, show_id=show_id)
    if not rows:
        raise ShowNotFound(f"Show {show_id} not found", show_id=show_id)
    return _show_out(rows[0], clock.now())


async def list_shows(session: AsyncSession, clock: Clock, concert_id: int) -> dict[str, Any]:
    await _concert(session, concert_id)
    now = clock.now()
    rows = await repository.fetch_show_listing(session, concert_id=concert_id)
    return {"concert_id": concert_id, "items": [_show_out(r, now) for r in rows]}


async def create_show(
    session: AsyncSession, clock: Clock, concert_id: int, data: ShowIn, *, default_hold_seconds: int = 300
) -> dict[str, Any]:
    """The show, its prices, one seat row per venue seat and the inventory row: one transaction,
    set-based inserts (a 50,000-seat show is one INSERT ... SELECT)."""
    concert = await _concert(session, concert_id)
    sections = await repository.fetch_sections(session, concert["venue_id"])
    missing, unknown = layout.price_problems([s["name"] for s in sections], data.prices)
    problems: list[layout.Problem] = [
        (("prices", name), "price missing for this section") for name in missing
    ]
    problems += [(("prices", name), "no such section in the venue") for name in unknown]
    problems += layout.window_problems(
        starts_at=data.starts_at,
        sale_opens_at=data.sale_opens_at,
        sale_closes_at=data.sale_closes_at,
        pre_queue_opens_at=data.pre_queue_opens_at,
    )
    if problems:
        raise _problems(
            problems,
            "INVALID_SHOW",
            "The show is invalid",
            missing_sections=missing,
            unknown_sections=unknown,
        )
    now = clock.now()
    show_id = await repository.insert_show(
        session,
        {
            "concert_id": concert_id,
            "starts_at": data.starts_at,
            "currency": data.currency,
            "sale_opens_at": data.sale_opens_at,
            "sale_closes_at": data.sale_closes_at,
            "pre_queue_opens_at": data.pre_queue_opens_at,
            "hold_seconds": data.hold_seconds or default_hold_seconds,
            "max_seats_per_reservation": data.max_seats_per_reservation,
            "refund_cutoff_hours": data.refund_cutoff_hours,
            "hold_requires_verified_email": data.hold_requires_verified_email,
            "reentry": data.reentry,
            "max_tickets_per_fan": data.max_tickets_per_fan,
            "queue_admit_per_second": data.queue.admit_per_second,
            "queue_max_active": data.queue.max_active,
            "queue_token_ttl_seconds": data.queue.token_ttl_seconds,
            "queue_oversubscription": data.queue.oversubscription,
            "queue_paused": data.queue.paused,
            "queue_pow_difficulty": data.queue.pow_difficulty,
            "queue_adaptive": data.queue.adaptive,
            "created_at": now,
            "updated_at": now,
        },
    )
    await repository.insert_prices(session, show_id, {s["id"]: data.prices[s["name"]] for s in sections})
    total = await repository.generate_seats(session, show_id, concert["venue_id"])
    await repository.insert_inventory(session, show_id, total, now)
    await emit(session, "show.created", aggregate_type="show", aggregate_id=show_id, show_id=show_id)
    return await get_show_details(session, clock, show_id)


_QUEUE_COLUMNS = {
    "admit_per_second": "queue_admit_per_second",
    "max_active": "queue_max_active",
    "token_ttl_seconds": "queue_token_ttl_seconds",
    "oversubscription": "queue_oversubscription",
    "paused": "queue_paused",
    "pow_difficulty": "queue_pow_difficulty",
    "adaptive": "queue_adaptive",
}


async def update_show(session: AsyncSession, clock: Clock, show_id: int, data: ShowPatch) -> dict[str, Any]:
    """Only the fields sent change. Once the queue or sale opened, what fans bought under (opening,
    prices, seat limit) is frozen: 409 SALE_STARTED names each refused field and changes nothing."""
    current = await repository.lock_show(session, show_id)
    if current is None:
        raise ShowNotFound(f"Show {show_id} not found", show_id=show_id)
    now = clock.now()
    values = data.model_dump(exclude_unset=True, exclude={"queue", "prices"})
    if data.queue is not None:
        for field, value in data.queue.model_dump(exclude_unset=True).items():
            values[_QUEUE_COLUMNS[field]] = value
    listing = (await repository.fetch_show_listing(session, show_id=show_id))[0]
    new_prices = {n: p for n, p in (data.prices or {}).items() if listing["prices"].get(n) != p}
    changed = [f for f, v in values.items() if current.get(f) != v] + (["prices"] if new_prices else [])
    frozen = layout.frozen_problems(
        changed,
        now=now,
        sale_opens_at=current["sale_opens_at"],
        pre_queue_opens_at=current["pre_queue_opens_at"],
    )
    if frozen:
        raise SaleStarted(
            "The sale has started: " + "; ".join(f"{loc[0]} {msg}" for loc, msg in frozen),
            fields=[loc[0] for loc, _ in frozen],
            errors=[{"loc": ["body", *map(str, loc)], "msg": msg, "type": "frozen"} for loc, msg in frozen],
        )
    merged = {**current, **values}
    problems = layout.window_problems(
        starts_at=merged["starts_at"],
        sale_opens_at=merged["sale_opens_at"],
        sale_closes_at=merged["sale_closes_at"],
        pre_queue_opens_at=merged["pre_queue_opens_at"],
    )
    unknown = sorted(n for n in (data.prices or {}) if n not in listing["prices"])
    problems += [(("prices", n), "no such section in the venue") for n in unknown]
    if problems:
        raise _problems(problems, "INVALID_SHOW", "The show is invalid")
    if new_prices:
        concert = await _concert(session, current["concert_id"])
        ids = {s["name"]: s["id"] for s in await repository.fetch_sections(session, concert["venue_id"])}
        await repository.update_prices(session, show_id, {ids[n]: p for n, p in new_prices.items()}, now)
    if values or new_prices:
        await repository.update_show(session, show_id, values, now)
        changed = sorted(data.model_dump(exclude_unset=True).keys())
        await emit(
            session,
            "show.updated",
            aggregate_type="show",
            aggregate_id=show_id,
            show_id=show_id,
            payload={"changed": changed},
        )
    return await get_show_details(session, clock, show_id)


async def _ensure_untouched(session: AsyncSession, show_ids: list[int]) -> None:
    state = await repository.booking_state(session, show_ids)
    if state["taken_seats"] or state["live_reservations"] or state["payments"]:
        raise ShowHasBookings(
            "Seats of this show are held or sold; it can no longer be deleted",
            taken_seats=state["taken_seats"],
            live_reservations=state["live_reservations"],
            payments=state["payments"],
        )


async def delete_show(session: AsyncSession, redis: RedisClient, show_id: int) -> None:
    """Only while nothing is held or sold. The row lock waits for hold transactions in flight and
    keeps new ones out until we commit, so no hold can slip in between the check and the delete."""
    if await repository.lock_show(session, show_id) is None:
        raise ShowNotFound(f"Show {show_id} not found", show_id=show_id)
    await _ensure_untouched(session, [show_id])
    await repository.delete_shows(session, [show_id])
    await emit(session, "show.deleted", aggregate_type="show", aggregate_id=show_id, show_id=show_id)
    _forget_seat_map(session, redis, show_id)


def _forget_seat_map(session: AsyncSession, redis: RedisClient, show_id: int) -> None:
    """Once the delete has committed: before it, a reader could re-cache the old map."""

    async def forget() -> None:
        try:
            await cache.invalidate_seat_map(redis, show_id)
        except RedisError:
            log.warning("seat_map_invalidate_failed", show_id=show_id)

    after_commit(session, forget)


# ---- inventory -------------------------------------------------------------------------------------


async def refresh_inventory(
    session: AsyncSession, show_ids: list[int] | None = None, *, now: datetime | None = None
) -> dict[int, int]:
    """Recount remaining = AVAILABLE seats for these shows (all when None) and bump the version where
    it changed. -> {show_id: new remaining} for the changed ones. Hold transactions never touch the
    inventory row; this recount is both the update and the reconciliation."""
    return await repository.recount_inventory(session, show_ids, now or datetime.now(UTC))
