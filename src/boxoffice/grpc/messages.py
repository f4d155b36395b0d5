"""The service layer's answers (the same dicts and models the HTTP API serialises) as protobuf
messages. Shaping only: no rule, no I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from boxoffice.booking.service import SeatEvent
from boxoffice.grpc import ticket_pb2 as pb
from boxoffice.redis.streams import Resync
from boxoffice.waiting_room.schemas import QueueStatusResponse, WaitlistStatus


def timestamp(value: datetime | str | None) -> Timestamp | None:
    """A datetime, or its ISO text (stored idempotent answers are JSON), as a Timestamp."""
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    ts = Timestamp()
    ts.FromDatetime(moment)
    return ts


def enum_value(enum: Any, prefix: str, name: str | None) -> int:
    """`name` ("TEMP_RESERVED") of the proto enum with that prefix; UNSPECIFIED when unknown."""
    if not name:
        return 0
    try:
        return int(enum.Value(prefix + name))
    except ValueError:
        return 0


def enum_name(enum: Any, prefix: str, value: int) -> str:
    """The domain spelling ("BALANCE") of a proto enum value; "" for UNSPECIFIED or unknown."""
    try:
        name = str(enum.Name(value))
    except ValueError:
        return ""
    return "" if name.endswith("_UNSPECIFIED") else name.removeprefix(prefix)


def seat_status(name: str | None) -> int:
    return enum_value(pb.SeatStatus, "SEAT_STATUS_", name)


def seat(body: dict[str, Any]) -> pb.Seat:
    return pb.Seat(
        id=int(body["id"]),
        section=str(body["section"]),
        row=int(body["row"]),
        number=int(body["number"]),
        price=int(body["price"]),
        status=seat_status(body.get("status")),  # type: ignore[arg-type]
    )


def reservation(body: dict[str, Any]) -> pb.Reservation:
    """A hold (HoldOut) or a reservation (ReservationOut)."""
    return pb.Reservation(
        reservation_id=int(body["reservation_id"]),
        show_id=int(body["show_id"]),
        status=enum_value(pb.ReservationStatus, "RESERVATION_STATUS_", body.get("status")),  # type: ignore[arg-type]
        seats=[seat(s) for s in body.get("seats", [])],
        total_price=int(body["total_price"]),
        currency=str(body.get("currency") or ""),
        expires_at=timestamp(body.get("expires_at")),
        created_at=timestamp(body.get("created_at")),
        confirmed_at=timestamp(body.get("confirmed_at")),
        closed_at=timestamp(body.get("closed_at")),
    )


def payment(body: dict[str, Any]) -> pb.Payment:
    return pb.Payment(
        payment_id=int(body["payment_id"]),
        reservation_id=int(body["reservation_id"]),
        amount=int(body["amount"]),
        currency=str(body.get("currency") or ""),
        method=enum_value(pb.PaymentMethod, "PAYMENT_METHOD_", body.get("method")),  # type: ignore[arg-type]
        status=enum_value(pb.PaymentStatus, "PAYMENT_STATUS_", body.get("status")),  # type: ignore[arg-type]
        reservation_status=enum_value(  # type: ignore[arg-type]
            pb.ReservationStatus, "RESERVATION_STATUS_", body.get("reservation_status")
        ),
        provider_reference=body.get("provider_reference") or "",
        failure_code=body.get("failure_code") or "",
        created_at=timestamp(body.get("created_at")),
        settled_at=timestamp(body.get("settled_at")),
    )


def queue_status(view: QueueStatusResponse) -> pb.QueueStatus:
    message = pb.QueueStatus(
        user_id=view.user_id,
        concert_id=view.concert_id,
        show_id=view.show_id,
        status=enum_value(pb.QueueState, "QUEUE_STATE_", view.status),  # type: ignore[arg-type]
        estimate_basis=view.estimate_basis,
        pre_queue=view.pre_queue,
        token=view.token or "",
        expires_at=timestamp(view.expires_at),
    )
    if view.position is not None:
        message.position = view.position
    if view.estimated_wait_seconds is not None:
        message.estimated_wait_seconds = view.estimated_wait_seconds
    if view.poll_after_seconds is not None:
        message.poll_after_seconds = view.poll_after_seconds
    return message


def waitlist_entry(entry: WaitlistStatus) -> pb.WaitlistEntry:
    message = pb.WaitlistEntry(
        show_id=entry.show_id,
        status=enum_value(pb.WaitlistState, "WAITLIST_STATE_", entry.status),  # type: ignore[arg-type]
        offer_expires_at=timestamp(entry.offer_expires_at),
    )
    if entry.position is not None:
        message.position = entry.position
    if entry.reservation_id is not None:
        message.reservation_id = entry.reservation_id
    return message


RESYNC_TYPE = "seats.reset"


def seat_event(event: SeatEvent | Resync, show_id: int) -> pb.SeatEvent:
    """A seat change; a Resync as a `seats.reset` event (changes were missed: ListSeats again)."""
    if isinstance(event, Resync):
        return pb.SeatEvent(id=event.stream_id or "", type=RESYNC_TYPE, show_id=show_id)
    return pb.SeatEvent(
        id=event.stream_id,
        event_id=event.event_id or "",
        type=event.type,
        show_id=event.show_id,
        seat_ids=event.seat_ids,
        status=seat_status(event.status),  # type: ignore[arg-type]
        reservation_id=event.reservation_id or 0,
        created_at=timestamp(event.created_at),
    )


def ticket(body: dict[str, Any]) -> pb.Ticket:
    return pb.Ticket(
        ticket_id=int(body["ticket_id"]),
        code=str(body["code"]),
        status=enum_value(pb.TicketStatus, "TICKET_STATUS_", body["status"]),  # type: ignore[arg-type]
        status_text=str(body["status_text"]),
        reservation_id=int(body["reservation_id"]),
        show_id=int(body["show_id"]),
        seat_id=int(body["seat_id"]),
        section=str(body["section"]),
        row=int(body["row"]),
        number=int(body["number"]),
        holder=str(body["holder"]),
        concert=str(body["concert"]),
        artist=str(body["artist"]),
        venue=str(body["venue"]),
        time_zone=str(body["time_zone"]),
        starts_at=timestamp(body["starts_at"]),
        starts_at_local=str(body["starts_at_local"]),
        issued_at=timestamp(body["issued_at"]),
        used_at=timestamp(body.get("used_at")),
        used_gate=body.get("used_gate") or "",
        voided_at=timestamp(body.get("voided_at")),
        payload=str(body["payload"]),
    )


def check_in(body: dict[str, Any]) -> pb.CheckInResult:
    return pb.CheckInResult(
        result=enum_value(pb.ScanResult, "SCAN_RESULT_", body["result"]),  # type: ignore[arg-type]
        show_id=int(body["show_id"]),
        gate=str(body["gate"]),
        scanned_at=timestamp(body["scanned_at"]),
        ticket_id=int(body.get("ticket_id") or 0),
        seat=body.get("seat") or "",
        holder=body.get("holder") or "",
        used_at=timestamp(body.get("used_at")),
        used_gate=body.get("used_gate") or "",
    )
