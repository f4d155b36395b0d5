"""Pure catalog rules (house rule 9: no I/O): venue layout limits, price coverage, sale windows.

Every check returns problems as (location, message) pairs so the caller can answer one 422 that
names every offending field, the way request validation does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class SeatStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    HELD = "TEMP_RESERVED"
    RESERVED = "RESERVED"


MAX_SECTIONS = 100
MAX_ROWS = 200
MAX_SEATS_PER_ROW = 200
MAX_VENUE_SEATS = 100_000

Problem = tuple[tuple[str | int, ...], str]


@dataclass(frozen=True, slots=True)
class Section:
    """rows x seats_per_row, or `row_lengths` (seats of each row, front to back) when rows differ."""

    name: str
    rows: int
    seats_per_row: int
    row_lengths: tuple[int, ...] | None = None

    @property
    def seat_count(self) -> int:
        return sum(self.row_lengths) if self.row_lengths else self.rows * self.seats_per_row

    def row_length(self, row: int) -> int:
        return self.row_lengths[row - 1] if self.row_lengths else self.seats_per_row


def section_shape(
    rows: int | None, seats_per_row: int | None, row_lengths: Sequence[int] | None
) -> tuple[int, int, list[Problem]]:
    """(rows, seats_per_row) of a section given either as rows x seats or as row lengths; with row
    lengths, rows and seats_per_row may be left out (they are derived) but must agree when given."""
    problems: list[Problem] = []
    if row_lengths:
        derived_rows, widest = len(row_lengths), max(row_lengths)
        if rows is not None and rows != derived_rows:
            problems.append((("rows",), f"row_lengths has {derived_rows} rows, not {rows}"))
        if seats_per_row is not None and seats_per_row != widest:
            problems.append((("seats_per_row",), f"the longest row has {widest} seats, not {seats_per_row}"))
        return derived_rows, widest, problems
    if rows is None:
        problems.append((("rows",), "rows is required (or give row_lengths)"))
    if seats_per_row is None:
        problems.append((("seats_per_row",), "seats_per_row is required (or give row_lengths)"))
    return rows or 0, seats_per_row or 0, problems


def seat_count(sections: Sequence[Section]) -> int:
    return sum(s.seat_count for s in sections)


def layout_problems(sections: Sequence[Section]) -> list[Problem]:
    """Distinct section names (case-insensitive: "A" and "a" would confuse fans) and the seat cap."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, section in enumerate(sections):
        key = section.name.strip().casefold()
        if key in seen:
            first = sections[seen[key]].name.strip()
            problems.append(
                (("sections", i, "name"), f'duplicate section name: the same name as section "{first}"')
            )
        else:
            seen[key] = i
    total = seat_count(sections)
    if total > MAX_VENUE_SEATS:
        problems.append(
            (("sections",), f"a venue has at most {MAX_VENUE_SEATS} seats, these sections make {total}")
        )
    return problems


def seat_positions(section: Section) -> Iterator[tuple[int, int]]:
    """(row, number) of every seat of a section, in the order seats are generated (and ids ascend)."""
    for row in range(1, section.rows + 1):
        for number in range(1, section.row_length(row) + 1):
            yield row, number


def price_problems(section_names: Sequence[str], prices: Mapping[str, int]) -> tuple[list[str], list[str]]:
    """-> (sections without a price, priced names that are not sections of the venue)."""
    names = set(section_names)
    missing = [n for n in section_names if n not in prices]
    unknown = sorted(n for n in prices if n not in names)
    return missing, unknown


def window_problems(
    *,
    starts_at: datetime,
    sale_opens_at: datetime,
    sale_closes_at: datetime | None,
    pre_queue_opens_at: datetime | None,
) -> list[Problem]:
    """The sale window of a show: opens before the show starts, closes after it opens, and the
    pre-queue (randomized lobby) opens no later than the sale."""
    problems: list[Problem] = []
    if sale_opens_at >= starts_at:
        problems.append((("sale_opens_at",), "the sale must open before the show starts"))
    if sale_closes_at is not None:
        if sale_closes_at <= sale_opens_at:
            problems.append((("sale_closes_at",), "the sale must close after it opens"))
        if sale_closes_at > starts_at:
            problems.append((("sale_closes_at",), "the sale must close no later than the show starts"))
    if pre_queue_opens_at is not None and pre_queue_opens_at > sale_opens_at:
        problems.append((("pre_queue_opens_at",), "the pre-queue must open no later than the sale"))
    return problems


# What fans have seen and bought under cannot change once the queue (pre-queue or sale) has opened.
FROZEN_ONCE_STARTED = ("sale_opens_at", "pre_queue_opens_at", "prices", "max_seats_per_reservation")
_FROZEN_REASONS = {
    "sale_opens_at": "the sale has already opened",
    "pre_queue_opens_at": "the queue has already opened",
    "prices": "seats have been on sale at these prices",
    "max_seats_per_reservation": "fans have already bought under this limit",
}


def sale_started(now: datetime, sale_opens_at: datetime, pre_queue_opens_at: datetime | None) -> bool:
    return now >= (pre_queue_opens_at or sale_opens_at)  # the pre-queue never opens after the sale


def frozen_problems(
    changed: Sequence[str], *, now: datetime, sale_opens_at: datetime, pre_queue_opens_at: datetime | None
) -> list[Problem]:
    """The changed fields that may no longer change because the sale (or its pre-queue) started."""
    if not sale_started(now, sale_opens_at, pre_queue_opens_at):
        return []
    return [((f,), f"cannot change: {_FROZEN_REASONS[f]}") for f in changed if f in FROZEN_ONCE_STARTED]


def is_on_sale(now: datetime, sale_opens_at: datetime, sale_closes_at: datetime | None) -> bool:
    return sale_opens_at <= now and (sale_closes_at is None or now < sale_closes_at)


def like_pattern(text: str) -> str:
    """A case-insensitive substring pattern for ILIKE, with the user's wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
