"""Pure catalog rules (layout.py) and the seat-map encoding (cache.py's pure helpers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from boxoffice.catalog import cache, layout
from boxoffice.catalog.layout import Section

T0 = datetime(2030, 5, 1, 20, 0, tzinfo=UTC)


def test_seat_count_and_positions() -> None:
    sections = [Section("A", 2, 3), Section("B", 1, 4)]
    assert layout.seat_count(sections) == 10
    assert list(layout.seat_positions(sections[0])) == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]


@given(rows=st.integers(1, 30), per_row=st.integers(1, 30))
def test_positions_are_unique_and_complete(rows: int, per_row: int) -> None:
    positions = list(layout.seat_positions(Section("S", rows, per_row)))
    assert len(positions) == len(set(positions)) == rows * per_row
    assert all(1 <= r <= rows and 1 <= n <= per_row for r, n in positions)


def test_layout_problems() -> None:
    assert layout.layout_problems([Section("A", 1, 1), Section("B", 1, 1)]) == []
    problems = layout.layout_problems([Section("A", 1, 1), Section("B", 1, 1), Section(" a", 1, 1)])
    assert problems == [(("sections", 2, "name"), 'duplicate section name: the same name as section "A"')]
    too_big = [Section(f"S{i}", 200, 200) for i in range(3)]
    assert [loc for loc, _ in layout.layout_problems(too_big)] == [("sections",)]
    exactly = [Section("A", 200, 200), Section("B", 200, 200), Section("C", 100, 200)]
    assert layout.seat_count(exactly) == layout.MAX_VENUE_SEATS
    assert layout.layout_problems(exactly) == []


def test_price_problems() -> None:
    missing, unknown = layout.price_problems(["VIP", "Floor", "Balcony"], {"VIP": 1, "Pit": 2})
    assert missing == ["Floor", "Balcony"] and unknown == ["Pit"]
    assert layout.price_problems(["A"], {"A": 0}) == ([], [])


def test_window_problems() -> None:
    ok = layout.window_problems(
        starts_at=T0,
        sale_opens_at=T0 - timedelta(days=7),
        sale_closes_at=T0,
        pre_queue_opens_at=T0 - timedelta(days=8),
    )
    assert ok == []

    def fields(**kw: datetime | None) -> list[str]:
        args: dict[str, datetime | None] = {
            "starts_at": T0,
            "sale_opens_at": T0 - timedelta(days=1),
            "sale_closes_at": None,
            "pre_queue_opens_at": None,
        }
        args.update(kw)
        return [str(loc[0]) for loc, _ in layout.window_problems(**args)]  # type: ignore[arg-type]

    assert fields(sale_opens_at=T0) == ["sale_opens_at"]
    assert fields(sale_closes_at=T0 - timedelta(days=1)) == ["sale_closes_at"]
    assert fields(sale_closes_at=T0 + timedelta(seconds=1)) == ["sale_closes_at"]
    assert fields(pre_queue_opens_at=T0 - timedelta(hours=1)) == ["pre_queue_opens_at"]


def test_is_on_sale() -> None:
    opens, closes = T0, T0 + timedelta(hours=1)
    assert not layout.is_on_sale(opens - timedelta(seconds=1), opens, closes)
    assert layout.is_on_sale(opens, opens, closes)
    assert not layout.is_on_sale(closes, opens, closes)
    assert layout.is_on_sale(opens + timedelta(days=999), opens, None)


def test_like_pattern_escapes_wildcards() -> None:
    assert layout.like_pattern("100%_a\\b") == "%100\\%\\_a\\\\b%"


# ---- the seat-map encoding ------------------------------------------------------------------------


def _rows(ids: list[int]) -> list[cache.SeatRow]:
    statuses = ["AVAILABLE", "TEMP_RESERVED", "RESERVED"]
    return [cache.SeatRow(i, 'Sec "1"', 1, n + 1, 100 * (n + 1), statuses[n % 3]) for n, i in enumerate(ids)]


def test_build_and_render_round_trip() -> None:
    rows = _rows([10, 11, 12, 13])
    built = cache.build_seat_map(rows)
    assert built.base == 10 and built.status == b"ATRA"
    data = json.loads(cache.render(7, 3, built.layout, built.status))
    assert data["show_id"] == 7 and data["version"] == 3
    assert data["seats"] == [
        {
            "id": r.id,
            "section": r.section,
            "row": r.row,
            "number": r.number,
            "price": r.price,
            "status": r.status,
        }
        for r in rows
    ]
    only = json.loads(cache.render(7, 3, built.layout, built.status, "AVAILABLE"))
    assert [s["id"] for s in only["seats"]] == [10, 13]


def test_gaps_in_ids_belong_to_no_seat() -> None:
    built = cache.build_seat_map(_rows([5, 8, 9]))
    assert built.status == b"A--TR"
    data = json.loads(cache.render(1, 0, built.layout, built.status))
    assert [s["id"] for s in data["seats"]] == [5, 8, 9]
    assert cache.status_string(5, 5, [(5, "RESERVED"), (9, "AVAILABLE")]) == b"R---A"


def test_empty_map() -> None:
    built = cache.build_seat_map([])
    assert json.loads(cache.render(1, 0, built.layout, built.status)) == {
        "show_id": 1,
        "version": 0,
        "seats": [],
    }


@given(st.lists(st.integers(1, 500), min_size=1, max_size=60, unique=True))
def test_render_is_valid_json_for_any_ids(ids: list[int]) -> None:
    rows = _rows(sorted(ids))
    built = cache.build_seat_map(rows)
    data = json.loads(cache.render(1, 1, built.layout, built.status))
    assert [s["id"] for s in data["seats"]] == sorted(ids)
