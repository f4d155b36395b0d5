"""boxoffice.v1.TicketService on grpc.aio: the third front door over the same service functions.

Each method is an entrypoint like an HTTP endpoint: it reads the metadata (the same access token,
admission token and idempotency key as the HTTP headers), validates the message with the HTTP
route's own pydantic model, calls one service function and shapes the answer. Errors go through
one handler (`status.py`): a client's mistake is never UNKNOWN or INTERNAL.
Health (grpc.health.v1) and server reflection are served beside it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import ValidationError

from boxoffice.auth.service import authenticate_token, bearer_token
from boxoffice.auth.tokens import AccessClaims
from boxoffice.booking import flows as booking_flows
from boxoffice.booking import service as booking
from boxoffice.booking.schemas import HoldRequest
from boxoffice.booking.shield import valid_stream_id
from boxoffice.catalog import seatmap
from boxoffice.db.idempotency import IdempotentResult
from boxoffice.errors import DomainError, DoorStaffOnly, Unprocessable
from boxoffice.grpc import messages, status
from boxoffice.grpc import ticket_pb2 as pb
from boxoffice.grpc import ticket_pb2_grpc as pb_grpc
from boxoffice.payments import flows as payments
from boxoffice.payments.schemas import PaymentRequest
from boxoffice.runtime import Runtime
from boxoffice.tickets import flows as tickets
from boxoffice.tickets.rules import DOOR_ROLES
from boxoffice.tickets.schemas import ScanRequest
from boxoffice.waiting_room import flows as queue_flows
from boxoffice.waiting_room import service as queue
from boxoffice.waiting_room.schemas import QueueJoinRequest
from boxoffice.waiting_room.tokens import check_queue_token

log = structlog.get_logger("boxoffice.grpc")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["TicketService"].full_name
QUEUE_TOKEN_MAX = 4096  # the HTTP API's X-Queue-Token bound
ALTCHA_MAX = 1024  # the HTTP API's X-Altcha bound
REPLAYED = ("idempotent-replayed", "true")

R = TypeVar("R")


Context = Any  # grpc.aio.ServicerContext (grpc ships no type hints)


# ---------------------------------------------------------------- the error handler


async def _abort(context: Context, exc: Exception, method: str) -> None:
    if isinstance(exc, DomainError):
        st = status.from_domain(exc)
    elif isinstance(exc, ValidationError):
        st = status.from_validation(exc)
    elif isinstance(exc, status.BACKEND_DOWN):
        log.warning("grpc_backend_unavailable", method=method, error=type(exc).__name__)
        st = status.unavailable(exc)
    else:
        log.exception("grpc_unhandled_error", method=method)
        st = status.internal()
    await context.abort(st.code, st.details, trailing_metadata=st.trailing_metadata)


def _code(context: Context, error: BaseException | None) -> str:
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    code = context.code()
    return "OK" if code is None else str(getattr(code, "name", code))


def _unary(
    fn: Callable[[TicketService, Any, Context], Awaitable[R]],
) -> Callable[[TicketService, Any, Context], Awaitable[R]]:
    name = fn.__name__

    @functools.wraps(fn)
    async def method(self: TicketService, request: Any, context: Context) -> R:
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return await fn(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, name)
            raise AssertionError("unreachable: abort raises") from exc
        except BaseException as exc:
            error = exc
            raise
        finally:
            metrics = self.runtime.metrics
            metrics.grpc_requests.labels(name, _code(context, error)).inc()
            metrics.grpc_latency.labels(name).observe(time.perf_counter() - started)

    return method


def _stream(
    fn: Callable[[TicketService, Any, Context], AsyncIterator[R]],
) -> Callable[[TicketService, Any, Context], AsyncIterator[R]]:
    name = fn.__name__

    @functools.wraps(fn)
    async def method(self: TicketService, request: Any, context: Context) -> AsyncIterator[R]:
        error: BaseException | None = None
        try:
            async for item in fn(self, request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, name)
        except BaseException as exc:  # a client that went away cancels the stream
            error = exc
            raise
        finally:
            self.runtime.metrics.grpc_requests.labels(name, _code(context, error)).inc()

    return method


# ---------------------------------------------------------------- request helpers


def _metadata(context: Context, name: str, max_length: int | None = None) -> str | None:
    value: str | None = None
    for key, item in context.invocation_metadata() or ():
        if key == name and isinstance(item, str):
            value = item
    if value is not None and max_length is not None and len(value) > max_length:
        raise Unprocessable(
            f"{name} must be at most {max_length} characters",
            errors=[{"loc": ["metadata", name], "msg": "too long", "type": "string_too_long"}],
        )
    return value


def _require_id(name: str, value: int) -> int:
    """Proto int64 fields cannot exceed PostgreSQL's bigint; an unset (0) or negative id is a 422."""
    if value < 1:
        raise Unprocessable(
            f"{name} must be a positive id",
            errors=[{"loc": ["body", name], "msg": "Input should be greater than 0", "type": "greater_than"}],
        )
    return value


def _answer(result: IdempotentResult, context: Context) -> dict[str, Any]:
    if result.replayed:
        context.set_trailing_metadata((REPLAYED,))
    body: dict[str, Any] = result.body
    return body


# ---------------------------------------------------------------- the service


class TicketService(pb_grpc.TicketServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def _user(self, context: Context) -> AccessClaims:
        return await authenticate_token(self.runtime, bearer_token(_metadata(context, "authorization")))

    async def _gate(self, context: Context, user_id: int, show_id: int) -> None:
        await check_queue_token(
            self.runtime, user_id, show_id, _metadata(context, "x-queue-token", QUEUE_TOKEN_MAX)
        )

    # ---- queue

    @_unary
    async def GetQueueChallenge(
        self, request: pb.QueueChallengeRequest, context: Context
    ) -> pb.QueueChallenge:
        claims = await self._user(context)
        show_id = _require_id("show_id", request.show_id)
        found = await queue.challenge(self.runtime, claims.user_id, show_id)
        return pb.QueueChallenge(**found.model_dump())

    @_unary
    async def JoinQueue(self, request: pb.QueueRequest, context: Context) -> pb.QueueStatus:
        claims = await self._user(context)
        body = QueueJoinRequest(concert_id=request.concert_id, show_id=request.show_id)
        solution = _metadata(context, "x-altcha", ALTCHA_MAX)
        view = await queue.join(self.runtime, claims.user_id, body.concert_id, body.show_id, solution)
        return messages.queue_status(view)

    @_unary
    async def GetQueueStatus(self, request: pb.QueueRequest, context: Context) -> pb.QueueStatus:
        claims = await self._user(context)
        body = QueueJoinRequest(concert_id=request.concert_id, show_id=request.show_id)
        view = await queue.status(self.runtime, claims.user_id, body.concert_id, body.show_id)
        return messages.queue_status(view)

    @_stream
    async def WatchQueue(self, request: pb.QueueRequest, context: Context) -> AsyncIterator[pb.QueueStatus]:
        claims = await self._user(context)
        body = QueueJoinRequest(concert_id=request.concert_id, show_id=request.show_id)
        with self.runtime.streams.slot(claims.user_id):  # RESOURCE_EXHAUSTED STREAM_LIMIT past the caps
            async for view in queue.watch(self.runtime, claims.user_id, body.concert_id, body.show_id):
                if view is not None:  # HTTP/2 keeps the stream alive; no keep-alive messages needed
                    yield messages.queue_status(view)

    # ---- seats

    @_unary
    async def ListSeats(self, request: pb.ListSeatsRequest, context: Context) -> pb.ListSeatsResponse:
        claims = await self._user(context)
        show_id = _require_id("show_id", request.show_id)
        await self._gate(context, claims.user_id, show_id)
        only = messages.enum_name(pb.SeatStatus, "SEAT_STATUS_", request.status) or None
        if request.status and only is None:
            raise Unprocessable("status is not a seat status", errors=[{"loc": ["body", "status"]}])
        raw = json.loads(await seatmap.seat_map(self.runtime, show_id, only))  # type: ignore[arg-type]
        return pb.ListSeatsResponse(
            show_id=raw["show_id"], version=raw["version"], seats=[messages.seat(s) for s in raw["seats"]]
        )

    @_stream
    async def WatchSeats(
        self, request: pb.WatchSeatsRequest, context: Context
    ) -> AsyncIterator[pb.SeatEvent]:
        claims = await self._user(context)
        show_id = _require_id("show_id", request.show_id)
        await self._gate(context, claims.user_id, show_id)
        resume = request.last_event_id or None
        if resume is not None and not valid_stream_id(resume):
            raise Unprocessable(
                'last_event_id must be a SeatEvent.id ("<ms>-<seq>")',
                errors=[{"loc": ["body", "last_event_id"]}],
            )
        # RESOURCE_EXHAUSTED STREAM_LIMIT past the per-user/process caps (the SSE streams' slots)
        with self.runtime.streams.slot(claims.user_id):
            async with booking.watch_seats(self.runtime, show_id, resume) as updates:
                await context.send_initial_metadata(())  # the watch is established (SSE's ": connected")
                async for update in updates:
                    if update is not None:
                        yield messages.seat_event(update, show_id)

    # ---- reservations

    @_unary
    async def Hold(self, request: pb.HoldRequest, context: Context) -> pb.Reservation:
        claims = await self._user(context)
        body = HoldRequest(  # seat_ids, or best available: quantity [+ section | price]
            show_id=request.show_id,
            seat_ids=list(request.seat_ids) or None,
            quantity=request.quantity or None,
            section=request.section or None,
            price=request.price if request.HasField("price") else None,
        )
        result = await booking_flows.place_hold(
            self.runtime,
            user_id=claims.user_id,
            show_id=body.show_id,
            seat_ids=body.seat_ids,
            quantity=body.quantity,
            section=body.section,
            price=body.price,
            queue_token=_metadata(context, "x-queue-token", QUEUE_TOKEN_MAX),
            idempotency_key=_metadata(context, "idempotency-key"),
        )
        return messages.reservation(_answer(result, context))

    @_unary
    async def Pay(self, request: pb.PayRequest, context: Context) -> pb.Payment:
        claims = await self._user(context)
        method = messages.enum_name(pb.PaymentMethod, "PAYMENT_METHOD_", request.method)
        fields: dict[str, Any] = {"reservation_id": request.reservation_id, "method": method}
        if request.HasField("card_number"):
            fields["card_number"] = request.card_number
        body = PaymentRequest.model_validate(fields)
        result = await payments.pay(
            self.runtime,
            user_id=claims.user_id,
            reservation_id=body.reservation_id,
            method=body.method,
            idempotency_key=_metadata(context, "idempotency-key"),
            card_number=body.card_number,
        )
        return messages.payment(_answer(result, context))

    @_unary
    async def JoinWaitlist(self, request: pb.WaitlistRequest, context: Context) -> pb.WaitlistEntry:
        claims = await self._user(context)
        show_id = _require_id("show_id", request.show_id)
        found = await queue_flows.join_waitlist(self.runtime, claims.user_id, show_id)
        return messages.waitlist_entry(found)

    @_unary
    async def GetWaitlist(self, request: pb.WaitlistRequest, context: Context) -> pb.WaitlistEntry:
        claims = await self._user(context)
        show_id = _require_id("show_id", request.show_id)
        async with self.runtime.sessions() as session:
            found = await queue.waitlist_status(session, claims.user_id, show_id)
        return messages.waitlist_entry(found)

    @_unary
    async def Cancel(self, request: pb.ReservationRef, context: Context) -> pb.Reservation:
        claims = await self._user(context)
        reservation_id = _require_id("reservation_id", request.reservation_id)
        body = await payments.cancel(self.runtime, user_id=claims.user_id, reservation_id=reservation_id)
        return messages.reservation(body)

    @_unary
    async def GetReservation(self, request: pb.ReservationRef, context: Context) -> pb.Reservation:
        claims = await self._user(context)
        reservation_id = _require_id("reservation_id", request.reservation_id)
        async with self.runtime.sessions() as session:
            body = await booking.get_reservation(session, claims.user_id, reservation_id)
        return messages.reservation(body)

    @_unary
    async def ListReservations(
        self, request: pb.ListReservationsRequest, context: Context
    ) -> pb.ListReservationsResponse:
        claims = await self._user(context)
        if request.before:
            _require_id("before", request.before)
        if not 0 <= request.limit <= 100:
            raise Unprocessable(
                "limit must be 1-100 (0: the default)",
                errors=[{"loc": ["body", "limit"], "msg": "Input should be between 1 and 100"}],
            )
        async with self.runtime.sessions() as session:
            page = await booking.list_reservations(
                session, claims.user_id, before=request.before or None, limit=request.limit or None
            )
        return pb.ListReservationsResponse(
            items=[messages.reservation(r) for r in page["items"]], next_before=page["next_before"] or 0
        )

    # ---- tickets and the door

    @_unary
    async def ListTickets(self, request: pb.ListTicketsRequest, context: Context) -> pb.ListTicketsResponse:
        claims = await self._user(context)
        if request.before:
            _require_id("before", request.before)
        if not 0 <= request.limit <= 100:
            raise Unprocessable(
                "limit must be 1-100 (0: the default)",
                errors=[{"loc": ["body", "limit"], "msg": "Input should be between 1 and 100"}],
            )
        page = await tickets.my_tickets(
            self.runtime, claims.user_id, before=request.before or None, limit=request.limit or 20
        )
        return pb.ListTicketsResponse(
            items=[messages.ticket(t) for t in page["items"]], next_before=page["next_before"] or 0
        )

    @_unary
    async def GetTicket(self, request: pb.TicketRef, context: Context) -> pb.Ticket:
        claims = await self._user(context)
        ticket_id = _require_id("ticket_id", request.ticket_id)
        body = await tickets.ticket(self.runtime, ticket_id, user_id=claims.user_id, role=claims.role)
        return messages.ticket(body)

    @_unary
    async def CheckIn(self, request: pb.CheckInRequest, context: Context) -> pb.CheckInResult:
        claims = await self._user(context)
        if claims.role not in DOOR_ROLES:
            raise DoorStaffOnly("Gate staff (role DOOR) or an administrator only")
        show_id = _require_id("show_id", request.show_id)
        body = ScanRequest(payload=request.payload or None, code=request.code or None, gate=request.gate)
        answer = await tickets.scan(
            self.runtime,
            show_id=show_id,
            code=body.code,
            payload=body.payload,
            gate=body.gate,
            by_user=claims.user_id,
        )
        return messages.check_in(answer)


# ---------------------------------------------------------------- the server


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 1 << 20),
    # gRPC core cancels calls at random once more than 1,000 wait to be picked up by the server
    # (all of them past 3,000): a flash sale's first second is exactly that. Let them queue; the
    # shield and PostgreSQL answer each quickly, and a CANCELLED says nothing useful to a fan.
    ("grpc.server.max_pending_requests", 20_000),
    ("grpc.server.max_pending_requests_hard_limit", 40_000),
]


class BindError(RuntimeError):
    pass


def bind_error(host: str, port: int) -> BindError:
    return BindError(
        f"cannot listen for gRPC on {_address(host, port)}: in use, or not a local address "
        "(set BOXOFFICE_GRPC_PORT)"
    )


async def start_server(runtime: Runtime, host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """The TicketService, health and reflection on host:port (0: a free port); returns the bound port.

    Several processes may serve one port: gRPC binds with SO_REUSEPORT and the kernel spreads
    connections over them."""
    server = grpc.aio.server(options=_SERVER_OPTIONS)
    pb_grpc.add_TicketServiceServicer_to_server(TicketService(runtime), server)  # type: ignore[no-untyped-call]
    checks = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        bound = server.add_insecure_port(_address(host, port))
    except RuntimeError as exc:
        raise bind_error(host, port) from exc
    await server.start()
    for name in ("", SERVICE_NAME):
        await checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, int(bound)
