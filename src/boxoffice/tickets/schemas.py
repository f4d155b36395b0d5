"""Tickets and check-in request and response models (extra="forbid", bounded fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from boxoffice.kit.inputs import RequestModel, Timestamp
from boxoffice.tickets.rules import MAX_GATE_LENGTH, MAX_PAYLOAD_LENGTH

TicketStatusName = Literal["VALID", "USED", "VOID"]
ScanResultName = Literal["VALID", "ALREADY_USED", "VOID", "WRONG_SHOW", "NOT_A_TICKET", "CONFLICT"]


class TicketOut(BaseModel):
    """An e-ticket: one seat of a paid reservation, with its public code and signed payload (what
    the QR code holds; a gate verifies it with the show's public keys, even offline)."""

    ticket_id: int
    code: str = Field(description="Public code, 80 bits, in four groups of four (type it at the door)")
    status: TicketStatusName
    status_text: str = Field(description="The fan's words: Valid / Used at HH:MM / Void")
    reservation_id: int
    show_id: int
    seat_id: int
    section: str
    row: int
    number: int
    seat: str
    holder: str
    concert_id: int
    concert: str
    artist: str
    venue: str
    time_zone: str = Field(description="The venue's IANA time zone")
    starts_at: datetime
    starts_at_local: str = Field(description="Show time in the venue's time zone (ISO 8601)")
    issued_at: datetime
    used_at: datetime | None
    used_gate: str | None
    voided_at: datetime | None
    payload: str = Field(description="BO1.<body>.<Ed25519 signature>: what the QR code holds")
    qr_svg: str = Field(description="The QR code as SVG (this product serves it)")
    qr_png: str = Field(description="The QR code as PNG")


class TicketPage(BaseModel):
    items: list[TicketOut]
    next_before: int | None = Field(description="Pass as `before` for the next page; null at the end")


class ScanRequest(RequestModel):
    """A scan at a gate: the QR code's payload, or the public code typed by hand."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["payload"]}, {"required": ["code"]}]}
    )

    payload: str | None = Field(default=None, min_length=1, max_length=MAX_PAYLOAD_LENGTH)
    code: str | None = Field(default=None, min_length=1, max_length=64)
    gate: str = Field(min_length=1, max_length=MAX_GATE_LENGTH, description="Which gate scanned")

    @model_validator(mode="after")
    def _one_way(self) -> ScanRequest:
        if (self.payload is None) == (self.code is None):
            raise PydanticCustomError("payload_or_code", "send either payload or code")
        return self


class ScanOut(BaseModel):
    """The gate's answer. VALID: admitted now (exactly one scan of a ticket is). ALREADY_USED: when
    and at which gate it entered. VOID: cancelled or refunded. WRONG_SHOW: a ticket of another show.
    NOT_A_TICKET: no ticket of ours (forged, altered, truncated, unknown code). CONFLICT: an offline
    gate's synced scan of a ticket that had entered meanwhile."""

    result: ScanResultName
    show_id: int
    gate: str
    scanned_at: datetime
    ticket_id: int | None = None
    seat: str | None = None
    holder: str | None = None
    used_at: datetime | None = None
    used_gate: str | None = None


class CheckOutRequest(RequestModel):
    code: str = Field(min_length=1, max_length=64)
    gate: str = Field(min_length=1, max_length=MAX_GATE_LENGTH)


class OfflineScan(RequestModel):
    payload: str | None = Field(default=None, min_length=1, max_length=MAX_PAYLOAD_LENGTH)
    code: str | None = Field(default=None, min_length=1, max_length=64)
    scanned_at: Timestamp

    @model_validator(mode="after")
    def _one_way(self) -> OfflineScan:
        if (self.payload is None) == (self.code is None):
            raise PydanticCustomError("payload_or_code", "send either payload or code")
        return self


class SyncRequest(RequestModel):
    """What an offline gate admitted while the network was down, in the order it scanned. At most
    50 scans a request, so that the largest valid body fits the request limit (64 KiB): a gate
    with more sends them in batches, in order."""

    gate: str = Field(min_length=1, max_length=MAX_GATE_LENGTH)
    scans: list[OfflineScan] = Field(min_length=1, max_length=50)


class SyncOut(BaseModel):
    results: list[ScanOut]
    conflicts: int


class PublicKeyOut(BaseModel):
    key_id: str
    public_key: str = Field(description="Raw 32-byte Ed25519 public key, base64url")
    algorithm: Literal["Ed25519"]


class DoorTicket(BaseModel):
    code: str
    status: TicketStatusName
    seat: str
    used_at: datetime | None
    used_gate: str | None


class DoorList(BaseModel):
    """What an offline gate downloads: the verifying keys and the show's tickets (no holder names)."""

    show_id: int
    keys: list[PublicKeyOut]
    tickets: list[DoorTicket]


class KeysOut(BaseModel):
    keys: list[PublicKeyOut]


class ConflictOut(BaseModel):
    checkin_id: int
    code: str
    seat: str
    gate: str
    scanned_at: datetime
    used_at: datetime | None
    used_gate: str | None


class GateEntries(BaseModel):
    gate: str
    admitted: int
    scanned: int


class MinuteEntries(BaseModel):
    minute: datetime
    admitted: int
    scanned: int


class EntriesOut(BaseModel):
    show_id: int
    scanned: int
    admitted: int
    inside: int
    conflicts: int
    gates: list[GateEntries]
    per_minute: list[MinuteEntries] = Field(description="The last hour, minute by minute")
    recent_conflicts: list[ConflictOut]
