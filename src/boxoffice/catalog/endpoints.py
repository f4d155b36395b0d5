"""Catalog API: admin (venues, concerts, shows), public listings, the queue-gated seat map.

Thin: parse, authorize, call one service function. The request's unit of work (SessionDep) commits
when the endpoint returns.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from boxoffice import errors as e
from boxoffice.auth.dependencies import AdminUser
from boxoffice.catalog import seatmap, service
from boxoffice.catalog.schemas import (
    ConcertDetail,
    ConcertIn,
    ConcertOut,
    ConcertPage,
    ConcertPatch,
    SeatMapOut,
    SeatStatus,
    ShowIn,
    ShowList,
    ShowOut,
    ShowPatch,
    VenueIn,
    VenueOut,
)
from boxoffice.http.deps import PathId, RuntimeDep, SessionDep
from boxoffice.http.problems import problems
from boxoffice.kit.inputs import Text, Timestamp, WholeNumber
from boxoffice.waiting_room.dependencies import QueueGate

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


@router.get(
    "/api/shows/{show_id}/seats",
    response_model=SeatMapOut,
    tags=["seats"],
    summary="The seat map of a show (queue token required)",
    responses=problems(e.ShowNotFound),
)
async def seat_map(
    show_id: Id,
    _: QueueGate,
    runtime: RuntimeDep,
    status: Annotated[SeatStatus | None, Query(description="Only seats with this status")] = None,
) -> Response:
    # Served as pre-rendered JSON from the Redis copy (no per-seat model validation on the hot path).
    body = await seatmap.seat_map(runtime, show_id, status)
    return Response(content=body, media_type="application/json", headers={"Cache-Control": "no-store"})
