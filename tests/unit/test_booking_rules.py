"""The pure booking rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from boxoffice.booking import rules
from boxoffice.booking.rules import RuleViolation, ShowRules

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


def show(**kw: object) -> ShowRules:
    base: dict[str, object] = {
        "show_id": 1,
        "starts_at": NOW + timedelta(days=10),
        "sale_opens_at": NOW - timedelta(hours=1),
        "sale_closes_at": None,
        "hold_seconds": 300,
        "max_seats": 4,
    }
    base.update(kw)
    return ShowRules(**base)  # type: ignore[arg-type]


def test_seat_request_sorted_and_bounded() -> None:
    assert rules.check_seat_request([5, 2, 9], 4) == [2, 5, 9]
    with pytest.raises(RuleViolation) as err:
        rules.check_seat_request([], 4)
    assert err.value.status == 422
    with pytest.raises(RuleViolation) as err:
        rules.check_seat_request([3, 1, 3], 4)
    assert err.value.code == "DUPLICATE_SEATS" and err.value.extra["seat_ids"] == [3]
    with pytest.raises(RuleViolation) as err:
        rules.check_seat_request([1, 2, 3], 2)
    assert err.value.code == "TOO_MANY_SEATS" and err.value.extra["loc"] == ["body", "seat_ids"]


def test_sale_window() -> None:
    rules.check_sale_open(show(), NOW)
    for s in (
        show(sale_opens_at=NOW + timedelta(seconds=1)),
        show(sale_closes_at=NOW),
        show(starts_at=NOW),
    ):
        with pytest.raises(RuleViolation) as err:
            rules.check_sale_open(s, NOW)
        assert err.value.code == "SALE_CLOSED" and err.value.status == 409


def test_hold_lifetime() -> None:
    exp = rules.hold_expires_at(show(hold_seconds=60), NOW)
    assert exp == NOW + timedelta(seconds=60)
    assert rules.hold_is_live("TEMP_RESERVED", exp, NOW)
    assert not rules.hold_is_live("TEMP_RESERVED", exp, exp)  # dead the instant it expires
    assert not rules.hold_is_live("CANCELLED", exp, NOW)
    assert rules.shield_ttl_ms(show(hold_seconds=60)) > 60_000


def test_refund_window_is_24h_before_the_show() -> None:
    starts = NOW + timedelta(hours=24)
    assert rules.refund_allowed(starts, NOW)
    assert not rules.refund_allowed(starts, NOW + timedelta(seconds=1))


def test_taken_seats_and_page_size() -> None:
    assert rules.taken_seats([1, 2, 3], [2]) == [1, 3]
    assert rules.clamp_page_size(None) == 20
    assert rules.clamp_page_size(0) == 1
    assert rules.clamp_page_size(1000) == 100
