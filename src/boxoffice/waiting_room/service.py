"""Waiting-room operations: join, status, leave, admin and the fairness audit (ticks: flows.py).

A waiting fan's poll carries its signed queue ticket and is answered from the show's serving board,
which each process reads from Redis at most every 200 ms and shares (no per-fan state touched; the
`seen` marks are written behind in batches). Joins, served fans and ticketless polls take the per-fan
path: one Lua call, with the show from a short-lived Redis cache. PostgreSQL is read by the
admission worker (which refreshes that cache every tick) and on a miss.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice import ratelimit
from boxoffice.catalog.service import Show, get_remaining, get_show, get_unsold
from boxoffice.config import secret
from boxoffice.db.uow import after_commit
from boxoffice.errors import (
    NotFound,
    QueueChallengeExpired,
    QueueChallengeForeign,
    QueueChallengeInvalid,
    QueueChallengeReplayed,
    QueueChallengeRequired,
    QueueTicketForeign,
    QueueTicketRefused,
    SaleClosed,
    SaleNotOpen,
    ShowNotFound,
    SoldOut,
    WaitlistNotOpen,
)
from boxoffice.kit.clock import iso
from boxoffice.redis.mux import MuxRedis
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import admission, repository, store, toll
from boxoffice.waiting_room.schemas import (
    AdminQueueResponse,
    ChallengeResponse,
    FairnessResponse,
    QueueSettingsUpdate,
    QueueStatusResponse,
    QueueTokenResponse,
    ServingResponse,
    WaitlistStatus,
)
from boxoffice.waiting_room.tokens import (
    QueueTicket,
    QueueTicketInvalid,
    issue_queue_ticket,
    issue_queue_token,
    verify_queue_ticket,
)

log = structlog.get_logger("boxoffice.waiting_room")

# A stream re-checks Redis this often; it sends a comment line at least every KEEPALIVE seconds.
STREAM_CHECK_SECONDS = 1.0
STREAM_KEEPALIVE_SECONDS = 15.0
STREAM_MAX_SECONDS = 600.0
# After the sale closes a queue's keys linger this long (fairness audit, admin numbers), then go.
CLOSED_QUEUE_TTL_SECONDS = 7 * 24 * 3600
_MISSING = "null"
_FINAL = frozenset({"READY", "NOT_IN_QUEUE", "SOLD_OUT"})  # LAST_SEATS_HELD is not: seats may return


@dataclass(frozen=True, slots=True)
class ShowQueueInfo:
    """What the queue needs of a show; cached as JSON at bo:{S}:q:show."""

    show_id: int
    concert_id: int
    sale_opens_at: datetime
    sale_closes_at: datetime | None
    pre_queue_opens_at: datetime | None
    admit_per_second: float
    max_active: int | None
    token_ttl_seconds: int
    oversubscription: float | None
    paused: bool
    remaining: int
    # Seats not RESERVED (available or held): 0 with remaining 0 is SOLD_OUT, >0 LAST_SEATS_HELD.
    unsold: int = 0
    # The toll's base difficulty (0 = off); the crowd's factor is measured by the worker's tick.
    pow_difficulty: int = 0
    # Adaptive admission steers this show's rate (flows.steer); False: the static admit_per_second.
    adaptive: bool = True

    @classmethod
    def from_show(cls, show: Show, remaining: int, unsold: int) -> ShowQueueInfo:
        return cls(
            show_id=show.id,
            concert_id=show.concert_id,
            sale_opens_at=show.sale_opens_at,
            sale_closes_at=show.sale_closes_at,
            pre_queue_opens_at=show.pre_queue_opens_at,
            admit_per_second=float(show.queue_admit_per_second),
            max_active=show.queue_max_active,
            token_ttl_seconds=int(show.queue_token_ttl_seconds),
            oversubscription=show.queue_oversubscription,
            paused=bool(show.queue_paused),
            remaining=int(remaining),
            unsold=int(unsold),
            pow_difficulty=int(show.queue_pow_difficulty),
            adaptive=bool(show.queue_adaptive),
        )

    def to_json(self) -> str:
        data = asdict(self)
        for name in ("sale_opens_at", "sale_closes_at", "pre_queue_opens_at"):
            value = data[name]
            data[name] = iso(value) if value is not None else None
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> ShowQueueInfo:
        data = json.loads(raw)
        # A field this process does not know (cached by a newer worker during a rolling deploy) is
        # left out rather than refused; a field it knows but the cache lacks takes its default.
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        for name in ("sale_opens_at", "sale_closes_at", "pre_queue_opens_at"):
            if data[name] is not None:
                data[name] = datetime.fromisoformat(data[name])
        return cls(**data)

    def phase(self, now: datetime) -> str:
        return admission.phase(
            now,
            pre_queue_opens_at=self.pre_queue_opens_at,
            sale_opens_at=self.sale_opens_at,
            sale_closes_at=self.sale_closes_at,
        )

    def sale_state(self, now: datetime) -> str:
        return admission.sale_state(
            self.phase(now), paused=self.paused, remaining=self.remaining, unsold=self.unsold
        )

    def sold_out(self) -> bool:
        return self.remaining <= 0 and self.unsold <= 0

    def cap(self) -> int | None:
        if self.remaining <= 0:
            return 0  # sold out: nobody is let in to find nothing
        return admission.active_cap(self.max_active, self.remaining, self.oversubscription)


def ms_of(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _show_not_found(show_id: int) -> NotFound:
    return ShowNotFound(f"Show {show_id} not found", show_id=show_id)


async def read_show(runtime: Runtime, show_id: int) -> ShowQueueInfo:
    """The show as the queue sees it. Seats that return while fans wait on the waitlist are theirs
    (booking offers them in order): they are not counted as remaining, so the line does not move
    for them and nobody is admitted to find them refused."""
    async with runtime.sessions() as session:
        show = await get_show(session, show_id)
        remaining = await get_remaining(session, show_id)
        unsold = await get_unsold(session, show_id)
        waitlisted = await repository.waitlist_waiting(session, show_id) if remaining > 0 else 0
    return ShowQueueInfo.from_show(show, max(0, remaining - waitlisted), unsold)


async def _load_show(runtime: Runtime, show_id: int) -> ShowQueueInfo:
    """Show settings from the Redis cache; PostgreSQL on a miss (negative results cached too)."""
    return await _show_from(runtime, show_id, await store.get_show_cache(runtime.hot_redis, show_id))


async def _show_from(runtime: Runtime, show_id: int, cached: str | None) -> ShowQueueInfo:
    """Show settings from what the cache answered (read with other commands; None: a miss)."""
    if cached is None:
        try:
            info = await read_show(runtime, show_id)
        except NotFound:
            await store.set_show_cache(runtime.hot_redis, show_id, _MISSING)
            raise
        await store.set_show_cache(runtime.hot_redis, show_id, info.to_json())
        return info
    if cached == _MISSING:
        raise _show_not_found(show_id)
    return ShowQueueInfo.from_json(cached)


def _check_concert(info: ShowQueueInfo, concert_id: int) -> None:
    if info.concert_id != concert_id:
        raise _show_not_found(info.show_id)


# ---------------------------------------------------------------------------- fans


@dataclass(frozen=True, slots=True)
class JoinFirstRound:
    """A join's first Redis round, issued together (with the deny-list check on the API):
    the rate limit's count and the show's cached settings."""

    limit: ratelimit.Hit
    show: Awaitable[bytes | None]


def join_first_round(runtime: Runtime, user_id: int, show_id: int) -> JoinFirstRound:
    limit = ratelimit.begin(runtime, "join", user_id, limit=runtime.settings.limit_joins_per_minute)
    return JoinFirstRound(limit, store.issue_show_cache(runtime.hot_redis, show_id))


async def join(
    runtime: Runtime,
    user_id: int,
    concert_id: int,
    show_id: int,
    solution: str | None = None,
    *,
    first: JoinFirstRound | None = None,
) -> QueueStatusResponse:
    """A place in line; with the toll on (the show's pow_difficulty > 0), only for a solved,
    unspent challenge of this user and show (`solution`: ALTCHA's base64 payload). Two waits for
    Redis (a third spends a toll's solution): the first round (join_first_round), then the join
    with its status in one script."""
    if first is None:
        with runtime.hot_redis.one_write():
            first = join_first_round(runtime, user_id, show_id)
    await first.limit.enforce()
    info = await _show_from(runtime, show_id, store.show_cache_text(await first.show))
    _check_concert(info, concert_id)
    now = runtime.clock.now()
    phase = info.phase(now)
    if phase == "NOT_OPEN":
        opens = info.pre_queue_opens_at or info.sale_opens_at
        raise SaleNotOpen("The queue for this show is not open yet", opens_at=iso(opens))
    if phase == "CLOSED":
        raise SaleClosed("The sale for this show is closed")
    if info.sold_out():
        raise SoldOut("This show is sold out")
    if info.pow_difficulty > 0:
        await _pay_toll(runtime, user_id, show_id, solution, now)
    seed = secrets.token_hex(32) if phase == "PRE_QUEUE" else ""
    result = await store.join(
        runtime.hot_redis, show_id, user_id, ms_of(now), pre_queue=phase == "PRE_QUEUE", seed=seed
    )
    if result.created:
        runtime.metrics.queue_joins.inc()
    # The exact answer, carrying the signed ticket for the polls.
    return _view(runtime, info, result.status, user_id, now)


_TOLL_ERRORS: dict[str, type[Exception]] = {
    "required": QueueChallengeRequired,
    "invalid": QueueChallengeInvalid,
    "expired": QueueChallengeExpired,
    "foreign": QueueChallengeForeign,
}


def _toll_key(runtime: Runtime) -> bytes:
    return toll.toll_key(secret(runtime.settings.queue_token_secret))


async def _pay_toll(
    runtime: Runtime, user_id: int, show_id: int, solution: str | None, now: datetime
) -> None:
    """O(1): one HMAC and one SHA-256 (toll.verify), then one SET NX that spends the solution."""
    now_s = int(now.timestamp())
    try:
        solved = toll.verify(_toll_key(runtime), solution, user_id=user_id, show_id=show_id, now_s=now_s)
    except toll.TollRefused as refused:
        runtime.metrics.queue_toll.labels(refused.reason).inc()
        raise _TOLL_ERRORS[refused.reason](refused.message) from None
    ttl_ms = (solved.expires - now_s) * 1000 + 1000
    if not await store.spend_solution(runtime.hot_redis, show_id, solved.challenge, user_id, ttl_ms):
        runtime.metrics.queue_toll.labels("replayed").inc()
        raise QueueChallengeReplayed("This challenge solution was already used; fetch a new challenge")
    runtime.metrics.queue_toll.labels("paid").inc()


async def challenge(runtime: Runtime, user_id: int, show_id: int) -> ChallengeResponse:
    """A fresh challenge for this user and show: the show's difficulty times the crowd's factor
    (the join rate against the admission rate, as the worker last measured them). One Redis call."""
    show_json, join_rate, admission_rate = await store.toll_inputs(runtime.hot_redis, show_id)
    info = await _show_from(runtime, show_id, show_json)
    factor = toll.crowd_factor(join_rate, admission_rate, info.admit_per_second)
    issued = toll.issue(
        _toll_key(runtime),
        user_id=user_id,
        show_id=show_id,
        maxnumber=toll.effective_maxnumber(info.pow_difficulty, factor),
        now_s=int(runtime.clock.now().timestamp()),
    )
    return ChallengeResponse(
        algorithm=issued.algorithm,
        challenge=issued.challenge,
        maxnumber=issued.maxnumber,
        salt=issued.salt,
        signature=issued.signature,
    )


async def status(
    runtime: Runtime,
    user_id: int,
    concert_id: int,
    show_id: int,
    *,
    touch: bool = True,
    ticket: str | None = None,
) -> QueueStatusResponse:
    """With the fan's queue ticket, a waiting fan is answered from the show's shared serving board
    (no per-fan Redis read); served fans, pre-queue fans after the draw and tickets found stale go
    through the per-fan path: one Lua call (place, serving, lease, rate, cached show)."""
    if ticket is not None:
        cheap = await _status_from_ticket(runtime, user_id, concert_id, show_id, ticket, touch=touch)
        if cheap is not None:
            return cheap
    now = runtime.clock.now()
    raw = await store.status(runtime.hot_redis, show_id, user_id, ms_of(now), touch=touch)
    info = await _show_from(runtime, show_id, raw.show_json)
    _check_concert(info, concert_id)
    return _view(runtime, info, raw, user_id, now)


@dataclass(frozen=True, slots=True)
class Board:
    """A show's serving state as this process last read it (shared by all its polls)."""

    info: ShowQueueInfo
    serving: int
    next: int
    rate: float | None
    sealed: bool
    blocked: bool
    body: bytes  # the public serving resource, rendered once per read
    etag: str


async def board(runtime: Runtime, show_id: int) -> Board:
    """The show's board, read from Redis at most every `queue_boards.ttl` seconds per process
    (single-flight: a crowd of polls waits for one read)."""
    cached: Board | None = runtime.queue_boards.get(show_id)
    if cached is not None:
        return cached
    loaded: Board = await runtime.queue_boards.get_or_load(show_id, lambda: _read_board(runtime, show_id))
    return loaded


async def _read_board(runtime: Runtime, show_id: int) -> Board:
    raw = await store.board(runtime.hot_redis, show_id)
    info = await _show_from(runtime, show_id, raw.show_json)
    public = ServingResponse(
        show_id=info.show_id,
        concert_id=info.concert_id,
        sale_state=info.sale_state(runtime.clock.now()),  # type: ignore[arg-type]
        serving=raw.serving,
        last_ticket=raw.next,
        admission_rate=raw.rate,
        admit_per_second=info.admit_per_second,
        blocked=raw.blocked,
        remaining=max(0, info.remaining),
        sale_opens_at=info.sale_opens_at,
    )
    body = public.model_dump_json().encode()
    etag = '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"'
    return Board(info, raw.serving, raw.next, raw.rate, raw.sealed, raw.blocked, body, etag)


def served_on_board(runtime: Runtime, show_id: int, number: int) -> bool:
    """Whether this process's last board shows the number served (or, for 0, the draw done); no
    I/O, False when no board was loaded. An expired board will do: serving and the draw only
    move forward."""
    current: Board | None = runtime.queue_boards.stale(show_id)
    if current is None:
        return False
    return current.sealed if number == 0 else number <= current.serving


def _ticket_of(runtime: Runtime, raw: str, user_id: int, show_id: int) -> QueueTicket:
    parsed = runtime.queue_tickets.get(raw)
    if parsed is None:
        try:
            parsed = verify_queue_ticket(runtime.settings, raw)
        except QueueTicketInvalid:
            raise QueueTicketRefused("The queue ticket is not one we issued") from None
        if parsed.user_id == user_id and parsed.show_id == show_id:
            runtime.queue_tickets.put(raw, parsed)
    if parsed.user_id != user_id or parsed.show_id != show_id:
        raise QueueTicketForeign("The queue ticket belongs to another user or show")
    return parsed


async def _status_from_ticket(
    runtime: Runtime, user_id: int, concert_id: int, show_id: int, raw_ticket: str, *, touch: bool
) -> QueueStatusResponse | None:
    """The cheap poll; None when the fan needs the per-fan path."""
    ticket = _ticket_of(runtime, raw_ticket, user_id, show_id)
    if runtime.queue_gone.get((show_id, user_id, ticket.number)):
        return None  # a batched touch found this place gone (left, or re-joined): ask Redis
    current = await board(runtime, show_id)
    _check_concert(current.info, concert_id)
    provisional = ticket.number == 0
    if (provisional and current.sealed) or (not provisional and ticket.number <= current.serving):
        return None  # drawn, or served: the per-fan path learns the number / the lease
    now = runtime.clock.now()
    raw = store.StatusRaw(
        ticket=None if provisional else ticket.number,
        serving=current.serving,
        lease_ms=None,
        pre_queue=provisional,
        rate=current.rate,
        sealed=current.sealed,
        show_json=None,
        next=current.next,
        blocked=current.blocked,
    )
    if touch:
        _note_seen(runtime, show_id, user_id, ticket.number, ms_of(now))
    return _view(runtime, current.info, raw, user_id, now, signed=raw_ticket)


def _note_seen(runtime: Runtime, show_id: int, user_id: int, number: int, now_ms: int) -> None:
    seen = runtime.queue_seen
    if seen.add(show_id, user_id, (number, now_ms)):
        seen.task = asyncio.get_running_loop().create_task(_flush_seen_after(runtime, seen.delay()))


async def _flush_seen_after(runtime: Runtime, delay: float) -> None:
    if delay > 0:
        await asyncio.sleep(delay)
    await _flush_seen(runtime)


SEEN_BATCH = 1000


async def _flush_seen(runtime: Runtime) -> None:
    """Write the buffered `seen` marks (one Lua call per show and 1,000 fans); remember the tickets
    whose place is gone so the next poll with them takes the per-fan path."""
    for show_id, marks in runtime.queue_seen.take().items():
        batch = [(user_id, number, ms) for user_id, (number, ms) in marks.items()]
        for i in range(0, len(batch), SEEN_BATCH):
            chunk = batch[i : i + SEEN_BATCH]
            try:
                gone = set(await store.touch_seen(runtime.hot_redis, show_id, chunk))
            except Exception:
                log.warning("queue_seen_flush_failed", show_id=show_id, exc_info=True)
                continue
            for user_id, number, _ in chunk:
                if user_id in gone:
                    runtime.queue_gone.put((show_id, user_id, number), True)


async def flush_seen(runtime: Runtime) -> None:
    """For tests: wait for the scheduled flush, then write whatever is still pending."""
    if runtime.queue_seen.task is not None:
        await runtime.queue_seen.task
    await _flush_seen(runtime)


def _view(
    runtime: Runtime,
    info: ShowQueueInfo,
    raw: store.StatusRaw,
    user_id: int,
    now: datetime,
    *,
    signed: str | None = None,
) -> QueueStatusResponse:
    base: dict[str, Any] = {"user_id": user_id, "concert_id": info.concert_id, "show_id": info.show_id}
    if raw.ticket is not None or raw.pre_queue:
        number = raw.ticket or 0
        base["ticket_number"] = number
        base["queue_ticket"] = signed or issue_queue_ticket(
            runtime.settings, QueueTicket(show_id=info.show_id, user_id=user_id, number=number)
        )
    now_ms = ms_of(now)
    if raw.ticket is not None and raw.ticket <= raw.serving:
        if raw.lease_ms is not None and raw.lease_ms > now_ms:
            ttl = max(1, (raw.lease_ms - now_ms) // 1000)
            token, expires = issue_queue_token(
                runtime.settings,
                user_id=user_id,
                show_id=info.show_id,
                ticket=raw.ticket,
                ttl_seconds=ttl,
                now=now,
            )
            return QueueStatusResponse(
                **base,
                status="READY",
                position=0,
                estimated_wait_seconds=0,
                estimate_basis="none",
                poll_after_seconds=None,
                pre_queue=False,
                token=token,
                expires_at=expires,
            )
        return _not_in_queue(info, user_id)
    if raw.ticket is None and not raw.pre_queue:
        return _not_in_queue(info, user_id)
    if info.remaining <= 0:
        if info.unsold > 0:
            # Only held seats are left: the line stands still, and moves again if a hold lapses.
            return QueueStatusResponse(
                **base,
                status="LAST_SEATS_HELD",
                position=None if raw.ticket is None else raw.ticket - raw.serving,
                estimated_wait_seconds=None,
                estimate_basis="unknown",
                poll_after_seconds=admission.poll_after(None),
                pre_queue=raw.pre_queue,
            )
        return QueueStatusResponse(
            **base,
            status="SOLD_OUT",
            position=None,
            estimated_wait_seconds=None,
            estimate_basis="none",
            poll_after_seconds=None,
            pre_queue=raw.pre_queue,
        )
    if raw.ticket is None:  # provisional pre-queue slot: the draw happens at sale start
        until_sale = math.ceil((info.sale_opens_at - now).total_seconds())
        eta = until_sale if until_sale > 0 else None
        return QueueStatusResponse(
            **base,
            status="WAITING",
            position=None,
            estimated_wait_seconds=eta,
            estimate_basis="sale_start" if eta is not None else "unknown",
            # the sale has started and the draw is due on the next tick: look again soon
            poll_after_seconds=admission.poll_after(eta if eta is not None else 1),
            pre_queue=True,
        )
    position = raw.ticket - raw.serving
    rate, basis = raw.rate, "measured"
    if info.paused or raw.blocked:
        # paused, or every remaining seat is spoken for: only returning seats move the line
        rate, basis = None, "unknown"
    elif rate is None and info.admit_per_second > 0:
        rate, basis = info.admit_per_second, "configured"  # nothing measured yet: the plan is all we know
    eta = admission.eta_seconds(position, rate, paused=info.paused or raw.blocked)
    return QueueStatusResponse(
        **base,
        status="WAITING",
        position=position,
        estimated_wait_seconds=eta,
        estimate_basis=basis if eta is not None else "unknown",  # type: ignore[arg-type]
        poll_after_seconds=admission.poll_after(eta),
        pre_queue=False,
    )


def _not_in_queue(info: ShowQueueInfo, user_id: int) -> QueueStatusResponse:
    return QueueStatusResponse(
        user_id=user_id,
        concert_id=info.concert_id,
        show_id=info.show_id,
        status="NOT_IN_QUEUE",
        position=None,
        estimated_wait_seconds=None,
        estimate_basis="none",
        poll_after_seconds=None,
        pre_queue=False,
    )


async def token(runtime: Runtime, user_id: int, concert_id: int, show_id: int) -> QueueTokenResponse:
    """Seed 000's token request: a token when admitted, else where the user stands."""
    view = await status(runtime, user_id, concert_id, show_id)
    return QueueTokenResponse(
        status=view.status, position=view.position, token=view.token, expires_at=view.expires_at
    )


async def leave(runtime: Runtime, user_id: int, concert_id: int, show_id: int) -> bool:
    info = await _load_show(runtime, show_id)
    _check_concert(info, concert_id)
    left = await store.leave(runtime.redis, show_id, user_id)
    # Leaving ends the admission: a token already handed out stops opening the seat map.
    await store.end_admission(runtime.redis, show_id, user_id, ms_of(runtime.clock.now()))
    return left


def issue_release_lease(redis: MuxRedis, show_id: int, user_id: int) -> Awaitable[Any]:
    """For payments: the admitted user paid, so their lease stops counting toward the caps.
    Written now (MuxRedis.issue: the payment's other after-commit commands share its write)."""
    return store.issue_release(redis, show_id, user_id)


async def watch(
    runtime: Runtime,
    user_id: int,
    concert_id: int,
    show_id: int,
    disconnected: Callable[[], Awaitable[bool]] | None = None,
    *,
    ticket: str | None = None,
) -> AsyncIterator[QueueStatusResponse | None]:
    """The fan's status whenever position/state changes (None when nothing changed for
    STREAM_KEEPALIVE_SECONDS), ending on a final state, after STREAM_MAX_SECONDS or when
    `disconnected()` says so. The SSE stream and the gRPC WatchQueue both read this. Each check
    carries the fan's queue ticket (given, or learnt from the first answer): a waiting watcher
    reads the shared serving board."""
    started = time.monotonic()
    last_sent = 0.0
    previous: tuple[object, ...] | None = None
    while True:
        view = await status(runtime, user_id, concert_id, show_id, ticket=ticket)
        ticket = view.queue_ticket or ticket
        key = (view.status, view.position, view.estimated_wait_seconds)
        clock = time.monotonic()
        if key != previous:
            previous, last_sent = key, clock
            yield view
        elif clock - last_sent >= STREAM_KEEPALIVE_SECONDS:
            last_sent = clock
            yield None
        if view.status in _FINAL or clock - started >= STREAM_MAX_SECONDS:
            return
        if disconnected is not None and await disconnected():
            return
        await asyncio.sleep(STREAM_CHECK_SECONDS)


async def stream(
    runtime: Runtime,
    user_id: int,
    concert_id: int,
    show_id: int,
    disconnected: Callable[[], Awaitable[bool]],
    ticket: str | None = None,
) -> AsyncIterator[str]:
    """Server-Sent Events of `watch`: a `status` event on every change.

    The first status is computed by the caller before streaming starts, so errors are plain 4xx.
    """
    yield "retry: 3000\n\n"
    try:
        async for view in watch(runtime, user_id, concert_id, show_id, disconnected, ticket=ticket):
            yield ": keepalive\n\n" if view is None else f"event: status\ndata: {view.model_dump_json()}\n\n"
    except Exception as exc:
        runtime.failures.report(log, "queue_stream_status_failed", exc, show_id=show_id)
        yield 'event: error\ndata: {"code": "QUEUE_UNAVAILABLE"}\n\n'


# ---------------------------------------------------------------------------- admission worker


# ---------------------------------------------------------------------------- admin and audit


async def refresh_queue_gauges(runtime: Runtime) -> None:
    """Set the queue gauges from Redis (the shared truth), so any API process's /metrics shows
    waiting, active and the measured admission rate, not only the worker that ticks."""
    now_ms = ms_of(runtime.clock.now())
    for show_id in await store.tracked_shows(runtime.redis):
        stats = await store.stats(runtime.redis, show_id, now_ms)
        label = str(show_id)
        runtime.metrics.queue_waiting.labels(label).set(stats.waiting)
        runtime.metrics.queue_active.labels(label).set(stats.active)
        runtime.metrics.queue_admission_rate.labels(label).set(stats.rate or 0.0)


async def admin_view(runtime: Runtime, session: AsyncSession, show_id: int) -> AdminQueueResponse:
    show = await get_show(session, show_id)
    remaining = await get_remaining(session, show_id)
    stats = await store.stats(runtime.redis, show_id, ms_of(runtime.clock.now()))
    _, join_rate, _ = await store.toll_inputs(runtime.hot_redis, show_id)
    counts = await repository.waitlist_counts(session, show_id)
    finished = stats.no_shows + stats.converted + stats.left_active
    target = (runtime.settings.buyer_p99_target_ms or None) if show.queue_adaptive else None
    steered = await store.adaptive(runtime.redis, show_id) if target else None
    return AdminQueueResponse(
        show_id=show_id,
        paused=show.queue_paused,
        admit_per_second=show.queue_admit_per_second,
        max_active=show.queue_max_active,
        oversubscription=show.queue_oversubscription,
        remaining=remaining,
        waiting=stats.waiting,
        active=stats.active,
        admitted_total=stats.admitted_total,
        admission_rate=stats.rate,
        no_show_rate=round(stats.no_shows / finished, 4) if finished else None,
        no_shows=stats.no_shows,
        converted=stats.converted,
        stale_skipped=stats.stale_skipped,
        serving=stats.serving,
        next_ticket=stats.next,
        pow_difficulty=show.queue_pow_difficulty,
        adaptive=show.queue_adaptive,
        pow_effective=toll.effective_maxnumber(
            show.queue_pow_difficulty,
            toll.crowd_factor(join_rate, stats.rate, show.queue_admit_per_second),
        ),
        join_rate=join_rate,
        buyer_p99_target_ms=target,
        buyer_p99_ms=steered.p99_ms if steered else None,
        adaptive_rate=min(steered.rate, show.queue_admit_per_second)
        if steered and steered.rate is not None
        else None,
        **{f"waitlist_{k}": v for k, v in counts.items() if k in ("waiting", "offers", "taken", "lapsed")},
    )


async def set_paused(
    runtime: Runtime, session: AsyncSession, show_id: int, paused: bool
) -> AdminQueueResponse:
    if not await repository.update_queue_settings(session, show_id, runtime.clock.now(), queue_paused=paused):
        raise _show_not_found(show_id)
    _drop_show_cache_after_commit(runtime, session, show_id)
    return await admin_view(runtime, session, show_id)


async def update_settings(
    runtime: Runtime, session: AsyncSession, show_id: int, change: QueueSettingsUpdate
) -> AdminQueueResponse:
    values: dict[str, object] = {}
    if change.admit_per_second is not None:
        values["queue_admit_per_second"] = change.admit_per_second
    if change.clear_max_active:
        values["queue_max_active"] = None
    elif change.max_active is not None:
        values["queue_max_active"] = change.max_active
    if change.pow_difficulty is not None:
        values["queue_pow_difficulty"] = change.pow_difficulty
    if change.adaptive is not None:
        values["queue_adaptive"] = change.adaptive
    if values and not await repository.update_queue_settings(session, show_id, runtime.clock.now(), **values):
        raise _show_not_found(show_id)
    _drop_show_cache_after_commit(runtime, session, show_id)
    return await admin_view(runtime, session, show_id)


def _drop_show_cache_after_commit(runtime: Runtime, session: AsyncSession, show_id: int) -> None:
    """The worker re-reads the row every tick; dropping the cached row makes polls honest at once.
    After the commit: dropped before it, a poll in between would re-cache the old row."""
    after_commit(session, lambda: store.drop_show_cache(runtime.redis, show_id))


async def fairness(runtime: Runtime, session: AsyncSession, show_id: int) -> FairnessResponse:
    """Before the sale: SHA-256(seed) only. Once sealed: the seed and the join list to recheck."""
    show = await get_show(session, show_id)
    state = await store.fairness_state(runtime.redis, show_id)
    seed = state.get("seed")
    if seed is None:
        return FairnessResponse(show_id=show_id, pre_queue=False, commitment=None, revealed=False)
    revealed = state.get("sealed") == "1" and runtime.clock.now() >= show.sale_opens_at
    if not revealed:
        return FairnessResponse(
            show_id=show_id, pre_queue=True, commitment=admission.commitment(seed), revealed=False
        )
    joins = await store.join_list(runtime.redis, show_id)
    return FairnessResponse(
        show_id=show_id,
        pre_queue=True,
        commitment=admission.commitment(seed),
        revealed=True,
        seed=seed,
        join_list=joins,
        order=admission.prequeue_order(seed, joins),
    )


# ---------------------------------------------------------------------------- the waitlist


async def join_waitlist(
    runtime: Runtime, session: AsyncSession, user_id: int, show_id: int
) -> WaitlistStatus:
    """Only when the show says SOLD_OUT or LAST_SEATS_HELD (otherwise: join the queue and buy).
    Twice = the same place. Returned seats are then offered in join order (booking.flows)."""
    info = await _load_show(runtime, show_id)
    now = runtime.clock.now()
    state = info.sale_state(now)
    if state not in ("SOLD_OUT", "LAST_SEATS_HELD"):
        raise WaitlistNotOpen(
            "The waitlist opens when the show is sold out; seats are still on sale", sale_state=state
        )
    await repository.join_waitlist(session, show_id, user_id, now)
    return await waitlist_status(session, user_id, show_id)


async def waitlist_status(session: AsyncSession, user_id: int, show_id: int) -> WaitlistStatus:
    entry = await repository.waitlist_entry(session, show_id, user_id)
    if entry is None:
        return WaitlistStatus(show_id=show_id, status="NOT_ON_WAITLIST", position=None)
    return WaitlistStatus(
        show_id=show_id,
        status=entry["status"],
        position=None if entry["ahead"] is None else int(entry["ahead"]) + 1,
        reservation_id=entry["reservation_id"] if entry["status"] == "OFFERED" else None,
        offer_expires_at=entry["offer_expires_at"] if entry["status"] == "OFFERED" else None,
    )


async def leave_waitlist(runtime: Runtime, session: AsyncSession, user_id: int, show_id: int) -> None:
    await repository.leave_waitlist(session, show_id, user_id, runtime.clock.now())
