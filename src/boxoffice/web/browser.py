"""The browser's own JSON and stream routes under /web/ (cookie session instead of Bearer tokens).

EventSource cannot send headers and no token may sit where a script can read it, so the pages'
scripts call these: the same service functions as the JSON API, authenticated by the session
cookies (and the show's admission-token cookie), writes checked for CSRF. Errors stay problem+json
(the scripts show their `detail`). Admission tokens never appear in a body or a URL here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from boxoffice.booking import flows as booking_flows
from boxoffice.booking import service as booking_service
from boxoffice.booking.schemas import HoldRequest
from boxoffice.catalog import seatmap
from boxoffice.http.deps import ID_MAX, PathId
from boxoffice.http.hot import etag_matches
from boxoffice.kit.clock import iso
from boxoffice.payments import service as payments_service
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import service as queue_service
from boxoffice.waiting_room.schemas import QueueStatusResponse
from boxoffice.waiting_room.tokens import check_queue_token
from boxoffice.web.session import CsrfChecked, PageUser, cookie, keep_queue_token, queue_token, set_cookie

router = APIRouter(include_in_schema=False)
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Never hand an admission token to a script: it lives in the bo_q_<show> HttpOnly cookie.
_SECRET_FIELDS = ("token", "queue_ticket")
TICKET_COOKIE = "bo_qt_{}"  # the fan's signed number in line: polls then read the shared serving board


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _public(view: QueueStatusResponse) -> dict[str, Any]:
    body = view.model_dump(mode="json")
    for name in _SECRET_FIELDS:
        body.pop(name, None)
    return body


# ---------------------------------------------------------------- waiting room


# The waiting room's routes take the concert from the page (the queue checks it matches the show),
# so a poll costs what an API poll costs: no PostgreSQL.
ConcertId = Annotated[int, Query(ge=1, le=ID_MAX)]


@router.get("/web/queue/{show_id}/status")
async def queue_status(
    request: Request, show_id: PathId, concert_id: ConcertId, user: PageUser
) -> JSONResponse:
    runtime = _runtime(request)
    ticket = cookie(request, TICKET_COOKIE.format(show_id))
    view = await queue_service.status(
        runtime, user.user_id, concert_id, show_id, ticket=ticket if ticket and len(ticket) <= 4096 else None
    )
    if view.queue_ticket and view.queue_ticket != ticket:
        set_cookie(request, TICKET_COOKIE.format(show_id), view.queue_ticket, max_age=24 * 3600)
    return JSONResponse(_public(view), headers={"Cache-Control": "no-store"})


@router.get("/web/queue/{show_id}/stream")
async def queue_stream(
    request: Request, show_id: PathId, concert_id: ConcertId, user: PageUser
) -> StreamingResponse:
    runtime = _runtime(request)
    await queue_service.status(runtime, user.user_id, concert_id, show_id, touch=False)
    events = queue_service.stream(runtime, user.user_id, concert_id, show_id, request.is_disconnected)
    return StreamingResponse(
        runtime.streams.open(user.user_id, _without_tokens(events)),  # 429 STREAM_LIMIT past the caps
        media_type="text/event-stream",
        headers=_STREAM_HEADERS,
    )


async def _without_tokens(events: AsyncIterator[str]) -> AsyncIterator[str]:
    """The queue's SSE with the admission token taken out of every status event."""
    async for chunk in events:
        head, sep, data = chunk.partition("\ndata: ")
        if sep and head.startswith("event: status"):
            body = json.loads(data)
            for name in _SECRET_FIELDS:
                body.pop(name, None)
            chunk = f"{head}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n"
        yield chunk


@router.get("/web/queue/{show_id}/challenge")
async def queue_challenge(request: Request, show_id: PathId, user: PageUser) -> JSONResponse:
    """The toll's challenge for the page's solver (the same as GET /api/shows/{id}/queue/challenge)."""
    found = await queue_service.challenge(_runtime(request), user.user_id, show_id)
    return JSONResponse(found.model_dump(), headers={"Cache-Control": "no-store"})


@router.get("/web/shows/{show_id}/waitlist")
async def waitlist(request: Request, show_id: PathId, user: PageUser) -> JSONResponse:
    """The waitlisted fan's page polls this: WAITING with a position, then OFFERED (pay by then)."""
    async with _runtime(request).sessions() as session:
        found = await queue_service.waitlist_status(session, user.user_id, show_id)
    body = found.model_dump(mode="json")
    if found.reservation_id is not None:
        body["checkout_url"] = f"/reservations/{found.reservation_id}/checkout"
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get("/web/shows/{show_id}/waitlist/stream")
async def waitlist_stream(request: Request, show_id: PathId, user: PageUser) -> StreamingResponse:
    """The waitlisted fan's page listens here: the place now, then the offer the moment it is made."""
    runtime = _runtime(request)
    events = booking_flows.waitlist_events(runtime, user.user_id, show_id)
    return StreamingResponse(
        runtime.streams.open(user.user_id, events),  # 429 STREAM_LIMIT past the per-user/process caps
        media_type="text/event-stream",
        headers=_STREAM_HEADERS,
    )


@router.post("/web/queue/{show_id}/admit", dependencies=[CsrfChecked])
async def admit(request: Request, show_id: PathId, concert_id: ConcertId, user: PageUser) -> JSONResponse:
    """READY: the admission token goes into this browser's HttpOnly cookie for the show."""
    runtime = _runtime(request)
    answer = await queue_service.token(runtime, user.user_id, concert_id, show_id)
    body: dict[str, Any] = {"status": answer.status, "position": answer.position}
    if answer.token is not None and answer.expires_at is not None:
        ttl = int((answer.expires_at - runtime.clock.now()).total_seconds())
        keep_queue_token(request, show_id, answer.token, max_age=max(1, ttl))
        body["seat_map_url"] = f"/shows/{show_id}/seats"
        body["expires_at"] = iso(answer.expires_at)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------- seats


@router.get("/web/shows/{show_id}/seats")
async def seats(request: Request, show_id: PathId, user: PageUser) -> Response:
    runtime = _runtime(request)
    await check_queue_token(runtime, user.user_id, show_id, queue_token(request, show_id))
    body = await seatmap.seat_map(runtime, show_id)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/web/shows/{show_id}/seats/status")
async def seat_status(request: Request, show_id: PathId, user: PageUser) -> Response:
    """The page's statuses (GET /api/shows/{id}/seats/status for the browser's cookies); the page
    fetches the layout once from the public, cacheable /api/shows/{id}/seats/layout?v=."""
    runtime = _runtime(request)
    await check_queue_token(runtime, user.user_id, show_id, queue_token(request, show_id))
    found = await seatmap.view(runtime, show_id)
    headers = {"ETag": found.etag, "Cache-Control": "private, no-cache"}
    if etag_matches(request.headers.get("if-none-match"), found.etag):
        return Response(status_code=304, headers=headers)
    return Response(found.status_body, media_type="application/json", headers=headers)


@router.get("/web/shows/{show_id}/seats/stream")
async def seat_stream(
    request: Request,
    show_id: PathId,
    user: PageUser,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    runtime = _runtime(request)
    await check_queue_token(runtime, user.user_id, show_id, queue_token(request, show_id))
    events = booking_service.seat_event_stream(runtime, show_id, last_event_id)
    return StreamingResponse(
        runtime.streams.open(user.user_id, events),  # 429 STREAM_LIMIT past the per-user/process caps
        media_type="text/event-stream",
        headers=_STREAM_HEADERS,
    )


@router.post("/web/reservations", dependencies=[CsrfChecked])
async def hold(
    request: Request,
    body: HoldRequest,
    user: PageUser,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    """The seat map's hold (chosen seats or best available), answered like POST /api/reservations."""
    runtime = _runtime(request)
    result = await booking_flows.place_hold(
        runtime,
        user_id=user.user_id,
        show_id=body.show_id,
        seat_ids=body.seat_ids,
        quantity=body.quantity,
        section=body.section,
        price=body.price,
        queue_token=queue_token(request, body.show_id),
        idempotency_key=idempotency_key,
    )
    answer = dict(result.body)
    answer["checkout_url"] = f"/reservations/{answer['reservation_id']}/checkout"
    return JSONResponse(answer, status_code=result.status)


@router.get("/web/reservations/{reservation_id}")
async def reservation(request: Request, reservation_id: PathId, user: PageUser) -> JSONResponse:
    """What the checkout polls while a card payment is being confirmed."""
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        found = await booking_service.get_reservation(session, user.user_id, reservation_id)
    return JSONResponse(
        {"reservation_id": found["reservation_id"], "status": found["status"]},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/web/payments/{payment_id}")
async def payment(request: Request, payment_id: PathId, user: PageUser) -> JSONResponse:
    """A card payment's state, polled by the checkout while it shows "confirming"."""
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        found = await payments_service.get_payment(session, user.user_id, payment_id)
    return JSONResponse(
        {k: found[k] for k in ("payment_id", "reservation_id", "status", "failure_code")},
        headers={"Cache-Control": "no-store"},
    )
