"""Payment statuses and methods (pure values; the SQL spells the same strings)."""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class PaymentMethod(StrEnum):
    BALANCE = "BALANCE"
    CARD = "CARD"
