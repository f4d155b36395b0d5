"""The admission rule that runs is the one tested: hypothesis drives the Lua admission step
(waiting_room/store.py `_TICK`, on real Redis) through random sales, and every tick must admit
exactly what the rule says — k = min(floor(credit), cap - active), credit earned at the configured
rate and capped at one second's worth, nothing while paused, in ticket order — and move the
measured rate as the time-weighted EWMA says. The reference below is the rule, written once as the
spec; there is no second copy of it in the product."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boxoffice.runtime import Runtime
from boxoffice.waiting_room import admission, store
from boxoffice.waiting_room.flows import seal_pre_queue

DEFAULT_DT = 0.5
_show_ids = itertools.count(9_000_000)


@dataclass
class Rule:
    """The admission rule, tick by tick (what the Lua must do)."""

    rate_cfg: float
    cap: int | None
    waiting: int
    credit: float = 0.0
    last_ms: int | None = None
    active: int = 0
    serving: int = 0
    rate: float | None = None
    admitted_order: list[int] = field(default_factory=list)

    def tick(self, now_ms: int, paused: bool) -> int:
        dt = DEFAULT_DT if self.last_ms is None else max(0.0, (now_ms - self.last_ms) / 1000)
        self.last_ms = now_ms if self.last_ms is None else max(self.last_ms, now_ms)
        credit = 0.0 if paused else self.credit + self.rate_cfg * dt
        credit = min(credit, max(1.0, self.rate_cfg * admission.MAX_CREDIT_SECONDS))
        k = math.floor(credit)
        if self.cap is not None:
            k = min(k, self.cap - self.active)
        k = max(0, k)
        start, had_waiters = self.serving, self.waiting > self.serving
        admitted = min(k, self.waiting - self.serving)
        self.serving += admitted
        self.active += admitted
        self.admitted_order += list(range(start + 1, self.serving + 1))
        self.credit = float(f"{credit - admitted:.6f}")
        if had_waiters and not paused and dt > 0 and (self.serving < self.waiting or admitted >= k):
            sample = (self.serving - start) / dt
            moved = (
                sample
                if self.rate is None
                else self.rate + (1 - math.exp(-dt / admission.RATE_TAU_SECONDS)) * (sample - self.rate)
            )
            self.rate = float(f"{moved:.6f}")
        return admitted


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rate_cfg=st.sampled_from([0.5, 1.0, 2.5, 7.0, 40.0]),
    cap=st.one_of(st.none(), st.integers(0, 12)),
    waiting=st.integers(0, 30),
    steps=st.lists(st.tuples(st.integers(0, 4000), st.booleans()), min_size=1, max_size=12),
)
async def test_the_lua_step_admits_what_the_rule_says(
    runtime: Runtime, rate_cfg: float, cap: int | None, waiting: int, steps: list[tuple[int, bool]]
) -> None:
    show_id = next(_show_ids)
    now_ms = 1_700_000_000_000
    users = [show_id * 100 + i for i in range(1, waiting + 1)]  # ticket i goes to users[i - 1]
    for user_id in users:
        await store.join(runtime.hot_redis, show_id, user_id, now_ms, pre_queue=False, seed="")
    await seal_pre_queue(runtime, show_id)
    rule = Rule(rate_cfg=rate_cfg, cap=cap, waiting=waiting)
    admitted_users: list[int] = []
    for dt_ms, paused in steps:
        now_ms += dt_ms
        result = await store.tick(
            runtime.redis,
            show_id,
            now_ms=now_ms,
            admit_per_second=rate_cfg,
            cap=cap,
            stale_ms=10**9,
            lease_ms=10**9,
            max_scan=admission.MAX_SCAN_PER_TICK,
            tau_seconds=admission.RATE_TAU_SECONDS,
            paused=paused,
            max_credit_seconds=admission.MAX_CREDIT_SECONDS,
            default_dt_seconds=DEFAULT_DT,
            inventory_cap=None,
        )
        expected = rule.tick(now_ms, paused)
        assert result.admitted == expected
        assert (result.serving, result.active) == (rule.serving, rule.active)
        if rule.rate is None:
            assert result.rate is None
        else:
            assert result.rate is not None and math.isclose(result.rate, rule.rate, abs_tol=2e-6)
        credit = await runtime.redis.hget(store.keys(show_id).meta, "credit")  # type: ignore[misc]
        assert math.isclose(float(credit), rule.credit, abs_tol=2e-6)
        admitted_users += result.admitted_users
    assert admitted_users == [users[t - 1] for t in rule.admitted_order]
