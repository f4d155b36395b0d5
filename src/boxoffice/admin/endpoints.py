"""Admin API (role ADMIN): the live dashboard, fans and their orders, audited refunds, CSV export.

Thin: parse, authorize, call one service function. The venue/concert/show routes live with the
catalog, the queue controls with the waiting room.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from boxoffice import errors as e
from boxoffice.admin import flows, service
from boxoffice.admin.live import DashboardHub
from boxoffice.admin.schemas import (
    AuditPage,
    CancelOut,
    CancelRequest,
    DashboardSnapshot,
    FanOut,
    Range,
)
from boxoffice.auth.dependencies import AdminUser
from boxoffice.catalog import seatmap
from boxoffice.http.deps import ID_MAX, PathId, RuntimeDep, SessionDep
from boxoffice.http.problems import problems
from boxoffice.kit.inputs import Text, WholeNumber
from boxoffice.payments.provider import ProviderUnavailable

router = APIRouter(tags=["admin"])

_SHOW = problems(e.ShowNotFound)


@router.get(
    "/api/admin/shows/{show_id}/dashboard",
    response_model=DashboardSnapshot,
    summary="Live sales dashboard: a snapshot with the time series of the chosen range",
    responses=_SHOW,
)
async def dashboard(
    request: Request,
    show_id: PathId,
    _: AdminUser,
    runtime: RuntimeDep,
    range: Annotated[Range, Query()] = "5m",
) -> dict[str, Any]:
    hub: DashboardHub = request.app.state.dashboards
    return await service.snapshot(runtime, show_id, range, hub.latest_dict(show_id))


@router.get(
    "/api/admin/shows/{show_id}/dashboard/stream",
    summary="Live sales dashboard: Server-Sent Events, one `frame` a second",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`event: frame` with a DashboardFrame"},
        **_SHOW,
    },
)
async def dashboard_stream(
    request: Request, show_id: PathId, admin: AdminUser, runtime: RuntimeDep
) -> StreamingResponse:
    await service.ensure_show(runtime, show_id)  # errors before the stream starts are problem+json
    hub: DashboardHub = request.app.state.dashboards
    return StreamingResponse(
        runtime.streams.open(admin.user_id, hub.frames(runtime, show_id, request.is_disconnected)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/api/admin/shows/{show_id}/seats",
    summary="The seat map of a show for the console (no queue token): same body as the fans' map",
    responses=_SHOW,
)
async def seat_map(show_id: PathId, _: AdminUser, runtime: RuntimeDep) -> Response:
    body = await seatmap.seat_map(runtime, show_id)
    return Response(content=body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get(
    "/api/admin/shows/{show_id}/sales.csv",
    summary="A show's sales as CSV (reservation, fan email, seats, amount, method, status, times)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **_SHOW},
)
async def sales_csv(show_id: PathId, _: AdminUser, runtime: RuntimeDep) -> StreamingResponse:
    await service.ensure_show(runtime, show_id)
    return StreamingResponse(
        service.sales_csv(runtime, show_id),
        media_type="text/csv; charset=utf-8",
        # every buyer's email: never kept by a browser or a shared cache
        headers={
            "Content-Disposition": f'attachment; filename="show-{show_id}-sales.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/api/admin/fans",
    response_model=FanOut,
    summary="Find a fan by email: reservations, payments, balance ledger and the audit about them",
    responses=problems(e.UserNotFound),
)
async def find_fan(
    email: Annotated[Text, Query(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")],
    _: AdminUser,
    session: SessionDep,
) -> dict[str, Any]:
    return await service.fan(session, email)


@router.post(
    "/api/admin/reservations/{reservation_id}/cancel",
    response_model=CancelOut,
    summary="Cancel a fan's hold or refund their paid reservation on their behalf (audited)",
    responses=problems(e.ReservationNotFound, e.NotCancellable, e.ReservationExpired, ProviderUnavailable),
)
async def cancel_for_fan(
    reservation_id: PathId, body: CancelRequest, admin: AdminUser, runtime: RuntimeDep
) -> dict[str, Any]:
    return await flows.cancel_for_fan(
        runtime, admin_id=admin.user_id, reservation_id=reservation_id, reason=body.reason
    )


@router.get("/api/admin/audit", response_model=AuditPage, summary="Admin actions, newest first")
async def audit(
    _: AdminUser,
    session: SessionDep,
    user_id: Annotated[WholeNumber | None, Query(ge=1, le=ID_MAX)] = None,
    reservation_id: Annotated[WholeNumber | None, Query(ge=1, le=ID_MAX)] = None,
) -> dict[str, Any]:
    return await service.audit(session, user_id=user_id, reservation_id=reservation_id)
