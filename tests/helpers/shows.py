"""The one `make_show`: a venue with one section, a concert, a show, its prices, seats and inventory,
inserted directly (the catalog has its own tests). Times are relative to the runtime's clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

_UNSET: Any = object()


async def make_show(
    runtime: Any,
    *,
    seats: int = 10,
    price: int = 10_000,
    hold_seconds: int = 300,
    max_seats: int = 4,
    starts_in: timedelta = timedelta(days=30),
    opens_in: float = -3600,
    closes_in: float | None = None,
    pre_queue_in: float | None = None,
    remaining: int | None = None,
    admit_per_second: float = _UNSET,
    max_active: int | None = _UNSET,
    oversubscription: float | None = _UNSET,
    token_ttl: int = _UNSET,
    pow_difficulty: int = 0,
    currency: str = "KRW",
    adaptive: bool = _UNSET,
) -> dict[str, Any]:
    """`opens_in`/`closes_in`/`pre_queue_in` are seconds from now (negative: in the past); queue
    settings left unset keep the schema's defaults. Returns the ids, and the queue request body.

    The toll at the queue's door is off here unless `pow_difficulty` says otherwise (real shows
    have it on: the column's default): most tests are about what happens after the join, and
    tests/integration/test_queue_toll.py pays the real toll (tests/helpers/toll.py solves it)."""
    now = runtime.clock.now()
    queue = {
        "queue_admit_per_second": admit_per_second,
        "queue_max_active": max_active,
        "queue_oversubscription": oversubscription,
        "queue_token_ttl_seconds": token_ttl,
        "queue_adaptive": adaptive,
    }
    queue = {k: v for k, v in queue.items() if v is not _UNSET}
    show_values: dict[str, Any] = {
        "starts_at": now + starts_in,
        "sale_opens_at": now + timedelta(seconds=opens_in),
        "sale_closes_at": None if closes_in is None else now + timedelta(seconds=closes_in),
        "pre_queue_opens_at": None if pre_queue_in is None else now + timedelta(seconds=pre_queue_in),
        "hold_seconds": hold_seconds,
        "max_seats_per_reservation": max_seats,
        "queue_pow_difficulty": pow_difficulty,
        "currency": currency,
        **queue,
    }
    columns = ", ".join(show_values)
    params = ", ".join(f":{k}" for k in show_values)
    async with runtime.sessions() as s, s.begin():
        venue = (await s.execute(text("INSERT INTO venues (name) VALUES ('Hall') RETURNING id"))).scalar_one()
        section = (
            await s.execute(
                text(
                    "INSERT INTO venue_sections (venue_id, name, position, rows, seats_per_row) "
                    "VALUES (:v, 'A', 1, 1, :n) RETURNING id"
                ),
                {"v": venue, "n": seats},
            )
        ).scalar_one()
        concert = (
            await s.execute(
                text("INSERT INTO concerts (venue_id, name, artist) VALUES (:v, 'Gig', 'Band') RETURNING id"),
                {"v": venue},
            )
        ).scalar_one()
        show = (
            await s.execute(
                text(f"INSERT INTO shows (concert_id, {columns}) VALUES (:concert, {params}) RETURNING id"),
                {"concert": concert, **show_values},
            )
        ).scalar_one()
        await s.execute(
            text("INSERT INTO show_prices (show_id, section_id, price) VALUES (:s, :sec, :p)"),
            {"s": show, "sec": section, "p": price},
        )
        seat_ids = (
            (
                await s.execute(
                    text(
                        "INSERT INTO seats (show_id, section_id, section, row, number, price) "
                        "SELECT :s, :sec, 'A', 1, n, :p FROM generate_series(1, :n) AS n RETURNING id"
                    ),
                    {"s": show, "sec": section, "p": price, "n": seats},
                )
            )
            .scalars()
            .all()
        )
        await s.execute(
            text("INSERT INTO inventory (show_id, total, remaining) VALUES (:s, :n, :r)"),
            {"s": show, "n": seats, "r": seats if remaining is None else remaining},
        )
    return {
        "show_id": show,
        "id": show,
        "concert_id": concert,
        "seat_ids": sorted(seat_ids),
        "body": {"concert_id": concert, "show_id": show},
    }
