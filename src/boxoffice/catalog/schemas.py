"""Catalog shapes: the `Show` value other domains read, and the API request/response models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from boxoffice.catalog import layout
from boxoffice.kit.ids import Id
from boxoffice.kit.inputs import RequestModel, Timestamp
from boxoffice.kit.money import DEFAULT_CURRENCY
from boxoffice.kit.timefmt import DEFAULT_ZONE, is_zone


def _iana_zone(value: str) -> str:
    if not is_zone(value):
        raise PydanticCustomError(
            "unknown_time_zone", "not an IANA time zone (e.g. Asia/Seoul, Europe/Berlin)"
        )
    return value


TimeZone = Annotated[
    str, Field(min_length=1, max_length=64, description="IANA time zone"), AfterValidator(_iana_zone)
]


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
    refund_cutoff_hours: int | None = 24
    hold_requires_verified_email: bool = False
    reentry: bool = False
    queue_pow_difficulty: int = 0
    queue_adaptive: bool = True
    max_tickets_per_fan: int | None = None
    currency: str = DEFAULT_CURRENCY  # ISO 4217; prices are integers in its minor unit

    def on_sale(self, now: datetime) -> bool:
        return self.sale_opens_at <= now and (self.sale_closes_at is None or now < self.sale_closes_at)


# ---- API models (pydantic v2, extra="forbid", limits on every field) --------------------------------

_STRICT = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

Name = Annotated[str, Field(min_length=1, max_length=200)]
SectionName = Annotated[str, Field(min_length=1, max_length=100)]
Money = Annotated[
    int,
    Field(
        ge=0,
        le=10**12,
        description="Integer minor units of the show's currency (ISO 4217: KRW none, EUR cents)",
    ),
]
Url = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^https?://\S+$")]
SeatStatus = Literal["AVAILABLE", "TEMP_RESERVED", "RESERVED"]


RowLength = Annotated[int, Field(ge=1, le=layout.MAX_SEATS_PER_ROW)]


class SectionIn(RequestModel):
    """rows x seats_per_row, or row_lengths (seats in each row, front to back) when rows differ."""

    model_config = _STRICT
    name: SectionName
    rows: int | None = Field(default=None, ge=1, le=layout.MAX_ROWS)
    seats_per_row: int | None = Field(default=None, ge=1, le=layout.MAX_SEATS_PER_ROW)
    row_lengths: list[RowLength] | None = Field(default=None, min_length=1, max_length=layout.MAX_ROWS)


class VenueIn(RequestModel):
    model_config = _STRICT
    name: Name
    time_zone: TimeZone = Field(
        default=DEFAULT_ZONE,
        description="IANA time zone: people see times in it (pages, tickets, mails, .ics)",
    )
    sections: list[SectionIn] = Field(min_length=1, max_length=layout.MAX_SECTIONS)


class SectionOut(BaseModel):
    id: int
    name: str
    position: int
    rows: int
    seats_per_row: int
    row_lengths: list[int] | None = None
    seat_count: int


class VenueOut(BaseModel):
    id: int
    name: str
    time_zone: str = Field(description="IANA time zone; people see the venue's show times in it")
    sections: list[SectionOut]
    seat_count: int
    created_at: datetime


class ConcertIn(RequestModel):
    model_config = _STRICT
    name: Name
    artist: Name
    venue_id: Id
    description: str | None = Field(default=None, max_length=5000)
    poster_url: Url | None = None
    max_tickets_per_fan: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Tickets one fan may hold or buy across all their orders for all shows of the "
        "concert; null: no limit",
    )


class ConcertPatch(RequestModel):
    """Only the fields sent change; the venue is fixed once shows have seats from it."""

    model_config = _STRICT
    name: Name | None = None
    artist: Name | None = None
    description: str | None = Field(default=None, max_length=5000)
    poster_url: Url | None = None
    max_tickets_per_fan: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Tickets one fan may hold or buy across all their orders for all shows of the "
        "concert; null: no limit",
    )

    @model_validator(mode="after")
    def _required_not_null(self) -> ConcertPatch:
        for field in ("name", "artist"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise PydanticCustomError("not_nullable", f"{field} cannot be null")
        return self


class ConcertOut(BaseModel):
    id: int
    name: str
    artist: str
    venue_id: int
    venue_name: str
    description: str | None
    poster_url: str | None
    first_show_at: datetime | None
    show_count: int
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None = Field(default=None, description="Retired: out of the public listing")
    max_tickets_per_fan: int | None = Field(
        default=None, description="Per-fan limit for the concert; null: none"
    )


class ConcertDetail(ConcertOut):
    venue: VenueOut


class ConcertPage(BaseModel):
    items: list[ConcertOut]
    total: int
    limit: int
    offset: int


class QueueSettingsIn(RequestModel):
    model_config = _STRICT
    admit_per_second: float = Field(default=11.0, ge=0, le=100_000)
    max_active: int | None = Field(default=None, ge=0, le=10_000_000, description="null = no cap")
    token_ttl_seconds: int = Field(default=600, ge=30, le=86_400)
    oversubscription: float | None = Field(default=1.5, gt=0, le=100, description="null = off")
    paused: bool = False
    pow_difficulty: int = Field(
        default=100_000,
        ge=0,
        le=10_000_000,
        description="The toll at the queue's door: the proof-of-work difficulty (ALTCHA's maxnumber; "
        "a client tries half of it on average, about a second on a phone at 100,000; it rises with the "
        "crowd up to 10x). 0 switches it off",
    )
    adaptive: bool = Field(
        default=True,
        description="Adaptive admission: the admission worker steers the rate from the buyers' p99 toward "
        "BOXOFFICE_BUYER_P99_TARGET_MS, never above admit_per_second; false: admit at admit_per_second "
        "whatever the buyers' latency (a static rate)",
    )


class QueueSettingsPatch(RequestModel):
    model_config = _STRICT
    admit_per_second: float | None = Field(default=None, ge=0, le=100_000)
    max_active: int | None = Field(default=None, ge=0, le=10_000_000)
    token_ttl_seconds: int | None = Field(default=None, ge=30, le=86_400)
    oversubscription: float | None = Field(default=None, gt=0, le=100)
    paused: bool | None = None
    pow_difficulty: int | None = Field(default=None, ge=0, le=10_000_000, description="0 = toll off")
    adaptive: bool | None = Field(
        default=None, description="true: adaptive admission steers the rate; false: the static rate"
    )

    @model_validator(mode="after")
    def _required_not_null(self) -> QueueSettingsPatch:
        for field in ("admit_per_second", "token_ttl_seconds", "paused", "pow_difficulty", "adaptive"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise PydanticCustomError("not_nullable", f"{field} cannot be null")
        return self


Currency = Literal["EUR", "GBP", "JPY", "KRW", "USD"]  # kit.money.CURRENCIES (a test keeps them equal)


class ShowIn(RequestModel):
    model_config = _STRICT
    starts_at: Timestamp
    currency: Currency = Field(
        default=DEFAULT_CURRENCY,
        description="ISO 4217 code; prices are integers in its minor unit (KRW: won)",
    )
    sale_opens_at: Timestamp
    sale_closes_at: Timestamp | None = None
    pre_queue_opens_at: Timestamp | None = None
    prices: dict[SectionName, Money] = Field(
        max_length=layout.MAX_SECTIONS, description="section name -> price"
    )
    hold_seconds: int | None = Field(default=None, ge=5, le=3600, description="default 300")
    max_seats_per_reservation: int = Field(default=4, ge=1, le=10)
    refund_cutoff_hours: int | None = Field(
        default=24,
        ge=0,
        le=8760,
        description="Fans get a full refund until this many hours before; null: none",
    )
    hold_requires_verified_email: bool = Field(
        default=False, description="Only fans with a verified email may hold seats"
    )
    reentry: bool = Field(default=False, description="At the door: a ticket may check out and in again")
    max_tickets_per_fan: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Tickets one fan may hold or buy across all their orders for this show; null: no limit",
    )
    queue: QueueSettingsIn = Field(default_factory=QueueSettingsIn)


class ShowPatch(RequestModel):
    model_config = _STRICT
    starts_at: Timestamp | None = None
    sale_opens_at: Timestamp | None = None
    sale_closes_at: Timestamp | None = None
    pre_queue_opens_at: Timestamp | None = None
    hold_seconds: int | None = Field(default=None, ge=5, le=3600)
    max_seats_per_reservation: int | None = Field(default=None, ge=1, le=10)
    refund_cutoff_hours: int | None = Field(default=None, ge=0, le=8760, description="null: no refunds")
    hold_requires_verified_email: bool | None = None
    reentry: bool | None = None
    max_tickets_per_fan: int | None = Field(default=None, ge=1, le=1000, description="null: no limit")
    prices: dict[SectionName, Money] | None = Field(
        default=None,
        max_length=layout.MAX_SECTIONS,
        description="section name -> new price (before the sale)",
    )
    queue: QueueSettingsPatch | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> ShowPatch:
        for field in (
            "starts_at",
            "sale_opens_at",
            "hold_seconds",
            "max_seats_per_reservation",
            "prices",
            "hold_requires_verified_email",
            "reentry",
        ):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise PydanticCustomError("not_nullable", f"{field} cannot be null")
        return self


class QueueSettingsOut(BaseModel):
    admit_per_second: float
    max_active: int | None
    token_ttl_seconds: int
    oversubscription: float | None
    paused: bool
    pow_difficulty: int = Field(description="The toll's base difficulty (ALTCHA maxnumber); 0 = off")
    adaptive: bool = Field(
        description="Adaptive admission steers the rate (true) or the show admits at admit_per_second (false)"
    )


class ShowOut(BaseModel):
    id: int
    concert_id: int
    starts_at: datetime
    sale_opens_at: datetime
    sale_closes_at: datetime | None
    pre_queue_opens_at: datetime | None
    hold_seconds: int
    max_seats_per_reservation: int
    refund_cutoff_hours: int | None
    hold_requires_verified_email: bool
    reentry: bool = Field(description="At the door: a ticket may check out and in again")
    max_tickets_per_fan: int | None = Field(
        default=None, description="Per-fan limit for the show; null: none"
    )
    queue: QueueSettingsOut
    currency: str = Field(description="ISO 4217 code of the prices")
    time_zone: str = Field(description="The venue's IANA time zone; people see the show's times in it")
    prices: dict[str, int]
    on_sale: bool
    total: int
    remaining: int


class ShowList(BaseModel):
    concert_id: int
    items: list[ShowOut]


class SeatOut(BaseModel):
    id: int
    section: str
    row: int
    number: int
    price: int
    status: SeatStatus


class SeatMapOut(BaseModel):
    show_id: int
    version: int = Field(description="Grows with every seat change; compare with the seat stream")
    seats: list[SeatOut]


class SeatPlace(BaseModel):
    id: int
    section: str
    row: int
    number: int
    price: int


class SeatLayoutOut(BaseModel):
    """A show's seats without their statuses: immutable for its `layout` digest."""

    show_id: int
    layout: str = Field(
        description="The layout's digest (its version); GET it with ?v= to cache it for a year"
    )
    base: int = Field(description="The lowest seat id: `status[id - base]` is a seat's status")
    seats: list[SeatPlace]


class SeatStatusOut(BaseModel):
    """Which seats are free right now, one character per seat id from `base`."""

    show_id: int
    version: int = Field(description="Grows with every seat change; compare with the seat stream")
    layout: str = Field(description="The digest of the layout these statuses belong to")
    base: int
    waitlist: bool = Field(
        description="Fans wait on this show's waitlist: every free seat is owed to them and shown held (T)"
    )
    status: str = Field(
        description="One character per seat id from `base`: A available, T held, R sold, "
        "`-` no seat of this show"
    )
