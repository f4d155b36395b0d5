"""The fan's pages: concerts, a concert, the waiting room, the seat map, checkout, tickets, account."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from boxoffice.auth import flows as auth_flows
from boxoffice.auth import service as auth_service
from boxoffice.auth.schemas import TOP_UP_MAX, TopUpRequest
from boxoffice.booking import rules as booking_rules
from boxoffice.booking import service as booking_service
from boxoffice.catalog import service as catalog_service
from boxoffice.errors import DomainError
from boxoffice.http.deps import PathId, SessionDep
from boxoffice.kit.i18n import N_, _, error_detail
from boxoffice.kit.inputs import Text
from boxoffice.kit.money import to_minor
from boxoffice.payments import flows as payments_flows
from boxoffice.payments import service as payments_service
from boxoffice.runtime import Runtime
from boxoffice.tickets import flows as tickets_flows
from boxoffice.tickets.pdf import tickets_pdf
from boxoffice.tickets.qr import qr_svg
from boxoffice.waiting_room import service as queue_service
from boxoffice.waiting_room.tokens import check_queue_token
from boxoffice.web.render import money, render
from boxoffice.web.session import CsrfChecked, OptionalPageUser, PageUser, WebUser, queue_token

router = APIRouter(include_in_schema=False)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/")
async def home(
    request: Request,
    user: OptionalPageUser,
    q: Annotated[Text | None, Query(max_length=200)] = None,
) -> Response:
    runtime = _runtime(request)
    query = (q or "").strip() or None
    async with runtime.sessions() as session:
        page = await catalog_service.list_concerts(session, q=query, limit=60)
        concerts = []
        for concert in page["items"]:
            shows = await catalog_service.list_shows(session, runtime.clock, concert["id"])
            concerts.append({**concert, "shows": shows["items"]})
    context = {"concerts": concerts, "q": query or "", "now": runtime.clock.now()}
    if request.query_params.get("bye"):
        context.update(flash=_("You are logged out."), flash_kind="ok")
    return render(request, "home.html", context, title=_("Concerts"))


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
    topups = runtime.settings.free_topups
    flash = _("Welcome to Boxoffice! Top up your balance to pay for tickets.") if welcome and topups else None
    if welcome and not topups:
        flash = _("Welcome to Boxoffice!")
    if topped:
        flash = _("Your balance was topped up.")
    return render(
        request,
        "account.html",
        {
            "profile": profile,
            "flash": flash,
            "flash_kind": "ok",
            "topup_key": uuid.uuid4().hex,
            "topups": topups,
        },
        title=_("My account"),
    )


@router.post("/account/top-up", dependencies=[CsrfChecked])
async def top_up(request: Request, user: PageUser) -> Response:
    runtime = _runtime(request)
    form = await request.form()
    key = str(form.get("idempotency_key") or "")[:255] or None
    async with runtime.sessions() as session:
        currency = (await auth_service.get_profile(session, user.user_id))["balance_currency"]
    try:
        body = TopUpRequest(amount=to_minor(str(form.get("amount") or "0"), currency))
    except (ValueError, ValidationError):
        smallest, largest = (money(1, currency), money(TOP_UP_MAX, currency))
        return await _account_error(
            request,
            user,
            _("Enter an amount between %(smallest)s and %(largest)s.")
            % {"smallest": smallest, "largest": largest},
            422,
        )
    try:
        await auth_flows.top_up(runtime, user_id=user.user_id, amount=body.amount, idempotency_key=key)
    except DomainError as exc:
        return await _account_error(request, user, error_detail(exc.detail, exc.status), exc.status)
    return RedirectResponse("/account?topped=1", status_code=303)


async def _account_error(request: Request, user: WebUser, message: str, status: int) -> Response:
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        profile = await auth_service.get_profile(session, user.user_id)
    return render(
        request,
        "account.html",
        {
            "profile": profile,
            "flash": message,
            "flash_kind": "error",
            "topup_key": uuid.uuid4().hex,
            "topups": runtime.settings.free_topups,
        },
        status_code=status,
        title=_("My account"),
    )


# ---------------------------------------------------------------- waiting room


async def _show_and_concert(runtime: Runtime, show_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    async with runtime.sessions() as session:
        show = await catalog_service.get_show_details(session, runtime.clock, show_id)
        concert = await catalog_service.get_concert(session, show["concert_id"])
    return show, concert


@router.get("/shows/{show_id}/queue")
async def waiting_room(request: Request, show_id: PathId, user: PageUser) -> Response:
    return await _waiting_room(request, show_id, user)


async def _waiting_room(
    request: Request, show_id: int, user: WebUser, *, error: DomainError | None = None
) -> Response:
    runtime = _runtime(request)
    show, concert = await _show_and_concert(runtime, show_id)
    view = await queue_service.status(runtime, user.user_id, concert["id"], show_id)
    commitment = None
    if view.pre_queue or runtime.clock.now() < show["sale_opens_at"]:
        async with runtime.sessions() as session:
            commitment = (await queue_service.fairness(runtime, session, show_id)).commitment
    async with runtime.sessions() as session:
        waitlist = await queue_service.waitlist_status(session, user.user_id, show_id)
    context: dict[str, Any] = {
        "show": show,
        "concert": concert,
        "view": view,
        "commitment": commitment,
        "now": runtime.clock.now(),
        "toll": show["queue"]["pow_difficulty"] > 0,
        "waitlist": waitlist,
        "sold_out": show["on_sale"] and show["remaining"] <= 0,
    }
    if error is not None:
        sentence = (
            _(_JOIN_SENTENCES[error.code])
            if error.code in _JOIN_SENTENCES
            else error_detail(error.detail, error.status)
        )
        context.update(flash=sentence, flash_kind="error", error_code=error.code)
    return render(
        request,
        "waiting.html",
        context,
        status_code=error.status if error is not None else 200,
        title=_("Waiting room · %(concert)s") % {"concert": concert["name"]},
    )


@router.post("/shows/{show_id}/waitlist", dependencies=[CsrfChecked])
async def join_waitlist(request: Request, show_id: PathId, user: PageUser, session: SessionDep) -> Response:
    runtime = _runtime(request)
    try:
        await queue_service.join_waitlist(runtime, session, user.user_id, show_id)
    except DomainError as exc:
        return await _waiting_room(request, show_id, user, error=exc)
    return RedirectResponse(f"/shows/{show_id}/queue", status_code=303)


# The toll's refusals in a fan's words (the page solves the challenge by itself; these are rare).
_JOIN_SENTENCES = {
    "QUEUE_CHALLENGE_REQUIRED": N_(
        "Joining needs a quick check that your browser runs (JavaScript): "
        "please enable JavaScript and press Join again."
    ),
    "QUEUE_CHALLENGE_INVALID": N_("The check before joining did not work out. Press Join to try again."),
    "QUEUE_CHALLENGE_EXPIRED": N_(
        "The check before joining took too long and expired. Press Join to try again."
    ),
    "QUEUE_CHALLENGE_MISMATCH": N_(
        "That check was made for another show or account. Press Join to try again."
    ),
    "QUEUE_CHALLENGE_REPLAYED": N_("That check was already used. Press Join to try again."),
}
ALTCHA_FIELD_MAX = 1024


@router.post("/shows/{show_id}/queue", dependencies=[CsrfChecked])
async def join_queue(request: Request, show_id: PathId, user: PageUser) -> Response:
    """The form's field `altcha` carries the same payload as the API's X-Altcha header (the page's
    script solves the challenge in a Web Worker first)."""
    runtime = _runtime(request)
    _show, concert = await _show_and_concert(runtime, show_id)
    solution = str((await request.form()).get("altcha") or "")[: ALTCHA_FIELD_MAX + 1] or None
    try:
        await queue_service.join(runtime, user.user_id, concert["id"], show_id, solution)
    except DomainError as exc:
        return await _waiting_room(request, show_id, user, error=exc)
    return RedirectResponse(f"/shows/{show_id}/queue", status_code=303)


# ---------------------------------------------------------------- seat map


async def _live_hold(runtime: Runtime, user_id: int, show_id: int) -> dict[str, Any] | None:
    async with runtime.sessions() as session:
        page = await booking_service.list_reservations(session, user_id, before=None, limit=20)
    now = runtime.clock.now()
    for r in page["items"]:
        if r["show_id"] == show_id and booking_rules.hold_is_live(r["status"], r["expires_at"], now):
            return dict(r)
    return None


@router.get("/shows/{show_id}/seats")
async def seat_map_page(request: Request, show_id: PathId, user: PageUser) -> Response:
    runtime = _runtime(request)
    try:
        await check_queue_token(runtime, user.user_id, show_id, queue_token(request, show_id))
    except DomainError:
        return RedirectResponse(f"/shows/{show_id}/queue", status_code=303)
    show, concert = await _show_and_concert(runtime, show_id)
    sections = [s["name"] for s in concert["venue"]["sections"]]
    return render(
        request,
        "seats.html",
        {
            "show": show,
            "concert": concert,
            "sections": sections,
            "hold": await _live_hold(runtime, user.user_id, show_id),
        },
        title=_("Choose seats · %(concert)s") % {"concert": concert["name"]},
    )


# ---------------------------------------------------------------- checkout


async def _checkout_context(runtime: Runtime, user: WebUser, reservation_id: int) -> dict[str, Any]:
    async with runtime.sessions() as session:
        reservation = await booking_service.get_reservation(session, user.user_id, reservation_id)
        payment = await payments_service.payment_of_reservation(session, user.user_id, reservation_id)
        profile = await auth_service.get_profile(session, user.user_id)
    show, concert = await _show_and_concert(runtime, reservation["show_id"])
    live = booking_rules.hold_is_live(reservation["status"], reservation["expires_at"], runtime.clock.now())
    return {
        "reservation": reservation,
        "payment": payment,
        "profile": profile,
        "show": show,
        "concert": concert,
        "live": live,
        "topups": runtime.settings.free_topups,
    }


@router.get("/reservations/{reservation_id}/checkout")
async def checkout(request: Request, reservation_id: PathId, user: PageUser) -> Response:
    runtime = _runtime(request)
    context = await _checkout_context(runtime, user, reservation_id)
    if context["reservation"]["status"] == booking_rules.RESERVED:
        return RedirectResponse(f"/tickets?paid={reservation_id}", status_code=303)
    return render(request, "checkout.html", context, title=_("Checkout"))


def pay_key(reservation_id: int, method: str) -> str:
    """One Idempotency-Key per hold and method: a double click or a reload of the answer retries the
    same payment and never charges twice (errors are not stored, so a declined card can retry)."""
    return f"web-pay-{reservation_id}-{method}"


@router.post("/reservations/{reservation_id}/pay", dependencies=[CsrfChecked])
async def pay(request: Request, reservation_id: PathId, user: PageUser) -> Response:
    runtime = _runtime(request)
    form = await request.form()
    method = str(form.get("method") or "")
    if method not in ("BALANCE", "CARD"):
        method = "BALANCE"
    digits = str(form.get("card_number") or "")[:40].replace(" ", "")
    card_number = digits if method == "CARD" and digits.isdigit() and 12 <= len(digits) <= 19 else None
    try:
        result = await payments_flows.pay(
            runtime,
            user_id=user.user_id,
            reservation_id=reservation_id,
            method=method,
            idempotency_key=pay_key(reservation_id, method),
            card_number=card_number,
        )
    except DomainError as exc:
        context = await _checkout_context(runtime, user, reservation_id)
        if context["reservation"]["status"] == booking_rules.RESERVED:
            return RedirectResponse(f"/tickets?paid={reservation_id}", status_code=303)
        context.update(flash=error_detail(exc.detail, exc.status), flash_kind="error", error_code=exc.code)
        return render(request, "checkout.html", context, status_code=exc.status, title=_("Checkout"))
    if result.status == 202:  # the card's outcome is not known yet: the checkout shows "confirming"
        return RedirectResponse(f"/reservations/{reservation_id}/checkout", status_code=303)
    return RedirectResponse(f"/tickets?paid={reservation_id}", status_code=303)


@router.post("/reservations/{reservation_id}/cancel", dependencies=[CsrfChecked])
async def cancel(request: Request, reservation_id: PathId, user: PageUser) -> Response:
    runtime = _runtime(request)
    try:
        await payments_flows.cancel(runtime, user_id=user.user_id, reservation_id=reservation_id)
    except DomainError as exc:
        return await _tickets(
            request, user, flash=error_detail(exc.detail, exc.status), kind="error", status=exc.status
        )
    return RedirectResponse(f"/tickets?cancelled={reservation_id}", status_code=303)


# ---------------------------------------------------------------- my tickets


@router.get("/tickets")
async def tickets(request: Request, user: PageUser, paid: int = 0, cancelled: int = 0) -> Response:
    flash = None
    if paid:
        flash = _("Payment received: your seats are confirmed.")
    elif cancelled:
        flash = _("Done: the reservation is cancelled.")
    return await _tickets(request, user, flash=flash, kind="ok")


async def _tickets(
    request: Request, user: WebUser, *, flash: str | None, kind: str, status: int = 200
) -> Response:
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        page = await booking_service.list_reservations(session, user.user_id, before=None, limit=50)
    mine = await tickets_flows.my_tickets(runtime, user.user_id, before=None, limit=100)
    by_order: dict[int, list[dict[str, Any]]] = {}
    for ticket in reversed(mine["items"]):  # seat order within an order
        by_order.setdefault(ticket["reservation_id"], []).append(ticket)
    shows: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for r in page["items"]:
        if r["show_id"] not in shows:
            shows[r["show_id"]] = await _show_and_concert(runtime, r["show_id"])
    now = runtime.clock.now()
    items = []
    for r in page["items"]:
        show, concert = shows[r["show_id"]]
        live = booking_rules.hold_is_live(r["status"], r["expires_at"], now)
        status_name = r["status"] if live or r["status"] != booking_rules.HOLD else booking_rules.EXPIRED
        items.append(
            {
                **r,
                "display_status": status_name,
                "live": live,
                "refundable": r["status"] == booking_rules.RESERVED
                and booking_rules.refund_allowed(show["starts_at"], now, show["refund_cutoff_hours"]),
                "show": show,
                "concert": concert,
                "tickets": by_order.get(r["reservation_id"], []),
            }
        )
    return render(
        request,
        "tickets.html",
        {"items": items, "flash": flash, "flash_kind": kind},
        status_code=status,
        title=_("My tickets"),
    )


@router.get("/tickets/{ticket_id}")
async def ticket_page(request: Request, ticket_id: PathId, user: PageUser) -> Response:
    """One ticket, phone-sized and printable: what the fan shows at the door."""
    ticket = await tickets_flows.ticket(_runtime(request), ticket_id, user_id=user.user_id, role=user.role)
    return render(
        request, "ticket.html", {"t": ticket}, title=_("Ticket · %(seat)s") % {"seat": ticket["seat"]}
    )


@router.get("/tickets/{ticket_id}/qr.svg")
async def ticket_qr(request: Request, ticket_id: PathId, user: PageUser) -> Response:
    ticket = await tickets_flows.ticket(_runtime(request), ticket_id, user_id=user.user_id, role=user.role)
    return Response(
        qr_svg(ticket["payload"]), media_type="image/svg+xml", headers={"Cache-Control": "private, no-store"}
    )


@router.get("/reservations/{reservation_id}/tickets.pdf")
async def order_pdf(request: Request, reservation_id: PathId, user: PageUser) -> Response:
    runtime = _runtime(request)
    tickets = await tickets_flows.order_tickets(runtime, reservation_id, user_id=user.user_id, role=user.role)
    return Response(
        tickets_pdf(tickets, title=_("Boxoffice order %(number)s") % {"number": reservation_id}),
        media_type="application/pdf",
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": f'inline; filename="tickets-{reservation_id}.pdf"',
        },
    )
