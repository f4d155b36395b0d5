"""Booking use cases that own units of work: hold seats, cancel a hold, expire dead holds (a job).

Each opens its unit of work (directly or through idempotency), calls the domain operations, and
registers its after-commit effects (shield, seat map) with it. Cancelling a PAID reservation is a
refund, decided downstream in `payments/flows.py` (booking imports no payments).
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import structlog
from sqlalchemy.exc import DBAPIError

from boxoffice import ratelimit
from boxoffice.booking import repository, rules, shield
from boxoffice.booking.effects import issue_seat_changes, publish_closed, publish_seat_changes, settle
from boxoffice.booking.rules import RuleViolation, ShowRules
from boxoffice.booking.service import SeatEvent, domain_error, load_rules, watch_seats
from boxoffice.catalog import seatmap
from boxoffice.catalog.service import refresh_inventory
from boxoffice.db.idempotency import (
    IdempotentResult,
    LeanKey,
    key_taken,
    lean_key,
    run_lean_idempotent,
    stored_answer,
)
from boxoffice.db.uow import LeanUnitOfWork, sqlstate, unit_of_work
from boxoffice.errors import (
    DomainError,
    EmailNotVerified,
    HoldExists,
    NoAdjacentSeats,
    SeatsCoolingDown,
    SeatsNotInShow,
    SeatsTaken,
    TicketLimitReached,
    UnknownSection,
)
from boxoffice.kit import trace
from boxoffice.redis.streams import Resync
from boxoffice.runtime import Runtime
from boxoffice.salestats.recorder import sale_stats
from boxoffice.waiting_room import service as waiting_service
from boxoffice.waiting_room.schemas import WaitlistStatus
from boxoffice.waiting_room.tokens import admission_read, check_queue_token

log = structlog.get_logger("boxoffice.booking")
HOLD_SCOPE = "POST /api/reservations"
# PostgreSQL said "try again" (deadlock between two overlapping holds, serialization): a clean 409.
_RETRYABLE_SQLSTATES = {"40P01", "40001", "55P03"}
EXPIRY_BATCH = 500
# Best available under a crowd: every fan asking at once ranks the same blocks, so trying them in
# the same order would make all but one lose each block in turn. The best block is tried first
# (a fan alone always gets it), then others of the best BEST_CANDIDATES in random order; after
# BEST_ROUNDS fresh reads of the seats the answer is SEATS_TAKEN (try again), not
# NO_ADJACENT_SEATS, which means that no block is free together at all.
BEST_CANDIDATES = 32
BEST_TRIES = 6
BEST_ROUNDS = 2


# The hold statement's refusal when it would take a fan past a per-fan limit (migration 0004).
TICKET_LIMIT_SQLSTATE = "BO001"


class _OverLimit(Exception):
    """The hold would take the fan past a limit; `detail`: the statement's JSON (limits, counted)."""

    def __init__(self, detail: str | None) -> None:
        super().__init__(detail)
        try:
            self.detail: dict[str, Any] = json.loads(detail or "{}")
        except ValueError:
            self.detail = {}


@dataclass
class _HoldWork:
    """The hold's one statement (booking.repository.hold) on a lean unit of work; None when the
    user's own TEMP_RESERVED row for the show blocked it (the caller sorts that out)."""

    runtime: Runtime
    user_id: int
    show_id: int
    seat_ids: list[int]
    expires_at: datetime
    key: LeanKey

    async def __call__(self, uow: LeanUnitOfWork) -> IdempotentResult | None:
        try:
            outcome = await repository.hold(
                uow.conn,
                self.key.args,
                show_id=self.show_id,
                seat_ids=self.seat_ids,
                expires_at=self.expires_at,
            )
        except asyncpg.UniqueViolationError as exc:
            if key_taken(exc):
                raise
            # Only reachable through a race the statement cannot express; the seats are someone's:
            # a clean 409, never a 500.
            raise SeatsTaken("Seats were taken meanwhile", seat_ids=self.seat_ids) from None
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == TICKET_LIMIT_SQLSTATE:
                raise _OverLimit(getattr(exc, "detail", None)) from None
            if exc.sqlstate in _RETRYABLE_SQLSTATES:
                raise SeatsTaken("Seats are being taken right now", seat_ids=self.seat_ids) from None
            raise
        replayed = self.key.replay(outcome.prior)
        if replayed is not None:
            return replayed
        if outcome.conflict(self.seat_ids):
            return None
        if outcome.answer is None:
            in_show = await repository.seats_of_show(uow.conn, self.show_id, self.seat_ids)
            missing = [s for s in self.seat_ids if s not in in_show]
            if missing:
                raise SeatsNotInShow(
                    "Some seats do not belong to this show",
                    seat_ids=missing,
                    errors=[
                        {
                            "loc": ["body", "seat_ids"],
                            "msg": "unknown seat for this show",
                            "type": "value_error",
                        }
                    ],
                )
            if outcome.waitlisted:
                raise SeatsTaken(
                    "These seats are not free: seats that come back go to the fans on this show's "
                    "waitlist first, in the order they joined it",
                    seat_ids=self.seat_ids,
                    waitlist=True,
                )
            raise SeatsTaken(
                "Some seats are already taken", seat_ids=rules.taken_seats(self.seat_ids, outcome.free)
            )
        answer = msgspec.json.decode(outcome.answer)
        uow.after_commit(functools.partial(self._published, answer, outcome.holder or ""))
        return IdempotentResult(201, answer, replayed=False)

    async def _published(self, answer: dict[str, Any], holder: str) -> None:
        self.runtime.metrics.holds.labels("won").inc()
        redis = self.runtime.hot_redis
        # The payable entry in the seat changes' write; after the answer, so batched with the
        # pass's other effects (MuxRedis.one_write).
        with redis.one_write(batched=True):
            shield.issue_payable(
                redis,
                reservation_id=answer["reservation_id"],
                user_id=self.user_id,
                show_id=self.show_id,
                holder=holder,
                seats=answer["seats"],
                ttl_seconds=max(1, int((self.expires_at - self.key.now).total_seconds())),
            )
            changes = issue_seat_changes(self.runtime, self.show_id, self.user_id, self.seat_ids, rules.HOLD)
        await settle(self.runtime, changes)


async def _hold_in_database(runtime: Runtime, work: _HoldWork, now: datetime) -> IdempotentResult:
    """PostgreSQL decides; the user's own dead hold, which blocks the one-hold-per-show index, is
    expired first (then the hold is tried once more); a live one is a 409 HOLD_EXISTS. A hold past
    the fan's limit is a 409 TICKET_LIMIT_REACHED, unless lapsed holds the sweep has not closed
    yet still counted: those are closed and the hold is tried once more."""
    swept = False
    for _attempt in range(3):
        try:
            result = await run_lean_idempotent(runtime, work.key, work)
        except _OverLimit as over:
            if swept or not await _close_dead_holds_in_concert(runtime, work, now):
                raise await _limit_error(runtime, work, over) from None
            swept = True
            continue
        if result is not None:
            return result
        async with unit_of_work(runtime.sessions) as uow:
            own = await repository.lock_own_hold(uow.session, work.user_id, work.show_id)
            if own is not None and own[1] > now:
                raise HoldExists(
                    "You already hold seats for this show; pay for or cancel that hold first",
                    reservation_id=own[0],
                )
            if own is not None:
                closed = await repository.close_reservations(
                    uow.session,
                    [own[0]],
                    from_status=rules.HOLD,
                    to_status=rules.EXPIRED,
                    event="reservation.expired",
                    reason="expired",
                    now=now,
                )
                uow.after_commit(functools.partial(publish_closed, runtime, closed))
    raise HoldExists("You already hold seats for this show")


async def _close_dead_holds_in_concert(runtime: Runtime, work: _HoldWork, now: datetime) -> bool:
    async with unit_of_work(runtime.sessions) as uow:
        dead = await repository.lock_dead_holds_in_concert(uow.session, work.user_id, work.show_id, now)
        if not dead:
            return False
        closed = await repository.close_reservations(
            uow.session,
            dead,
            from_status=rules.HOLD,
            to_status=rules.EXPIRED,
            event="reservation.expired",
            reason="expired",
            now=now,
        )
        uow.after_commit(functools.partial(publish_closed, runtime, closed))
    return True


async def _limit_error(runtime: Runtime, work: _HoldWork, over: _OverLimit) -> TicketLimitReached:
    """The refusal in a fan's words: which limit, and how many tickets they have already."""
    async with runtime.sessions() as session:
        counts = await repository.fan_counts(session, work.user_id, work.show_id)
    counted = set(over.detail.get("counted") or [])
    scope = "concert" if "concert" not in counted else "show"
    limit = over.detail.get(f"{scope}_limit")
    has = counts.get(scope, 0)
    wanted = len(work.seat_ids)
    where = "this concert (all its shows together)" if scope == "concert" else "this show"
    left = max(0, int(limit or 0) - has)
    advice = f"You can still choose {left}." if left else "You cannot add more."
    return TicketLimitReached(
        f"Each fan can have at most {limit} tickets for {where}. You already have {has}, "
        f"so {wanted} more would be too many. {advice}",
        scope=scope,
        limit=limit,
        held=has,
        requested=wanted,
    )


async def place_hold(
    runtime: Runtime,
    *,
    user_id: int,
    show_id: int,
    seat_ids: list[int] | None = None,
    quantity: int | None = None,
    section: str | None = None,
    price: int | None = None,
    queue_token: str | None,
    idempotency_key: str | None,
    first: HoldFirstRound | None = None,
) -> IdempotentResult:
    """POST /api/reservations (see _place_hold). Won and refused holds, with their latency, feed
    the admin dashboard's sale statistics and adaptive admission (in-memory counts, flushed every
    250 ms). `first`: the hold's first Redis round, already issued (hold_first_round)."""
    started = time.perf_counter()
    try:
        result = await _place_hold(
            runtime,
            user_id=user_id,
            show_id=show_id,
            seat_ids=seat_ids,
            quantity=quantity,
            section=section,
            price=price,
            queue_token=queue_token,
            idempotency_key=idempotency_key,
            first=first or hold_first_round(runtime, user_id, show_id, seat_ids),
        )
    except (SeatsTaken, NoAdjacentSeats):
        elapsed = time.perf_counter() - started
        sale_stats(runtime).outcome(show_id, "holds_refused", "hold", runtime.clock.now(), elapsed)
        raise
    if not result.replayed:
        elapsed = time.perf_counter() - started
        sale_stats(runtime).outcome(show_id, "holds_won", "hold", runtime.clock.now(), elapsed)
    return result


@dataclass(frozen=True)
class HoldFirstRound:
    """A hold's first Redis round, written before any of its answers is awaited: the rate limit's
    count (an attempt with a refused token counts against the limit too) and the read of when the
    fan left the show's queue (the admission check). Neither changes anything a revoked access
    token must not: the hold route issues them with its deny-list check, in one write."""

    limit: ratelimit.Hit
    ended: Awaitable[Any]
    taken: shield.Probe | None = None  # the named seats' marks (a read), for an early refusal


def hold_first_round(
    runtime: Runtime, user_id: int, show_id: int, seat_ids: list[int] | None = None
) -> HoldFirstRound:
    """The round's commands, written now. With `seat_ids` (the fan names the seats) the shield's
    marks of those seats are read too: in a flash sale most holds ask for seats already held,
    and those are then refused without a second round trip."""
    return HoldFirstRound(
        ratelimit.begin(runtime, "hold", user_id, limit=runtime.settings.limit_holds_per_minute),
        admission_read(runtime, user_id, show_id),
        shield.Probe(runtime.hot_redis, show_id, user_id, seat_ids, runtime.clock.now())
        if seat_ids
        else None,
    )


async def _place_hold(
    runtime: Runtime,
    *,
    user_id: int,
    show_id: int,
    seat_ids: list[int] | None,
    quantity: int | None,
    section: str | None,
    price: int | None,
    queue_token: str | None,
    idempotency_key: str | None,
    first: HoldFirstRound,
) -> IdempotentResult:
    """The shield first, then PostgreSQL decides, all seats or none.
    The shield marks and the seat map follow after the commit (never on a replay).

    With `seat_ids` the fan names the seats; with `quantity` (and optionally a section or a price
    tier) the rule picks the best block of adjacent seats, and a few others to try in turn when
    one is taken meanwhile, each through the same shield and the same conditional update.
    """
    with trace.step("hold.admission_token"):
        await check_queue_token(runtime, user_id, show_id, queue_token, ended=first.ended)
    with trace.step("hold.rate_limit"):
        await first.limit.enforce()
    with trace.step("hold.show_rules"):
        show = await load_rules(runtime, show_id)
    now = runtime.clock.now()
    if show.verified_email_required:
        async with runtime.sessions() as session:
            verified = await repository.email_verified(session, user_id)
        if not verified:
            raise EmailNotVerified(
                "This show sells only to fans with a verified email: confirm yours (the link we "
                "mailed you) and try again"
            )
    try:
        rules.check_sale_open(show, now)
        if seat_ids is not None:
            wanted = rules.check_seat_request(seat_ids, show.max_seats)
        else:
            rules.check_quantity(quantity or 0, show.max_seats)
    except RuleViolation as err:
        raise domain_error(err) from None
    expires_at = rules.hold_expires_at(show, now)
    if seat_ids is not None:
        fingerprint: dict[str, Any] = {"show_id": show_id, "seat_ids": seat_ids}
        with trace.step("hold.seats", seats=len(wanted)):
            taken = await first.taken if first.taken is not None else None
            if taken:  # the shield's "no", read in the first round (MARK would say the same)
                runtime.metrics.holds.labels("shield_refused").inc()
                raise SeatsTaken("Some seats are already taken", seat_ids=taken)
            return await _hold_exact(
                runtime, user_id, show, wanted, now, expires_at, idempotency_key, fingerprint
            )
    assert quantity is not None
    fingerprint = {"show_id": show_id, "quantity": quantity, "section": section, "price": price}
    # A retry replays the first answer even though the seats it would pick from have changed since.
    replay = await stored_answer(
        runtime, user_id=user_id, scope=HOLD_SCOPE, key=idempotency_key, fingerprint=fingerprint
    )
    if replay is not None:
        return replay
    lost: set[int] = set()  # seats of blocks taken meanwhile: the map may not show them yet
    for _ in range(BEST_ROUNDS):
        # The process's seat map (catalog.seatmap.view), not every seat from PostgreSQL: the hold
        # statement decides anyway, and a block taken meanwhile costs one more try. The map can be
        # up to its refresh interval old, so what this request already lost is taken out.
        spots = [
            rules.SeatSpot(*spot[:-1], available=spot[-1] and spot[0] not in lost)
            for spot in await seatmap.spots(runtime, show_id, section)
        ]
        if section is not None and not spots:
            raise UnknownSection(
                f"This show has no section named {section!r}",
                errors=[{"loc": ["body", "section"], "msg": "unknown section", "type": "value_error"}],
            )
        blocks = rules.best_blocks(spots, quantity, section=section, price=price, limit=BEST_CANDIDATES)
        if not blocks:
            raise NoAdjacentSeats(
                f"No {quantity} adjacent seats are free together right now"
                + (f" in {section}" if section else "")
                + "; try fewer seats or another section",
                quantity=quantity,
            )
        others = random.sample(blocks[1:], min(BEST_TRIES - 1, len(blocks) - 1))
        for block in [blocks[0], *others]:
            try:
                return await _hold_exact(
                    runtime, user_id, show, block, now, expires_at, idempotency_key, fingerprint
                )
            except SeatsTaken:
                lost.update(block)
                continue  # taken meanwhile: another block
    raise SeatsTaken(
        "The seats picked for you were taken by other fans meanwhile; seats are still free: try again",
        seat_ids=[],
    )


async def _hold_exact(
    runtime: Runtime,
    user_id: int,
    show: ShowRules,
    wanted: list[int],
    now: datetime,
    expires_at: datetime,
    idempotency_key: str | None,
    fingerprint: dict[str, Any],
) -> IdempotentResult:
    show_id = show.show_id
    verdict = await shield.try_mark(
        runtime.hot_redis,
        show_id,
        user_id,
        wanted,
        now=now,
        expires_at=expires_at,
        ttl_ms=rules.shield_ttl_ms(show),
        cool_seconds=runtime.settings.rehold_cooldown_seconds,
    )
    if not verdict.available:
        runtime.metrics.holds.labels("shield_skipped").inc()
    elif verdict.cooling:
        runtime.metrics.holds.labels("shield_refused").inc()
        raise SeatsCoolingDown(
            "You let go of these seats a moment ago; they are offered to other fans for "
            f"{runtime.settings.rehold_cooldown_seconds} s. Choose other seats or try again later",
            seat_ids=verdict.cooling,
        )
    elif not verdict.ok:
        runtime.metrics.holds.labels("shield_refused").inc()
        raise SeatsTaken("Some seats are already taken", seat_ids=verdict.taken)
    key = lean_key(user_id, HOLD_SCOPE, idempotency_key, fingerprint, now, required=False)
    try:
        result = await _hold_in_database(
            runtime, _HoldWork(runtime, user_id, show_id, wanted, expires_at, key), now
        )
    except BaseException as exc:
        if isinstance(exc, DomainError):
            runtime.metrics.holds.labels("db_refused").inc()
        await shield.release(runtime.hot_redis, show_id, user_id, verdict.marked)
        raise
    if result.replayed:
        # A best-available retry may have marked other seats than the ones the first answer holds.
        seats = result.body.get("seats", []) if isinstance(result.body, dict) else []
        kept = {seat["id"] for seat in seats}
        stray = [s for s in verdict.marked if s not in kept]
        if stray:
            await shield.release(runtime.hot_redis, show_id, user_id, stray)
    return result


async def cancel_hold(runtime: Runtime, *, user_id: int, reservation_id: int) -> bool:
    """A live or dead HOLD of the user -> CANCELLED, its seats back on sale. False when it was no
    longer a hold (paid, expired, cancelled meanwhile): the caller answers with what it is now."""
    now = runtime.clock.now()
    async with unit_of_work(runtime.sessions) as uow:
        closed = await repository.close_reservations(
            uow.session,
            [reservation_id],
            from_status=rules.HOLD,
            to_status=rules.CANCELLED,
            event="reservation.cancelled",
            reason="cancelled",
            now=now,
        )
        uow.after_commit(lambda: publish_closed(runtime, closed))
    return bool(closed)


# ---------------------------------------------------------------- the hold_expiry job
# A hold is already dead (unpayable, its seats takeable) the instant expires_at passes; the sweep
# only tidies up. Safe with several workers: each batch is claimed with FOR UPDATE SKIP LOCKED.


async def expire_once(runtime: Runtime, limit: int = EXPIRY_BATCH) -> int:
    """Expire one batch of dead holds -> EXPIRED, seats back on sale; returns how many."""
    now = runtime.clock.now()
    async with unit_of_work(runtime.sessions) as uow:
        ids = await repository.pick_expired(uow.session, now, limit)
        if not ids:
            return 0
        closed = await repository.close_reservations(
            uow.session,
            ids,
            from_status=rules.HOLD,
            to_status=rules.EXPIRED,
            event="reservation.expired",
            reason="expired",
            now=now,
        )
        # Inventory follows in the same transaction (the catalog's recount, not a hot counter).
        await refresh_inventory(uow.session, sorted({c.show_id for c in closed}), now=now)
        runtime.metrics.expiries.inc(len(closed))
        for c in closed:
            sale_stats(runtime).count(c.show_id, "holds_expired", now)
        uow.after_commit(lambda: publish_closed(runtime, closed))
    return len(ids)


async def expire_holds(runtime: Runtime) -> int:
    """Sweep until no dead hold is left, then offer the returned seats to waitlisted fans (one
    tick of the job)."""
    total = 0
    while True:
        n = await expire_once(runtime)
        total += n
        if n < EXPIRY_BATCH:
            break
    await offer_returned_seats(runtime)
    return total


OFFER_BATCH = 100


async def offer_returned_seats(runtime: Runtime) -> int:
    """The waitlist's second chance, in order: settle the offers that ended (paid: TAKEN; released
    or lapsed: LAPSED), then, per show with fans waiting, hold each returned seat for the next
    waitlisted fan (seats in id order, fans in join order) for the show's hold time. The crowd's
    holds cannot take those seats meanwhile (the hold statement refuses them while anyone waits).
    Returns the offers made."""
    now = runtime.clock.now()
    async with unit_of_work(runtime.sessions) as uow:
        await repository.settle_offers(uow.session, now)
    made = 0
    async with runtime.sessions() as session:
        shows = await repository.waitlist_shows(session)
    for show_id in shows:
        try:
            made += await _offer_for_show(runtime, show_id, now)
        except Exception as exc:
            runtime.failures.report(log, "waitlist_offer_failed", exc, show_id=show_id)
    return made


async def _offer_for_show(runtime: Runtime, show_id: int, now: datetime) -> int:
    show = await load_rules(runtime, show_id)
    expires_at = rules.hold_expires_at(show, now)
    offered: list[tuple[int, int]] = []
    reservations: list[int] = []
    async with unit_of_work(runtime.sessions) as uow:
        seats = await repository.returned_seats(uow.session, show_id, OFFER_BATCH)
        # a few more fans than seats: some may be passed over (at a limit, or holding seats now)
        fans = await repository.next_waiting(uow.session, show_id, 2 * len(seats) + 8) if seats else []
        queue = list(fans)
        for seat_id in seats:
            while queue:
                entry_id, user_id = queue.pop(0)
                try:
                    async with uow.session.begin_nested():  # a refused offer undoes only itself
                        reservation_id = await repository.offer_seat(
                            uow.session,
                            entry_id=entry_id,
                            user_id=user_id,
                            show_id=show_id,
                            seat_id=seat_id,
                            expires_at=expires_at,
                            now=now,
                        )
                except DBAPIError as exc:
                    if sqlstate(exc) != TICKET_LIMIT_SQLSTATE:
                        raise
                    await repository.skip_waiting(uow.session, entry_id, now)  # at a limit: the next fan
                    continue
                if reservation_id is None:
                    continue  # the fan holds seats of the show right now: keeps their place, the next fan
                offered.append((user_id, seat_id))
                reservations.append(reservation_id)
                break
        if offered:
            await refresh_inventory(uow.session, [show_id], now=now)
            await repository.queue_offer_mails(uow.session, reservations, now)

            async def published() -> None:
                for user_id, seat_id in offered:
                    await publish_seat_changes(runtime, show_id, user_id, [seat_id], rules.HOLD)

            uow.after_commit(published)
    return len(offered)


# ---- the waitlisted fan's live page --------------------------------------------------------------

WAITLIST_RECHECK_SECONDS = (
    15  # a quiet stream re-reads the place (the position moves, or an event was missed)
)


async def _waitlist_view(runtime: Runtime, user_id: int, show_id: int) -> WaitlistStatus:
    async with runtime.sessions() as session:
        return await waiting_service.waitlist_status(session, user_id, show_id)


def _waitlist_sse(view: WaitlistStatus) -> bytes:
    body = view.model_dump(mode="json")
    if view.reservation_id is not None:
        body["checkout_url"] = f"/reservations/{view.reservation_id}/checkout"
    return f"event: waitlist\ndata: {json.dumps(body, separators=(',', ':'))}\n\n".encode()


async def waitlist_events(runtime: Runtime, user_id: int, show_id: int) -> AsyncIterator[bytes]:
    """Server-Sent Events for a waitlisted fan's page: their place now, then the offer the moment
    it is made. The stream listens to the show's events through the process's stream hub (no Redis
    read of its own) and reads the fan's place from PostgreSQL only when an offer names this fan
    (the offer's seat.held event), after a Resync, and every WAITLIST_RECHECK_SECONDS quiet seconds
    (the position). It ends once the fan is no longer WAITING (offered, left, passed over)."""
    async with watch_seats(runtime, show_id, None) as updates:
        view = await _waitlist_view(runtime, user_id, show_id)
        yield b"retry: 3000\n: connected\n\n" + _waitlist_sse(view)
        if view.status != "WAITING":
            return
        quiet = 0
        async for update in updates:
            if update is None:
                quiet += 1
                if quiet < WAITLIST_RECHECK_SECONDS:
                    continue
            elif not isinstance(update, Resync) and (
                not isinstance(update, SeatEvent) or update.offered_to != user_id
            ):
                continue
            quiet = 0
            latest = await _waitlist_view(runtime, user_id, show_id)
            if latest != view:
                view = latest
                yield _waitlist_sse(view)
            else:
                yield b": keep-alive\n\n"
            if view.status != "WAITING":
                return
