"""Booking endpoints: thin (parse, authorize, call one service function)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from boxoffice import lean
from boxoffice.auth.dependencies import CurrentUser, authenticate_token, bearer_token
from boxoffice.booking import service
from boxoffice.booking.schemas import HoldOut, HoldRequest, ReservationOut, ReservationPage
from boxoffice.deps import RuntimeDep, SessionDep
from boxoffice.runtime import Runtime
from boxoffice.waiting_room.tokens import QueueGate

router = APIRouter(tags=["reservations"])
ReservationId = Annotated[int, Path(ge=1, le=2**62)]

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing/invalid access or queue token"},
    403: {"description": "Queue token for another user or show"},
    404: {"description": "Not found"},
    409: {
        "description": "SEATS_TAKEN (seat_ids) / NO_ADJACENT_SEATS (quantity) / HOLD_EXISTS / SALE_CLOSED"
        " / REFUND_CLOSED"
    },
    422: {"description": "Invalid request (field locations in `errors`)"},
}


@router.post(
    "/api/reservations",
    status_code=201,
    response_model=HoldOut,
    responses=_PROBLEMS,
    summary="Hold seats (all or none) for the show's hold time; or the best N adjacent seats",
    description="Served by `hold_seats_hot` (same checks, same service call); declared here for OpenAPI.",
)
async def hold_seats(
    body: HoldRequest,
    claims: CurrentUser,
    runtime: RuntimeDep,
    x_queue_token: Annotated[str | None, Header(max_length=4096)] = None,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    result = await service.place_hold(
        runtime,
        user_id=claims.user_id,
        show_id=body.show_id,
        seat_ids=body.seat_ids,
        quantity=body.quantity,
        section=body.section,
        price=body.price,
        queue_token=x_queue_token,
        idempotency_key=idempotency_key,
    )
    return result.as_response()


async def hold_seats_hot(request: Request) -> Response:
    """POST /api/reservations without FastAPI's dependency solving (see boxoffice.lean): in a flash
    sale most holds are refusals, and the framework was a third of each one's CPU."""
    runtime: Runtime = request.app.state.runtime
    claims = await authenticate_token(runtime, bearer_token(request.headers.get("authorization")))
    request.state.user_id = claims.user_id
    body = await lean.json_body(request, HoldRequest)
    result = await service.place_hold(
        runtime,
        user_id=claims.user_id,
        show_id=body.show_id,
        seat_ids=body.seat_ids,
        quantity=body.quantity,
        section=body.section,
        price=body.price,
        queue_token=lean.header(request, "x-queue-token", 4096),
        idempotency_key=lean.header(request, "idempotency-key", 255),
    )
    return result.as_response()


# Routes the app mounts ahead of the FastAPI ones (the first match serves the request).
hot_routes = [Route("/api/reservations", hold_seats_hot, methods=["POST"])]


@router.get("/api/reservations", response_model=ReservationPage, summary="My reservations, newest first")
async def my_reservations(
    claims: CurrentUser,
    session: SessionDep,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="Reservation id cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    return await service.list_reservations(session, claims.user_id, before=before, limit=limit)


@router.get(
    "/api/reservations/{reservation_id}",
    response_model=ReservationOut,
    responses=_PROBLEMS,
    summary="One of mine",
)
async def get_reservation(
    reservation_id: ReservationId,
    claims: CurrentUser,
    session: SessionDep,
) -> dict[str, Any]:
    return await service.get_reservation(session, claims.user_id, reservation_id)


@router.delete(
    "/api/reservations/{reservation_id}",
    response_model=ReservationOut,
    responses=_PROBLEMS,
    summary="Cancel a hold, or refund a paid reservation (until 24 h before the show)",
)
async def cancel_reservation(
    reservation_id: ReservationId, claims: CurrentUser, runtime: RuntimeDep
) -> dict[str, Any]:
    return await service.cancel(runtime, user_id=claims.user_id, reservation_id=reservation_id)


@router.get(
    "/api/shows/{show_id}/seats/stream",
    tags=["seats"],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events (event: seats)"}
    },
    summary="Live seat status changes (Server-Sent Events)",
)
async def seat_stream(
    show_id: Annotated[int, Path(ge=1, le=2**62)],
    gate: QueueGate,
    runtime: RuntimeDep,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    return StreamingResponse(
        service.seat_event_stream(runtime, show_id, last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
