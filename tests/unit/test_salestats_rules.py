"""Pure rules of the sale statistics: latency buckets and percentiles, the time windows of the
range selector, and the chart series built from per-second points."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from boxoffice.salestats import rules


def test_buckets_are_log_spaced_and_bounded() -> None:
    assert rules.bucket(0) == 0 and rules.bucket(0.001) == 0
    assert rules.bucket(0.0011) == 1
    assert rules.bucket(3600) == rules.MAX_BUCKET  # everything slower lands in the last bucket
    assert rules.bucket(0.1) < rules.bucket(0.2) < rules.bucket(1.0)


@given(st.floats(min_value=0.0011, max_value=1000.0))
def test_a_bucket_bound_is_within_20_percent_above_the_latency(seconds: float) -> None:
    ms = seconds * 1000
    bound = rules.bucket_ms(rules.bucket(seconds))
    assert ms <= bound * (1 + 1e-9) and bound <= ms * rules.GROWTH * (1 + 1e-9)


def test_percentiles_of_a_histogram() -> None:
    assert rules.percentile({}, 0.5) is None
    hist = {rules.bucket(0.010): 98, rules.bucket(0.500): 2}
    assert rules.percentile(hist, 0.5) == round(rules.bucket_ms(rules.bucket(0.010)), 1)
    assert rules.percentile(hist, 0.99) == round(rules.bucket_ms(rules.bucket(0.500)), 1)
    assert 500 <= rules.percentile(hist, 0.99) < 600  # type: ignore[operator]


def test_windows_of_the_range_selector() -> None:
    now = 1_800_000_000
    five = rules.window("5m", now, now - 10_000)
    assert (five.start, five.end, five.step, five.tier) == (now - 299, now + 1, 1, "s")
    hour = rules.window("1h", now, now - 10_000)
    assert hour.tier == "s" and hour.step == 5 and hour.start % 5 == 0 and hour.end == now + 1
    assert math.ceil((hour.end - hour.start) / hour.step) <= rules.MAX_POINTS + 1
    young = rules.window("sale", now, now - 30)  # a sale a few seconds old still shows a minute
    assert young.step == 1 and young.end - young.start >= 60
    day = rules.window("sale", now, now - 86_400)
    assert day.tier == "m" and day.step % 60 == 0 and (day.end - day.start) / day.step <= rules.MAX_POINTS + 1


def test_series_sum_counters_per_step_and_take_percentiles() -> None:
    points = {
        100: {"w": 3, "r": 1, f"h{rules.bucket(0.02)}": 4},
        101: {"w": 1, "ps": 2, f"p{rules.bucket(0.3)}": 2},
        105: {"x": 5},
    }
    per_second = rules.series(points, rules.Window(start=100, end=106, step=1, tier="s"))
    assert per_second["t"] == [100, 101, 102, 103, 104, 105]
    assert per_second["holds_won"] == [3, 1, 0, 0, 0, 0]
    assert per_second["holds_expired"][-1] == 5
    assert per_second["hold_p50"][0] == round(rules.bucket_ms(rules.bucket(0.02)), 1)
    assert per_second["hold_p50"][1] is None and per_second["payment_p99"][1] is not None
    coarse = rules.series(points, rules.Window(start=100, end=106, step=3, tier="s"))
    assert coarse["t"] == [100, 103]
    assert coarse["holds_won"] == [round(4 / 3, 3), 0]  # per second over the step
    assert coarse["holds_expired"] == [0, round(5 / 3, 3)]
    assert rules.merge(points)["w"] == 4
    assert rules.histogram({"h3": 1, "h10": 2, "hx": 9, "p3": 4}, "h") == {3: 1, 10: 2}
