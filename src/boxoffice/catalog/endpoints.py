"""Catalog API: admin (venues, concerts, shows), public listings, the queue-gated seat map.

Thin: parse, authorize, call one service function. The request's unit of work (SessionDep) commits
when the endpoint returns.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, cast, get_args

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from boxoffice import errors as e
from boxoffice.auth.dependencies import AdminUser
from boxoffice.catalog import seatmap, service
from boxoffice.catalog.schemas import (
    ConcertDetail,
    ConcertIn,
    ConcertOut,
    ConcertPage,
    ConcertPatch,
    SeatLayoutOut,
    SeatMapOut,
    SeatStatus,
    SeatStatusOut,
    ShowIn,
    ShowList,
    ShowOut,
    ShowPatch,
    VenueIn,
    VenueOut,
)
from boxoffice.http import hot as lean
from boxoffice.http.deps import PathId, RuntimeDep, SessionDep
from boxoffice.http.problems import problems
from boxoffice.kit.inputs import Text, Timestamp, WholeNumber
from boxoffice.waiting_room.tokens import admission_read, check_queue_token

router = APIRouter()

Id = PathId


# ---- admin -------------------------------------------------------------------------------------


@router.post(
    "/api/admin/venues",
    status_code=201,
    response_model=VenueOut,
    tags=["admin"],
    summary="Create a venue with its seat layout",
    responses=problems(e.InvalidLayout),
)
async def create_venue(body: VenueIn, _: AdminUser, session: SessionDep) -> dict[str, Any]:
    return await service.create_venue(session, body)


@router.get("/api/admin/venues", response_model=list[VenueOut], tags=["admin"], summary="All venues")
async def list_venues(_: AdminUser, session: SessionDep) -> list[dict[str, Any]]:
    return await service.list_venues(session)


@router.get(
    "/api/admin/venues/{venue_id}",
    response_model=VenueOut,
    tags=["admin"],
    summary="A venue with its sections",
    responses=problems(e.VenueNotFound),
)
async def get_venue(venue_id: Id, _: AdminUser, session: SessionDep) -> dict[str, Any]:
    return await service.get_venue(session, venue_id)


@router.post(
    "/api/admin/concerts",
    status_code=201,
    response_model=ConcertOut,
    tags=["admin"],
    summary="Create a concert at a venue",
    responses=problems((422, e.VenueNotFound)),  # the venue_id field names no venue
)
async def create_concert(body: ConcertIn, _: AdminUser, session: SessionDep) -> dict[str, Any]:
    return await service.create_concert(session, body)


@router.patch(
    "/api/admin/concerts/{concert_id}",
    response_model=ConcertOut,
    tags=["admin"],
    summary="Change a concert's name, artist or description",
    responses=problems(e.ConcertNotFound),
)
async def update_concert(
    concert_id: Id, body: ConcertPatch, _: AdminUser, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    return await service.update_concert(session, runtime.clock, concert_id, body)


@router.get(
    "/api/admin/concerts",
    response_model=ConcertPage,
    tags=["admin"],
    summary="All concerts, retired ones included",
)
async def admin_list_concerts(
    _: AdminUser,
    session: SessionDep,
    limit: Annotated[WholeNumber, Query(ge=1, le=100)] = 100,
    offset: Annotated[WholeNumber, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    return await service.list_concerts(session, limit=limit, offset=offset, include_retired=True)


@router.post(
    "/api/admin/concerts/{concert_id}/retire",
    response_model=ConcertOut,
    tags=["admin"],
    summary="Retire a concert: out of the public listing, history kept",
    responses=problems(e.ConcertNotFound, e.ConcertHasLiveShows),
)
async def retire_concert(
    concert_id: Id, _: AdminUser, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    return await service.retire_concert(session, runtime.clock, concert_id)


@router.delete(
    "/api/admin/concerts/{concert_id}",
    status_code=204,
    tags=["admin"],
    summary="Delete a concert and its shows (only while nothing is held or sold)",
    responses=problems(e.ConcertNotFound, e.ShowHasBookings),
)
async def delete_concert(concert_id: Id, _: AdminUser, session: SessionDep, runtime: RuntimeDep) -> Response:
    await service.delete_concert(session, runtime.redis, concert_id)
    return Response(status_code=204)


@router.post(
    "/api/admin/concerts/{concert_id}/shows",
    status_code=201,
    response_model=ShowOut,
    tags=["admin"],
    summary="Create a show: prices per section, sale window, queue settings; generates its seats",
    responses=problems(e.ConcertNotFound, e.InvalidShow),
)
async def create_show(
    concert_id: Id, body: ShowIn, _: AdminUser, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    return await service.create_show(
        session, runtime.clock, concert_id, body, default_hold_seconds=runtime.settings.default_hold_seconds
    )


@router.patch(
    "/api/admin/shows/{show_id}",
    response_model=ShowOut,
    tags=["admin"],
    summary="Change a show's date, sale window, prices, hold time, seat limit, refund policy or queue",
    description="Once the queue or the sale opened, the opening, the pre-queue, prices and the seat "
    "limit are frozen: 409 SALE_STARTED names each refused field.",
    responses=problems(e.ShowNotFound, e.InvalidShow, e.SaleStarted),
)
async def update_show(
    show_id: Id, body: ShowPatch, _: AdminUser, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    return await service.update_show(session, runtime.clock, show_id, body)


@router.delete(
    "/api/admin/shows/{show_id}",
    status_code=204,
    tags=["admin"],
    summary="Delete a show (only while nothing is held or sold)",
    responses=problems(e.ShowNotFound, e.ShowHasBookings),
)
async def delete_show(show_id: Id, _: AdminUser, session: SessionDep, runtime: RuntimeDep) -> Response:
    await service.delete_show(session, runtime.redis, show_id)
    return Response(status_code=204)


# ---- public ------------------------------------------------------------------------------------


@router.get("/api/concerts", response_model=ConcertPage, tags=["catalog"], summary="List concerts")
async def list_concerts(
    session: SessionDep,
    q: Annotated[Text | None, Query(min_length=1, max_length=200, description="In name or artist")] = None,
    artist: Annotated[Text | None, Query(min_length=1, max_length=200)] = None,
    starts_from: Annotated[
        Timestamp | None, Query(description="A show starts at or after (ISO 8601 with offset)")
    ] = None,
    starts_to: Annotated[Timestamp | None, Query(description="A show starts before")] = None,
    limit: Annotated[WholeNumber, Query(ge=1, le=100)] = 20,
    offset: Annotated[WholeNumber, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    return await service.list_concerts(
        session, q=q, artist=artist, starts_from=starts_from, starts_to=starts_to, limit=limit, offset=offset
    )


@router.get(
    "/api/concerts/{concert_id}",
    response_model=ConcertDetail,
    tags=["catalog"],
    summary="A concert",
    responses=problems(e.ConcertNotFound),
)
async def get_concert(concert_id: Id, session: SessionDep) -> dict[str, Any]:
    return await service.get_concert(session, concert_id)


@router.get(
    "/api/concerts/{concert_id}/shows",
    response_model=ShowList,
    tags=["catalog"],
    summary="Shows of a concert with sale window, on_sale, total and remaining seats",
    responses=problems(e.ConcertNotFound),
)
async def list_shows(concert_id: Id, session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    return await service.list_shows(session, runtime.clock, concert_id)


@router.get(
    "/api/shows/{show_id}",
    response_model=ShowOut,
    tags=["catalog"],
    summary="A show",
    responses=problems(e.ShowNotFound),
)
async def get_show(show_id: Id, session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    return await service.get_show_details(session, runtime.clock, show_id)


# ---- the seat map: the layout (public, immutable per digest) apart from the statuses (gated) ------
# Each API process renders a show's map once per version (catalog.seatmap.view); every answer here
# is bytes encoded then, with a strong ETag (304 on If-None-Match).

NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the ETag sent in If-None-Match is current"}
}


def _conditional(request: Request, body: bytes, etag: str, cache_control: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if lean.etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _admission_read(hot: lean.HotInput) -> Awaitable[Any]:
    """The queue token check's read, issued with the deny-list check: one round trip for both."""
    return admission_read(hot.runtime, hot.claims.user_id, hot.ids[0])


async def _seat_status(hot: lean.HotInput) -> Response:
    (show_id,) = hot.ids
    await check_queue_token(
        hot.runtime, hot.claims.user_id, show_id, hot.headers["X-Queue-Token"], ended=hot.first
    )
    found = await seatmap.view(hot.runtime, show_id)
    return _conditional(hot.request, found.status_body, found.etag, "private, max-age=1")


SEAT_STATUS = lean.HotRoute(
    "/api/shows/{show_id}/seats/status",
    "GET",
    _seat_status,
    response_model=SeatStatusOut,
    summary="Which seats of a show are free right now (queue token required; ETag, 304)",
    description="One character per seat id from `base`; the seats themselves are the layout "
    "(GET /api/shows/{show_id}/seats/layout?v={layout}), fetched once. Seats owed to the waitlist "
    "show as held. Send If-None-Match with the last ETag: 304 while nothing changed.",
    tags=["seats"],
    path_id="show_id",
    first_round=_admission_read,
    headers=(lean.Header("X-Queue-Token", 4096, "Admission token from the waiting room", required=True),),
    errors=(e.QueueTokenRequired, e.QueueTokenRefused, e.QueueTokenForeign, e.ShowNotFound),
    responses=NOT_MODIFIED,
)

_DIGEST_ERROR = {"loc": ("query", "v"), "msg": "String should match pattern '^[0-9a-f]{1,64}$'",
                 "type": "string_pattern_mismatch"}  # fmt: skip


async def _seat_layout(request: Request, show_id: int) -> Response:
    wanted = request.query_params.get("v")
    if wanted is not None and not (0 < len(wanted) <= 64 and all(c in "0123456789abcdef" for c in wanted)):
        raise RequestValidationError([_DIGEST_ERROR])
    layout = await seatmap.layout_of(request.app.state.runtime, show_id)
    if wanted == layout.digest:  # named by its digest: the same bytes for ever
        cache_control = f"public, max-age={seatmap.LAYOUT_MAX_AGE}, immutable"
    else:
        cache_control = "public, max-age=60"
    return _conditional(request, layout.body, layout.etag, cache_control)


SEAT_LAYOUT = lean.PublicRoute("/api/shows/{show_id}/seats/layout", "GET", _seat_layout, path_id="show_id")
hot_routes: list[lean.AnyHotRoute] = [SEAT_STATUS, SEAT_LAYOUT]
router.routes.append(SEAT_STATUS.documented())


@router.get(
    "/api/shows/{show_id}/seats/layout",
    response_model=SeatLayoutOut,
    tags=["seats"],
    summary="A show's seats without their statuses (public; immutable per digest; ETag, 304)",
    description="With `v` equal to the layout's digest (the `layout` of the status) the answer is "
    "cacheable for a year (`immutable`); without it, or with an older digest, the current layout "
    "is answered, cacheable for 60 s. Served by a lean route; this twin calls the same handler.",
    responses={**NOT_MODIFIED, **problems(e.ShowNotFound)},
)
async def seat_layout(
    request: Request,
    show_id: PathId,
    v: Annotated[str | None, Query(min_length=1, max_length=64, pattern="^[0-9a-f]{1,64}$")] = None,
) -> Response:
    return await _seat_layout(request, show_id)


_STATUS_VALUES: tuple[SeatStatus, ...] = get_args(SeatStatus)


async def _seat_map(hot: lean.HotInput) -> Response:
    (show_id,) = hot.ids
    only = hot.request.query_params.get("status")
    if only is not None and only not in _STATUS_VALUES:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "status"),
                    "msg": "Input should be 'AVAILABLE', 'TEMP_RESERVED' or 'RESERVED'",
                    "type": "literal_error",
                }
            ]
        )
    await check_queue_token(
        hot.runtime, hot.claims.user_id, show_id, hot.headers["X-Queue-Token"], ended=hot.first
    )
    found = await seatmap.view(hot.runtime, show_id)
    wanted = cast(SeatStatus, only)
    return _conditional(hot.request, found.full(wanted), found.full_etag(wanted), "private, no-cache")


SEAT_MAP = lean.HotRoute(
    "/api/shows/{show_id}/seats",
    "GET",
    _seat_map,
    response_model=SeatMapOut,
    summary="The seat map of a show (queue token required; ETag, 304)",
    description="The whole map in one answer (compatible; a page fetches the layout once and then "
    "only GET /api/shows/{show_id}/seats/status). Seats owed to the waitlist show as TEMP_RESERVED.",
    tags=["seats"],
    path_id="show_id",
    first_round=_admission_read,
    headers=(lean.Header("X-Queue-Token", 4096, "Admission token from the waiting room", required=True),),
    parameters=(
        {
            "name": "status",
            "in": "query",
            "required": False,
            "description": "Only seats with this status",
            "schema": {"type": "string", "enum": list(_STATUS_VALUES)},
        },
    ),
    errors=(e.QueueTokenRequired, e.QueueTokenRefused, e.QueueTokenForeign, e.ShowNotFound),
    responses=NOT_MODIFIED,
)
hot_routes.append(SEAT_MAP)
router.routes.append(SEAT_MAP.documented())
