"""Best available (booking/rules.py): adjacent seats in one row, no orphan, best rows first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from boxoffice.booking.rules import RuleViolation, SeatSpot, best_blocks, check_quantity


def venue(rows: dict[tuple[str, int], str], ranks: dict[str, int] | None = None) -> list[SeatSpot]:
    """rows: (section, row) -> a string of seats, '.' free, 'x' taken; seat ids are 1000*row + number."""
    seats = []
    for (section, row), pattern in rows.items():
        for number, ch in enumerate(pattern, start=1):
            seat_id = (ranks or {}).get(section, 0) * 100_000 + row * 1000 + number
            seats.append(
                SeatSpot(seat_id, section, (ranks or {}).get(section, 0), row, number, 100, ch == ".")
            )
    return seats


def numbers(ids: list[int]) -> list[int]:
    return [i % 1000 for i in ids]


def test_lowest_row_first_then_closest_to_the_middle() -> None:
    seats = venue({("A", 1): "xxxxxxxxxx", ("A", 2): "..........", ("A", 3): ".........."})
    best = best_blocks(seats, 2, limit=3)
    assert [b[0] // 1000 for b in best] == [2, 3, 2]  # row 2's best, row 3's best, then row 2 again
    assert numbers(best[0]) == [5, 6]  # the middle of a 10-seat row


def test_never_strands_a_single_seat() -> None:
    # Free run of 3 between taken seats: 2 seats would leave one alone either way.
    assert best_blocks(venue({("A", 1): "x...x"}), 2) == []
    # A run of 4: only the two ends leave no orphan (both sides 0 or 2).
    found = best_blocks(venue({("A", 1): "x....x"}), 2, limit=10)
    assert sorted(numbers(b) for b in found) == [[2, 3], [4, 5]]
    # An exact fit is always fine.
    assert numbers(best_blocks(venue({("A", 1): "x..x"}), 2)[0]) == [2, 3]


def test_section_rank_and_section_filter() -> None:
    seats = venue({("VIP", 5): "......", ("Floor", 1): "......"}, ranks={"VIP": 0, "Floor": 1})
    assert best_blocks(seats, 2)[0][0] // 100_000 == 0  # VIP ranks first even in a worse row
    only_floor = best_blocks(seats, 2, section="Floor")
    assert only_floor and all(i // 100_000 == 1 for b in only_floor for i in b)


def test_price_tier_and_distinct_runs_first() -> None:
    seats = [SeatSpot(i, "A", 0, 1, i, 200 if i <= 4 else 100, True) for i in range(1, 9)]
    assert numbers(best_blocks(seats, 2, price=100)[0]) in ([5, 6], [7, 8], [6, 7])
    assert all(s >= 5 for b in best_blocks(seats, 2, price=100, limit=5) for s in numbers(b))
    runs = venue({("A", 1): "....x....x...."})
    blocks = best_blocks(runs, 4, limit=3)
    assert len({b[0] // 1 for b in blocks}) == 3 and len(blocks) == 3  # one block from each run


def test_quantity_limits() -> None:
    assert check_quantity(2, 4) == 2
    for bad in (0, 5):
        try:
            check_quantity(bad, 4)
        except RuleViolation as err:
            assert err.status == 422
        else:
            raise AssertionError("accepted a bad quantity")


@given(
    pattern=st.lists(st.booleans(), min_size=1, max_size=30),
    quantity=st.integers(min_value=1, max_value=6),
)
def test_every_block_is_adjacent_free_in_one_row_and_strands_no_seat(
    pattern: list[bool], quantity: int
) -> None:
    seats = [SeatSpot(n, "A", 0, 1, n, 100, free) for n, free in enumerate(pattern, start=1)]
    free = {s.number for s in seats if s.available}
    for block in best_blocks(seats, quantity, limit=50):
        assert len(block) == quantity and all(n in free for n in block)
        assert block == list(range(block[0], block[0] + quantity))
        after = free - set(block)
        for n in after:  # no free seat left with no free neighbour... unless it was alone already
            alone = n - 1 not in after and n + 1 not in after
            was_alone = n - 1 not in free and n + 1 not in free
            assert not alone or was_alone
