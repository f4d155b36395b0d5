"""Catalog shapes: the `Show` value other domains read, and the API request/response models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Show:
    """A show's rules as the waiting room and booking read them (one row of `shows`)."""

    id: int
    concert_id: int
    starts_at: datetime
    sale_opens_at: datetime
    sale_closes_at: datetime | None
    pre_queue_opens_at: datetime | None
    hold_seconds: int
    max_seats_per_reservation: int
    queue_admit_per_second: float
    queue_max_active: int | None
    queue_token_ttl_seconds: int
    queue_oversubscription: float | None
    queue_paused: bool

    def on_sale(self, now: datetime) -> bool:
        return self.sale_opens_at <= now and (self.sale_closes_at is None or now < self.sale_closes_at)
