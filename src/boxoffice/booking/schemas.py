"""Booking request and response models (extra="forbid", bounded fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from boxoffice.ids import Id
from boxoffice.inputs import RequestModel

SeatId = Id


class HoldRequest(RequestModel):
    show_id: Id
    seat_ids: list[SeatId] = Field(min_length=1, max_length=10, description="All of them or none")


class SeatOut(BaseModel):
    id: int
    section: str
    row: int
    number: int
    price: int = Field(description="Minor units")


class HoldOut(BaseModel):
    reservation_id: int
    show_id: int
    status: Literal["TEMP_RESERVED"]
    seats: list[SeatOut]
    total_price: int
    expires_at: datetime


class ReservationOut(BaseModel):
    reservation_id: int
    show_id: int
    status: Literal["TEMP_RESERVED", "RESERVED", "EXPIRED", "CANCELLED"]
    seats: list[SeatOut]
    total_price: int
    expires_at: datetime
    created_at: datetime
    confirmed_at: datetime | None
    closed_at: datetime | None


class ReservationPage(BaseModel):
    items: list[ReservationOut]
    next_before: int | None = Field(description="Pass as ?before= for the next (older) page")
