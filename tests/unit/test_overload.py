"""The shed share: nothing below the lag threshold, MAX_SHARE (never all) at twice it, linear between;
and the lag probe, which runs while requests arrive."""

import asyncio
import time

from boxoffice.http.shedding import MAX_SHARE, PROBE_SECONDS, SHEDDABLE, LoopLag, shed_share


def test_shed_share_ramps_from_threshold_to_twice_it() -> None:
    assert shed_share(0.0, 0.03) == 0.0
    assert shed_share(0.03, 0.03) == 0.0
    assert abs(shed_share(0.045, 0.03) - 0.5 * MAX_SHARE) < 1e-9
    assert shed_share(0.06, 0.03) == MAX_SHARE < 1.0
    assert shed_share(1.0, 0.03) == MAX_SHARE
    assert shed_share(1.0, 0.0) == 0.0  # 0 turns shedding off


def test_only_the_waiting_rooms_own_routes_are_sheddable() -> None:
    assert ("GET", "/api/queue/status") in SHEDDABLE and ("POST", "/api/queue") in SHEDDABLE
    for never in (
        ("POST", "/api/reservations"),
        ("POST", "/api/payments"),
        ("POST", "/api/reservations/token"),
        ("GET", "/api/shows/1/seats"),
        ("GET", "/api/shows/1/queue/serving"),
        ("DELETE", "/api/queue"),
    ):
        assert never not in SHEDDABLE


async def test_the_lag_probe_sleeps_while_no_request_arrives() -> None:
    """An idle process stops waking up 100 times a second; the next request starts the probe."""
    monitor = LoopLag(idle_probes=5)
    monitor.ensure_running()
    assert monitor.running
    for _ in range(20):  # requests keep arriving: the probe keeps running
        await asyncio.sleep(PROBE_SECONDS)
        monitor.ensure_running()
    assert monitor.running
    time.sleep(0.06)  # the loop is late once ...
    await asyncio.sleep(0.001)  # (the probe's overdue wake-up runs first)
    assert monitor.lag > 0.04
    await asyncio.sleep(PROBE_SECONDS * 12)  # ... then no request for more than 5 probes
    assert not monitor.running and monitor.lag == 0.0
    monitor.ensure_running()
    assert monitor.running
