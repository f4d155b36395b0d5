"""Waiting-room HTTP API (seed 000 paths kept). Thin: parse, authorize, call one service function."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from boxoffice import lean
from boxoffice.auth.dependencies import AdminUser, CurrentUser, authenticate_token, bearer_token
from boxoffice.deps import PathId, RuntimeDep, SessionDep
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import service
from boxoffice.waiting_room.schemas import (
    AdminQueueResponse,
    FairnessResponse,
    QueueJoinRequest,
    QueueSettingsUpdate,
    QueueStatusResponse,
    QueueTokenRequest,
    QueueTokenResponse,
    ServingResponse,
)

router = APIRouter(tags=["waiting room"])

ConcertQ = Annotated[int, Query(ge=1, le=2**63 - 1)]
ShowQ = Annotated[int, Query(ge=1, le=2**63 - 1)]
TICKET_MAX = 160


@router.post(
    "/api/queue",
    response_model=QueueStatusResponse,
    summary="Join a show's queue (twice = same place)",
    description="Served by `join_queue_hot` (same checks, same service call); declared here for OpenAPI.",
)
async def join_queue(body: QueueJoinRequest, claims: CurrentUser, runtime: RuntimeDep) -> QueueStatusResponse:
    return await service.join(runtime, claims.user_id, body.concert_id, body.show_id)


TicketHeader = Annotated[
    str | None,
    Header(
        max_length=TICKET_MAX,
        description="The queue_ticket of your last answer: waiting fans are then answered from the "
        "show's serving number alone",
    ),
]


@router.get(
    "/api/queue/status",
    response_model=QueueStatusResponse,
    summary="Where you stand; a token when READY",
    description="Served by `queue_status_hot` (same checks, same service call); declared here for OpenAPI.",
)
async def queue_status(
    concert_id: ConcertQ,
    show_id: ShowQ,
    claims: CurrentUser,
    runtime: RuntimeDep,
    x_queue_ticket: TicketHeader = None,
) -> QueueStatusResponse:
    return await service.status(runtime, claims.user_id, concert_id, show_id, ticket=x_queue_ticket)


@router.get(
    "/api/shows/{show_id}/queue/serving",
    response_model=ServingResponse,
    summary="The show's serving number and sale state (public, cacheable for 1 s, ETag)",
    description="Served by `queue_serving_hot`; declared here for OpenAPI. Your position is "
    "`ticket_number - serving`; send If-None-Match to get a 304 while nothing changed.",
    responses={304: {"description": "Not modified"}},
)
async def queue_serving(show_id: PathId, runtime: RuntimeDep) -> ServingResponse:
    return ServingResponse.model_validate_json((await service.board(runtime, show_id)).body)


async def join_queue_hot(request: Request) -> Response:
    """POST /api/queue without FastAPI's dependency solving (see boxoffice.lean): the whole crowd
    joins in the first seconds of a sale."""
    runtime: Runtime = request.app.state.runtime
    claims = await authenticate_token(runtime, bearer_token(request.headers.get("authorization")))
    request.state.user_id = claims.user_id
    body = await lean.json_body(request, QueueJoinRequest)
    result = await service.join(runtime, claims.user_id, body.concert_id, body.show_id)
    return Response(result.model_dump_json(), media_type="application/json")


async def queue_status_hot(request: Request) -> Response:
    """GET /api/queue/status without FastAPI's per-request dependency solving. Status polls are
    most of a flash sale's requests, and that layer was a third of each poll's CPU (see the README's
    Performance section). Same authentication, validation and service call as `queue_status`."""
    runtime: Runtime = request.app.state.runtime
    ticket = lean.header(request, "x-queue-ticket", TICKET_MAX)
    # With a ticket this is a waiting fan's poll: a deny-list answer from the last second will do.
    claims = await authenticate_token(
        runtime, bearer_token(request.headers.get("authorization")), recent_ok=ticket is not None
    )
    request.state.user_id = claims.user_id
    concert_id, show_id = lean.query_ids(request, "concert_id", "show_id")
    result = await service.status(runtime, claims.user_id, concert_id, show_id, ticket=ticket)
    return Response(result.model_dump_json(), media_type="application/json")


async def queue_serving_hot(request: Request) -> Response:
    """Public and cacheable: one rendered body per show per board read, shared by every poller."""
    runtime: Runtime = request.app.state.runtime
    (show_id,) = lean.path_ids(request, "show_id")
    board = await service.board(runtime, show_id)
    headers = {"Cache-Control": "public, max-age=1", "ETag": board.etag}
    if lean.etag_matches(request.headers.get("if-none-match"), board.etag):
        return Response(status_code=304, headers=headers)
    return Response(board.body, media_type="application/json", headers=headers)


# Routes the app mounts ahead of the FastAPI ones (the first match serves the request).
hot_routes = [
    lean.LeanRoute("/api/queue/status", queue_status_hot, methods=["GET"]),
    lean.LeanRoute("/api/shows/{show_id}/queue/serving", queue_serving_hot, methods=["GET"]),
    lean.LeanRoute("/api/queue", join_queue_hot, methods=["POST"]),
]


@router.delete("/api/queue", status_code=204, summary="Leave the queue (idempotent)")
async def leave_queue(
    concert_id: ConcertQ, show_id: ShowQ, claims: CurrentUser, runtime: RuntimeDep
) -> Response:
    await service.leave(runtime, claims.user_id, concert_id, show_id)
    return Response(status_code=204)


@router.post(
    "/api/reservations/token", response_model=QueueTokenResponse, summary="The admission token once READY"
)
async def reservation_token(
    body: QueueTokenRequest, claims: CurrentUser, runtime: RuntimeDep
) -> QueueTokenResponse:
    return await service.token(runtime, claims.user_id, body.concert_id, body.show_id)


@router.get(
    "/api/queue/stream",
    summary="Server-Sent Events: position and READY pushed to the waiting browser",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`event: status` with a QueueStatus"}
    },
)
async def queue_stream(
    request: Request,
    concert_id: ConcertQ,
    show_id: ShowQ,
    claims: CurrentUser,
    runtime: RuntimeDep,
    x_queue_ticket: TicketHeader = None,
    ticket: Annotated[
        str | None,
        Query(max_length=TICKET_MAX, description="The queue ticket (EventSource sends no headers)"),
    ] = None,
) -> StreamingResponse:
    # Validate before the stream starts so errors are ordinary problem+json responses.
    ticket = x_queue_ticket or ticket
    await service.status(runtime, claims.user_id, concert_id, show_id, touch=False, ticket=ticket)
    events = service.stream(
        runtime, claims.user_id, concert_id, show_id, request.is_disconnected, ticket=ticket
    )
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/api/shows/{show_id}/queue/fairness", response_model=FairnessResponse, summary="Pre-queue audit")
async def queue_fairness(show_id: PathId, runtime: RuntimeDep, session: SessionDep) -> FairnessResponse:
    return await service.fairness(runtime, session, show_id)


@router.post(
    "/api/admin/shows/{show_id}/queue/pause", response_model=AdminQueueResponse, summary="Pause admission"
)
async def pause_queue(
    show_id: PathId, _: AdminUser, runtime: RuntimeDep, session: SessionDep
) -> AdminQueueResponse:
    return await service.set_paused(runtime, session, show_id, True)


@router.post(
    "/api/admin/shows/{show_id}/queue/resume", response_model=AdminQueueResponse, summary="Resume admission"
)
async def resume_queue(
    show_id: PathId, _: AdminUser, runtime: RuntimeDep, session: SessionDep
) -> AdminQueueResponse:
    return await service.set_paused(runtime, session, show_id, False)


@router.patch(
    "/api/admin/shows/{show_id}/queue", response_model=AdminQueueResponse, summary="Change rate/cap live"
)
async def update_queue(
    show_id: PathId, body: QueueSettingsUpdate, _: AdminUser, runtime: RuntimeDep, session: SessionDep
) -> AdminQueueResponse:
    return await service.update_settings(runtime, session, show_id, body)


@router.get(
    "/api/admin/shows/{show_id}/queue", response_model=AdminQueueResponse, summary="Queue dashboard numbers"
)
async def admin_queue(
    show_id: PathId, _: AdminUser, runtime: RuntimeDep, session: SessionDep
) -> AdminQueueResponse:
    return await service.admin_view(runtime, session, show_id)
