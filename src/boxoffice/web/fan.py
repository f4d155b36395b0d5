"""The fan's pages: concerts, a concert, the waiting room, the seat map, checkout, tickets, account."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from boxoffice.auth import service as auth_service
from boxoffice.auth.schemas import TopUpRequest
from boxoffice.catalog import service as catalog_service
from boxoffice.deps import PathId
from boxoffice.errors import DomainError
from boxoffice.web.render import render
from boxoffice.web.session import CsrfChecked, OptionalPageUser, PageUser, WebUser

router = APIRouter(include_in_schema=False)


def _runtime(request: Request) -> Any:
    return request.app.state.runtime


@router.get("/")
async def home(
    request: Request,
    user: OptionalPageUser,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    runtime = _runtime(request)
    query = (q or "").strip() or None
    async with runtime.sessions() as session:
        page = await catalog_service.list_concerts(session, q=query, limit=60)
        concerts = []
        for concert in page["items"]:
            shows = await catalog_service.list_shows(session, runtime.clock, concert["id"])
            concerts.append({**concert, "shows": shows["items"]})
    return render(request, "home.html", {"concerts": concerts, "q": query or ""}, title="Concerts")


@router.get("/concerts/{concert_id}")
async def concert_page(request: Request, concert_id: PathId, user: OptionalPageUser) -> Response:
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        concert = await catalog_service.get_concert(session, concert_id)
        shows = await catalog_service.list_shows(session, runtime.clock, concert_id)
    return render(
        request,
        "concert.html",
        {"concert": concert, "shows": shows["items"], "now": runtime.clock.now()},
        title=concert["name"],
    )


# ---------------------------------------------------------------- account


@router.get("/account")
async def account_page(request: Request, user: PageUser, welcome: int = 0, topped: int = 0) -> Response:
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        profile = await auth_service.get_profile(session, user.user_id)
    flash = "Welcome to Boxoffice! Top up your balance to pay for tickets." if welcome else None
    if topped:
        flash = "Your balance was topped up."
    return render(
        request,
        "account.html",
        {"profile": profile, "flash": flash, "flash_kind": "ok", "topup_key": uuid.uuid4().hex},
        title="My account",
    )


@router.post("/account/top-up", dependencies=[CsrfChecked])
async def top_up(request: Request, user: PageUser) -> Response:
    runtime = _runtime(request)
    form = await request.form()
    key = str(form.get("idempotency_key") or "")[:255] or None
    try:
        amount = round(float(str(form.get("amount") or "0")) * 100)
        body = TopUpRequest(amount=amount)
    except (ValueError, ValidationError):
        return await _account_error(request, user, "Enter an amount between 0.01 and 100,000.00.", 422)
    try:
        await auth_service.top_up(runtime, user_id=user.user_id, amount=body.amount, idempotency_key=key)
    except DomainError as exc:
        return await _account_error(request, user, exc.detail, exc.status)
    return RedirectResponse("/account?topped=1", status_code=303)


async def _account_error(request: Request, user: WebUser, message: str, status: int) -> Response:
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        profile = await auth_service.get_profile(session, user.user_id)
    return render(
        request,
        "account.html",
        {"profile": profile, "flash": message, "flash_kind": "error", "topup_key": uuid.uuid4().hex},
        status_code=status,
        title="My account",
    )
