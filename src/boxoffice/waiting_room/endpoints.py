"""Waiting-room HTTP API (seed 000 paths kept). Thin: parse, authorize, call one service function."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from boxoffice import errors as e
from boxoffice.auth.dependencies import AdminUser, CurrentUser
from boxoffice.http import hot as lean
from boxoffice.http.deps import PathId, QueryId, RuntimeDep, SessionDep
from boxoffice.http.problems import problems
from boxoffice.waiting_room import service
from boxoffice.waiting_room.schemas import (
    AdminQueueResponse,
    ChallengeResponse,
    FairnessResponse,
    QueueJoinRequest,
    QueueSettingsUpdate,
    QueueStatusResponse,
    QueueTokenRequest,
    QueueTokenResponse,
    ServingResponse,
    WaitlistStatus,
)

router = APIRouter(tags=["waiting room"])

ConcertQ = QueryId
ShowQ = QueryId
TICKET_MAX = 160
ALTCHA_MAX = 1024
TOLL_HOWTO = (
    "The toll at the door: unless the show's `queue.pow_difficulty` is 0, a join needs a solved "
    "proof-of-work challenge, in ALTCHA's wire format (any ALTCHA client or widget solves it). "
    "1. `GET /api/shows/{show_id}/queue/challenge` answers `{algorithm, challenge, maxnumber, salt, "
    "signature}`. 2. Find the integer n in [0, maxnumber] with hex(SHA-256(salt + decimal n)) == "
    "challenge (try n = 0, 1, 2, ...: maxnumber / 2 hashes on average; about a second in a phone's "
    "Web Worker at the default 100,000). 3. Send base64(JSON {algorithm, challenge, number: n, salt, "
    "signature}) as the `X-Altcha` header of this request. A challenge is bound to your account and "
    "the show, lives 5 minutes and is spent by one join; the difficulty rises with the crowd (the "
    "join rate against the admission rate, up to 10x). Refusals: 428 QUEUE_CHALLENGE_REQUIRED (no "
    "solution), 400 QUEUE_CHALLENGE_INVALID (unreadable, not ours, or the wrong number), 403 "
    "QUEUE_CHALLENGE_EXPIRED, 403 QUEUE_CHALLENGE_MISMATCH (another show or account), 409 "
    "QUEUE_CHALLENGE_REPLAYED (already spent). Solving fast buys nothing: the pre-queue's order is "
    "drawn at random, and afterwards the line keeps join order."
)
TicketHeader = Annotated[str | None, Header(max_length=TICKET_MAX, description="Your queue_ticket")]


def _join_first_round(hot: lean.HotInput) -> service.JoinFirstRound:
    body: QueueJoinRequest = hot.body
    return service.join_first_round(hot.runtime, hot.claims.user_id, body.show_id)


async def _join(hot: lean.HotInput) -> Response:
    body: QueueJoinRequest = hot.body
    result = await service.join(
        hot.runtime,
        hot.claims.user_id,
        body.concert_id,
        body.show_id,
        hot.headers["X-Altcha"],
        first=hot.first,
    )
    return Response(result.model_dump_json(), media_type="application/json")


async def _status(hot: lean.HotInput) -> Response:
    concert_id, show_id = hot.ids
    ticket = hot.headers["X-Queue-Ticket"]
    result = await service.status(hot.runtime, hot.claims.user_id, concert_id, show_id, ticket=ticket)
    return Response(result.model_dump_json(), media_type="application/json")


# Status polls are most of a flash sale's requests and the whole crowd joins in its first seconds;
# FastAPI's dependency solving was a third of each one's CPU (see the README's Performance
# section), so both are lean routes (see boxoffice.http.hot), declared once here.
STATUS = lean.HotRoute(
    "/api/queue/status",
    "GET",
    _status,
    response_model=QueueStatusResponse,
    summary="Where you stand; a token when READY",
    tags=["waiting room"],
    query_ids=("concert_id", "show_id"),
    headers=(
        lean.Header(
            "X-Queue-Ticket",
            TICKET_MAX,
            "The queue_ticket of your last answer: a waiting fan is then answered from the show's "
            "serving number alone",
        ),
    ),
    # a ticket poll is a waiting fan's: a deny-list answer from the last second will do
    recent_auth_with="X-Queue-Ticket",
    errors=(e.QueueTicketRefused, e.QueueTicketForeign, e.ShowNotFound),
)
JOIN = lean.HotRoute(
    "/api/queue",
    "POST",
    _join,
    response_model=QueueStatusResponse,
    summary="Join a show's queue (twice = same place)",
    tags=["waiting room"],
    body=QueueJoinRequest,
    first_round=_join_first_round,  # the rate limit's count and the show's settings
    description=TOLL_HOWTO,
    headers=(
        lean.Header(
            "X-Altcha",
            ALTCHA_MAX,
            "The solved challenge: base64 of ALTCHA's JSON payload {algorithm, challenge, number, salt, "
            "signature} (see the description); needed unless the show's pow_difficulty is 0",
        ),
    ),
    errors=(
        e.RateLimited,
        e.ShowNotFound,
        e.SaleNotOpen,
        e.SaleClosed,
        e.SoldOut,
        e.QueueChallengeRequired,
        e.QueueChallengeInvalid,
        e.QueueChallengeExpired,
        e.QueueChallengeForeign,
        e.QueueChallengeReplayed,
    ),
)


async def _serving(request: Request, show_id: int) -> Response:
    """Public and cacheable: one rendered body per show per board read, shared by every poller."""
    board = await service.board(request.app.state.runtime, show_id)
    headers = {"Cache-Control": "public, max-age=1", "ETag": board.etag}
    if lean.etag_matches(request.headers.get("if-none-match"), board.etag):
        return Response(status_code=304, headers=headers)
    return Response(board.body, media_type="application/json", headers=headers)


SERVING = lean.PublicRoute("/api/shows/{show_id}/queue/serving", "GET", _serving, path_id="show_id")
hot_routes: list[lean.AnyHotRoute] = [STATUS, JOIN, SERVING]
router.routes.extend([STATUS.documented(), JOIN.documented()])


@router.get(
    "/api/shows/{show_id}/queue/serving",
    response_model=ServingResponse,
    summary="The show's serving number and sale state (public, cacheable for 1 s, ETag)",
    description="Your position is `ticket_number - serving`; send If-None-Match to get a 304 while "
    "nothing changed. Served by a lean route; this twin calls the same handler.",
    responses={304: {"description": "Not modified"}, **problems(e.ShowNotFound)},
)
async def queue_serving(request: Request, show_id: PathId) -> Response:
    return await _serving(request, show_id)


@router.get(
    "/api/shows/{show_id}/queue/challenge",
    response_model=ChallengeResponse,
    summary="A proof-of-work challenge to join the show's queue (ALTCHA format)",
    description=TOLL_HOWTO,
    responses={**problems(e.ShowNotFound), 200: {"headers": {"Cache-Control": {"description": "no-store"}}}},
)
async def queue_challenge(
    show_id: PathId, claims: CurrentUser, runtime: RuntimeDep, response: Response
) -> ChallengeResponse:
    response.headers["Cache-Control"] = "no-store"
    return await service.challenge(runtime, claims.user_id, show_id)


WAITLIST_HOWTO = (
    "A second chance in order: when the show says SOLD_OUT or LAST_SEATS_HELD, join its waitlist. "
    "Every seat that returns (a hold that lapses or is released, a refund) is offered to the next "
    "waitlisted fan: it is held for you for the show's hold time (status OFFERED, reservation_id, "
    "offer_expires_at); pay for it like any hold (POST /api/payments) or let it go to the next fan. "
    "While anyone waits, returned seats are not open to other holds."
)


@router.post(
    "/api/shows/{show_id}/waitlist",
    response_model=WaitlistStatus,
    summary="Join the show's waitlist (sold out only; twice = the same place)",
    description=WAITLIST_HOWTO,
    responses=problems(e.ShowNotFound, e.WaitlistNotOpen),
)
async def join_waitlist(
    show_id: PathId, claims: CurrentUser, runtime: RuntimeDep, session: SessionDep
) -> WaitlistStatus:
    return await service.join_waitlist(runtime, session, claims.user_id, show_id)


@router.get(
    "/api/shows/{show_id}/waitlist",
    response_model=WaitlistStatus,
    summary="Where you stand on the waitlist; your offer when a seat came back",
    description=WAITLIST_HOWTO,
)
async def waitlist_status(show_id: PathId, claims: CurrentUser, session: SessionDep) -> WaitlistStatus:
    return await service.waitlist_status(session, claims.user_id, show_id)


@router.delete("/api/shows/{show_id}/waitlist", status_code=204, summary="Leave the waitlist (idempotent)")
async def leave_waitlist(
    show_id: PathId, claims: CurrentUser, runtime: RuntimeDep, session: SessionDep
) -> Response:
    await service.leave_waitlist(runtime, session, claims.user_id, show_id)
    return Response(status_code=204)


@router.delete(
    "/api/queue", status_code=204, summary="Leave the queue (idempotent)", responses=problems(e.ShowNotFound)
)
async def leave_queue(
    concert_id: ConcertQ, show_id: ShowQ, claims: CurrentUser, runtime: RuntimeDep
) -> Response:
    await service.leave(runtime, claims.user_id, concert_id, show_id)
    return Response(status_code=204)


@router.post(
    "/api/reservations/token",
    response_model=QueueTokenResponse,
    summary="The admission token once READY",
    responses=problems(e.ShowNotFound),
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
        200: {"content": {"text/event-stream": {}}, "description": "`event: status` with a QueueStatus"},
        **problems(e.QueueTicketRefused, e.QueueTicketForeign, e.ShowNotFound, e.StreamLimit),
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
        runtime.streams.open(claims.user_id, events),  # 429 STREAM_LIMIT past the per-user/process caps
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/api/shows/{show_id}/queue/fairness",
    response_model=FairnessResponse,
    summary="Pre-queue audit",
    responses=problems(e.ShowNotFound),
)
async def queue_fairness(show_id: PathId, runtime: RuntimeDep, session: SessionDep) -> FairnessResponse:
    return await service.fairness(runtime, session, show_id)


@router.post(
    "/api/admin/shows/{show_id}/queue/pause",
    response_model=AdminQueueResponse,
    summary="Pause admission",
    responses=problems(e.ShowNotFound),
)
async def pause_queue(
    show_id: PathId, _: AdminUser, runtime: RuntimeDep, session: SessionDep
) -> AdminQueueResponse:
    return await service.set_paused(runtime, session, show_id, True)


@router.post(
    "/api/admin/shows/{show_id}/queue/resume",
    response_model=AdminQueueResponse,
    summary="Resume admission",
    responses=problems(e.ShowNotFound),
)
async def resume_queue(
    show_id: PathId, _: AdminUser, runtime: RuntimeDep, session: SessionDep
) -> AdminQueueResponse:
    return await service.set_paused(runtime, session, show_id, False)


@router.patch(
    "/api/admin/shows/{show_id}/queue",
    response_model=AdminQueueResponse,
    summary="Change rate, cap, toll or adaptive admission live",
    responses=problems(e.ShowNotFound),
)
async def update_queue(
    show_id: PathId, body: QueueSettingsUpdate, _: AdminUser, runtime: RuntimeDep, session: SessionDep
) -> AdminQueueResponse:
    return await service.update_settings(runtime, session, show_id, body)


@router.get(
    "/api/admin/shows/{show_id}/queue",
    response_model=AdminQueueResponse,
    summary="Queue dashboard numbers",
    responses=problems(e.ShowNotFound),
)
async def admin_queue(
    show_id: PathId, _: AdminUser, runtime: RuntimeDep, session: SessionDep
) -> AdminQueueResponse:
    return await service.admin_view(runtime, session, show_id)
