"""Admin API models: the dashboard frame and snapshot, fans and their orders, the audit."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from boxoffice.kit.inputs import RequestModel

Range = Literal["5m", "1h", "sale"]


class SeatCounts(BaseModel):
    total: int
    sold: int = Field(description="RESERVED seats")
    held: int = Field(description="TEMP_RESERVED seats (live holds; dead ones until the sweep)")
    available: int


class SalesTotals(BaseModel):
    orders: int = Field(description="Paid reservations")
    tickets: int
    revenue: int = Field(description="Sum of paid reservations, integer minor units of the frame's currency")
    live_holds: int


class QueueNumbers(BaseModel):
    paused: bool
    admit_per_second: float
    max_active: int | None
    waiting: int
    active: int
    admitted_total: int
    admission_rate: float | None = Field(description="Measured (EWMA) admissions per second")
    adaptive: bool = Field(
        default=True, description="The show's setting: adaptive admission steers its rate (false: static)"
    )
    buyer_p99_target_ms: float | None = Field(
        default=None, description="Adaptive admission's buyers' p99 target (null: static rate)"
    )
    buyer_p99_ms: float | None = Field(default=None, description="The buyers' p99 the loop last measured")
    adaptive_rate: float | None = Field(default=None, description="The admission rate the loop chose")
    eta_last_seconds: int | None = Field(description="When the last fan in line gets in at that rate")
    serving: int
    next_ticket: int


class Rates(BaseModel):
    """Per second, averaged over the last 10 complete seconds."""

    holds_won: float
    holds_refused: float
    holds_expired: float
    payments_succeeded: float
    payments_failed: float
    admitted: float


class Latency(BaseModel):
    """Milliseconds over the last 60 s (bucketed: within 10 %); null when nothing happened."""

    hold_p50: float | None
    hold_p99: float | None
    payment_p50: float | None
    payment_p99: float | None


class Heat(BaseModel):
    base: int = Field(description="Seat id of the first letter")
    status: str = Field(description="One letter per seat in id order: A available, T held, R sold")


class DashboardFrame(BaseModel):
    show_id: int
    at: datetime
    on_sale: bool
    currency: str = Field(description="ISO 4217 code of the show's amounts (revenue)")
    seats: SeatCounts
    sales: SalesTotals
    queue: QueueNumbers
    rates: Rates
    latency: Latency
    recent: dict[str, list[float | None]] = Field(
        description="The last seconds' points (same columns as `series`): merge them by `t`"
    )
    heat: Heat | None = Field(description="In the stream only when the seats changed since the last frame")


class DashboardSnapshot(DashboardFrame):
    range: Range
    step_seconds: int
    series: dict[str, list[float | None]] = Field(
        description="Columns: t (epoch s), holds_won, holds_refused, holds_expired, payments_succeeded, "
        "payments_failed, admitted (per second), hold_p50/p99, payment_p50/p99 (ms)"
    )


class FanUser(BaseModel):
    id: int
    email: str
    name: str
    role: str
    balance: int = Field(description="Integer minor units of balance_currency (the ledger's too)")
    balance_currency: str = Field(description="ISO 4217 code of the balance")
    created_at: datetime
    deleted_at: datetime | None


class FanReservation(BaseModel):
    id: int
    show_id: int
    concert_id: int
    concert_name: str
    starts_at: datetime
    status: str
    total_price: int = Field(description="Integer minor units of currency")
    currency: str = Field(description="ISO 4217 code of the show's amounts")
    seat_count: int
    seats: str | None
    expires_at: datetime
    created_at: datetime
    confirmed_at: datetime | None
    closed_at: datetime | None


class FanPayment(BaseModel):
    id: int
    reservation_id: int
    amount: int = Field(description="Integer minor units of currency")
    currency: str = Field(description="ISO 4217 code of the show's amounts")
    method: str
    status: str
    provider_reference: str | None
    failure_code: str | None
    created_at: datetime
    settled_at: datetime | None


class LedgerEntry(BaseModel):
    id: int
    amount: int
    kind: str
    reference: str | None
    balance_after: int
    created_at: datetime


class AuditEntry(BaseModel):
    id: int
    admin_id: int
    admin_email: str
    action: str
    target_type: str
    target_id: int
    user_id: int | None
    reason: str
    details: dict[str, object]
    outcome: str
    created_at: datetime


class FanSignal(BaseModel):
    kind: Literal["device", "card", "email"] = Field(
        description="device: logged in from the same browser; card: paid with the same card "
        "(the provider's fingerprint); email: the same address once +tags, dots and trailing digits "
        "are taken out"
    )
    other_id: int
    email: str


class FanOut(BaseModel):
    user: FanUser
    ledger_balance: int = Field(description="Sum of the ledger (equals balance, SPEC I3)")
    reservations: list[FanReservation]
    payments: list[FanPayment]
    ledger: list[LedgerEntry]
    audit: list[AuditEntry]
    email_pattern: str = Field(description="The address as the email signal compares it")
    signals: list[FanSignal] = Field(
        description="Other accounts that may be the same person: flagged for the promoter, never blocked"
    )


class CancelRequest(RequestModel):
    model_config = ConfigDict(str_strip_whitespace=True)
    reason: str = Field(min_length=3, max_length=1000, description="Why (kept in the audit)")


class CancelOut(BaseModel):
    reservation_id: int
    user_id: int
    previous_status: str
    status: str
    refunded: int = Field(description="Amount refunded (0 for a released hold)")
    audit_id: int


class AuditPage(BaseModel):
    items: list[AuditEntry]
