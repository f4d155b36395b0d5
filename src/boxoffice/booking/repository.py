"""All booking SQL (house rule 2). Statements are Core `text()` with bound parameters.

Seats change hands only through HOLD (a conditional UPDATE inside one all-or-nothing statement),
CONFIRM (a hold's own seats -> RESERVED) and CLOSE (a reservation's own seats -> AVAILABLE).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.booking.rules import SeatSpot, ShowRules
from boxoffice.db.idempotency import LEAN_PRIOR, lean_claim
from boxoffice.db.warm import hot
from boxoffice.kit.clock import iso

_SHOW_RULES = text(
    "SELECT id, starts_at, sale_opens_at, sale_closes_at, hold_seconds, max_seats_per_reservation, "
    "hold_requires_verified_email FROM shows WHERE id = :show_id"
)

# A hold: ONE statement, all or nothing, that commits on its own (a lean unit of work), with its
# Idempotency-Key ($1-$6, see idempotency.LEAN_PRIOR / lean_claim). Nothing is written unless every
# requested seat can be taken: `cand` locks the requested seats that are AVAILABLE or held by a dead
# hold (a concurrent hold of one of them waits, then re-checks it), and `res` inserts the hold only
# if that is all of them, unless the user already has one for the show (ON CONFLICT on the partial
# unique index -> no row, the caller sorts it out). Every later write hangs off `res`, and `won`
# takes exactly the seats `cand` locked. `dead` retires the reservation_seats rows of dead holds for
# those seats; `ins` reads count(dead) first, an InitPlan, so the retirement runs before the insert
# meets the unique (seat_id) WHERE live index. `answer` is the 201 body, stored with the key and
# returned. With a stored answer for the key (`prior`), nothing is locked or written.
#
# The per-fan limits: `fan` adds the hold's seats to the fan's two rows of fan_tickets (the concert
# first, then the show: one lock order for everyone) only while each stays within its limit; a fan's
# concurrent holds queue on those rows and each re-checks the count it finds (ON CONFLICT DO
# UPDATE ... WHERE sees the latest row). A hold written (`res`) with fewer than two rows counted is
# over a limit: `refused` raises SQLSTATE BO001 (bo_ticket_limit_reached, migration 0004) and the
# whole statement, hold and all, is undone.
_HOLD = hot(f"""
WITH {LEAN_PRIOR}, cand AS (
    -- `show_id + 0` leaves the primary key the only way to the asked seats. A generic plan (the
    -- show unknown) took the show's status index when the show's seats were new to the
    -- statistics and walked thousands of its entries per hold: a third of PostgreSQL's CPU.
    SELECT id, section, row, number, price FROM seats
    WHERE id = ANY($8::bigint[]) AND show_id + 0 = $7
      AND (status = 'AVAILABLE' OR (status = 'TEMP_RESERVED' AND hold_expires_at <= $5))
      AND NOT EXISTS (SELECT 1 FROM prior)
      -- while fans wait on the show's waitlist, returned seats are offered to them, not the crowd
      AND NOT EXISTS (SELECT 1 FROM waitlist w WHERE w.show_id = $7 AND w.status = 'WAITING')
    ORDER BY id
    FOR UPDATE
), res AS (
    INSERT INTO reservations (user_id, show_id, status, total_price, seat_count, expires_at,
                              created_at, updated_at)
    SELECT $1, $7, 'TEMP_RESERVED', sum(price), count(*), $9, $5, $5
    FROM cand HAVING count(*) = cardinality($8::bigint[])
    ON CONFLICT (user_id, show_id) WHERE status = 'TEMP_RESERVED' DO NOTHING
    RETURNING id, total_price, seat_count
), lim AS (
    SELECT sh.concert_id, sh.max_tickets_per_fan AS show_max, c.max_tickets_per_fan AS concert_max,
           sh.currency
    FROM shows sh JOIN concerts c ON c.id = sh.concert_id WHERE sh.id = $7
), fan AS (
    INSERT INTO fan_tickets AS f (user_id, scope, scope_id, seats)
    SELECT $1, v.scope, v.scope_id, res.seat_count
    FROM res, lim,
         LATERAL (VALUES (1, 'concert', lim.concert_id, lim.concert_max),
                         (2, 'show', $7::bigint, lim.show_max)) AS v(ord, scope, scope_id, cap)
    WHERE v.cap IS NULL OR res.seat_count <= v.cap
    ORDER BY v.ord
    ON CONFLICT (user_id, scope, scope_id) DO UPDATE SET seats = f.seats + EXCLUDED.seats
    WHERE f.seats + EXCLUDED.seats <= coalesce(
        CASE f.scope WHEN 'concert' THEN (SELECT concert_max FROM lim) ELSE (SELECT show_max FROM lim) END,
        2147483647)
    RETURNING f.scope, f.seats
), refused AS (
    SELECT bo_ticket_limit_reached(jsonb_build_object(
        'concert_limit', lim.concert_max, 'show_limit', lim.show_max,
        'counted', (SELECT jsonb_agg(scope) FROM fan))::text) AS raised
    FROM res, lim WHERE (SELECT count(*) FROM fan) < 2
), won AS (
    UPDATE seats s
    SET status = 'TEMP_RESERVED', reservation_id = res.id, hold_expires_at = $9, updated_at = $5
    FROM res WHERE s.id IN (SELECT id FROM cand)
    RETURNING s.id, s.section, s.row, s.number, s.price
), dead AS (
    UPDATE reservation_seats rs SET live = false
    FROM won WHERE rs.seat_id = won.id AND rs.live
    RETURNING rs.reservation_id
), ins AS (
    INSERT INTO reservation_seats (reservation_id, seat_id, show_id, price, live)
    SELECT res.id, won.id, $7, won.price, true FROM res, won
    WHERE (SELECT count(*) FROM dead) >= 0
), ev AS (
    INSERT INTO outbox (event_type, aggregate_type, aggregate_id, show_id, payload)
    SELECT 'seat.held', 'reservation', res.id, $7,
           jsonb_build_object('reservation_id', res.id, 'user_id', $1,
                              'seat_ids', (SELECT jsonb_agg(id ORDER BY id) FROM won),
                              'status', 'TEMP_RESERVED', 'expires_at', $10::text)
    FROM res
), answer AS (
    SELECT 201 AS status, jsonb_build_object(
        'reservation_id', res.id, 'show_id', $7, 'status', 'TEMP_RESERVED',
        'seats', (SELECT jsonb_agg(jsonb_build_object('id', id, 'section', section, 'row', row,
                                                      'number', number, 'price', price) ORDER BY id)
                  FROM won),
        'total_price', res.total_price, 'currency', (SELECT currency FROM lim),
        'expires_at', $10::text) AS body
    FROM res
), {lean_claim("answer")}
SELECT (SELECT row_to_json(prior)::text FROM prior) AS prior, ARRAY(SELECT id FROM cand) AS free,
       (SELECT body::text FROM answer) AS answer, (SELECT count(*) FROM refused) AS refused,
       EXISTS (SELECT 1 FROM waitlist w WHERE w.show_id = $7 AND w.status = 'WAITING') AS waitlisted,
       -- the name its tickets will carry: the payment signs them from the hold's Redis entry
       (SELECT u.name FROM users u, res WHERE u.id = $1) AS holder
""")  # noqa: S608 - the fragments are constants; every value is a bound parameter

# `show_id + 0`: by the primary key only, as _HOLD's cand.
_SEATS_OF_SHOW = "SELECT id FROM seats WHERE id = ANY($2::bigint[]) AND show_id + 0 = $1"

# The fan's lapsed holds in the show's concert that the sweep has not closed yet: they still count
# toward the fan's limits until closed (booking.flows closes them when a limit refuses a hold).
_DEAD_HOLDS_IN_CONCERT = text(
    """
    SELECT r.id FROM reservations r JOIN shows sh ON sh.id = r.show_id
    WHERE r.user_id = :user_id AND r.status = 'TEMP_RESERVED' AND r.expires_at <= :now
      AND sh.concert_id = (SELECT concert_id FROM shows WHERE id = :show_id)
    ORDER BY r.id
    FOR UPDATE OF r SKIP LOCKED
    """
)

_FAN_COUNTS = text(
    """
    SELECT f.scope, f.seats FROM fan_tickets f JOIN shows sh ON sh.id = :show_id
    WHERE f.user_id = :user_id
      AND ((f.scope = 'concert' AND f.scope_id = sh.concert_id) OR (f.scope = 'show' AND f.scope_id = sh.id))
    """
)

_OWN_HOLD = text(
    "SELECT id, expires_at FROM reservations "
    "WHERE user_id = :user_id AND show_id = :show_id AND status = 'TEMP_RESERVED' FOR UPDATE"
)

# Close reservations (already locked or picked by the caller): the reservation row, its seats that
# still point at it, its reservation_seats rows, and the events, in one statement.
_CLOSE = text(
    """
    WITH r AS (
        UPDATE reservations SET status = :to_status, closed_at = :now, updated_at = :now
        WHERE id = ANY(:ids) AND status = :from_status
        RETURNING id, user_id, show_id, seat_count
    ), back AS (
        SELECT r.user_id, v.scope, v.scope_id, sum(r.seat_count)::int AS n
        FROM r JOIN shows sh ON sh.id = r.show_id,
             LATERAL (VALUES ('concert', sh.concert_id), ('show', r.show_id)) AS v(scope, scope_id)
        WHERE CAST(:to_status AS text) NOT IN ('TEMP_RESERVED', 'RESERVED')
        GROUP BY r.user_id, v.scope, v.scope_id
    ), fan_locked AS (
        SELECT f.user_id, f.scope, f.scope_id FROM fan_tickets f JOIN back b USING (user_id, scope, scope_id)
        ORDER BY f.user_id, f.scope, f.scope_id
        FOR UPDATE OF f
    ), fan_back AS (
        -- the fan's limits count live reservations only; locked in one order (no deadlock)
        UPDATE fan_tickets f SET seats = greatest(0, f.seats - b.n)
        FROM back b JOIN fan_locked l USING (user_id, scope, scope_id)
        WHERE f.user_id = b.user_id AND f.scope = b.scope AND f.scope_id = b.scope_id
    ), freed AS (
        UPDATE seats s
        SET status = 'AVAILABLE', reservation_id = NULL, hold_expires_at = NULL, updated_at = :now
        FROM r WHERE s.reservation_id = r.id
        RETURNING s.id AS seat_id, r.id AS reservation_id, r.show_id
    ), rs AS (
        UPDATE reservation_seats SET live = false WHERE reservation_id IN (SELECT id FROM r) AND live
    ), ev_res AS (
        INSERT INTO outbox (event_type, aggregate_type, aggregate_id, show_id, payload)
        SELECT CAST(:event AS text), 'reservation', r.id, r.show_id,
               jsonb_build_object('reservation_id', r.id, 'user_id', r.user_id,
                                  'status', CAST(:to_status AS text))
        FROM r
    ), ev_seats AS (
        INSERT INTO outbox (event_type, aggregate_type, aggregate_id, show_id, payload)
        SELECT 'seat.released', 'reservation', f.reservation_id, f.show_id,
               jsonb_build_object('reservation_id', f.reservation_id,
                                  'seat_ids', jsonb_agg(f.seat_id ORDER BY f.seat_id),
                                  'status', 'AVAILABLE', 'reason', CAST(:reason AS text))
        FROM freed f GROUP BY f.reservation_id, f.show_id
    )
    SELECT r.id AS reservation_id, r.user_id, r.show_id, f.seat_id
    FROM r LEFT JOIN freed f ON f.reservation_id = r.id
    """
)

_PICK_EXPIRED = text(
    """
    SELECT id FROM reservations
    WHERE status = 'TEMP_RESERVED' AND expires_at <= :now
    ORDER BY expires_at LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)

# A reservation's amounts are in its show's currency (ISO 4217; kit/money.py). A constant.
_CURRENCY = "(SELECT sh.currency FROM shows sh WHERE sh.id = reservations.show_id) AS currency"

# A hold's own seats become RESERVED; the reservation follows only if every seat was still its own.

_RESERVATION_COLUMNS = (
    "id, user_id, show_id, status, total_price, seat_count, expires_at, created_at, confirmed_at, "
    f"closed_at, {_CURRENCY}"
)
_LOCK_RESERVATION = text(f"SELECT {_RESERVATION_COLUMNS} FROM reservations WHERE id = :rid FOR UPDATE")  # noqa: S608
_RESERVATION = text(f"SELECT {_RESERVATION_COLUMNS} FROM reservations WHERE id = :rid")  # noqa: S608

_MY_RESERVATIONS = text(
    f"""
    SELECT id, user_id, show_id, status, total_price, seat_count, expires_at, created_at, confirmed_at,
           closed_at, {_CURRENCY}
    FROM reservations
    WHERE user_id = :user_id AND (CAST(:before AS bigint) IS NULL OR id < :before)
    ORDER BY id DESC LIMIT :limit
    """  # noqa: S608
)

_RESERVATION_SEATS = text(
    """
    SELECT rs.reservation_id, s.id, s.section, s.row, s.number, rs.price
    FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id
    WHERE rs.reservation_id = ANY(:rids)
    ORDER BY rs.reservation_id, s.id
    """
)

_REFUND_POLICY = text("SELECT starts_at, refund_cutoff_hours FROM shows WHERE id = :show_id")

# Every seat of a show for best available: free = AVAILABLE or held by a dead hold (as in _HOLD).
_SEAT_SPOTS = text(
    """
    SELECT s.id, s.section, vs.position, s.row, s.number, s.price,
           (s.status = 'AVAILABLE' OR (s.status = 'TEMP_RESERVED' AND s.hold_expires_at <= :now)) AS free
    FROM seats s JOIN venue_sections vs ON vs.id = s.section_id
    WHERE s.show_id = :show_id AND (CAST(:section AS text) IS NULL OR s.section = :section)
    """
)


@dataclass(frozen=True, slots=True)
class HoldOutcome:
    """prior: the stored answer of the key (nothing was done); free: the requested seats that were
    takeable; answer: the 201 body as JSON when the hold was written. Takeable seats but no answer:
    the user already has a TEMP_RESERVED row for the show."""

    prior: dict[str, Any] | None
    free: list[int]
    answer: str | None
    waitlisted: bool = False  # fans wait on the show's waitlist: returned seats are theirs
    holder: str | None = None  # the fan's name, when the hold was written

    def conflict(self, wanted: list[int]) -> bool:
        return self.prior is None and self.answer is None and len(self.free) == len(wanted)


@dataclass(frozen=True, slots=True)
class Closed:
    reservation_id: int
    user_id: int
    show_id: int
    seat_ids: list[int]


async def fetch_show_rules(session: AsyncSession, show_id: int) -> ShowRules | None:
    row = (await session.execute(_SHOW_RULES, {"show_id": show_id})).first()
    if row is None:
        return None
    return ShowRules(
        show_id=row[0],
        starts_at=row[1],
        sale_opens_at=row[2],
        sale_closes_at=row[3],
        hold_seconds=row[4],
        max_seats=row[5],
        verified_email_required=bool(row[6]),
    )


_EMAIL_VERIFIED = text("SELECT email_verified FROM users WHERE id = :user_id AND deleted_at IS NULL")


async def email_verified(session: AsyncSession, user_id: int) -> bool:
    """Whether the (live) user confirmed their email address."""
    return bool((await session.execute(_EMAIL_VERIFIED, {"user_id": user_id})).scalar())


async def hold(
    conn: asyncpg.Connection,
    key_args: tuple[Any, ...],
    *,
    show_id: int,
    seat_ids: list[int],
    expires_at: datetime,
) -> HoldOutcome:
    """The hold statement (_HOLD) on a lean unit of work; `key_args` from idempotency.LeanKey."""
    row = await conn.fetchrow(_HOLD, *key_args, show_id, seat_ids, expires_at, iso(expires_at))
    assert row is not None
    prior = row["prior"]
    return HoldOutcome(
        prior=json.loads(prior) if prior else None,
        free=list(row["free"]),
        answer=row["answer"],
        waitlisted=bool(row["waitlisted"]),
        holder=row["holder"],
    )


async def seats_of_show(conn: asyncpg.Connection, show_id: int, seat_ids: list[int]) -> set[int]:
    return {r[0] for r in await conn.fetch(_SEATS_OF_SHOW, show_id, seat_ids)}


async def lock_dead_holds_in_concert(
    session: AsyncSession, user_id: int, show_id: int, now: datetime
) -> list[int]:
    rows = await session.execute(_DEAD_HOLDS_IN_CONCERT, {"user_id": user_id, "show_id": show_id, "now": now})
    return [r[0] for r in rows]


async def fan_counts(session: AsyncSession, user_id: int, show_id: int) -> dict[str, int]:
    """The fan's counted seats for the show's concert and the show: {"concert": n, "show": m}."""
    rows = await session.execute(_FAN_COUNTS, {"user_id": user_id, "show_id": show_id})
    return {r[0]: int(r[1]) for r in rows}


async def lock_own_hold(session: AsyncSession, user_id: int, show_id: int) -> tuple[int, datetime] | None:
    row = (await session.execute(_OWN_HOLD, {"user_id": user_id, "show_id": show_id})).first()
    return None if row is None else (row[0], row[1])


async def close_reservations(
    session: AsyncSession,
    ids: list[int],
    *,
    from_status: str,
    to_status: str,
    event: str,
    reason: str,
    now: datetime,
) -> list[Closed]:
    rows = (
        await session.execute(
            _CLOSE,
            {
                "ids": ids,
                "from_status": from_status,
                "to_status": to_status,
                "event": event,
                "reason": reason,
                "now": now,
            },
        )
    ).all()
    by_id: dict[int, Closed] = {}
    for rid, user_id, show_id, seat_id in rows:
        closed = by_id.setdefault(rid, Closed(rid, user_id, show_id, []))
        if seat_id is not None:
            closed.seat_ids.append(seat_id)
    return list(by_id.values())


async def pick_expired(session: AsyncSession, now: datetime, limit: int) -> list[int]:
    return [r[0] for r in await session.execute(_PICK_EXPIRED, {"now": now, "limit": limit})]


async def lock_reservation(session: AsyncSession, reservation_id: int) -> dict[str, Any] | None:
    row = (await session.execute(_LOCK_RESERVATION, {"rid": reservation_id})).mappings().first()
    return dict(row) if row is not None else None


async def get_reservation(session: AsyncSession, reservation_id: int) -> dict[str, Any] | None:
    row = (await session.execute(_RESERVATION, {"rid": reservation_id})).mappings().first()
    return dict(row) if row is not None else None


async def list_reservations(
    session: AsyncSession, user_id: int, *, before: int | None, limit: int
) -> list[dict[str, Any]]:
    rows = await session.execute(_MY_RESERVATIONS, {"user_id": user_id, "before": before, "limit": limit})
    return [dict(r) for r in rows.mappings()]


async def seats_of_reservations(
    session: AsyncSession, reservation_ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {rid: [] for rid in reservation_ids}
    if not reservation_ids:
        return out
    for r in (await session.execute(_RESERVATION_SEATS, {"rids": reservation_ids})).mappings():
        out[r["reservation_id"]].append(
            {
                "id": r["id"],
                "section": r["section"],
                "row": r["row"],
                "number": r["number"],
                "price": r["price"],
            }
        )
    return out


async def refund_policy(session: AsyncSession, show_id: int) -> tuple[datetime, int | None] | None:
    """(starts_at, refund_cutoff_hours) of a show."""
    row = (await session.execute(_REFUND_POLICY, {"show_id": show_id})).first()
    return None if row is None else (row[0], row[1])


async def seat_spots(
    session: AsyncSession, show_id: int, now: datetime, section: str | None = None
) -> list[SeatSpot]:
    rows = await session.execute(_SEAT_SPOTS, {"show_id": show_id, "now": now, "section": section})
    return [SeatSpot(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]


# ---- the waitlist's offers (waiting_room keeps the list; returned seats become holds here) -------

_WAITLIST_SHOWS = text("SELECT DISTINCT show_id FROM waitlist WHERE status = 'WAITING' ORDER BY show_id")

# An offer that ended: paid (TAKEN), or its hold closed or lapsed (LAPSED; the seat returns again).
_SETTLE_OFFERS = text(
    """
    UPDATE waitlist w
    SET status = CASE WHEN r.status = 'RESERVED' THEN 'TAKEN' ELSE 'LAPSED' END, closed_at = :now
    FROM reservations r
    WHERE w.status = 'OFFERED' AND r.id = w.reservation_id AND r.status <> 'TEMP_RESERVED'
    RETURNING w.id, w.show_id, w.status
    """
)

_RETURNED_SEATS = text(
    """
    SELECT id FROM seats WHERE show_id = :show_id AND status = 'AVAILABLE'
    ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
    """
)

_NEXT_WAITING = text(
    """
    SELECT id, user_id FROM waitlist WHERE show_id = :show_id AND status = 'WAITING'
    ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
    """
)

# One returned seat held for one waitlisted fan (the seat is locked by the caller): the reservation,
# the seat, its reservation_seats row, the fan's counts (closing it gives them back), the event, and
# the entry OFFERED; nothing when the fan has a live hold for the show already.
_OFFER = text(
    """
    WITH seat AS (
        SELECT id, section, row, number, price FROM seats
        WHERE id = :seat_id AND show_id = :show_id AND status = 'AVAILABLE'
    ), res AS (
        INSERT INTO reservations (user_id, show_id, status, total_price, seat_count, expires_at,
                                  created_at, updated_at)
        SELECT :user_id, :show_id, 'TEMP_RESERVED', price, 1, :expires_at, :now, :now FROM seat
        ON CONFLICT (user_id, show_id) WHERE status = 'TEMP_RESERVED' DO NOTHING
        RETURNING id
    ), won AS (
        UPDATE seats s SET status = 'TEMP_RESERVED', reservation_id = res.id, hold_expires_at = :expires_at,
                           updated_at = :now
        FROM res WHERE s.id = :seat_id
        RETURNING s.id
    ), ins AS (
        INSERT INTO reservation_seats (reservation_id, seat_id, show_id, price, live)
        SELECT res.id, seat.id, :show_id, seat.price, true FROM res, seat
    ), lim AS (
        SELECT sh.concert_id, sh.max_tickets_per_fan AS show_max, c.max_tickets_per_fan AS concert_max
        FROM shows sh JOIN concerts c ON c.id = sh.concert_id WHERE sh.id = :show_id
    ), fan AS (
        -- the per-fan limits hold for offers too (as in _HOLD): past one, BO001 undoes the offer
        INSERT INTO fan_tickets AS f (user_id, scope, scope_id, seats)
        SELECT :user_id, v.scope, v.scope_id, 1
        FROM res, lim,
             LATERAL (VALUES (1, 'concert', lim.concert_id, lim.concert_max),
                             (2, 'show', CAST(:show_id AS bigint), lim.show_max))
                 AS v(ord, scope, scope_id, cap)
        WHERE v.cap IS NULL OR 1 <= v.cap
        ORDER BY v.ord
        ON CONFLICT (user_id, scope, scope_id) DO UPDATE SET seats = f.seats + 1
        WHERE f.seats + 1 <= coalesce(
            CASE f.scope WHEN 'concert' THEN (SELECT concert_max FROM lim)
                         ELSE (SELECT show_max FROM lim) END,
            2147483647)
        RETURNING f.scope
    ), refused AS (
        SELECT bo_ticket_limit_reached('{"offer": true}') AS raised
        FROM res WHERE (SELECT count(*) FROM fan) < 2
    ), ev AS (
        INSERT INTO outbox (event_type, aggregate_type, aggregate_id, show_id, payload)
        SELECT 'seat.held', 'reservation', res.id, :show_id,
               jsonb_build_object('reservation_id', res.id, 'user_id', CAST(:user_id AS bigint),
                                  'seat_ids', jsonb_build_array(CAST(:seat_id AS bigint)),
                                  'status', 'TEMP_RESERVED', 'reason', 'waitlist_offer')
        FROM res
    ), entry AS (
        UPDATE waitlist SET status = 'OFFERED', offered_at = :now, reservation_id = res.id
        FROM res WHERE waitlist.id = :entry_id
    )
    SELECT (SELECT id FROM res) AS id, (SELECT count(*) FROM refused) AS refused
    """
)

# A waitlisted fan already at a per-fan limit is passed over: the seat goes to the next fan.
_SKIP_ENTRY = text("UPDATE waitlist SET status = 'SKIPPED', closed_at = :now WHERE id = :entry_id")


async def skip_waiting(session: AsyncSession, entry_id: int, now: datetime) -> None:
    await session.execute(_SKIP_ENTRY, {"entry_id": entry_id, "now": now})


async def waitlist_shows(session: AsyncSession) -> list[int]:
    return [int(r[0]) for r in await session.execute(_WAITLIST_SHOWS)]


async def settle_offers(session: AsyncSession, now: datetime) -> list[tuple[int, int, str]]:
    return [(r[0], r[1], r[2]) for r in await session.execute(_SETTLE_OFFERS, {"now": now})]


async def returned_seats(session: AsyncSession, show_id: int, limit: int) -> list[int]:
    return [int(r[0]) for r in await session.execute(_RETURNED_SEATS, {"show_id": show_id, "limit": limit})]


async def next_waiting(session: AsyncSession, show_id: int, limit: int) -> list[tuple[int, int]]:
    rows = await session.execute(_NEXT_WAITING, {"show_id": show_id, "limit": limit})
    return [(int(r[0]), int(r[1])) for r in rows]


async def offer_seat(
    session: AsyncSession,
    *,
    entry_id: int,
    user_id: int,
    show_id: int,
    seat_id: int,
    expires_at: datetime,
    now: datetime,
) -> int | None:
    """The reservation holding the seat for the fan, or None (the fan holds seats of the show)."""
    params = {
        "entry_id": entry_id,
        "user_id": user_id,
        "show_id": show_id,
        "seat_id": seat_id,
        "expires_at": expires_at,
        "now": now,
    }
    value = (await session.execute(_OFFER, params)).first()
    return None if value is None or value[0] is None else int(value[0])


# The offers' mails, queued with them (the mail domain's sender job composes and sends them).
_QUEUE_OFFER_MAILS = text(
    """
    INSERT INTO mail_outbox (kind, user_id, reservation_id, next_attempt_at, created_at)
    SELECT 'WAITLIST_OFFER', r.user_id, r.id, :now, :now FROM reservations r WHERE r.id = ANY(:ids)
    """
)


async def queue_offer_mails(session: AsyncSession, reservation_ids: list[int], now: datetime) -> None:
    """Tell each offered fan by mail, once the offers commit (a row each in the mail outbox)."""
    await session.execute(_QUEUE_OFFER_MAILS, {"ids": reservation_ids, "now": now})
