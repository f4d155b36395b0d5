"""Bad input on every TicketService method: the right status code with the HTTP API's stable code
in google.rpc.ErrorInfo, never UNKNOWN or INTERNAL, and nothing changed in PostgreSQL or Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import text

from boxoffice.grpc import ticket_pb2 as pb
from boxoffice.runtime import Runtime
from boxoffice.waiting_room.tokens import issue_queue_token
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.grpc_support import ANSWERED_BY_CLIENT_ERRORS, error_info, meta, ticket_stub
from tests.integration.test_booking_support import queue_token

C = grpc.StatusCode


async def _snapshot(runtime: Runtime) -> dict[str, Any]:
    async with runtime.sessions() as s:
        counts = {
            table: (await s.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in ("reservations", "payments", "balance_ledger", "idempotency_keys", "outbox")
        }
        seats = (await s.execute(text("SELECT id, status FROM seats ORDER BY id"))).all()
        balances = (await s.execute(text("SELECT id, balance FROM users ORDER BY id"))).all()
    return {"counts": counts, "seats": seats, "balances": balances}


def _expired_token(runtime: Runtime, user_id: int, show_id: int) -> str:
    token, _ = issue_queue_token(
        runtime.settings,
        user_id=user_id,
        show_id=show_id,
        ticket=1,
        ttl_seconds=1,
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    return token


async def _call(stub: Any, method: str, request: Any, metadata: Any) -> None:
    call = getattr(stub, method)(request, metadata=metadata)
    if method.startswith("Watch"):
        async for _ in call:
            pass
    else:
        await call


@pytest.fixture
async def world(runtime: Runtime, grpc_target: str) -> dict[str, Any]:
    """Two shows, a fan with some money, and another fan's live hold."""
    show = await make_show(runtime, seats=6, max_seats=4)
    other_show = await make_show(runtime, seats=2)
    fan = await make_user(runtime, balance=1_000)
    rich = await make_user(runtime, balance=1_000_000)
    async with ticket_stub(grpc_target) as stub:
        theirs = await stub.Hold(
            pb.HoldRequest(show_id=show["show_id"], seat_ids=show["seat_ids"][:1]),
            metadata=meta(rich, runtime=runtime, show_id=show["show_id"]),
        )
    return {
        "show": show,
        "other_show": other_show,
        "fan": fan,
        "rich": rich,
        "rich_reservation": theirs.reservation_id,
        "door": await make_user(runtime, role="DOOR"),
    }


async def test_bad_input_on_every_method(runtime: Runtime, grpc_target: str, world: dict[str, Any]) -> None:
    show, other_show, fan, rich = world["show"], world["other_show"], world["fan"], world["rich"]
    sid, cid, seats = show["show_id"], show["concert_id"], show["seat_ids"]
    gate = meta(fan, runtime=runtime, show_id=sid)
    foreign = meta(fan, queue=queue_token(runtime, rich["id"], sid))
    other = meta(fan, queue=queue_token(runtime, fan["id"], other_show["show_id"]))
    expired = meta(fan, queue=_expired_token(runtime, fan["id"], sid))
    garbage = meta(fan, queue="not-a-token")
    unknown = meta(fan, queue=queue_token(runtime, fan["id"], 999_999))
    bad_bearer = (("authorization", "Bearer not-a-jwt"),)
    q = pb.QueueRequest(concert_id=cid, show_id=sid)
    hold = pb.HoldRequest(show_id=sid, seat_ids=seats[1:3])
    # A hold of the fan's own on the other show, to try to pay with too little money.
    async with ticket_stub(grpc_target) as stub:
        own = await stub.Hold(
            pb.HoldRequest(show_id=other_show["show_id"], seat_ids=other_show["seat_ids"][:1]),
            metadata=meta(fan, runtime=runtime, show_id=other_show["show_id"]),
        )
    before = await _snapshot(runtime)
    pay = pb.PayRequest(reservation_id=own.reservation_id, method=pb.PAYMENT_METHOD_BALANCE)
    pay_gate = meta(fan, runtime=runtime, show_id=other_show["show_id"], key="k-1")

    cases: list[tuple[str, Any, Any, grpc.StatusCode, str]] = [
        # the queue
        ("JoinQueue", q, (), C.UNAUTHENTICATED, "AUTH_REQUIRED"),
        ("JoinQueue", q, bad_bearer, C.UNAUTHENTICATED, "INVALID_TOKEN"),
        (
            "JoinQueue",
            pb.QueueRequest(concert_id=cid, show_id=999_999),
            meta(fan),
            C.NOT_FOUND,
            "SHOW_NOT_FOUND",
        ),
        (
            "JoinQueue",
            pb.QueueRequest(concert_id=cid + 999, show_id=sid),
            meta(fan),
            C.NOT_FOUND,
            "SHOW_NOT_FOUND",
        ),
        ("JoinQueue", pb.QueueRequest(concert_id=cid), meta(fan), C.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        (
            "JoinQueue",
            pb.QueueRequest(concert_id=-1, show_id=sid),
            meta(fan),
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        ("GetQueueChallenge", pb.QueueChallengeRequest(show_id=sid), (), C.UNAUTHENTICATED, "AUTH_REQUIRED"),
        (
            "GetQueueChallenge",
            pb.QueueChallengeRequest(show_id=999_999),
            meta(fan),
            C.NOT_FOUND,
            "SHOW_NOT_FOUND",
        ),
        ("GetQueueChallenge", pb.QueueChallengeRequest(), meta(fan), C.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        ("JoinWaitlist", pb.WaitlistRequest(show_id=sid), (), C.UNAUTHENTICATED, "AUTH_REQUIRED"),
        (
            "JoinWaitlist",
            pb.WaitlistRequest(show_id=sid),
            meta(fan),
            C.FAILED_PRECONDITION,
            "WAITLIST_NOT_OPEN",
        ),
        ("JoinWaitlist", pb.WaitlistRequest(show_id=999_999), meta(fan), C.NOT_FOUND, "SHOW_NOT_FOUND"),
        ("GetWaitlist", pb.WaitlistRequest(), meta(fan), C.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        ("GetWaitlist", pb.WaitlistRequest(show_id=sid), bad_bearer, C.UNAUTHENTICATED, "INVALID_TOKEN"),
        ("GetQueueStatus", q, (), C.UNAUTHENTICATED, "AUTH_REQUIRED"),
        (
            "GetQueueStatus",
            pb.QueueRequest(concert_id=cid, show_id=-5),
            meta(fan),
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "GetQueueStatus",
            pb.QueueRequest(concert_id=cid, show_id=999_999),
            meta(fan),
            C.NOT_FOUND,
            "SHOW_NOT_FOUND",
        ),
        ("WatchQueue", q, (), C.UNAUTHENTICATED, "AUTH_REQUIRED"),
        (
            "WatchQueue",
            pb.QueueRequest(concert_id=cid, show_id=999_999),
            meta(fan),
            C.NOT_FOUND,
            "SHOW_NOT_FOUND",
        ),
        ("WatchQueue", pb.QueueRequest(show_id=sid), meta(fan), C.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        # seats
        ("ListSeats", pb.ListSeatsRequest(show_id=sid), meta(fan), C.UNAUTHENTICATED, "QUEUE_TOKEN_REQUIRED"),
        ("ListSeats", pb.ListSeatsRequest(show_id=sid), (), C.UNAUTHENTICATED, "AUTH_REQUIRED"),
        ("ListSeats", pb.ListSeatsRequest(show_id=sid), foreign, C.PERMISSION_DENIED, "QUEUE_TOKEN_MISMATCH"),
        ("ListSeats", pb.ListSeatsRequest(show_id=sid), other, C.PERMISSION_DENIED, "QUEUE_TOKEN_MISMATCH"),
        ("ListSeats", pb.ListSeatsRequest(show_id=sid), expired, C.UNAUTHENTICATED, "QUEUE_TOKEN_INVALID"),
        ("ListSeats", pb.ListSeatsRequest(show_id=sid), garbage, C.UNAUTHENTICATED, "QUEUE_TOKEN_INVALID"),
        ("ListSeats", pb.ListSeatsRequest(show_id=0), gate, C.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        ("ListSeats", pb.ListSeatsRequest(show_id=999_999), unknown, C.NOT_FOUND, "SHOW_NOT_FOUND"),
        (
            "ListSeats",
            pb.ListSeatsRequest(show_id=sid, status=99),
            gate,
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "ListSeats",
            pb.ListSeatsRequest(show_id=sid),
            meta(fan, queue="x" * 5000),
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "WatchSeats",
            pb.WatchSeatsRequest(show_id=sid),
            meta(fan),
            C.UNAUTHENTICATED,
            "QUEUE_TOKEN_REQUIRED",
        ),
        (
            "WatchSeats",
            pb.WatchSeatsRequest(show_id=sid),
            foreign,
            C.PERMISSION_DENIED,
            "QUEUE_TOKEN_MISMATCH",
        ),
        ("WatchSeats", pb.WatchSeatsRequest(show_id=sid), expired, C.UNAUTHENTICATED, "QUEUE_TOKEN_INVALID"),
        ("WatchSeats", pb.WatchSeatsRequest(show_id=-1), gate, C.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        (
            "WatchSeats",
            pb.WatchSeatsRequest(show_id=sid, last_event_id="yesterday"),
            gate,
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        # holds
        ("Hold", hold, meta(fan), C.UNAUTHENTICATED, "QUEUE_TOKEN_REQUIRED"),
        ("Hold", hold, (), C.UNAUTHENTICATED, "AUTH_REQUIRED"),
        ("Hold", hold, foreign, C.PERMISSION_DENIED, "QUEUE_TOKEN_MISMATCH"),
        ("Hold", hold, other, C.PERMISSION_DENIED, "QUEUE_TOKEN_MISMATCH"),
        ("Hold", hold, expired, C.UNAUTHENTICATED, "QUEUE_TOKEN_INVALID"),
        ("Hold", pb.HoldRequest(show_id=sid), gate, C.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        (
            "Hold",
            pb.HoldRequest(show_id=sid, seat_ids=[seats[1], seats[1]]),
            gate,
            C.INVALID_ARGUMENT,
            "DUPLICATE_SEATS",
        ),
        ("Hold", pb.HoldRequest(show_id=sid, seat_ids=[-4]), gate, C.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        (
            "Hold",
            pb.HoldRequest(show_id=sid, seat_ids=seats[1:6]),
            gate,
            C.INVALID_ARGUMENT,
            "TOO_MANY_SEATS",
        ),
        (
            "Hold",
            pb.HoldRequest(show_id=sid, seat_ids=list(range(1, 12))),
            gate,
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "Hold",
            pb.HoldRequest(show_id=sid, seat_ids=other_show["seat_ids"][1:]),
            gate,
            C.INVALID_ARGUMENT,
            "SEATS_NOT_IN_SHOW",
        ),
        (
            "Hold",
            pb.HoldRequest(show_id=999_999, seat_ids=seats[1:2]),
            unknown,
            C.NOT_FOUND,
            "SHOW_NOT_FOUND",
        ),
        ("Hold", pb.HoldRequest(show_id=sid, seat_ids=seats[:2]), gate, C.ABORTED, "SEATS_TAKEN"),
        (
            "Hold",
            pb.HoldRequest(show_id=sid, quantity=2, seat_ids=seats[:1]),  # seats or a quantity, not both
            gate,
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "Hold",
            pb.HoldRequest(show_id=sid, quantity=2, section="Nowhere"),
            gate,
            C.INVALID_ARGUMENT,
            "UNKNOWN_SECTION",
        ),
        (
            "Hold",
            hold,
            meta(fan, runtime=runtime, show_id=sid, key="k" * 300),
            C.INVALID_ARGUMENT,
            "IDEMPOTENCY_KEY_INVALID",
        ),
        # payments
        (
            "Pay",
            pay,
            meta(fan, runtime=runtime, show_id=other_show["show_id"]),
            C.INVALID_ARGUMENT,
            "IDEMPOTENCY_KEY_REQUIRED",
        ),
        ("Pay", pay, pay_gate, C.FAILED_PRECONDITION, "INSUFFICIENT_BALANCE"),
        (
            "Pay",
            pb.PayRequest(reservation_id=own.reservation_id),
            pay_gate,
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "Pay",
            pb.PayRequest(reservation_id=0, method=pb.PAYMENT_METHOD_BALANCE),
            pay_gate,
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "Pay",
            pb.PayRequest(reservation_id=world["rich_reservation"], method=pb.PAYMENT_METHOD_BALANCE),
            gate,
            C.NOT_FOUND,
            "RESERVATION_NOT_FOUND",
        ),
        (
            "Pay",
            pb.PayRequest(reservation_id=10**12, method=pb.PAYMENT_METHOD_CARD),
            pay_gate,
            C.NOT_FOUND,
            "RESERVATION_NOT_FOUND",
        ),
        ("Pay", pay, (), C.UNAUTHENTICATED, "AUTH_REQUIRED"),
        # reservations
        (
            "Cancel",
            pb.ReservationRef(reservation_id=world["rich_reservation"]),
            meta(fan),
            C.NOT_FOUND,
            "RESERVATION_NOT_FOUND",
        ),
        ("Cancel", pb.ReservationRef(), meta(fan), C.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        (
            "Cancel",
            pb.ReservationRef(reservation_id=own.reservation_id),
            bad_bearer,
            C.UNAUTHENTICATED,
            "INVALID_TOKEN",
        ),
        (
            "GetReservation",
            pb.ReservationRef(reservation_id=world["rich_reservation"]),
            meta(fan),
            C.NOT_FOUND,
            "RESERVATION_NOT_FOUND",
        ),
        (
            "GetReservation",
            pb.ReservationRef(reservation_id=-1),
            meta(fan),
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "GetReservation",
            pb.ReservationRef(reservation_id=own.reservation_id),
            (),
            C.UNAUTHENTICATED,
            "AUTH_REQUIRED",
        ),
        (
            "ListReservations",
            pb.ListReservationsRequest(limit=101),
            meta(fan),
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "ListReservations",
            pb.ListReservationsRequest(limit=-1),
            meta(fan),
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "ListReservations",
            pb.ListReservationsRequest(before=-1),
            meta(fan),
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        ("ListReservations", pb.ListReservationsRequest(), bad_bearer, C.UNAUTHENTICATED, "INVALID_TOKEN"),
        # tickets and the door
        ("ListTickets", pb.ListTicketsRequest(), (), C.UNAUTHENTICATED, "AUTH_REQUIRED"),
        ("ListTickets", pb.ListTicketsRequest(limit=101), meta(fan), C.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        ("ListTickets", pb.ListTicketsRequest(before=-1), meta(fan), C.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        ("GetTicket", pb.TicketRef(ticket_id=1), (), C.UNAUTHENTICATED, "AUTH_REQUIRED"),
        ("GetTicket", pb.TicketRef(), meta(fan), C.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        ("GetTicket", pb.TicketRef(ticket_id=999_999), meta(fan), C.NOT_FOUND, "TICKET_NOT_FOUND"),
        (
            "CheckIn",
            pb.CheckInRequest(show_id=sid, code="X", gate="A"),
            (),
            C.UNAUTHENTICATED,
            "AUTH_REQUIRED",
        ),
        (
            "CheckIn",
            pb.CheckInRequest(show_id=sid, code="X", gate="A"),
            meta(fan),
            C.PERMISSION_DENIED,
            "DOOR_ROLE_REQUIRED",
        ),
        (
            "CheckIn",
            pb.CheckInRequest(show_id=sid, gate="A"),
            meta(world["door"]),
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "CheckIn",
            pb.CheckInRequest(show_id=sid, code="X", payload="Y", gate="A"),
            meta(world["door"]),
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "CheckIn",
            pb.CheckInRequest(show_id=sid, payload="x" * 5000, gate="A"),
            meta(world["door"]),
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
        (
            "CheckIn",
            pb.CheckInRequest(show_id=999_999, code="X", gate="A"),
            meta(world["door"]),
            C.NOT_FOUND,
            "SHOW_NOT_FOUND",
        ),
        (
            "CheckIn",
            pb.CheckInRequest(code="X", gate="A"),
            meta(world["door"]),
            C.INVALID_ARGUMENT,
            "VALIDATION_ERROR",
        ),
    ]
    methods = {m.name for m in pb.DESCRIPTOR.services_by_name["TicketService"].methods}
    assert {c[0] for c in cases} == methods  # every method is tried
    failures = []
    async with ticket_stub(grpc_target) as stub:
        for method, request, metadata, code, reason in cases:
            try:
                await _call(stub, method, request, metadata)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() in ANSWERED_BY_CLIENT_ERRORS, (method, exc.code(), exc.details())
                info = error_info(exc)
                if (exc.code(), info.reason) != (code, reason):
                    failures.append((method, reason, exc.code(), info.reason, exc.details()))
                if reason == "SEATS_TAKEN":
                    assert info.metadata["seat_ids"] == str(seats[0])  # names the taken seat
                if reason == "DUPLICATE_SEATS":
                    assert info.metadata["seat_ids"] == str(seats[1])
                continue
            failures.append((method, reason, "succeeded"))
    assert not failures, failures
    assert await _snapshot(runtime) == before
    async with ticket_stub(grpc_target) as stub:
        # No queue place was taken, and no refused hold left a shield mark behind.
        place = await stub.GetQueueStatus(q, metadata=meta(fan))
        assert place.status == pb.QUEUE_STATE_NOT_IN_QUEUE
        held = await stub.Hold(hold, metadata=gate)
        assert [s.id for s in held.seats] == seats[1:3]
    # Every call is counted by method and status code on /metrics.
    counted = runtime.metrics.grpc_requests
    for method, code in (
        ("Hold", "OK"),
        ("Hold", "INVALID_ARGUMENT"),
        ("Hold", "ABORTED"),
        ("WatchSeats", "UNAUTHENTICATED"),
    ):
        assert counted.labels(method, code)._value.get() > 0, (method, code)
