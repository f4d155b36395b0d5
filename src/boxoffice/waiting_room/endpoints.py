"""Waiting-room HTTP API (seed 000 paths kept). Thin: parse, authorize, call one service function."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from boxoffice import lean
from boxoffice.auth.dependencies import AdminUser, CurrentUser
from boxoffice.deps import PathId, QueryId, RuntimeDep, SessionDep
from boxoffice.waiting_room import service
from boxoffice.waiting_room.schemas import (
    AdminQueueResponse,
    FairnessResponse,
    QueueJoinRequest,
    QueueSettingsUpdate,
    QueueStatusResponse,
    QueueTokenRequest,
    QueueTokenResponse,
)

router = APIRouter(tags=["waiting room"])

ConcertQ = QueryId
ShowQ = QueryId


async def _join(hot: lean.HotInput) -> Response:
    body: QueueJoinRequest = hot.body
    result = await service.join(hot.runtime, hot.claims.user_id, body.concert_id, body.show_id)
    return Response(result.model_dump_json(), media_type="application/json")


async def _status(hot: lean.HotInput) -> Response:
    concert_id, show_id = hot.ids
    result = await service.status(hot.runtime, hot.claims.user_id, concert_id, show_id)
    return Response(result.model_dump_json(), media_type="application/json")


# Status polls are most of a flash sale's requests and the whole crowd joins in its first seconds;
# FastAPI's dependency solving was a third of each one's CPU (see the README's Performance
# section), so both are lean routes (see boxoffice.lean), declared once here.
STATUS = lean.HotRoute(
    "/api/queue/status",
    "GET",
    _status,
    response_model=QueueStatusResponse,
    summary="Where you stand; a token when READY",
    tags=["waiting room"],
    query_ids=("concert_id", "show_id"),
)
JOIN = lean.HotRoute(
    "/api/queue",
    "POST",
    _join,
    response_model=QueueStatusResponse,
    summary="Join a show's queue (twice = same place)",
    tags=["waiting room"],
    body=QueueJoinRequest,
)
hot_routes = [STATUS, JOIN]
router.routes.extend([STATUS.documented(), JOIN.documented()])


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
    request: Request, concert_id: ConcertQ, show_id: ShowQ, claims: CurrentUser, runtime: RuntimeDep
) -> StreamingResponse:
    # Validate before the stream starts so errors are ordinary problem+json responses.
    await service.status(runtime, claims.user_id, concert_id, show_id, touch=False)
    events = service.stream(runtime, claims.user_id, concert_id, show_id, request.is_disconnected)
    runtime.streams.acquire(claims.user_id)  # 429 STREAM_LIMIT past the per-user/process caps
    return StreamingResponse(
        runtime.streams.hold(claims.user_id, events),
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
