"""Pure booking rules (house rule 9): no I/O, only values in and decisions out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from boxoffice.catalog.layout import SeatStatus
from boxoffice.kit.clock import iso

__all__ = ["ReservationStatus", "SeatStatus"]


class ReservationStatus(StrEnum):
    HOLD = "TEMP_RESERVED"
    RESERVED = "RESERVED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


HOLD = ReservationStatus.HOLD
RESERVED = ReservationStatus.RESERVED
EXPIRED = ReservationStatus.EXPIRED
CANCELLED = ReservationStatus.CANCELLED


@dataclass(frozen=True, slots=True)
class ShowRules:
    """The part of a show a hold needs (cached in Redis next to the shield marks)."""

    show_id: int
    starts_at: datetime
    sale_opens_at: datetime
    sale_closes_at: datetime | None
    hold_seconds: int
    max_seats: int
    verified_email_required: bool = False


class RuleViolation(Exception):
    """A request the rules refuse; `code` is the stable API code, `status` its HTTP status."""

    def __init__(self, code: str, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status
        self.detail = detail
        self.extra = extra


def check_seat_request(seat_ids: Sequence[int], max_seats: int) -> list[int]:
    """The requested seats as a sorted list; 422 for empty, duplicates or too many."""
    if not seat_ids:
        raise RuleViolation(
            "VALIDATION_ERROR", 422, "seat_ids must name at least one seat", loc=["body", "seat_ids"]
        )
    unique = sorted(set(seat_ids))
    if len(unique) != len(seat_ids):
        dupes = sorted({s for s in seat_ids if seat_ids.count(s) > 1})
        raise RuleViolation(
            "DUPLICATE_SEATS", 422, "seat_ids contains duplicates", loc=["body", "seat_ids"], seat_ids=dupes
        )
    if len(unique) > max_seats:
        raise RuleViolation(
            "TOO_MANY_SEATS",
            422,
            f"At most {max_seats} seats per reservation for this show",
            loc=["body", "seat_ids"],
            max_seats=max_seats,
        )
    return unique


def check_sale_open(show: ShowRules, now: datetime) -> None:
    if now < show.sale_opens_at:
        raise RuleViolation(
            "SALE_CLOSED",
            409,
            "The sale for this show has not opened yet",
            opens_at=iso(show.sale_opens_at),
        )
    if show.sale_closes_at is not None and now >= show.sale_closes_at:
        raise RuleViolation("SALE_CLOSED", 409, "The sale for this show has closed")
    if now >= show.starts_at:
        raise RuleViolation("SALE_CLOSED", 409, "The show has started")


def hold_expires_at(show: ShowRules, now: datetime) -> datetime:
    return now + timedelta(seconds=show.hold_seconds)


def hold_is_live(status: str, expires_at: datetime, now: datetime) -> bool:
    """A hold is dead the instant expires_at passes, whatever the sweep has done yet."""
    return status == HOLD and expires_at > now


def refund_allowed(starts_at: datetime, now: datetime, cutoff_hours: int | None = 24) -> bool:
    """The show's policy: a full refund until `cutoff_hours` before the show (24 by default); none
    after, and none at all when the show allows no refunds (None)."""
    if cutoff_hours is None:
        return False
    return now <= starts_at - timedelta(hours=cutoff_hours)


def taken_seats(requested: Sequence[int], won: Sequence[int]) -> list[int]:
    got = set(won)
    return sorted(s for s in requested if s not in got)


def shield_ttl_ms(show: ShowRules) -> int:
    """Shield marks outlive the hold a little: the mark's own deadline is what the Lua compares."""
    return show.hold_seconds * 1000 + 5000


def clamp_page_size(limit: int | None, default: int = 20, maximum: int = 100) -> int:
    if limit is None:
        return default
    return max(1, min(limit, maximum))


# ---------------------------------------------------------------- best available


@dataclass(frozen=True, slots=True)
class SeatSpot:
    """One seat of a show as best-available sees it. `rank` is the section's place in the venue's
    ranking (lower is better: the order the venue lists its sections in)."""

    id: int
    section: str
    rank: int
    row: int
    number: int
    price: int
    available: bool


def check_quantity(quantity: int, max_seats: int) -> int:
    if quantity < 1:
        raise RuleViolation("VALIDATION_ERROR", 422, "quantity must be at least 1", loc=["body", "quantity"])
    if quantity > max_seats:
        raise RuleViolation(
            "TOO_MANY_SEATS",
            422,
            f"At most {max_seats} seats per reservation for this show",
            loc=["body", "quantity"],
            max_seats=max_seats,
        )
    return quantity


def best_blocks(
    seats: Sequence[SeatSpot],
    quantity: int,
    *,
    section: str | None = None,
    price: int | None = None,
    limit: int = 5,
) -> list[list[int]]:
    """Up to `limit` blocks of `quantity` adjacent available seats in one row, best first.

    A block never leaves a single available seat stranded between it and a taken seat or the end
    of the row (no orphan). Best = the venue's best-ranked section, then the lowest row number,
    then the block whose centre is closest to the middle of the row. Candidates come from distinct
    runs of free seats first, so when one is taken meanwhile the next try is not its neighbour.
    """
    rows: dict[tuple[str, int], list[SeatSpot]] = {}
    for s in seats:
        if section is not None and s.section != section:
            continue
        rows.setdefault((s.section, s.row), []).append(s)
    scored: list[tuple[tuple[int, int, float, int], int, list[int]]] = []
    run_id = 0
    for row_seats in rows.values():
        row_seats.sort(key=lambda s: s.number)
        width = row_seats[-1].number
        middle = (width + 1) / 2
        for run in _free_runs(row_seats, price):
            run_id += 1
            for start in range(len(run) - quantity + 1):
                left, right = start, len(run) - start - quantity
                if left == 1 or right == 1:
                    continue  # would strand one seat
                block = run[start : start + quantity]
                centre = (block[0].number + block[-1].number) / 2
                key = (block[0].rank, block[0].row, abs(centre - middle), block[0].number)
                scored.append((key, run_id, [s.id for s in block]))
    scored.sort(key=lambda item: item[0])
    picked: list[list[int]] = []
    seen_runs: set[int] = set()
    for _, run_no, ids in scored:  # the best block of each run first
        if run_no not in seen_runs:
            seen_runs.add(run_no)
            picked.append(ids)
            if len(picked) == limit:
                return picked
    for _, _, ids in scored:  # then the next ones, if there are too few runs
        if ids not in picked:
            picked.append(ids)
            if len(picked) == limit:
                break
    return picked


def _free_runs(row_seats: Sequence[SeatSpot], price: int | None) -> list[list[SeatSpot]]:
    """Maximal runs of consecutive available seats (seats of another price tier end a run)."""
    runs: list[list[SeatSpot]] = []
    current: list[SeatSpot] = []
    for s in row_seats:
        usable = s.available and (price is None or s.price == price)
        if usable and current and s.number == current[-1].number + 1:
            current.append(s)
        else:
            if current:
                runs.append(current)
            current = [s] if usable else []
    if current:
        runs.append(current)
    return runs
