"""Tickets and check-in endpoints: thin (parse, authorize, call one flow, shape the answer).

A fan reads only their own tickets (anyone else's is a 404, as if it did not exist; an administrator
reads any). Scanning, the door list and the entry counts are for gate staff (role DOOR) and
administrators; a fan who tries gets 403 DOOR_ROLE_REQUIRED.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from boxoffice import errors as e
from boxoffice.auth.dependencies import CurrentUser
from boxoffice.auth.tokens import AccessClaims
from boxoffice.http.deps import PathId, RuntimeDep
from boxoffice.http.problems import problems, raises
from boxoffice.kit.ids import ID_MAX
from boxoffice.kit.inputs import WholeNumber
from boxoffice.tickets import flows
from boxoffice.tickets.pdf import tickets_pdf
from boxoffice.tickets.qr import qr_png, qr_svg
from boxoffice.tickets.rules import DOOR_ROLES
from boxoffice.tickets.schemas import (
    CheckOutRequest,
    DoorList,
    EntriesOut,
    KeysOut,
    ScanOut,
    ScanRequest,
    SyncOut,
    SyncRequest,
    TicketOut,
    TicketPage,
)

router = APIRouter(tags=["tickets"])
TICKET = "/api/tickets/{ticket_id:int}"


@raises(e.DoorStaffOnly)
async def require_door(claims: CurrentUser) -> AccessClaims:
    if claims.role not in DOOR_ROLES:
        raise e.DoorStaffOnly("Gate staff (role DOOR) or an administrator only")
    return claims


DoorUser = Annotated[AccessClaims, Depends(require_door)]
_NO_STORE = {"Cache-Control": "private, no-store"}


@router.get("/api/tickets", response_model=TicketPage, summary="My tickets, newest first")
async def my_tickets(
    claims: CurrentUser,
    runtime: RuntimeDep,
    before: Annotated[WholeNumber | None, Query(ge=1, le=ID_MAX, description="Ticket id cursor")] = None,
    limit: Annotated[WholeNumber, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    return await flows.my_tickets(runtime, claims.user_id, before=before, limit=limit)


@router.get(
    "/api/shows/{show_id}/ticket-keys",
    response_model=KeysOut,
    responses=problems(e.ShowNotFound),
    summary="The public keys that verify the show's ticket signatures (Ed25519): for gates, for anyone",
)
async def ticket_keys(show_id: PathId, runtime: RuntimeDep) -> dict[str, Any]:
    return await flows.public_keys(runtime, show_id)


@router.get(
    "/api/tickets/pdf",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "One A4 page per ticket"},
        **problems(e.TicketNotFound),
    },
    summary="An order's tickets as a PDF (mine; an administrator: anyone's)",
)
async def order_pdf(
    claims: CurrentUser,
    runtime: RuntimeDep,
    reservation_id: Annotated[WholeNumber, Query(ge=1, le=ID_MAX)],
) -> Response:
    tickets = await flows.order_tickets(runtime, reservation_id, user_id=claims.user_id, role=claims.role)
    return Response(
        tickets_pdf(tickets, title=f"Boxoffice order {reservation_id}"),
        media_type="application/pdf",
        headers={**_NO_STORE, "Content-Disposition": f'inline; filename="tickets-{reservation_id}.pdf"'},
    )


@router.get(
    TICKET,
    response_model=TicketOut,
    responses=problems(e.NotFound, e.TicketNotFound),
    summary="One of my tickets (an administrator: anyone's)",
)
async def get_ticket(ticket_id: PathId, claims: CurrentUser, runtime: RuntimeDep) -> dict[str, Any]:
    return await flows.ticket(runtime, ticket_id, user_id=claims.user_id, role=claims.role)


@router.get(
    TICKET + "/qr.svg",
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}}, "description": "QR code"},
        **problems(e.NotFound, e.TicketNotFound),
    },
    summary="The ticket's QR code as SVG",
)
async def ticket_qr_svg(ticket_id: PathId, claims: CurrentUser, runtime: RuntimeDep) -> Response:
    view = await flows.ticket(runtime, ticket_id, user_id=claims.user_id, role=claims.role)
    return Response(qr_svg(view["payload"]), media_type="image/svg+xml", headers=_NO_STORE)


@router.get(
    TICKET + "/qr.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "QR code"},
        **problems(e.NotFound, e.TicketNotFound),
    },
    summary="The ticket's QR code as PNG",
)
async def ticket_qr_png(ticket_id: PathId, claims: CurrentUser, runtime: RuntimeDep) -> Response:
    view = await flows.ticket(runtime, ticket_id, user_id=claims.user_id, role=claims.role)
    return Response(qr_png(view["payload"]), media_type="image/png", headers=_NO_STORE)


@router.post(
    "/api/shows/{show_id}/checkins",
    response_model=ScanOut,
    responses=problems(e.ShowNotFound),
    summary="Scan a ticket at a gate: VALID (admitted, exactly once) or why not",
)
async def check_in(
    show_id: PathId, body: ScanRequest, claims: DoorUser, runtime: RuntimeDep
) -> dict[str, Any]:
    return await flows.scan(
        runtime, show_id=show_id, code=body.code, payload=body.payload, gate=body.gate, by_user=claims.user_id
    )


@router.post(
    "/api/shows/{show_id}/checkins/sync",
    response_model=SyncOut,
    responses=problems(e.ShowNotFound),
    summary="An offline gate's scans, replayed in order; a double entry comes back as CONFLICT",
)
async def sync_offline(
    show_id: PathId, body: SyncRequest, claims: DoorUser, runtime: RuntimeDep
) -> dict[str, Any]:
    scans = [s.model_dump() for s in body.scans]
    return await flows.sync_offline(
        runtime, show_id=show_id, gate=body.gate, scans=scans, by_user=claims.user_id
    )


@router.post(
    "/api/shows/{show_id}/checkouts",
    status_code=204,
    response_class=Response,
    responses=problems(e.ShowNotFound, e.ReentryNotAllowed),
    summary="Re-entry: a ticket leaves (back to VALID), where the show allows re-entry",
)
async def check_out(
    show_id: PathId, body: CheckOutRequest, claims: DoorUser, runtime: RuntimeDep
) -> Response:
    await flows.check_out(runtime, show_id=show_id, code=body.code, gate=body.gate, by_user=claims.user_id)
    return Response(status_code=204)


@router.get(
    "/api/shows/{show_id}/door-list",
    response_model=DoorList,
    responses=problems(e.ShowNotFound),
    summary="What an offline gate downloads: the public keys and the show's tickets",
)
async def door_list(show_id: PathId, claims: DoorUser, runtime: RuntimeDep) -> dict[str, Any]:
    del claims
    return await flows.door_list(runtime, show_id)


@router.get(
    "/api/shows/{show_id}/entries",
    response_model=EntriesOut,
    responses=problems(e.ShowNotFound),
    summary="Entries at the door: scanned, admitted, inside now, per gate, conflicts",
)
async def entries(show_id: PathId, claims: DoorUser, runtime: RuntimeDep) -> dict[str, Any]:
    del claims
    return await flows.entries(runtime, show_id)
