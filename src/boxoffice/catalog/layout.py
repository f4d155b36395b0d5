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
    name: str
    rows: int
    seats_per_row: int

    @property
    def seat_count(self) -> int:
        return self.rows * self.seats_per_row


def seat_count(sections: Sequence[Section]) -> int:
    return sum(s.seat_count for s in sections)


def layout_problems(sections: Sequence[Section]) -> list[Problem]:
    """Distinct section names (case-insensitive: "A" and "a" would confuse fans) and the seat cap."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, section in enumerate(sections):
        key = section.name.strip().casefold()
        if key in seen:
            problems.append(
                (("sections", i, "name"), f"duplicate section name (same as sections[{seen[key]}])")
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
        for number in range(1, section.seats_per_row + 1):
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


def is_on_sale(now: datetime, sale_opens_at: datetime, sale_closes_at: datetime | None) -> bool:
    return sale_opens_at <= now and (sale_closes_at is None or now < sale_closes_at)


def like_pattern(text: str) -> str:
    """A case-insensitive substring pattern for ILIKE, with the user's wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
