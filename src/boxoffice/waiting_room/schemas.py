"""Waiting-room request and response models (seed 000 field names kept)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from boxoffice.kit.ids import Id
from boxoffice.kit.inputs import RequestModel

QueueState = Literal["WAITING", "READY", "NOT_IN_QUEUE", "SOLD_OUT", "LAST_SEATS_HELD"]
SaleState = Literal["NOT_OPEN", "PRE_QUEUE", "OPEN", "PAUSED", "LAST_SEATS_HELD", "SOLD_OUT", "CLOSED"]
EstimateBasis = Literal["measured", "configured", "sale_start", "unknown", "none"]


class _Strict(RequestModel):
    pass


class QueueJoinRequest(_Strict):
    concert_id: Id
    show_id: Id


class QueueStatusResponse(BaseModel):
    user_id: int
    concert_id: int
    show_id: int
    status: QueueState
    position: int | None = Field(
        description="Tickets ahead of you plus one (ticket - serving); null before the pre-queue is ordered"
    )
    estimated_wait_seconds: int | None = Field(
        description="From the measured admission rate; null when nobody can honestly say"
    )
    estimate_basis: EstimateBasis
    poll_after_seconds: float | None = Field(description="When to poll again (null: stop polling)")
    pre_queue: bool = Field(description="A provisional pre-queue slot: the order is drawn at sale start")
    token: str | None = None
    expires_at: datetime | None = None
    queue_ticket: str | None = Field(
        default=None,
        description="Your signed number in line: send it back as X-Queue-Ticket and polls are "
        "answered from the show's serving number alone",
    )
    ticket_number: int | None = Field(
        default=None, description="Your number in line (0: pre-queue, not drawn yet)"
    )


class ServingResponse(BaseModel):
    """The public, cacheable serving state of a show's queue: your position is ticket_number - serving."""

    show_id: int
    concert_id: int
    sale_state: SaleState
    serving: int = Field(description="Every number up to this one has been admitted (or skipped)")
    last_ticket: int = Field(description="The last number handed out")
    admission_rate: float | None = Field(description="Measured numbers served per second (EWMA)")
    admit_per_second: float = Field(description="The configured admission rate")
    blocked: bool = Field(
        description="Every remaining seat is spoken for: only returning seats move the line"
    )
    remaining: int
    sale_opens_at: datetime


class QueueTokenRequest(_Strict):
    concert_id: Id
    show_id: Id


class QueueTokenResponse(BaseModel):
    status: QueueState
    position: int | None
    token: str | None
    expires_at: datetime | None


class FairnessResponse(BaseModel):
    show_id: int
    pre_queue: bool = Field(description="Whether anyone joined the randomized pre-queue")
    commitment: str | None = Field(description="SHA-256 of the seed's bytes, published before the sale")
    revealed: bool
    seed: str | None = Field(default=None, description="Hex; revealed once the pre-queue is sealed")
    join_list: list[int] | None = Field(default=None, description="User ids in pre-queue join order")
    order: list[int] | None = Field(default=None, description="The drawn order: ticket i+1 went to order[i]")
    algorithm: str = (
        "order = distinct(join_list) sorted by "
        "HMAC-SHA256(key=bytes.fromhex(seed), msg=str(user_id)).hexdigest(); "
        "commitment = SHA-256(bytes.fromhex(seed)); later joiners are served FIFO after the drawn order"
    )


class QueueSettingsUpdate(_Strict):
    admit_per_second: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)
    max_active: int | None = Field(default=None, ge=0, le=10_000_000)
    clear_max_active: bool = Field(default=False, description="true removes the active-user cap")
    pow_difficulty: int | None = Field(
        default=None, ge=0, le=10_000_000, description="The toll's base difficulty; 0 switches it off"
    )
    adaptive: bool | None = Field(
        default=None,
        description="true: adaptive admission steers the rate from the buyers' p99 (never above "
        "admit_per_second); false: the show admits at admit_per_second (a static rate)",
    )


class AdminQueueResponse(BaseModel):
    show_id: int
    paused: bool
    admit_per_second: float
    max_active: int | None
    oversubscription: float | None
    remaining: int
    waiting: int
    active: int
    admitted_total: int
    admission_rate: float | None = Field(description="Measured (EWMA) tickets served per second")
    no_show_rate: float | None = Field(description="Expired leases / finished leases (expired + paid + left)")
    no_shows: int
    converted: int
    stale_skipped: int
    serving: int
    next_ticket: int
    pow_difficulty: int = Field(description="The toll's base difficulty (ALTCHA maxnumber); 0 = off")
    adaptive: bool = Field(
        default=True,
        description="The show's setting: adaptive admission steers its rate (false: the static rate)",
    )
    pow_effective: int = Field(description="What a challenge asks now: the base times the crowd factor")
    join_rate: float | None = Field(description="Measured (EWMA) joins per second")
    buyer_p99_target_ms: float | None = Field(
        default=None, description="Adaptive admission's target for the buyers' p99 (null: static rate)"
    )
    buyer_p99_ms: float | None = Field(
        default=None, description="The buyers' p99 (holds, payments) the admission worker last measured"
    )
    adaptive_rate: float | None = Field(
        default=None, description="The admission rate the loop chose (at most admit_per_second)"
    )
    waitlist_waiting: int = Field(default=0, description="Fans on the waitlist now")
    waitlist_offers: int = Field(default=0, description="Returned seats offered to waitlisted fans")
    waitlist_taken: int = Field(default=0, description="Offers paid for")
    waitlist_lapsed: int = Field(default=0, description="Offers released or let lapse (the seat went on)")


class ChallengeResponse(BaseModel):
    """ALTCHA's challenge (protocol v1), as any ALTCHA client reads it."""

    algorithm: str = Field(description='Always "SHA-256"')
    challenge: str = Field(description="hex SHA-256 of salt + the secret number")
    maxnumber: int = Field(description="The number is in [0, maxnumber]; 0 when the toll is off")
    salt: str = Field(description="Random hex and the bound parameters: ?expires=&show=&user=&")
    signature: str = Field(description="hex HMAC-SHA-256 of the challenge, by the server")


class WaitlistStatus(BaseModel):
    show_id: int
    status: Literal["NOT_ON_WAITLIST", "WAITING", "OFFERED", "TAKEN", "LAPSED", "LEFT", "SKIPPED"] = Field(
        description="OFFERED: a returned seat is held for you: pay for reservation_id before "
        "offer_expires_at, or it goes to the next fan. SKIPPED: passed over, being at the show's or "
        "concert's per-fan ticket limit"
    )
    position: int | None = Field(description="1 = the next returned seat is yours (WAITING only)")
    reservation_id: int | None = None
    offer_expires_at: datetime | None = None
