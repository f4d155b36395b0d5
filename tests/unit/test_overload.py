"""The shed share: nothing below the lag threshold, MAX_SHARE (never all) at twice it, linear between."""

from boxoffice.http.shedding import MAX_SHARE, SHEDDABLE, shed_share


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
