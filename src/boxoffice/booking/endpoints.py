"""Booking endpoints: thin (parse, authorize, call one flow or service function).

DELETE /api/reservations/{id} is in payments/endpoints.py: cancelling a paid reservation is a refund.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from boxoffice import errors as e
from boxoffice.auth.dependencies import CurrentUser
from boxoffice.booking import flows, service
from boxoffice.booking.schemas import HoldOut, HoldRequest, ReservationOut, ReservationPage
from boxoffice.db.idempotency import MAX_KEY_LENGTH
from boxoffice.http import hot as lean
from boxoffice.http.deps import PathId, RuntimeDep, SessionDep, respond
from boxoffice.http.problems import problems
from boxoffice.kit.ids import ID_MAX
from boxoffice.kit.inputs import WholeNumber
from boxoffice.waiting_room.dependencies import QueueGate

router = APIRouter(tags=["reservations"])
ReservationId = PathId
# Digits only at routing, so that /api/reservations/token (POST, the waiting room's) is not also
# read as a reservation id: its other methods are a 405, and a non-numeric id finds no route (404).
RESERVATION = "/api/reservations/{reservation_id:int}"
RESERVATION_PROBLEMS = (e.NotFound, e.ReservationNotFound)


async def _hold(hot: lean.HotInput) -> Response:
    body: HoldRequest = hot.body
    result = await flows.place_hold(
        hot.runtime,
        user_id=hot.claims.user_id,
        show_id=body.show_id,
        seat_ids=body.seat_ids,
        quantity=body.quantity,
        section=body.section,
        price=body.price,
        queue_token=hot.headers["X-Queue-Token"],
        idempotency_key=hot.headers["Idempotency-Key"],
        first=hot.first,
    )
    return respond(result)


def _hold_first_round(hot: lean.HotInput) -> flows.HoldFirstRound:
    return flows.hold_first_round(hot.runtime, hot.claims.user_id, hot.body.show_id, hot.body.seat_ids)


# In a flash sale most holds are refusals, and FastAPI's dependency solving was a third of each
# one's CPU: the hold is a lean route (see boxoffice.http.hot), declared once here.
HOLD = lean.HotRoute(
    "/api/reservations",
    "POST",
    _hold,
    response_model=HoldOut,
    status_code=201,
    summary="Hold seats (all or none) for the show's hold time; or the best N adjacent seats",
    tags=["reservations"],
    body=HoldRequest,
    first_round=_hold_first_round,
    headers=(
        lean.Header("X-Queue-Token", 4096, "Admission token from the waiting room", required=True),
        lean.Header("Idempotency-Key", MAX_KEY_LENGTH, "Optional; the same key replays the first answer"),
    ),
    errors=(
        e.QueueTokenRequired,
        e.QueueTokenRefused,
        e.QueueTokenForeign,
        e.RateLimited,
        e.ShowNotFound,
        e.SeatsTaken,
        e.SeatsCoolingDown,
        e.EmailNotVerified,
        e.NoAdjacentSeats,
        e.UnknownSection,
        e.HoldExists,
        e.TicketLimitReached,
        e.SaleClosed,
        e.SeatsNotInShow,
        e.DuplicateSeats,
        e.TooManySeats,
        e.IdempotencyKeyInvalid,
        e.IdempotencyKeyReused,
        e.IdempotencyInProgress,
    ),
)
hot_routes = [HOLD]
router.routes.append(HOLD.documented())


@router.get("/api/reservations", response_model=ReservationPage, summary="My reservations, newest first")
async def my_reservations(
    claims: CurrentUser,
    session: SessionDep,
    before: Annotated[WholeNumber | None, Query(ge=1, le=ID_MAX, description="Reservation id cursor")] = None,
    limit: Annotated[WholeNumber, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    return await service.list_reservations(session, claims.user_id, before=before, limit=limit)


@router.get(
    RESERVATION,
    response_model=ReservationOut,
    responses=problems(*RESERVATION_PROBLEMS),
    summary="One of mine",
)
async def get_reservation(
    reservation_id: ReservationId,
    claims: CurrentUser,
    session: SessionDep,
) -> dict[str, Any]:
    return await service.get_reservation(session, claims.user_id, reservation_id)


@router.get(
    "/api/shows/{show_id}/seats/stream",
    tags=["seats"],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events (event: seats)"},
        **problems(e.StreamLimit),
    },
    summary="Live seat status changes (Server-Sent Events)",
)
async def seat_stream(
    show_id: PathId,
    gate: QueueGate,
    runtime: RuntimeDep,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    return StreamingResponse(
        # 429 STREAM_LIMIT past the per-user/process caps
        runtime.streams.open(gate.user_id, service.seat_event_stream(runtime, show_id, last_event_id)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
