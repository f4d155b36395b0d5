"""Waiting-room use cases run by the worker: the queue_admission job (one atomic Lua step per show
with a live queue, every `worker_tick_seconds`)."""

from __future__ import annotations

from datetime import datetime

import structlog

from boxoffice.db.outbox import emit
from boxoffice.db.uow import unit_of_work
from boxoffice.errors import NotFound
from boxoffice.runtime import Runtime
from boxoffice.salestats import rules as stats_rules
from boxoffice.salestats import store as stats_store
from boxoffice.salestats.recorder import sale_stats
from boxoffice.waiting_room import admission, store, toll
from boxoffice.waiting_room.schemas import WaitlistStatus
from boxoffice.waiting_room.service import (
    CLOSED_QUEUE_TTL_SECONDS,
    ShowQueueInfo,
    ms_of,
    read_show,
)
from boxoffice.waiting_room.service import (
    join_waitlist as join_waitlist_in,
)

log = structlog.get_logger("boxoffice.waiting_room")


async def seal_pre_queue(runtime: Runtime, show_id: int) -> bool:
    """At sale start: draw the pre-queue order and hand out tickets 1..n (once, atomically)."""
    n, seed, sealed = await store.close_pre_queue(runtime.redis, show_id)
    if sealed:
        return False
    joins = await store.join_list(runtime.redis, show_id) if n else []
    order = admission.prequeue_order(seed, joins) if seed else list(dict.fromkeys(joins))
    return await store.seal_pre_queue(runtime.redis, show_id, n, order) == 1


async def buyers_p99_ms(runtime: Runtime, show_id: int, now: datetime) -> float | None:
    """The p99 of the show's holds and payments (ms) over the last ADAPT_WINDOW_SECONDS, from
    every API process (their sale statistics, flushed to Redis every 250 ms); None with fewer
    than ADAPT_MIN_SAMPLES of them."""
    now_s = int(now.timestamp())
    points = await stats_store.read(
        runtime.redis, show_id, now_s - admission.ADAPT_WINDOW_SECONDS + 1, now_s + 1, "s"
    )
    merged = stats_rules.merge(points)
    histogram: dict[int, int] = {}
    for prefix in stats_rules.LATENCIES.values():
        for index, n in stats_rules.histogram(merged, prefix).items():
            histogram[index] = histogram.get(index, 0) + n
    if sum(histogram.values()) < admission.ADAPT_MIN_SAMPLES:
        return None
    return stats_rules.percentile(histogram, 0.99)


async def steer(runtime: Runtime, info: ShowQueueInfo, now: datetime) -> float:
    """Adaptive admission (admission.adaptive_rate, AIMD): the rate this tick admits at, within
    the show's configured rate; the configured rate itself (a static rate) when the show's queue
    says `adaptive: false` or BOXOFFICE_BUYER_P99_TARGET_MS is 0."""
    target = runtime.settings.buyer_p99_target_ms
    if target <= 0 or not info.adaptive:
        await store.forget_adaptive(runtime.redis, info.show_id)
        return info.admit_per_second
    if info.admit_per_second <= 0:
        return info.admit_per_second
    previous = await store.adaptive(runtime.redis, info.show_id)
    p99 = await buyers_p99_ms(runtime, info.show_id, now)
    held_back = await store.held_back(runtime.redis, info.show_id)
    rate, last_cut = admission.adaptive_rate(
        previous.rate,
        ceiling=info.admit_per_second,
        p99_ms=p99,
        target_ms=target,
        dt_seconds=runtime.settings.worker_tick_seconds,
        now_ms=ms_of(now),
        last_cut_ms=previous.last_cut_ms,
        previous_ceiling=previous.ceiling,
        held_back=held_back,
    )
    await store.set_adaptive(
        runtime.redis, info.show_id, store.Adaptive(rate, last_cut, p99, target, info.admit_per_second)
    )
    return rate


async def _tick_step(
    runtime: Runtime, info: ShowQueueInfo, now: datetime, rate: float | None = None
) -> store.TickResult:
    return await store.tick(
        runtime.redis,
        info.show_id,
        now_ms=ms_of(now),
        admit_per_second=info.admit_per_second if rate is None else rate,
        cap=info.cap(),
        stale_ms=admission.STALE_AFTER_SECONDS * 1000,
        lease_ms=info.token_ttl_seconds * 1000,
        max_scan=admission.MAX_SCAN_PER_TICK,
        tau_seconds=admission.RATE_TAU_SECONDS,
        paused=info.paused,
        max_credit_seconds=admission.MAX_CREDIT_SECONDS,
        default_dt_seconds=runtime.settings.worker_tick_seconds,
        inventory_cap=0
        if info.remaining <= 0
        else admission.inventory_cap(info.remaining, info.oversubscription),
    )


async def tick_show(runtime: Runtime, show_id: int) -> store.TickResult | None:
    """One admission step for one show: fresh settings and remaining seats from PostgreSQL, then
    one atomic Lua step. Safe with any number of workers ticking at once."""
    try:
        info = await read_show(runtime, show_id)
    except NotFound:
        await store.untrack_show(runtime.redis, show_id)
        return None
    await store.set_show_cache(runtime.hot_redis, show_id, info.to_json())
    now = runtime.clock.now()
    phase = info.phase(now)
    if phase == "CLOSED":
        await store.untrack_show(runtime.redis, show_id)
        await store.expire_show(runtime.redis, show_id, CLOSED_QUEUE_TTL_SECONDS)
        return None
    if phase in ("PRE_QUEUE", "OPEN"):
        # the toll's crowd factor: how fast fans join against how fast the line moves
        await store.sample_crowd(runtime.redis, show_id, ms_of(now), toll.JOIN_RATE_TAU_SECONDS)
    if phase != "OPEN":
        return None
    rate = await steer(runtime, info, now)
    result = await _tick_step(runtime, info, now, rate)
    if not result.sealed:
        await seal_pre_queue(runtime, show_id)
        result = await _tick_step(runtime, info, now, rate)
    label = str(show_id)
    runtime.metrics.queue_admissions.inc(result.admitted)
    sale_stats(runtime).count(show_id, "admitted", now, result.admitted)
    runtime.metrics.queue_waiting.labels(label).set(max(0, result.next - result.serving))
    runtime.metrics.queue_active.labels(label).set(result.active)
    runtime.metrics.queue_admission_rate.labels(label).set(result.rate or 0.0)
    if result.admitted_users:
        # Best effort after the Redis step (not transactional with it): feeds live UIs and audits.
        async with unit_of_work(runtime.sessions) as uow:
            await emit(
                uow.session,
                "queue.admitted",
                aggregate_type="show",
                aggregate_id=show_id,
                show_id=show_id,
                payload={"user_ids": result.admitted_users, "serving": result.serving},
            )
    return result


async def tick_all(runtime: Runtime) -> int:
    """The queue_admission job: tick every show with a live queue; one failing show does not stop the rest."""
    admitted = 0
    for show_id in await store.tracked_shows(runtime.redis):
        try:
            result = await tick_show(runtime, show_id)
        except Exception as exc:
            runtime.failures.report(log, "queue_tick_failed", exc, show_id=show_id)
            continue
        if result is not None:
            admitted += result.admitted
    return admitted


async def join_waitlist(runtime: Runtime, user_id: int, show_id: int) -> WaitlistStatus:
    """The waitlist join in its own unit of work (the gRPC door; HTTP uses the request's)."""
    async with unit_of_work(runtime.sessions) as uow:
        return await join_waitlist_in(runtime, uow.session, user_id, show_id)
