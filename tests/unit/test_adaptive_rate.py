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
    assert step(None, 150.0) == (pytest.approx(100 * a.ADAPT_DECREASE), 10_000)
    # within the window of the last cut: held, not cut again
    assert step(70.0, 150.0, last_cut_ms=9_000) == (70.0, 9_000)
    later = 9_000 + a.ADAPT_WINDOW_SECONDS * 1000
    assert step(70.0, 150.0, last_cut_ms=9_000, now_ms=later) == (pytest.approx(49.0), later)
    assert step(5.5, 150.0)[0] == pytest.approx(a.adapt_floor(100.0)) == 5.0


def test_under_target_or_no_verdict_adds_up_to_the_ceiling() -> None:
    inc = 100 * a.ADAPT_INCREASE_SHARE * 0.5
    assert step(40.0, 20.0)[0] == pytest.approx(40.0 + inc)
    assert step(40.0, None)[0] == pytest.approx(40.0 + inc)
    assert step(99.0, 20.0)[0] == 100.0
    assert step(250.0, 20.0)[0] == 100.0  # the configured rate was lowered: at most it


def test_an_unconstrained_rate_follows_the_configured_one() -> None:
    assert step(50.0, None, previous_ceiling=50.0)[0] == 100.0  # the promoter raised 50 -> 100
    assert step(30.0, None, previous_ceiling=50.0)[0] == pytest.approx(30.0 + 100 * 0.05 * 0.5)
