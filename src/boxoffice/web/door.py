"""The door: the scanner page `/door/{show}` for gate staff (role DOOR, or administrators), its
browser routes (cookie session + CSRF, the same flows as POST /api/shows/{id}/checkins), and the
password-reset pages (the link the reset mail carries).

The scanner page reads QR codes with the phone's camera (BarcodeDetector where the browser has
it, the vendored jsQR otherwise) or takes a typed code. It downloads the show's door list (ticket
statuses and the public keys) so that it keeps admitting when the network drops: it verifies the
Ed25519 signature in the browser (WebCrypto), remembers its own scans, and syncs them when the
network returns; a ticket that entered elsewhere meanwhile comes back as a CONFLICT on the console.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from boxoffice.auth import flows as auth_flows
from boxoffice.auth.schemas import PasswordResetConfirm, PasswordResetRequest, normalize_email
from boxoffice.catalog import service as catalog_service
from boxoffice.errors import DomainError, DoorStaffOnly, Unprocessable
from boxoffice.http.deps import PathId
from boxoffice.kit.i18n import _, current_locale, error_detail
from boxoffice.kit.timefmt import local_time
from boxoffice.mail import flows as mail_flows
from boxoffice.runtime import Runtime
from boxoffice.tickets import flows as tickets_flows
from boxoffice.tickets.rules import DOOR_ROLES
from boxoffice.tickets.schemas import ScanRequest, SyncRequest
from boxoffice.tickets.service import zone
from boxoffice.web.render import render
from boxoffice.web.session import AdminPageUser, CsrfChecked, OptionalPageUser, PageUser, WebUser

router = APIRouter(include_in_schema=False)
# The one page that may use the camera (every other page sends camera=()).
_CAMERA = {"Permissions-Policy": "camera=(self), microphone=(), geolocation=(), payment=()"}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _door(user: WebUser) -> None:
    if user.role not in DOOR_ROLES:
        raise DoorStaffOnly("The door is for gate staff (role DOOR) and administrators")


@router.get("/door/{show_id}")
async def door_page(request: Request, show_id: PathId, user: PageUser) -> Response:
    _door(user)
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        show = await catalog_service.get_show(session, show_id)
        concert = await catalog_service.get_concert(session, show.concert_id)
    tz = zone(concert["venue"]["time_zone"])
    starts = local_time(show.starts_at, tz.key, current_locale())
    context = {"show": show, "concert": concert, "starts": starts}
    response = render(
        request, "door.html", context, title=_("Door · %(concert)s") % {"concert": concert["name"]}
    )
    response.headers.update(_CAMERA)
    return response


@router.post("/web/door/{show_id}/scan", dependencies=[CsrfChecked])
async def door_scan(request: Request, show_id: PathId, user: PageUser) -> JSONResponse:
    _door(user)
    body = _parse(ScanRequest, await _body(request))
    answer = await tickets_flows.scan(
        _runtime(request),
        show_id=show_id,
        code=body.code,
        payload=body.payload,
        gate=body.gate,
        by_user=user.user_id,
    )
    return JSONResponse(_json(answer))


@router.get("/web/door/{show_id}/list")
async def door_list(request: Request, show_id: PathId, user: PageUser) -> JSONResponse:
    _door(user)
    return JSONResponse(_json(await tickets_flows.door_list(_runtime(request), show_id)))


@router.post("/web/door/{show_id}/sync", dependencies=[CsrfChecked])
async def door_sync(request: Request, show_id: PathId, user: PageUser) -> JSONResponse:
    _door(user)
    body = _parse(SyncRequest, await _body(request))
    result = await tickets_flows.sync_offline(
        _runtime(request),
        show_id=show_id,
        gate=body.gate,
        scans=[s.model_dump() for s in body.scans],
        by_user=user.user_id,
    )
    return JSONResponse(_json(result))


@router.get("/web/door/{show_id}/entries")
async def door_entries(request: Request, show_id: PathId, user: PageUser) -> JSONResponse:
    _door(user)
    return JSONResponse(_json(await tickets_flows.entries(_runtime(request), show_id)))


M = TypeVar("M", bound=BaseModel)


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise Unprocessable("The body is not JSON") from None


def _parse(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors()[:5])
        raise Unprocessable(f"Invalid request: {fields}" if fields else "Invalid request") from None


@router.get("/admin/shows/{show_id}/entries")
async def entries_page(request: Request, show_id: PathId, user: AdminPageUser) -> Response:
    """The console's entries: scanned, admitted, inside now, per gate, per minute, conflicts."""
    runtime = _runtime(request)
    entries = await tickets_flows.entries(runtime, show_id)
    async with runtime.sessions() as session:
        show = await catalog_service.get_show(session, show_id)
        concert = await catalog_service.get_concert(session, show.concert_id)
    context = {"show": show, "concert": concert, "e": entries}
    return render(
        request, "admin/entries.html", context, title=_("Entries · show %(show)s") % {"show": show_id}
    )


@router.get("/admin/mail")
async def mail_page(request: Request, user: AdminPageUser) -> Response:
    """The mails the product queued: sent, waiting (with retries), dead, skipped (SMTP off)."""
    view = await mail_flows.outbox_view(_runtime(request), limit=100)
    return render(request, "admin/mail.html", {"mail": view}, title=_("Mail"))


def _json(value: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(value)


# ---------------------------------------------------------------- password reset pages


@router.get("/forgot-password")
async def forgot_page(request: Request, user: OptionalPageUser) -> Response:
    return render(request, "forgot_password.html", {"sent": False}, title=_("Forgot your password?"))


@router.post("/forgot-password", dependencies=[CsrfChecked])
async def forgot_submit(request: Request) -> Response:
    form = await request.form()
    raw = form.get("email")
    email = raw if isinstance(raw, str) else ""
    try:
        body = PasswordResetRequest(email=email)
    except ValidationError:
        return render(
            request,
            "forgot_password.html",
            {"sent": False, "error": _("Enter your email address.")},
            status_code=422,
        )
    await mail_flows.request_password_reset(_runtime(request), normalize_email(body.email))
    return render(request, "forgot_password.html", {"sent": True}, title=_("Check your mail"))


@router.get("/reset-password")
async def reset_page(request: Request, token: str = "") -> Response:
    return render(request, "reset_password.html", {"token": token[:512]}, title=_("Choose a new password"))


@router.post("/reset-password", dependencies=[CsrfChecked])
async def reset_submit(request: Request) -> Response:
    form = await request.form()
    token, password = form.get("token"), form.get("password")
    context: dict[str, Any] = {"token": token if isinstance(token, str) else ""}
    try:
        body = PasswordResetConfirm(
            token=context["token"], password=password if isinstance(password, str) else ""
        )
        await auth_flows.reset_password(_runtime(request), token=body.token, password=body.password)
    except ValidationError:
        context["error"] = _("The new password needs at least 8 characters.")
        return render(
            request, "reset_password.html", context, status_code=422, title=_("Choose a new password")
        )
    except DomainError as exc:
        context["error"] = error_detail(exc.detail, exc.status)
        return render(
            request, "reset_password.html", context, status_code=exc.status, title=_("Choose a new password")
        )
    return RedirectResponse("/login?reset=1", status_code=303)
