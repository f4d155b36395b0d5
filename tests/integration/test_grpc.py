"""The gRPC TicketService over a real channel: the whole purchase, retries across both doors,
health and reflection."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import text

from boxoffice.grpc import ticket_pb2 as pb
from boxoffice.runtime import Runtime
from boxoffice.waiting_room.flows import tick_show
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.grpc_support import meta, replayed, ticket_stub
from tests.integration.test_booking_support import assert_invariants, gated


async def _balance(runtime: Runtime, user_id: int) -> int:
    async with runtime.sessions() as s:
        return int(
            (await s.execute(text("SELECT balance FROM users WHERE id = :u"), {"u": user_id})).scalar_one()
        )


async def test_whole_purchase_over_grpc(runtime: Runtime, grpc_target: str) -> None:
    show = await make_show(runtime, seats=4, price=12_500)
    fan = await make_user(runtime, balance=100_000)
    q = pb.QueueRequest(concert_id=show["concert_id"], show_id=show["show_id"])
    async with ticket_stub(grpc_target) as stub:
        joined = await stub.JoinQueue(q, metadata=meta(fan))
        assert joined.status == pb.QUEUE_STATE_WAITING and joined.position == 1
        assert joined.user_id == fan["id"] and not joined.token

        # Watch the queue until READY; the admission worker's tick lets the fan in.
        watch = stub.WatchQueue(q, metadata=meta(fan))
        first = await asyncio.wait_for(watch.read(), 10)
        assert first.status == pb.QUEUE_STATE_WAITING
        ready = None
        deadline = asyncio.get_running_loop().time() + 20
        while ready is None and asyncio.get_running_loop().time() < deadline:
            await tick_show(runtime, show["show_id"])  # 11 fans a second by default: one tick lets us in
            try:
                update = await asyncio.wait_for(watch.read(), 2)
            except TimeoutError:
                continue
            if update.status == pb.QUEUE_STATE_READY:
                ready = update
        assert ready is not None and ready.token and ready.HasField("expires_at")
        assert await asyncio.wait_for(watch.read(), 5) == grpc.aio.EOF  # a final state ends the stream
        status = await stub.GetQueueStatus(q, metadata=meta(fan))
        assert status.status == pb.QUEUE_STATE_READY

        gate = meta(fan, queue=ready.token)
        seats = await stub.ListSeats(pb.ListSeatsRequest(show_id=show["show_id"]), metadata=gate)
        assert [s.id for s in seats.seats] == show["seat_ids"]
        assert {s.status for s in seats.seats} == {pb.SEAT_STATUS_AVAILABLE}
        assert seats.seats[0].price == 12_500 and seats.seats[0].section == "A"

        hold = await stub.Hold(
            pb.HoldRequest(show_id=show["show_id"], seat_ids=show["seat_ids"][:2]), metadata=gate
        )
        assert hold.status == pb.RESERVATION_STATUS_TEMP_RESERVED
        assert hold.total_price == 25_000 and [s.id for s in hold.seats] == show["seat_ids"][:2]
        assert hold.expires_at.ToDatetime().timestamp() > runtime.clock.now().timestamp()
        only_free = await stub.ListSeats(
            pb.ListSeatsRequest(show_id=show["show_id"], status=pb.SEAT_STATUS_AVAILABLE), metadata=gate
        )
        assert [s.id for s in only_free.seats] == show["seat_ids"][2:]

        paid = await stub.Pay(
            pb.PayRequest(reservation_id=hold.reservation_id, method=pb.PAYMENT_METHOD_BALANCE),
            metadata=meta(fan, queue=ready.token, key=uuid.uuid4().hex),
        )
        assert paid.status == pb.PAYMENT_STATUS_SUCCEEDED and paid.amount == 25_000
        assert (
            paid.reservation_status == pb.RESERVATION_STATUS_RESERVED
            and paid.method == pb.PAYMENT_METHOD_BALANCE
        )

        got = await stub.GetReservation(
            pb.ReservationRef(reservation_id=hold.reservation_id), metadata=meta(fan)
        )
        assert got.status == pb.RESERVATION_STATUS_RESERVED and got.HasField("confirmed_at")
        assert not got.HasField("closed_at")
        page = await stub.ListReservations(pb.ListReservationsRequest(), metadata=meta(fan))
        assert [r.reservation_id for r in page.items] == [hold.reservation_id] and page.next_before == 0
    assert await _balance(runtime, fan["id"]) == 75_000
    await assert_invariants(runtime)


async def test_cancel_over_grpc_frees_the_seats(runtime: Runtime, grpc_target: str) -> None:
    show = await make_show(runtime, seats=3)
    fan = await make_user(runtime)
    async with ticket_stub(grpc_target) as stub:
        gate = meta(fan, runtime=runtime, show_id=show["show_id"])
        hold = await stub.Hold(
            pb.HoldRequest(show_id=show["show_id"], seat_ids=show["seat_ids"][:1]), metadata=gate
        )
        cancelled = await stub.Cancel(
            pb.ReservationRef(reservation_id=hold.reservation_id), metadata=meta(fan)
        )
        assert cancelled.status == pb.RESERVATION_STATUS_CANCELLED and cancelled.HasField("closed_at")
        seats = await stub.ListSeats(pb.ListSeatsRequest(show_id=show["show_id"]), metadata=gate)
        assert {s.status for s in seats.seats} == {pb.SEAT_STATUS_AVAILABLE}
    await assert_invariants(runtime)


async def test_best_available_over_grpc(runtime: Runtime, grpc_target: str) -> None:
    """Hold with a quantity picks adjacent seats like the HTTP API; paying needs only the login."""
    show = await make_show(runtime, seats=6)
    fan = await make_user(runtime, balance=100_000)
    async with ticket_stub(grpc_target) as stub:
        gate = meta(fan, runtime=runtime, show_id=show["show_id"])
        hold = await stub.Hold(pb.HoldRequest(show_id=show["show_id"], quantity=3), metadata=gate)
        numbers = sorted(s.number for s in hold.seats)
        assert len(numbers) == 3 and numbers == list(range(numbers[0], numbers[0] + 3))
        paid = await stub.Pay(
            pb.PayRequest(reservation_id=hold.reservation_id, method=pb.PAYMENT_METHOD_BALANCE),
            metadata=meta(fan, key="grpc-best"),
        )
        assert paid.status == pb.PAYMENT_STATUS_SUCCEEDED
    await assert_invariants(runtime)


async def test_a_retry_over_either_door_replays_the_same_answer(
    runtime: Runtime, grpc_target: str, client: httpx.AsyncClient
) -> None:
    show = await make_show(runtime, seats=4)
    fan = await make_user(runtime, balance=50_000)
    sid, seat_ids = show["show_id"], show["seat_ids"][:2]
    hold_key, pay_key = uuid.uuid4().hex, uuid.uuid4().hex
    # Hold over HTTP, retried over gRPC: the same reservation, said to be a replay.
    http_hold = await client.post(
        "/api/reservations",
        json={"show_id": sid, "seat_ids": seat_ids},
        headers=gated(runtime, fan, sid, hold_key),
    )
    assert http_hold.status_code == 201
    async with ticket_stub(grpc_target) as stub:
        call = stub.Hold(
            pb.HoldRequest(show_id=sid, seat_ids=seat_ids),
            metadata=meta(fan, runtime=runtime, show_id=sid, key=hold_key),
        )
        hold = await call
        assert hold.reservation_id == http_hold.json()["reservation_id"]
        assert replayed(await call.trailing_metadata())
        # Pay over gRPC, retried over gRPC and over HTTP: charged once.
        request = pb.PayRequest(reservation_id=hold.reservation_id, method=pb.PAYMENT_METHOD_BALANCE)
        pay_meta = meta(fan, runtime=runtime, show_id=sid, key=pay_key)
        first_call = stub.Pay(request, metadata=pay_meta)
        first = await first_call
        assert not replayed(await first_call.trailing_metadata())
        again_call = stub.Pay(request, metadata=pay_meta)
        again = await again_call
        assert again == first and replayed(await again_call.trailing_metadata())
    http_pay = await client.post(
        "/api/payments",
        json={"reservation_id": hold.reservation_id, "method": "BALANCE"},
        headers=gated(runtime, fan, sid, pay_key),
    )
    assert http_pay.status_code == 201 and http_pay.headers.get("Idempotent-Replayed") == "true"
    assert http_pay.json()["payment_id"] == first.payment_id
    assert await _balance(runtime, fan["id"]) == 50_000 - first.amount
    async with runtime.sessions() as s:
        payments = (await s.execute(text("SELECT count(*) FROM payments"))).scalar_one()
        reservations = (await s.execute(text("SELECT count(*) FROM reservations"))).scalar_one()
    assert payments == 1 and reservations == 1
    await assert_invariants(runtime)


async def test_health_and_reflection(grpc_target: str) -> None:
    async with grpc.aio.insecure_channel(grpc_target) as channel:
        checks = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        for name in ("", "boxoffice.v1.TicketService"):
            answer = await checks.Check(health_pb2.HealthCheckRequest(service=name))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[no-untyped-call]
        responses = reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        services = set()
        async for response in responses:
            services |= {s.name for s in response.list_services_response.service}
        assert {"boxoffice.v1.TicketService", "grpc.health.v1.Health"} <= services


def test_the_grpc_door_loads_no_web_framework() -> None:
    code = (
        "import sys, boxoffice.grpc.server; "
        "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout
