"""Adaptive admission (waiting_room/admission.py adaptive_rate, flows.steer) on real Redis: three
"API processes" (runtimes with their own pools and sale-statistics recorders) report the buyers'
latency concurrently; the admission worker's ticks cut the rate multiplicatively while the p99 is
over the target (never below the floor), raise it additively back to the configured rate once it
is under, and admit what the chosen rate allows. With the target at 0 the static rate stays; a show
whose queue says `adaptive: false` keeps its static rate beside a steered one."""

from __future__ import annotations

import asyncio
import itertools
from contextlib import AsyncExitStack

import pytest

from boxoffice.admin import service as admin_service
from boxoffice.config import Settings
from boxoffice.db.uow import unit_of_work
from boxoffice.kit.clock import OffsetClock
from boxoffice.runtime import Runtime, open_runtime
from boxoffice.salestats.recorder import sale_stats
from boxoffice.waiting_room import admission, flows, service, store
from boxoffice.waiting_room.schemas import QueueSettingsUpdate
from tests.integration.test_queue_support import make_show

CEILING = 20.0  # below the start rate: the show starts at it (slow start is its own test)
TICK = 0.5


async def _fans(runtime: Runtime, show: dict, n: int) -> None:  # type: ignore[type-arg]
    for start in range(1, n + 1, 100):
        await asyncio.gather(
            *(
                service.join(runtime, u, show["concert_id"], show["id"])
                for u in range(start, min(n, start + 99) + 1)
            )
        )


async def _report(apis: list[Runtime], show_id: int, clock: OffsetClock, seconds: float, n: int) -> None:
    """Every API process records n holds/payments of this latency and flushes (as its 250 ms flusher does)."""

    async def one(api: Runtime) -> None:
        stats = sale_stats(api)
        for i in range(n):
            kind = ("holds_won", "hold") if i % 2 else ("payments_succeeded", "payment")
            stats.outcome(show_id, kind[0], kind[1], clock.now(), seconds)
        await stats.flush()

    await asyncio.gather(*(one(api) for api in apis))


@pytest.fixture
async def apis(settings: Settings, runtime: Runtime, clock: OffsetClock):  # type: ignore[no-untyped-def]
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                open_runtime(settings, runtime.database_url, runtime.redis_url, clock=clock)
            )
            for _ in range(3)
        ]


async def test_rate_follows_buyers_latency(runtime: Runtime, apis: list[Runtime], clock: OffsetClock) -> None:
    assert runtime.settings.buyer_p99_target_ms == 100  # the default target
    show = await make_show(runtime, admit_per_second=CEILING, max_active=None, oversubscription=None)
    sid = show["id"]
    await _fans(runtime, show, 1200)
    floor = admission.adapt_floor(CEILING)

    rates: list[float] = []
    admitted = 0
    owed = 0.0
    last_at: float | None = None

    async def tick() -> None:
        # The test clock runs in real time plus its offset: a tick's credit is the chosen rate
        # times the time since the last tick (the Lua step's own dt), not a fixed half second.
        nonlocal admitted, owed, last_at
        at = clock.now().timestamp()
        result = await flows.tick_show(runtime, sid)
        assert result is not None
        state = await store.adaptive(runtime.redis, sid)
        assert state.rate is not None and state.target_ms == 100
        rates.append(state.rate)
        admitted += result.admitted
        owed += state.rate * (TICK if last_at is None else at - last_at)
        last_at = at
        clock.advance(TICK)

    # Buyers slow (p99 300 ms > 100 ms): multiplicative decrease, at most once per window, to the floor.
    for _ in range(60):
        await _report(apis, sid, clock, 0.300, 10)
        await tick()
    state = await store.adaptive(runtime.redis, sid)
    assert state.p99_ms is not None and state.p99_ms > 250
    cuts = [(a, b) for a, b in zip([CEILING, *rates], rates, strict=False) if b != a]
    assert cuts, rates
    for before, after in cuts:
        assert after == pytest.approx(max(floor, before * admission.ADAPT_DECREASE)), (before, after)
    assert rates[0] == pytest.approx(CEILING * admission.ADAPT_DECREASE)  # the first tick already cuts
    assert min(rates) == pytest.approx(floor) and rates[-1] == pytest.approx(floor)
    per_window = int(admission.ADAPT_WINDOW_SECONDS / TICK)
    assert len(cuts) <= len(rates) // per_window + 1  # once per window, not once per tick
    # The worker admitted what the chosen rates allowed (the credit carries fractions over).
    assert abs(admitted - owed) <= 3, (admitted, owed)
    # The console's live panel (the dashboard frame) shows the target, the p99 and the chosen rate.
    panel = (await admin_service.frame(runtime, sid))["queue"]
    assert panel["buyer_p99_target_ms"] == 100 and panel["buyer_p99_ms"] == state.p99_ms
    assert panel["adaptive_rate"] == pytest.approx(floor) and panel["admit_per_second"] == CEILING

    # Buyers fast again (p99 10 ms): once the slow samples left the window, additive increase.
    rates.clear()
    admitted, owed = 0, 0.0
    for _ in range(per_window + 50):
        await _report(apis, sid, clock, 0.010, 10)
        await tick()
    climbing = rates[per_window:]
    step = CEILING * admission.ADAPT_INCREASE_SHARE * TICK
    for before, after in itertools.pairwise(climbing):
        assert after == pytest.approx(min(CEILING, before + step)), (before, after)
    assert rates[-1] == pytest.approx(CEILING)  # up to the configured rate, never past it
    assert max(rates) <= CEILING
    assert abs(admitted - owed) <= 3, (admitted, owed)


async def test_a_sale_starts_slow_and_doubles_until_buyers_slow_down(
    runtime: Runtime, apis: list[Runtime], clock: OffsetClock
) -> None:
    """A show configured for 1,000 fans a second does not let a second's worth in at once: its
    first tick admits at ADAPT_START_RATE, the rate doubles every window while buyers are fast
    and fans wait behind it (not while the line is empty), and the first slow verdict cuts it
    and ends slow start (then the increase is additive)."""
    ceiling = 1000.0
    show = await make_show(runtime, admit_per_second=ceiling, max_active=None, oversubscription=None)
    sid = show["id"]
    # Open with nobody in line yet (or blocked by the inventory cap): the rate does not grow.
    for _ in range(12):
        await flows.tick_show(runtime, sid)
        clock.advance(TICK)
    idle = await store.adaptive(runtime.redis, sid)
    assert idle.rate == admission.ADAPT_START_RATE and idle.last_cut_ms is None
    await store.forget_adaptive(runtime.redis, sid)  # the sale proper starts from its first tick
    await _fans(runtime, show, 3000)
    first = await flows.tick_show(runtime, sid)
    assert first is not None
    start = (await store.adaptive(runtime.redis, sid)).rate
    assert start is not None and admission.ADAPT_START_RATE <= start < 1.2 * admission.ADAPT_START_RATE
    # at most the start rate's banked second (the bucket's MAX_CREDIT_SECONDS), not the ceiling's
    assert first.admitted <= start * admission.MAX_CREDIT_SECONDS + 1, first.admitted
    per_window = int(admission.ADAPT_WINDOW_SECONDS / TICK)
    rates = [start]
    for _ in range(2 * per_window):
        clock.advance(TICK)
        await _report(apis, sid, clock, 0.010, 10)
        await flows.tick_show(runtime, sid)
        state = await store.adaptive(runtime.redis, sid)
        assert state.rate is not None and state.last_cut_ms is None
        rates.append(state.rate)
    # two windows of fast buyers: doubled twice (the ticks' dt is the test clock's, plus real time)
    assert 3.5 * start <= rates[-1] <= 4.5 * start, rates
    assert all(b > a for a, b in itertools.pairwise(rates)), rates
    # The buyers slow down: cut once, and slow start is over.
    clock.advance(admission.ADAPT_WINDOW_SECONDS)
    await _report(apis, sid, clock, 0.300, 10)
    await flows.tick_show(runtime, sid)
    cut = await store.adaptive(runtime.redis, sid)
    assert cut.last_cut_ms is not None and cut.rate == pytest.approx(rates[-1] * admission.ADAPT_DECREASE)
    clock.advance(admission.ADAPT_WINDOW_SECONDS)
    await _report(apis, sid, clock, 0.010, 10)
    await flows.tick_show(runtime, sid)
    after = (await store.adaptive(runtime.redis, sid)).rate
    assert after is not None and cut.rate is not None
    assert after - cut.rate == pytest.approx(ceiling * admission.ADAPT_INCREASE_SHARE * TICK, rel=0.2)


async def test_no_verdict_without_enough_buyers(
    runtime: Runtime, apis: list[Runtime], clock: OffsetClock
) -> None:
    show = await make_show(runtime, admit_per_second=CEILING, max_active=None, oversubscription=None)
    sid = show["id"]
    await _fans(runtime, show, 50)
    # A few slow buyers (fewer than ADAPT_MIN_SAMPLES in the window) are no verdict: the rate stays.
    await _report(apis[:1], sid, clock, 2.0, admission.ADAPT_MIN_SAMPLES - 1)
    await flows.tick_show(runtime, sid)
    state = await store.adaptive(runtime.redis, sid)
    assert state.rate == CEILING and state.p99_ms is None


async def test_static_rate_when_adaptive_is_off(
    settings: Settings, runtime: Runtime, clock: OffsetClock
) -> None:
    static = settings.model_copy(update={"buyer_p99_target_ms": 0})
    async with open_runtime(static, runtime.database_url, runtime.redis_url, clock=clock) as worker:
        show = await make_show(worker, admit_per_second=CEILING, max_active=None, oversubscription=None)
        sid = show["id"]
        await _fans(worker, show, 200)
        admitted = 0
        started = clock.now().timestamp()
        for _ in range(6):
            await _report([worker], sid, clock, 0.500, 40)  # slow buyers change nothing
            result = await flows.tick_show(worker, sid)
            assert result is not None
            admitted += result.admitted
            clock.advance(TICK)
        # The full configured rate all along (the test clock also runs in real time: a little more).
        elapsed = clock.now().timestamp() - started
        assert int(CEILING * TICK * 6) <= admitted <= CEILING * elapsed + 1, (admitted, elapsed)
        assert (await store.adaptive(worker.redis, sid)).rate is None  # never steered


async def _set_adaptive(runtime: Runtime, show_id: int, on: bool) -> None:
    async with unit_of_work(runtime.sessions) as uow:
        await service.update_settings(runtime, uow.session, show_id, QueueSettingsUpdate(adaptive=on))


async def test_a_static_show_keeps_its_rate_beside_a_steered_one(
    runtime: Runtime, apis: list[Runtime], clock: OffsetClock
) -> None:
    """Two shows on sale on one box under the same slow buyers (p99 300 ms, target 100 ms): the
    adaptive one is cut to its floor, the one whose promoter chose a static rate admits at its
    configured rate all along; switched off mid-sale the steered one returns to its configured rate
    at once, and switched back on the loop starts again from that rate."""
    steered = await make_show(runtime, admit_per_second=CEILING, max_active=None, oversubscription=None)
    static = await make_show(
        runtime, admit_per_second=CEILING, max_active=None, oversubscription=None, adaptive=False
    )
    await asyncio.gather(_fans(runtime, steered, 1500), _fans(runtime, static, 1500))
    admitted = {steered["id"]: 0, static["id"]: 0}
    started = clock.now().timestamp()
    for _ in range(30):
        for show in (steered, static):
            await _report(apis, show["id"], clock, 0.300, 10)
        for show in (steered, static):
            last_tick = clock.now().timestamp()  # the Lua step credits the time since the last one
            result = await flows.tick_show(runtime, show["id"])
            assert result is not None
            admitted[show["id"]] += result.admitted
        clock.advance(TICK)
    elapsed = clock.now().timestamp() - started

    chosen = (await store.adaptive(runtime.redis, steered["id"])).rate
    assert chosen is not None and chosen <= CEILING * admission.ADAPT_DECREASE**4  # 15 s: 5 windows, 5 cuts
    assert (await store.adaptive(runtime.redis, static["id"])).rate is None  # never steered
    # The static show admitted what its configured rate allows (the test clock also runs in real
    # time: a little more); the steered one far less.
    assert int(CEILING * TICK * 30) <= admitted[static["id"]] <= CEILING * elapsed + 1, (admitted, elapsed)
    assert admitted[steered["id"]] < admitted[static["id"]] / 2, admitted

    # The console's live panel says which is which: the static show has no target and no chosen rate.
    panels = {sid: (await admin_service.frame(runtime, sid))["queue"] for sid in admitted}
    assert panels[static["id"]]["adaptive"] is False
    assert panels[static["id"]]["buyer_p99_target_ms"] is None
    assert panels[static["id"]]["adaptive_rate"] is None
    assert panels[steered["id"]]["adaptive"] is True
    assert panels[steered["id"]]["buyer_p99_target_ms"] == 100
    assert panels[steered["id"]]["adaptive_rate"] == pytest.approx(chosen)

    # The promoter switches the steered show to its static rate mid-sale: the loop's state goes and
    # the next ticks admit at the configured rate, slow buyers or not.
    await _set_adaptive(runtime, steered["id"], False)
    got = 0
    for _ in range(4):
        await _report(apis, steered["id"], clock, 0.300, 10)
        result = await flows.tick_show(runtime, steered["id"])
        assert result is not None
        got += result.admitted
        clock.advance(TICK)
    assert (await store.adaptive(runtime.redis, steered["id"])).rate is None
    assert got >= int(CEILING * TICK * 4) - 1, got
    assert got <= CEILING * (clock.now().timestamp() - last_tick) + 1, got

    # Back on: the loop starts from the configured rate (no stale cut), and cuts it once.
    await _set_adaptive(runtime, steered["id"], True)
    await _report(apis, steered["id"], clock, 0.300, 10)
    assert await flows.tick_show(runtime, steered["id"]) is not None
    state = await store.adaptive(runtime.redis, steered["id"])
    assert state.rate == pytest.approx(CEILING * admission.ADAPT_DECREASE)
