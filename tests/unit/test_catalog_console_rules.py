"""Catalog rules the console relies on: sections given as rows x seats or as row lengths, and the
fields frozen once a show's queue or sale has opened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from boxoffice.catalog import layout

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_section_shapes() -> None:
    assert layout.section_shape(3, 10, None) == (3, 10, [])
    assert layout.section_shape(None, None, [4, 6, 8]) == (3, 8, [])
    assert layout.section_shape(3, 8, [4, 6, 8]) == (3, 8, [])
    _, _, problems = layout.section_shape(2, 5, [4, 6, 8])
    assert problems == [
        (("rows",), "row_lengths has 3 rows, not 2"),
        (("seats_per_row",), "the longest row has 8 seats, not 5"),
    ]
    _, _, problems = layout.section_shape(None, 4, None)
    assert [loc for loc, _ in problems] == [("rows",)]
    ragged = layout.Section("Stalls", 3, 8, (4, 6, 8))
    assert ragged.seat_count == 18
    assert list(layout.seat_positions(ragged))[:5] == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1)]


def test_fields_frozen_once_the_sale_or_its_pre_queue_opened() -> None:
    changed = ["prices", "hold_seconds", "sale_opens_at", "max_seats_per_reservation", "starts_at"]
    later = NOW + timedelta(hours=1)
    assert layout.frozen_problems(changed, now=NOW, sale_opens_at=later, pre_queue_opens_at=None) == []
    frozen = layout.frozen_problems(changed, now=NOW, sale_opens_at=NOW, pre_queue_opens_at=None)
    assert [loc[0] for loc, _ in frozen] == ["prices", "sale_opens_at", "max_seats_per_reservation"]
    assert all(msg.startswith("cannot change: ") for _, msg in frozen)
    lobby_open = layout.frozen_problems(
        ["pre_queue_opens_at"], now=NOW, sale_opens_at=later, pre_queue_opens_at=NOW - timedelta(minutes=1)
    )
    assert lobby_open == [(("pre_queue_opens_at",), "cannot change: the queue has already opened")]
