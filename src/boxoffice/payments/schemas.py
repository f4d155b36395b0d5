"""Payment request and response models (extra="forbid", bounded fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from boxoffice.kit.ids import Id
from boxoffice.kit.inputs import RequestModel


class PaymentRequest(RequestModel):
    reservation_id: Id
    method: Literal["BALANCE", "CARD"]
    card_number: str | None = Field(
        default=None,
        pattern=r"^[0-9]{12,19}$",
        description="CARD: the (test) card number, handed to the provider and never stored; its "
        "answer's card fingerprint is kept (the console flags accounts paying with one card)",
    )


class PaymentOut(BaseModel):
    payment_id: int
    reservation_id: int
    amount: int = Field(description="Minor units of `currency`")
    currency: str = Field(description="ISO 4217 code of the amount (the show's)")
    method: Literal["BALANCE", "CARD"]
    status: Literal["PENDING", "SUCCEEDED", "FAILED", "REFUNDED"]
    reservation_status: str | None = None
    provider_reference: str | None
    failure_code: str | None
    created_at: datetime
    settled_at: datetime | None
