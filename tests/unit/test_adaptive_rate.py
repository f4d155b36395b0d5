"""The adaptive admission rule (waiting_room/admission.py adaptive_rate): AIMD within the ceiling."""

from __future__ import annotations

import pytest

from boxoffice.waiting_room import admission as a


def step(current: float | None, p99: float | None, **kw: object) -> tuple[float, int | None]:
    args: dict[str, object] = {
        "ceiling": 100.0,
        "p99_ms": p99,
        "target_ms": 100.0,
        "dt_seconds": 0.5,
        "now_ms": 10_000,
        "last_cut_ms": None,
    }
    args.update(kw)
    return a.adaptive_rate(current, **args)  # type: ignore[arg-type]


def test_off_is_the_static_rate() -> None:
    assert step(30.0, 500.0, target_ms=0) == (100.0, None)


def test_over_target_cuts_multiplicatively_once_per_window_down_to_the_floor() -> None:
    assert step(None, 150.0) == (pytest.approx(a.ADAPT_START_RATE * a.ADAPT_DECREASE), 10_000)
    assert step(100.0, 150.0) == (pytest.approx(100 * a.ADAPT_DECREASE), 10_000)
    # within the window of the last cut: held, not cut again
    assert step(70.0, 150.0, last_cut_ms=9_000) == (70.0, 9_000)
    later = 9_000 + a.ADAPT_WINDOW_SECONDS * 1000
    assert step(70.0, 150.0, last_cut_ms=9_000, now_ms=later) == (pytest.approx(49.0), later)
    assert step(5.5, 150.0)[0] == pytest.approx(a.adapt_floor(100.0)) == 5.0


def test_after_a_cut_under_target_or_no_verdict_adds_up_to_the_ceiling() -> None:
    inc = 100 * a.ADAPT_INCREASE_SHARE * 0.5
    cut = {"last_cut_ms": 1_000}
    assert step(40.0, 20.0, **cut) == (pytest.approx(40.0 + inc), 1_000)
    assert step(40.0, None, **cut)[0] == pytest.approx(40.0 + inc)
    assert step(99.0, 20.0, **cut)[0] == 100.0
    assert step(250.0, 20.0, **cut)[0] == 100.0  # the configured rate was lowered: at most it


def test_a_sale_starts_slow_and_doubles_every_window_until_the_first_cut() -> None:
    ceiling = 1_500.0
    rate, cut = step(None, None, ceiling=ceiling, dt_seconds=0.0)
    assert (rate, cut) == (a.ADAPT_START_RATE, None)  # not the configured rate
    for verdict in (None, 20.0, 100.0):  # no verdict, under and at the target: slow start goes on
        grown, cut = step(rate, verdict, ceiling=ceiling, dt_seconds=a.ADAPT_WINDOW_SECONDS)
        assert (grown, cut) == (pytest.approx(2 * rate), None)
    half = step(rate, 20.0, ceiling=ceiling, dt_seconds=a.ADAPT_WINDOW_SECONDS / 2)[0]
    assert half == pytest.approx(rate * 2**0.5)  # per tick: the window's doubling spread evenly
    assert step(1_200.0, 20.0, ceiling=ceiling, dt_seconds=3.0)[0] == ceiling  # never past it
    # Over the target: the first cut ends slow start; from then on the increase is additive.
    cut_rate, cut = step(800.0, 150.0, ceiling=ceiling)
    assert (cut_rate, cut) == (pytest.approx(800 * a.ADAPT_DECREASE), 10_000)
    after = step(cut_rate, 20.0, ceiling=ceiling, last_cut_ms=cut, now_ms=20_000)[0]
    assert after == pytest.approx(cut_rate + ceiling * a.ADAPT_INCREASE_SHARE * 0.5)
    # A show configured below the start rate starts at its configured rate.
    assert step(None, None, ceiling=20.0, dt_seconds=0.0)[0] == 20.0


def test_the_floor_is_5_percent_of_the_ceiling_at_most_the_start_rate() -> None:
    assert a.adapt_floor(100.0) == 5.0
    assert a.adapt_floor(5_000.0) == a.ADAPT_START_RATE  # not 250: a cut never ends above the start
    assert a.adapt_floor(10.0) == 1.0 and a.adapt_floor(0.5) == 0.5
    assert step(30.0, 150.0, ceiling=5_000.0)[0] == a.ADAPT_START_RATE  # 30 * 0.7 = 21: the floor


def test_no_growth_unless_fans_wait_behind_the_rate() -> None:
    assert step(40.0, 20.0, held_back=False) == (40.0, None)  # slow start holds
    assert step(40.0, None, held_back=False, last_cut_ms=1_000) == (40.0, 1_000)  # AIMD holds
    # a verdict over the target still cuts
    assert step(40.0, 150.0, held_back=False)[0] == pytest.approx(40.0 * a.ADAPT_DECREASE)
    assert step(None, None, held_back=False, dt_seconds=0.0)[0] == a.ADAPT_START_RATE


def test_an_unconstrained_rate_follows_the_configured_one() -> None:
    assert step(50.0, None, previous_ceiling=50.0)[0] == 100.0  # the promoter raised 50 -> 100
    assert step(30.0, None, previous_ceiling=50.0, last_cut_ms=1_000)[0] == pytest.approx(
        30.0 + 100 * 0.05 * 0.5
    )
