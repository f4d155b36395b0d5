"""The promoter's console at /admin (ADMIN only: fans get a styled 403, visitors the login page).

Pages are thin: they turn a form into the API's own request model, call the same catalog, waiting
room and admin services as the JSON API (in the request's unit of work), and re-render the form
with each field's message when the input is refused (the services check before they write, so a
refusal has written nothing). Writes are form posts with the CSRF token, answered with a redirect (POST, then
GET). The browser's live data (dashboard snapshot and stream, the seat map) comes from /web/admin/...
routes with the same cookie session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.admin import flows as admin_flows
from boxoffice.admin import service as admin_service
from boxoffice.admin.live import DashboardHub
from boxoffice.admin.schemas import CancelRequest, DashboardSnapshot, Range
from boxoffice.catalog import seatmap
from boxoffice.catalog import service as catalog
from boxoffice.catalog.schemas import ConcertIn, ConcertPatch, ShowIn, ShowPatch, VenueIn
from boxoffice.errors import DomainError
from boxoffice.http.deps import PathId, SessionDep
from boxoffice.kit.i18n import FALLBACK, N_, _, current_locale, error_detail
from boxoffice.kit.inputs import has_control_characters
from boxoffice.kit.money import DEFAULT_CURRENCY, to_major, to_minor
from boxoffice.kit.timefmt import DEFAULT_ZONE, parse_local, to_local_input
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import service as queue
from boxoffice.waiting_room.schemas import QueueSettingsUpdate
from boxoffice.web.render import render
from boxoffice.web.session import AdminPageUser, CsrfChecked

router = APIRouter(include_in_schema=False)

MAX_FORM_SECTIONS = 100
CONTROL_CHARACTERS = N_("Text may not contain control characters (such as U+0000); nothing was changed.")
NOTICES = {
    "venue": N_("The venue was created."),
    "concert": N_("The concert was saved."),
    "retired": N_("The concert was retired: it is no longer listed for fans."),
    "show": N_("The show was saved."),
    "paused": N_("Admission is paused."),
    "resumed": N_("Admission resumed."),
    "queue": N_("The queue settings were changed."),
    "cancelled": N_("The reservation was cancelled and refunded; the action is in the audit."),
}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _notice(done: str | None) -> dict[str, Any]:
    text = NOTICES.get(done or "")
    return {"flash": _(text), "flash_kind": "ok"} if text else {}


# ---------------------------------------------------------------- form helpers


def _key(loc: list[Any] | tuple[Any, ...]) -> str:
    """A field's form name from an error location: ("body", "sections", 0, "rows") -> sections-0-rows."""
    return "-".join(str(p) for p in loc if p not in ("body", "query"))


def _field_errors(exc: ValidationError | DomainError) -> dict[str, str]:
    errors: dict[str, str] = {}
    items = exc.errors() if isinstance(exc, ValidationError) else exc.extra.get("errors", [])
    for err in items:
        key = _key(err.get("loc", ()))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if current_locale() != FALLBACK:  # pydantic's and the rules' words are English
            message = _("Please check this value.")
        errors.setdefault(key, message)
    return errors


def _sentence(exc: ValidationError | DomainError) -> str:
    if isinstance(exc, DomainError):
        return error_detail(exc.detail, exc.status)
    return _("Please correct the fields marked below.")


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str):
        return None
    if has_control_characters(value):
        return value  # for the request model to refuse: str.strip() would trim some (U+0085) away
    return value.strip() or None


def _number(form: Any, name: str) -> float | str | None:
    """A number field: a float, or the raw text so validation names the field when it is not one."""
    raw = _text(form, name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return raw


def _integer(form: Any, name: str) -> int | float | str | None:
    """An integer field (a fraction is left for validation to refuse, naming the field)."""
    value = _number(form, name)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _minor(form: Any, name: str, currency: str) -> int | str | None:
    """A price typed in the currency's major units (12.50 EUR, 220000 KRW) as integer minor units
    (kit.money.to_minor); a text that is not such an amount is left for validation to refuse."""
    raw = _text(form, name)
    if raw is None:
        return None
    try:
        return to_minor(raw, currency)
    except (ValueError, KeyError):
        return raw


def _when(form: Any, name: str, time_zone: str) -> datetime | str | None:
    """A datetime-local field, typed in the venue's zone (the form says which); a time the zone
    skips (the spring-forward gap) or no time at all is left for validation to refuse."""
    raw = _text(form, name)
    if raw is None:
        return None
    try:
        return parse_local(raw, time_zone)
    except ValueError:
        return raw


TIME_FIELDS = ("starts_at", "sale_opens_at", "sale_closes_at", "pre_queue_opens_at")


def _skipped_times(form: Any, time_zone: str) -> dict[str, str]:
    """The time fields whose wall-clock time the venue's zone skips, each with its sentence (the
    validation's own words, "timezone info required", would not tell a promoter why)."""
    errors: dict[str, str] = {}
    for name in TIME_FIELDS:
        raw = _text(form, name)
        if raw is None:
            continue
        try:
            parse_local(raw, time_zone)
        except ValueError as exc:
            if "does not exist" in str(exc):
                errors[name] = f"{exc}: choose a time before or after the change"
    return errors


def local(value: datetime | None, time_zone: str) -> str:
    """A time for a datetime-local input, in the venue's zone, to the second."""
    return to_local_input(value, time_zone)


# ---------------------------------------------------------------- home


@router.get("/admin")
async def console(request: Request, user: AdminPageUser, session: SessionDep) -> Response:
    runtime = _runtime(request)
    page = await catalog.list_concerts(session, limit=100, include_retired=True)
    concerts = []
    for concert in page["items"]:
        shows = await catalog.list_shows(session, runtime.clock, concert["id"])
        concerts.append({**concert, "shows": shows["items"]})
    venues = await catalog.list_venues(session)
    return render(
        request,
        "admin/console.html",
        {"concerts": concerts, "venues": venues, "now": runtime.clock.now()},
        title=_("Console"),
    )


# ---------------------------------------------------------------- venues


def _venue_form(form: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The venue request out of the form, and the sections as typed (to re-fill the form)."""
    sections: list[dict[str, Any]] = []
    typed: list[dict[str, Any]] = []
    for i in range(MAX_FORM_SECTIONS):
        names = [f"sections-{i}-{f}" for f in ("name", "rows", "seats_per_row", "row_lengths")]
        if not any(_text(form, n) for n in names):
            continue
        lengths_raw = _text(form, names[3])
        section: dict[str, Any] = {
            "name": _text(form, names[0]) or "",
            "rows": _integer(form, names[1]),
            "seats_per_row": _integer(form, names[2]),
        }
        if lengths_raw:
            parts = [p.strip() for p in lengths_raw.replace(";", ",").split(",") if p.strip()]
            section["row_lengths"] = [int(p) if p.isdigit() else p for p in parts]
        sections.append({k: v for k, v in section.items() if v is not None})
        typed.append(
            {
                "name": _text(form, names[0]) or "",
                "rows": _text(form, names[1]) or "",
                "seats_per_row": _text(form, names[2]) or "",
                "row_lengths": lengths_raw or "",
            }
        )
    body: dict[str, Any] = {"name": _text(form, "name") or "", "sections": sections}
    if form.get("time_zone") is not None:  # blank: refused by the model, not defaulted
        body["time_zone"] = _text(form, "time_zone") or ""
    return body, typed


@router.get("/admin/venues")
async def venues_page(
    request: Request, user: AdminPageUser, session: SessionDep, done: str | None = None
) -> Response:
    venues = await catalog.list_venues(session)
    blank = [{"name": "Floor", "rows": "10", "seats_per_row": "20", "row_lengths": ""}]
    return render(
        request,
        "admin/venues.html",
        {
            "venues": venues,
            "values": {"name": "", "time_zone": DEFAULT_ZONE},
            "sections": blank,
            "errors": {},
            **_notice(done),
        },
        title=_("Venues"),
    )


@router.post("/admin/venues", dependencies=[CsrfChecked])
async def create_venue(request: Request, user: AdminPageUser, session: SessionDep) -> Response:
    form = await request.form()
    body, typed = _venue_form(form)
    try:
        await catalog.create_venue(session, VenueIn.model_validate(body))
    except (ValidationError, DomainError) as exc:
        venues = await catalog.list_venues(session)
        context = {
            "venues": venues,
            "values": {"name": body["name"], "time_zone": body.get("time_zone", "")},
            "sections": typed or [{"name": "", "rows": "", "seats_per_row": "", "row_lengths": ""}],
            "errors": _field_errors(exc),
            "flash": _sentence(exc),
            "flash_kind": "error",
        }
        return render(request, "admin/venues.html", context, status_code=422, title=_("Venues"))
    return RedirectResponse("/admin/venues?done=venue", status_code=303)


# ---------------------------------------------------------------- concerts


def _concert_form(form: Any) -> dict[str, Any]:
    body: dict[str, Any] = {k: _text(form, k) for k in ("name", "artist", "description", "poster_url")}
    venue = _integer(form, "venue_id")
    if venue is not None:
        body["venue_id"] = venue
    return body


async def _concerts_context(session: AsyncSession) -> dict[str, Any]:
    page = await catalog.list_concerts(session, limit=100, include_retired=True)
    return {"concerts": page["items"], "venues": await catalog.list_venues(session)}


@router.get("/admin/concerts")
async def concerts_page(
    request: Request, user: AdminPageUser, session: SessionDep, done: str | None = None
) -> Response:
    context = {**await _concerts_context(session), "values": {}, "errors": {}, **_notice(done)}
    return render(request, "admin/concerts.html", context, title=_("Concerts"))


@router.post("/admin/concerts", dependencies=[CsrfChecked])
async def create_concert(request: Request, user: AdminPageUser, session: SessionDep) -> Response:
    body = _concert_form(await request.form())
    try:
        created = await catalog.create_concert(session, ConcertIn.model_validate(body))
    except (ValidationError, DomainError) as exc:
        context = {
            **await _concerts_context(session),
            "values": body,
            "errors": _field_errors(exc),
            "flash": _sentence(exc),
            "flash_kind": "error",
        }
        return render(request, "admin/concerts.html", context, status_code=422, title=_("Concerts"))
    return RedirectResponse(f"/admin/concerts/{created['id']}?done=concert", status_code=303)


async def _concert_context(request: Request, session: AsyncSession, concert_id: int) -> dict[str, Any]:
    runtime = _runtime(request)
    concert = await catalog.get_concert(session, concert_id)
    shows = await catalog.list_shows(session, runtime.clock, concert_id)
    return {"concert": concert, "shows": shows["items"], "now": runtime.clock.now()}


def _show_form(form: Any, sections: list[str], currency: str, time_zone: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "starts_at": _when(form, "starts_at", time_zone),
        "sale_opens_at": _when(form, "sale_opens_at", time_zone),
        "sale_closes_at": _when(form, "sale_closes_at", time_zone),
        "pre_queue_opens_at": _when(form, "pre_queue_opens_at", time_zone),
        "hold_seconds": _integer(form, "hold_seconds"),
        "max_seats_per_reservation": _integer(form, "max_seats_per_reservation"),
        "refund_cutoff_hours": _integer(form, "refund_cutoff_hours"),
        "max_tickets_per_fan": _integer(form, "max_tickets_per_fan"),
        "hold_requires_verified_email": form.get("hold_requires_verified_email") == "on",
        "prices": {name: _minor(form, f"prices-{name}", currency) for name in sections},
        "queue": {
            "admit_per_second": _number(form, "queue-admit_per_second"),
            "max_active": _integer(form, "queue-max_active"),
            "token_ttl_seconds": _integer(form, "queue-token_ttl_seconds"),
            "oversubscription": _number(form, "queue-oversubscription"),
            "paused": form.get("queue-paused") == "on",
            "pow_difficulty": _integer(form, "queue-pow_difficulty"),
            "adaptive": form.get("queue-adaptive") == "on",
        },
    }
    body["prices"] = {k: v for k, v in body["prices"].items() if v is not None}
    return body


def _blank_or(value: int | None) -> str:
    return "" if value is None else str(value)


def _typed(form: Any) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


@router.get("/admin/concerts/{concert_id}")
async def concert_page(
    request: Request, concert_id: PathId, user: AdminPageUser, session: SessionDep, done: str | None = None
) -> Response:
    context = await _concert_context(request, session, concert_id)
    c = context["concert"]
    values = {k: c[k] or "" for k in ("name", "artist", "description", "poster_url")}
    values["max_tickets_per_fan"] = _blank_or(c["max_tickets_per_fan"])
    show_values = {
        "hold_seconds": "300",
        "max_seats_per_reservation": "4",
        "refund_cutoff_hours": "24",
        "queue-admit_per_second": "11",
        "queue-token_ttl_seconds": "600",
        "queue-oversubscription": "1.5",
        "queue-pow_difficulty": "100000",
        "queue-adaptive": "on",
    }
    context.update(values=values, errors={}, show_values=show_values, show_errors={}, **_notice(done))
    return render(request, "admin/concert.html", context, title=c["name"])


@router.post("/admin/concerts/{concert_id}", dependencies=[CsrfChecked])
async def update_concert(
    request: Request, concert_id: PathId, user: AdminPageUser, session: SessionDep
) -> Response:
    form = await request.form()
    body: dict[str, Any] = {k: _text(form, k) for k in ("name", "artist", "description", "poster_url")}
    body["max_tickets_per_fan"] = _integer(form, "max_tickets_per_fan")  # blank: no limit
    try:
        await catalog.update_concert(
            session, _runtime(request).clock, concert_id, ConcertPatch.model_validate(body)
        )
    except (ValidationError, DomainError) as exc:
        context = await _concert_context(request, session, concert_id)
        context.update(
            values=body,
            errors=_field_errors(exc),
            show_values={},
            show_errors={},
            flash=_sentence(exc),
            flash_kind="error",
        )
        return render(
            request, "admin/concert.html", context, status_code=422, title=context["concert"]["name"]
        )
    return RedirectResponse(f"/admin/concerts/{concert_id}?done=concert", status_code=303)


@router.post("/admin/concerts/{concert_id}/retire", dependencies=[CsrfChecked])
async def retire_concert(
    request: Request, concert_id: PathId, user: AdminPageUser, session: SessionDep
) -> Response:
    await catalog.retire_concert(session, _runtime(request).clock, concert_id)  # a refusal: the error page
    return RedirectResponse(f"/admin/concerts/{concert_id}?done=retired", status_code=303)


@router.post("/admin/concerts/{concert_id}/shows", dependencies=[CsrfChecked])
async def create_show(
    request: Request, concert_id: PathId, user: AdminPageUser, session: SessionDep
) -> Response:
    runtime = _runtime(request)
    form = await request.form()
    concert = await catalog.get_concert(session, concert_id)
    currency = _text(form, "currency") or DEFAULT_CURRENCY
    venue = concert["venue"]
    body = _show_form(form, [s["name"] for s in venue["sections"]], currency, venue["time_zone"])
    body["currency"] = currency
    # A new show: blank fields take the defaults (in an edit, blank clears an optional field).
    body = {k: v for k, v in body.items() if v is not None}
    body["queue"] = {k: v for k, v in body["queue"].items() if v is not None}
    try:
        show = await catalog.create_show(
            session,
            runtime.clock,
            concert_id,
            ShowIn.model_validate(body),
            default_hold_seconds=runtime.settings.default_hold_seconds,
        )
    except (ValidationError, DomainError) as exc:
        context = await _concert_context(request, session, concert_id)
        c = context["concert"]
        context.update(
            values={k: c[k] or "" for k in ("name", "artist", "description", "poster_url")},
            errors={},
            show_values=_typed(form),
            show_errors=_field_errors(exc) | _skipped_times(form, venue["time_zone"]),
            flash=_sentence(exc),
            flash_kind="error",
        )
        return render(request, "admin/concert.html", context, status_code=422, title=c["name"])
    return RedirectResponse(f"/admin/shows/{show['id']}?done=show", status_code=303)


# ---------------------------------------------------------------- shows


def _show_values(show: dict[str, Any]) -> dict[str, str]:
    q = show["queue"]
    values = {
        "starts_at": local(show["starts_at"], show["time_zone"]),
        "sale_opens_at": local(show["sale_opens_at"], show["time_zone"]),
        "sale_closes_at": local(show["sale_closes_at"], show["time_zone"]),
        "pre_queue_opens_at": local(show["pre_queue_opens_at"], show["time_zone"]),
        "hold_seconds": str(show["hold_seconds"]),
        "max_seats_per_reservation": str(show["max_seats_per_reservation"]),
        "refund_cutoff_hours": ""
        if show["refund_cutoff_hours"] is None
        else str(show["refund_cutoff_hours"]),
        "max_tickets_per_fan": _blank_or(show["max_tickets_per_fan"]),
        "hold_requires_verified_email": "on" if show["hold_requires_verified_email"] else "",
        "queue-admit_per_second": f"{q['admit_per_second']:g}",
        "queue-max_active": "" if q["max_active"] is None else str(q["max_active"]),
        "queue-token_ttl_seconds": str(q["token_ttl_seconds"]),
        "queue-oversubscription": "" if q["oversubscription"] is None else f"{q['oversubscription']:g}",
        "queue-paused": "on" if q["paused"] else "",
        "queue-pow_difficulty": str(q["pow_difficulty"]),
        "queue-adaptive": "on" if q["adaptive"] else "",
    }
    values.update(
        {f"prices-{name}": str(to_major(price, show["currency"])) for name, price in show["prices"].items()}
    )
    return values


async def _show_context(request: Request, session: AsyncSession, show_id: int) -> dict[str, Any]:
    runtime = _runtime(request)
    show = await catalog.get_show_details(session, runtime.clock, show_id)
    concert = await catalog.get_concert(session, show["concert_id"])
    return {"show": show, "concert": concert, "now": runtime.clock.now()}


@router.get("/admin/shows/{show_id}")
async def show_page(
    request: Request, show_id: PathId, user: AdminPageUser, session: SessionDep, done: str | None = None
) -> Response:
    context = await _show_context(request, session, show_id)
    context.update(values=_show_values(context["show"]), errors={}, **_notice(done))
    return render(request, "admin/show.html", context, title=_("Show %(show)s") % {"show": show_id})


@router.post("/admin/shows/{show_id}", dependencies=[CsrfChecked])
async def update_show(
    request: Request, show_id: PathId, user: AdminPageUser, session: SessionDep
) -> Response:
    runtime = _runtime(request)
    form = await request.form()
    current = await catalog.get_show_details(session, runtime.clock, show_id)
    body = _show_form(form, list(current["prices"]), current["currency"], current["time_zone"])
    # Times come back from the form to the second: an unchanged field keeps its stored value.
    for name in TIME_FIELDS:
        stored = current[name]
        if (
            isinstance(body[name], datetime)
            and stored is not None
            and body[name] == stored.replace(microsecond=0)
        ):
            body[name] = stored
    try:
        await catalog.update_show(session, runtime.clock, show_id, ShowPatch.model_validate(body))
    except (ValidationError, DomainError) as exc:
        context = await _show_context(request, session, show_id)
        context.update(
            values=_typed(form),
            errors=_field_errors(exc) | _skipped_times(form, current["time_zone"]),
            flash=_sentence(exc),
            flash_kind="error",
        )
        return render(
            request,
            "admin/show.html",
            context,
            status_code=exc.status if isinstance(exc, DomainError) else 422,
            title=_("Show %(show)s") % {"show": show_id},
        )
    return RedirectResponse(f"/admin/shows/{show_id}?done=show", status_code=303)


# ---------------------------------------------------------------- the queue


@router.get("/admin/shows/{show_id}/queue")
async def queue_page(
    request: Request, show_id: PathId, user: AdminPageUser, session: SessionDep, done: str | None = None
) -> Response:
    runtime = _runtime(request)
    context = await _show_context(request, session, show_id)
    context.update(
        q=await queue.admin_view(runtime, session, show_id),
        fairness=await queue.fairness(runtime, session, show_id),
        errors={},
        **_notice(done),
    )
    return render(request, "admin/queue.html", context, title=_("Queue · show %(show)s") % {"show": show_id})


def _back(request: Request, show_id: int, done: str) -> RedirectResponse:
    """Back to the page the form was on (the queue page or the dashboard)."""
    target = "dashboard" if request.query_params.get("from") == "dashboard" else "queue"
    return RedirectResponse(f"/admin/shows/{show_id}/{target}?done={done}", status_code=303)


@router.post("/admin/shows/{show_id}/queue/pause", dependencies=[CsrfChecked])
async def pause(request: Request, show_id: PathId, user: AdminPageUser, session: SessionDep) -> Response:
    await queue.set_paused(_runtime(request), session, show_id, True)
    return _back(request, show_id, "paused")


@router.post("/admin/shows/{show_id}/queue/resume", dependencies=[CsrfChecked])
async def resume(request: Request, show_id: PathId, user: AdminPageUser, session: SessionDep) -> Response:
    await queue.set_paused(_runtime(request), session, show_id, False)
    return _back(request, show_id, "resumed")


@router.post("/admin/shows/{show_id}/queue", dependencies=[CsrfChecked])
async def queue_settings(
    request: Request, show_id: PathId, user: AdminPageUser, session: SessionDep
) -> Response:
    runtime = _runtime(request)
    form = await request.form()
    body: dict[str, Any] = {"admit_per_second": _number(form, "admit_per_second")}
    cap = _integer(form, "max_active")
    body.update({"max_active": cap} if cap is not None else {"clear_max_active": True})
    toll = _integer(form, "pow_difficulty")
    if toll is not None:
        body["pow_difficulty"] = toll
    # The page sends a hidden "off" before the checkbox's "on": neither (an older page) changes nothing.
    adaptive = form.getlist("adaptive")
    if adaptive:
        body["adaptive"] = "on" in adaptive
    try:
        await queue.update_settings(runtime, session, show_id, QueueSettingsUpdate.model_validate(body))
    except (ValidationError, DomainError) as exc:
        context = await _show_context(request, session, show_id)
        context.update(
            q=await queue.admin_view(runtime, session, show_id),
            fairness=await queue.fairness(runtime, session, show_id),
            errors=_field_errors(exc),
            values=_typed(form),
            flash=_sentence(exc),
            flash_kind="error",
        )
        return render(
            request,
            "admin/queue.html",
            context,
            status_code=422,
            title=_("Queue · show %(show)s") % {"show": show_id},
        )
    return _back(request, show_id, "queue")


# ---------------------------------------------------------------- the dashboard


@router.get("/admin/shows/{show_id}/dashboard")
async def dashboard_page(
    request: Request, show_id: PathId, user: AdminPageUser, session: SessionDep, done: str | None = None
) -> Response:
    runtime = _runtime(request)
    context = await _show_context(request, session, show_id)
    context.update(q=await queue.admin_view(runtime, session, show_id), errors={}, **_notice(done))
    return render(
        request, "admin/dashboard.html", context, title=_("Dashboard · show %(show)s") % {"show": show_id}
    )


@router.get("/web/admin/shows/{show_id}/dashboard", response_model=DashboardSnapshot)
async def dashboard_data(
    request: Request, show_id: PathId, user: AdminPageUser, range: Annotated[Range, Query()] = "5m"
) -> dict[str, Any]:
    hub: DashboardHub = request.app.state.dashboards
    return await admin_service.snapshot(_runtime(request), show_id, range, hub.latest_dict(show_id))


@router.get("/web/admin/shows/{show_id}/dashboard/stream")
async def dashboard_stream(request: Request, show_id: PathId, user: AdminPageUser) -> StreamingResponse:
    runtime = _runtime(request)
    await admin_service.ensure_show(runtime, show_id)
    hub: DashboardHub = request.app.state.dashboards
    return StreamingResponse(
        runtime.streams.open(user.user_id, hub.frames(runtime, show_id, request.is_disconnected)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/web/admin/shows/{show_id}/seats")
async def seat_map(request: Request, show_id: PathId, user: AdminPageUser) -> Response:
    body = await seatmap.seat_map(_runtime(request), show_id)
    return Response(content=body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/admin/shows/{show_id}/sales.csv")
async def sales_csv(request: Request, show_id: PathId, user: AdminPageUser) -> StreamingResponse:
    runtime = _runtime(request)
    await admin_service.ensure_show(runtime, show_id)
    return StreamingResponse(
        admin_service.sales_csv(runtime, show_id),
        media_type="text/csv; charset=utf-8",
        # every buyer's email: never kept by a browser or a shared cache
        headers={
            "Content-Disposition": f'attachment; filename="show-{show_id}-sales.csv"',
            "Cache-Control": "no-store",
        },
    )


# ---------------------------------------------------------------- fans and orders


@router.get("/admin/fans")
async def fans_page(
    request: Request,
    user: AdminPageUser,
    session: SessionDep,
    email: Annotated[str | None, Query(max_length=320)] = None,
    done: str | None = None,
) -> Response:
    context: dict[str, Any] = {"email": email or "", "fan": None, **_notice(done)}
    status = 200
    if email and has_control_characters(email):
        context.update(email="", flash=_(CONTROL_CHARACTERS), flash_kind="error")
        status = 422
    elif email and email.strip():
        try:
            context["fan"] = await admin_service.fan(session, email)
        except DomainError as exc:
            context.update(flash=error_detail(exc.detail, exc.status), flash_kind="error")
    return render(request, "admin/fans.html", context, status_code=status, title=_("Fans and orders"))


@router.post("/admin/reservations/{reservation_id}/cancel", dependencies=[CsrfChecked])
async def cancel_for_fan(
    request: Request, reservation_id: PathId, user: AdminPageUser, session: SessionDep
) -> Response:
    form = await request.form()
    email = _text(form, "email") or ""
    email = "" if has_control_characters(email) else email  # the page's own hidden field, tampered
    reason = _text(form, "reason") or ""
    target = f"/admin/fans?email={quote(email, safe='@')}"
    try:
        body = CancelRequest.model_validate({"reason": reason})
        await admin_flows.cancel_for_fan(
            _runtime(request), admin_id=user.user_id, reservation_id=reservation_id, reason=body.reason
        )
    except (ValidationError, DomainError) as exc:
        if isinstance(exc, DomainError):
            message = error_detail(exc.detail, exc.status)
        elif has_control_characters(reason):
            message = _(CONTROL_CHARACTERS)
        else:
            message = _("Give a reason of at least 3 characters.")
        context: dict[str, Any] = {"email": email, "fan": None, "flash": message, "flash_kind": "error"}
        if email:
            context["fan"] = await admin_service.fan(session, email)
        return render(
            request,
            "admin/fans.html",
            context,
            status_code=422 if isinstance(exc, ValidationError) else exc.status,
            title=_("Fans and orders"),
        )
    return RedirectResponse(target + "&done=cancelled", status_code=303)
