"""Booking request and response models (extra="forbid", bounded fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from boxoffice.kit.ids import Id
from boxoffice.kit.inputs import RequestModel

SeatId = Id


class HoldRequest(RequestModel):
    """Either `seat_ids` (these seats, all or none) or `quantity` ("best available": that many
    adjacent seats in one row, leaving no single seat stranded, best rows first), optionally
    limited to a `section` or a `price` tier."""

    # The same rule as _one_way, for the OpenAPI: exactly one of the two shapes.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["seat_ids"],
                    "properties": {
                        "seat_ids": {"type": "array"},
                        "quantity": {"type": "null"},
                        "section": {"type": "null"},
                        "price": {"type": "null"},
                    },
                },
                {
                    "required": ["quantity"],
                    "properties": {"quantity": {"type": "integer"}, "seat_ids": {"type": "null"}},
                },
            ]
        }
    )

    show_id: Id
    seat_ids: list[SeatId] | None = Field(
        default=None, min_length=1, max_length=10, description="All of them or none"
    )
    quantity: int | None = Field(default=None, ge=1, le=10, description="Best available: how many seats")
    section: str | None = Field(default=None, min_length=1, max_length=100, description="With quantity")
    price: int | None = Field(default=None, ge=0, le=10**12, description="With quantity: one price tier")

    @model_validator(mode="after")
    def _one_way(self) -> HoldRequest:
        if (self.seat_ids is None) == (self.quantity is None):
            raise PydanticCustomError("seats_or_quantity", "send either seat_ids or quantity")
        if self.seat_ids is not None and (self.section is not None or self.price is not None):
            raise PydanticCustomError("quantity_only", "section and price go with quantity")
        return self


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
    total_price: int = Field(description="Minor units of `currency`")
    currency: str = Field(description="ISO 4217 code of the amounts (the show's)")
    expires_at: datetime


class ReservationOut(BaseModel):
    reservation_id: int
    show_id: int
    status: Literal["TEMP_RESERVED", "RESERVED", "EXPIRED", "CANCELLED"]
    seats: list[SeatOut]
    total_price: int = Field(description="Minor units of `currency`")
    currency: str = Field(description="ISO 4217 code of the amounts (the show's)")
    expires_at: datetime
    created_at: datetime
    confirmed_at: datetime | None
    closed_at: datetime | None


class ReservationPage(BaseModel):
    items: list[ReservationOut]
    next_before: int | None = Field(description="Pass as ?before= for the next (older) page")
