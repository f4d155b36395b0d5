"""All catalog SQL (house rule 2): venues, concerts, shows, seats, inventory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.catalog.layout import like_pattern
from boxoffice.db import tables

_SHOW_COLUMNS = (
    tables.shows.c.id,
    tables.shows.c.concert_id,
    tables.shows.c.starts_at,
    tables.shows.c.sale_opens_at,
    tables.shows.c.sale_closes_at,
    tables.shows.c.pre_queue_opens_at,
    tables.shows.c.hold_seconds,
    tables.shows.c.max_seats_per_reservation,
    tables.shows.c.currency,
    tables.shows.c.queue_admit_per_second,
    tables.shows.c.queue_max_active,
    tables.shows.c.queue_token_ttl_seconds,
    tables.shows.c.queue_oversubscription,
    tables.shows.c.queue_paused,
    tables.shows.c.refund_cutoff_hours,
    tables.shows.c.hold_requires_verified_email,
    tables.shows.c.reentry,
    tables.shows.c.queue_pow_difficulty,
    tables.shows.c.queue_adaptive,
    tables.shows.c.max_tickets_per_fan,
)


async def fetch_show(session: AsyncSession, show_id: int) -> dict[str, Any] | None:
    stmt = select(*_SHOW_COLUMNS).where(tables.shows.c.id == show_id)
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row is not None else None


async def fetch_remaining(session: AsyncSession, show_id: int) -> int | None:
    stmt = select(tables.inventory.c.remaining).where(tables.inventory.c.show_id == show_id)
    value = (await session.execute(stmt)).scalar_one_or_none()
    return None if value is None else int(value)


async def fetch_unsold(session: AsyncSession, show_id: int) -> int:
    """Seats not RESERVED: available, held, or a lapsed hold the sweep has not returned yet."""
    st = tables.seats
    stmt = select(func.count()).select_from(st).where(st.c.show_id == show_id, st.c.status != "RESERVED")
    return int((await session.execute(stmt)).scalar_one())


# ---- venues ------------------------------------------------------------------------------------


async def insert_venue(session: AsyncSession, name: str, time_zone: str) -> dict[str, Any]:
    stmt = (
        insert(tables.venues)
        .values(name=name, time_zone=time_zone)
        .returning(tables.venues.c.id, tables.venues.c.created_at)
    )
    row = (await session.execute(stmt)).mappings().one()
    return dict(row)


async def insert_sections(session: AsyncSession, venue_id: int, sections: list[dict[str, Any]]) -> None:
    rows = [{"venue_id": venue_id, "position": i, **s} for i, s in enumerate(sections)]
    await session.execute(insert(tables.venue_sections), rows)


async def fetch_venue(session: AsyncSession, venue_id: int) -> dict[str, Any] | None:
    stmt = select(tables.venues).where(tables.venues.c.id == venue_id)
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row is not None else None


async def find_venue_by_name(session: AsyncSession, name: str) -> int | None:
    stmt = (
        select(tables.venues.c.id).where(tables.venues.c.name == name).order_by(tables.venues.c.id).limit(1)
    )
    value = (await session.execute(stmt)).scalar_one_or_none()
    return None if value is None else int(value)


_vs = tables.venue_sections
_SECTION_COLUMNS = (_vs.c.id, _vs.c.name, _vs.c.position, _vs.c.rows, _vs.c.seats_per_row, _vs.c.row_lengths)


async def fetch_sections(session: AsyncSession, venue_id: int) -> list[dict[str, Any]]:
    stmt = select(*_SECTION_COLUMNS).where(_vs.c.venue_id == venue_id).order_by(_vs.c.position)
    return [dict(r) for r in (await session.execute(stmt)).mappings()]


async def list_venues(session: AsyncSession) -> list[dict[str, Any]]:
    stmt = select(tables.venues).order_by(tables.venues.c.id)
    return [dict(r) for r in (await session.execute(stmt)).mappings()]


async def fetch_sections_of(session: AsyncSession, venue_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    stmt = (
        select(_vs.c.venue_id, *_SECTION_COLUMNS)
        .where(_vs.c.venue_id.in_(venue_ids))
        .order_by(_vs.c.venue_id, _vs.c.position)
    )
    out: dict[int, list[dict[str, Any]]] = {}
    for r in (await session.execute(stmt)).mappings():
        row = dict(r)
        out.setdefault(int(row.pop("venue_id")), []).append(row)
    return out


# ---- concerts ----------------------------------------------------------------------------------

_c, _s, _v = tables.concerts, tables.shows, tables.venues
_FIRST_SHOW = select(func.min(_s.c.starts_at)).where(_s.c.concert_id == _c.c.id).scalar_subquery()
_SHOW_COUNT = select(func.count()).select_from(_s).where(_s.c.concert_id == _c.c.id).scalar_subquery()
_CONCERT_COLUMNS = (
    _c.c.id,
    _c.c.name,
    _c.c.artist,
    _c.c.venue_id,
    _v.c.name.label("venue_name"),
    _c.c.description,
    _c.c.poster_url,
    _FIRST_SHOW.label("first_show_at"),
    _SHOW_COUNT.label("show_count"),
    _c.c.created_at,
    _c.c.updated_at,
    _c.c.retired_at,
    _c.c.max_tickets_per_fan,
)


async def insert_concert(session: AsyncSession, values: dict[str, Any]) -> int:
    stmt = insert(_c).values(**values).returning(_c.c.id)
    return int((await session.execute(stmt)).scalar_one())


async def fetch_concert(
    session: AsyncSession, concert_id: int, *, for_update: bool = False
) -> dict[str, Any] | None:
    stmt = select(*_CONCERT_COLUMNS).join(_v, _v.c.id == _c.c.venue_id).where(_c.c.id == concert_id)
    if for_update:
        stmt = stmt.with_for_update(of=_c)
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row is not None else None


async def update_concert(
    session: AsyncSession, concert_id: int, values: dict[str, Any], now: datetime
) -> None:
    await session.execute(update(_c).where(_c.c.id == concert_id).values(**values, updated_at=now))


async def list_concerts(
    session: AsyncSession,
    *,
    text: str | None,
    artist: str | None,
    starts_from: datetime | None,
    starts_to: datetime | None,
    limit: int,
    offset: int,
    include_retired: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """Concerts matching the filters (text: name or artist; date range: any show starting in it);
    retired concerts only for the console."""
    conditions: list[ColumnElement[bool]] = []
    if not include_retired:
        conditions.append(_c.c.retired_at.is_(None))
    if text:
        pattern = like_pattern(text)
        conditions.append(or_(_c.c.name.ilike(pattern, escape="\\"), _c.c.artist.ilike(pattern, escape="\\")))
    if artist:
        conditions.append(_c.c.artist.ilike(like_pattern(artist), escape="\\"))
    if starts_from is not None or starts_to is not None:
        in_range = select(_s.c.id).where(_s.c.concert_id == _c.c.id)
        if starts_from is not None:
            in_range = in_range.where(_s.c.starts_at >= starts_from)
        if starts_to is not None:
            in_range = in_range.where(_s.c.starts_at < starts_to)
        conditions.append(exists(in_range))
    where = and_(true(), *conditions)
    total = (await session.execute(select(func.count()).select_from(_c).where(where))).scalar_one()
    stmt = (
        select(*_CONCERT_COLUMNS)
        .join(_v, _v.c.id == _c.c.venue_id)
        .where(where)
        .order_by(_c.c.id)
        .limit(limit)
        .offset(offset)
    )
    rows = [dict(r) for r in (await session.execute(stmt)).mappings()]
    return rows, int(total)


async def live_shows(session: AsyncSession, concert_id: int, now: datetime) -> list[int]:
    """Shows of a concert that are still to come and whose sale is not closed."""
    stmt = (
        select(_s.c.id)
        .where(
            _s.c.concert_id == concert_id,
            _s.c.starts_at > now,
            or_(_s.c.sale_closes_at.is_(None), _s.c.sale_closes_at > now),
        )
        .order_by(_s.c.id)
    )
    return [int(v) for v in (await session.execute(stmt)).scalars()]


async def retire_concert(session: AsyncSession, concert_id: int, now: datetime) -> None:
    stmt = update(_c).where(_c.c.id == concert_id, _c.c.retired_at.is_(None))
    await session.execute(stmt.values(retired_at=now, updated_at=now))


async def delete_concert(session: AsyncSession, concert_id: int) -> None:
    await session.execute(delete(_c).where(_c.c.id == concert_id))


# ---- shows -------------------------------------------------------------------------------------


async def insert_show(session: AsyncSession, values: dict[str, Any]) -> int:
    stmt = insert(_s).values(**values).returning(_s.c.id)
    return int((await session.execute(stmt)).scalar_one())


async def insert_prices(session: AsyncSession, show_id: int, prices: dict[int, int]) -> None:
    rows = [{"show_id": show_id, "section_id": sid, "price": price} for sid, price in prices.items()]
    await session.execute(insert(tables.show_prices), rows)


_GENERATE_SEATS = text(
    """
    INSERT INTO seats (show_id, section_id, section, row, number, price)
    SELECT :show_id, vs.id, vs.name, r.r, n.n, sp.price
    FROM venue_sections vs
    JOIN show_prices sp ON sp.section_id = vs.id AND sp.show_id = :show_id
    CROSS JOIN LATERAL generate_series(1, vs.rows) AS r(r)
    CROSS JOIN LATERAL generate_series(1, coalesce(vs.row_lengths[r.r], vs.seats_per_row)) AS n(n)
    WHERE vs.venue_id = :venue_id
    ORDER BY vs.position, r.r, n.n
    """
)


async def generate_seats(session: AsyncSession, show_id: int, venue_id: int) -> int:
    """One INSERT ... SELECT over generate_series: every seat of the venue, ids in layout order."""
    result = await session.execute(_GENERATE_SEATS, {"show_id": show_id, "venue_id": venue_id})
    return int(result.rowcount)  # type: ignore[attr-defined]


async def insert_inventory(session: AsyncSession, show_id: int, total: int, now: datetime) -> None:
    values = {"show_id": show_id, "total": total, "remaining": total, "version": 0, "updated_at": now}
    await session.execute(insert(tables.inventory).values(**values))


_SHOW_LIST_COLUMNS = (
    *_SHOW_COLUMNS,
    func.coalesce(tables.inventory.c.total, 0).label("total"),
    func.coalesce(tables.inventory.c.remaining, 0).label("remaining"),
    tables.venues.c.time_zone,
)


async def fetch_show_listing(
    session: AsyncSession, *, show_id: int | None = None, concert_id: int | None = None
) -> list[dict[str, Any]]:
    """Shows with inventory totals and prices (section name -> price), ordered by start."""
    stmt = (
        select(*_SHOW_LIST_COLUMNS)
        .join(tables.concerts, tables.concerts.c.id == _s.c.concert_id)
        .join(tables.venues, tables.venues.c.id == tables.concerts.c.venue_id)
        .outerjoin(tables.inventory, tables.inventory.c.show_id == _s.c.id)
    )
    if show_id is not None:
        stmt = stmt.where(_s.c.id == show_id)
    if concert_id is not None:
        stmt = stmt.where(_s.c.concert_id == concert_id)
    rows = [dict(r) for r in (await session.execute(stmt.order_by(_s.c.starts_at, _s.c.id))).mappings()]
    if not rows:
        return rows
    sp, vs = tables.show_prices, tables.venue_sections
    price_stmt = (
        select(sp.c.show_id, vs.c.name, sp.c.price)
        .join(vs, vs.c.id == sp.c.section_id)
        .where(sp.c.show_id.in_([r["id"] for r in rows]))
        .order_by(sp.c.show_id, vs.c.position)
    )
    prices: dict[int, dict[str, int]] = {}
    for show, name, price in (await session.execute(price_stmt)).all():
        prices.setdefault(int(show), {})[str(name)] = int(price)
    for r in rows:
        r["prices"] = prices.get(r["id"], {})
    return rows


async def lock_show(session: AsyncSession, show_id: int) -> dict[str, Any] | None:
    """FOR UPDATE on the show row: waits for hold transactions inserting reservations (their
    foreign key check holds KEY SHARE on it) and blocks new ones until we commit."""
    stmt = select(*_SHOW_COLUMNS).where(_s.c.id == show_id).with_for_update()
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row is not None else None


async def lock_concert_shows(session: AsyncSession, concert_id: int) -> list[int]:
    stmt = select(_s.c.id).where(_s.c.concert_id == concert_id).order_by(_s.c.id).with_for_update()
    return [int(v) for v in (await session.execute(stmt)).scalars()]


async def update_show(session: AsyncSession, show_id: int, values: dict[str, Any], now: datetime) -> None:
    await session.execute(update(_s).where(_s.c.id == show_id).values(**values, updated_at=now))


_UPDATE_PRICES = text(
    """
    WITH p AS (
        UPDATE show_prices sp SET price = v.price
        FROM unnest(CAST(:section_ids AS bigint[]), CAST(:prices AS bigint[])) AS v(section_id, price)
        WHERE sp.show_id = :show_id AND sp.section_id = v.section_id
        RETURNING sp.section_id, sp.price
    )
    UPDATE seats s SET price = p.price, updated_at = :now
    FROM p WHERE s.show_id = :show_id AND s.section_id = p.section_id AND s.price <> p.price
    """
)


async def update_prices(session: AsyncSession, show_id: int, prices: dict[int, int], now: datetime) -> None:
    """New prices per section, written to show_prices and to the show's seats (only before the sale)."""
    params = {"show_id": show_id, "section_ids": list(prices), "prices": list(prices.values()), "now": now}
    await session.execute(_UPDATE_PRICES, params)


_BOOKING_STATE = text(
    """
    SELECT
      (SELECT count(*) FROM seats WHERE show_id = ANY(:ids) AND status <> 'AVAILABLE') AS taken_seats,
      (SELECT count(*) FROM reservations WHERE show_id = ANY(:ids)
         AND status IN ('TEMP_RESERVED', 'RESERVED')) AS live_reservations,
      (SELECT count(*) FROM payments p JOIN reservations r ON r.id = p.reservation_id
         WHERE r.show_id = ANY(:ids)) AS payments
    """
)


async def booking_state(session: AsyncSession, show_ids: list[int]) -> dict[str, int]:
    row = (await session.execute(_BOOKING_STATE, {"ids": show_ids})).mappings().one()
    return {k: int(v) for k, v in row.items()}


async def delete_shows(session: AsyncSession, show_ids: list[int]) -> None:
    """Closed reservations without payments (expired/cancelled holds) go with the show."""
    await session.execute(delete(tables.reservations).where(tables.reservations.c.show_id.in_(show_ids)))
    await session.execute(delete(_s).where(_s.c.id.in_(show_ids)))


# ---- seats (the seat map) ----------------------------------------------------------------------


async def fetch_seat_rows(session: AsyncSession, show_id: int) -> list[tuple[int, str, int, int, int, str]]:
    st = tables.seats
    stmt = (
        select(st.c.id, st.c.section, st.c.row, st.c.number, st.c.price, st.c.status)
        .where(st.c.show_id == show_id)
        .order_by(st.c.id)
    )
    return [tuple(r) for r in (await session.execute(stmt)).all()]  # type: ignore[misc]


_STATUS_SUMMARY = text(
    """
    SELECT min(id) AS base, max(id) AS top, count(*) AS n,
           string_agg(left(status, 1), '' ORDER BY id) AS chars
    FROM seats WHERE show_id = :show_id
    """
)


async def fetch_status_summary(session: AsyncSession, show_id: int) -> dict[str, Any]:
    """The statuses as one string (a byte per seat, in id order) built by PostgreSQL."""
    row = (await session.execute(_STATUS_SUMMARY, {"show_id": show_id})).mappings().one()
    return dict(row)


async def fetch_seat_statuses(session: AsyncSession, show_id: int) -> list[tuple[int, str]]:
    st = tables.seats
    stmt = select(st.c.id, st.c.status).where(st.c.show_id == show_id).order_by(st.c.id)
    return [(int(i), str(s)) for i, s in (await session.execute(stmt)).all()]


_SECTION_RANKS = text(
    """
    SELECT DISTINCT s.section, vs.position FROM seats s JOIN venue_sections vs ON vs.id = s.section_id
    WHERE s.show_id = :show_id
    """
)


async def section_ranks(session: AsyncSession, show_id: int) -> dict[str, int]:
    """A show's sections with their place in the venue's ranking (best available; lower is better)."""
    rows = await session.execute(_SECTION_RANKS, {"show_id": show_id})
    return {str(r[0]): int(r[1]) for r in rows}


# While anyone waits on a show's waitlist, its AVAILABLE seats are owed to them (booking's hold
# statement refuses them to the crowd): the seat map shows them held.
_WAITLIST_WAITING = text(
    "SELECT EXISTS (SELECT 1 FROM waitlist WHERE show_id = :show_id AND status = 'WAITING')"
)


async def waitlist_waiting(session: AsyncSession, show_id: int) -> bool:
    return bool((await session.execute(_WAITLIST_WAITING, {"show_id": show_id})).scalar())


async def show_exists(session: AsyncSession, show_id: int) -> bool:
    stmt = select(exists(select(_s.c.id).where(_s.c.id == show_id)))
    return bool((await session.execute(stmt)).scalar())


# ---- inventory ---------------------------------------------------------------------------------

_RECOUNT = text(
    """
    WITH locked AS (
        SELECT show_id FROM inventory
        WHERE (CAST(:all_shows AS boolean) OR show_id = ANY(:ids))
        ORDER BY show_id
        FOR UPDATE SKIP LOCKED
    ), counts AS (
        SELECT l.show_id,
               (SELECT count(*) FROM seats s WHERE s.show_id = l.show_id AND s.status = 'AVAILABLE') AS n
        FROM locked l
    )
    UPDATE inventory i
    SET remaining = counts.n, version = i.version + 1, updated_at = :now
    FROM counts
    WHERE i.show_id = counts.show_id AND i.remaining <> counts.n
    RETURNING i.show_id, i.remaining
    """
)


async def recount_inventory(
    session: AsyncSession, show_ids: list[int] | None, now: datetime
) -> dict[int, int]:
    """Sets remaining = AVAILABLE seats where it drifted. Rows another worker is recounting are skipped
    (SKIP LOCKED), so concurrent workers never wait on each other nor deadlock."""
    params = {"all_shows": show_ids is None, "ids": show_ids or [], "now": now}
    rows = (await session.execute(_RECOUNT, params)).all()
    return {int(show): int(remaining) for show, remaining in rows}


async def recount_candidates(session: AsyncSession, now: datetime, since: datetime) -> list[int]:
    """Shows whose seats can still change: the sale has opened and the show is not long over."""
    stmt = select(_s.c.id).where(_s.c.sale_opens_at <= now, _s.c.starts_at > since).order_by(_s.c.id)
    return [int(v) for v in (await session.execute(stmt)).scalars()]


async def seat_status_counts(session: AsyncSession, show_ids: list[int]) -> dict[tuple[int, str], int]:
    """(show, seat status) -> seats, for the operators' gauges (/metrics)."""
    seats = tables.seats
    stmt = (
        select(seats.c.show_id, seats.c.status, func.count())
        .where(seats.c.show_id.in_(show_ids))
        .group_by(seats.c.show_id, seats.c.status)
    )
    return {(int(show), str(status)): int(n) for show, status, n in (await session.execute(stmt)).all()}


# ---- demo seeding ------------------------------------------------------------------------------

_DEMO_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('boxoffice.demo_seed'))")
# A second seeder waits for the first to finish (seconds on a loaded machine), not the connections'
# 3 s lock_timeout meant for request paths; SET LOCAL ends with this transaction.
_DEMO_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = '120s'")


async def lock_demo_seed(session: AsyncSession) -> None:
    """Two seeders starting together (two `boxoffice up`) take turns; the second finds the demo."""
    await session.execute(_DEMO_LOCK_TIMEOUT)
    await session.execute(_DEMO_LOCK)
