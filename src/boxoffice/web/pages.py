"""The web app: server-rendered pages at `/`, served by the API process itself.

How a page module plugs in (the promoter's console does it this way):

    from fastapi import APIRouter, Request
    from boxoffice.web.render import render
    from boxoffice.web.session import AdminPageUser, CsrfChecked, PageUser

    router = APIRouter(include_in_schema=False)

    @router.get("/admin")   # AdminPageUser: a 403 page for fans, the login redirect when logged out
    async def console(request: Request, user: AdminPageUser):
        return render(request, "admin/console.html", {"x": 1}, title="Console")

    @router.post("/admin/things", dependencies=[CsrfChecked])        # every page write checks CSRF
    async def create(request: Request, user: AdminPageUser): ...

  and list the router in `page_routers()` below. Templates live in `web/templates/<area>/` and
  `{% extends "base.html" %}` (blocks: title via render(title=), `content`, `head`, `scripts`,
  `nav`, `body_class`); forms carry `<input type="hidden" name="csrf_token" value="{{ csrf_token }}">`;
  scripts are ES modules under `web/static/js/` loaded with
  `<script type="module" src="{{ static('js/x.js') }}">` (no inline script: the CSP forbids it) and
  send `X-CSRF-Token` (from `<meta name="csrf-token">`, see `static/js/app.js: postJSON`) on
  writes. A route that is the browser's JSON or stream lives under `/web/...` (errors stay
  problem+json there); everything else that raises renders `error.html` with the error's sentence.
  The seat map is a reusable canvas component: `static/js/seatmap.js` (`new SeatMap(canvas, opts)`).
  Page routes stay thin: they call services/flows (or the browser calls the JSON API); no SQL and
  no business rule here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, BackgroundTasks, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from boxoffice.admin import flows as admin_flows
from boxoffice.auth import service as auth_service
from boxoffice.auth.schemas import LoginRequest, SignupRequest, TokenPair
from boxoffice.auth.tokens import verify_access_token
from boxoffice.errors import DomainError
from boxoffice.http.deps import SessionDep
from boxoffice.http.language import LOCALE_COOKIE
from boxoffice.http.peer import client_address
from boxoffice.kit.i18n import FALLBACK, N_, _, current_locale, error_detail, supported
from boxoffice.mail.smtp import send_verification
from boxoffice.runtime import Runtime
from boxoffice.web.render import STATIC_DIR, build_environment, install_page_errors, render
from boxoffice.web.security import WebMiddleware
from boxoffice.web.session import (
    CsrfChecked,
    OptionalPageUser,
    device_id,
    end_session,
    set_cookie,
    start_session,
)

router = APIRouter(include_in_schema=False)
log = structlog.get_logger("boxoffice.web")


def page_routers() -> list[APIRouter]:
    from boxoffice.web.admin import router as admin_router
    from boxoffice.web.browser import router as browser_router
    from boxoffice.web.door import router as door_router
    from boxoffice.web.fan import router as fan_router

    return [router, fan_router, browser_router, admin_router, door_router]


def mount_web(app: FastAPI) -> None:
    """Pages, the browser's /web routes, /static, the web middleware and page error handling."""
    app.state.templates = build_environment()
    app.add_middleware(WebMiddleware)
    install_page_errors(app)
    for page_router in page_routers():
        for route in page_router.routes:
            app.router.routes.append(route)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def safe_next(target: str | None) -> str:
    """Only a path on this site (never //host or a scheme): no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# The fan forms' fields by name, for a form error in another language than pydantic's English.
FIELD_NAMES = {"email": N_("Email"), "password": N_("Password"), "name": N_("Name")}


def form_error(exc: ValidationError) -> str:
    """The first problem of a form as a sentence."""
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ())) or "form"
        if current_locale() != FALLBACK:  # pydantic's own words are English: name the field only
            return _("Please check this field: %(field)s.") % {"field": _(FIELD_NAMES.get(field, field))}
        msg = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
        return f"{field.replace('_', ' ').capitalize()}: {msg}."
    return _("Please check the form.")


async def form_fields(request: Request, *names: str) -> dict[str, str]:
    form = await request.form()
    out: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        out[name] = value if isinstance(value, str) else ""
    return out


# ---------------------------------------------------------------- login / signup / logout


@router.get("/login")
async def login_page(
    request: Request, user: OptionalPageUser, next: str | None = None, reset: int = 0
) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    context: dict[str, Any] = {"next": safe_next(next), "email": ""}
    if reset:  # back from /reset-password
        context.update(flash=_("Your password is changed: log in with the new one."), flash_kind="ok")
    return render(request, "login.html", context, title=_("Log in"))


@router.post("/login", dependencies=[CsrfChecked])
async def login_submit(request: Request, session: SessionDep) -> Response:
    fields = await form_fields(request, "email", "password", "next")
    target = safe_next(fields["next"])
    context: dict[str, Any] = {"next": target, "email": fields["email"]}
    try:
        data = LoginRequest(email=fields["email"], password=fields["password"])
        runtime = runtime_of(request)
        pair = await auth_service.login(session, runtime, data, client_address(request, runtime.settings))
    except ValidationError:
        context["error"] = _("Please enter your email and password.")
        return render(request, "login.html", context, status_code=422, title=_("Log in"))
    except DomainError as exc:
        context["error"] = error_detail(exc.detail, exc.status)
        return render(request, "login.html", context, status_code=exc.status, title=_("Log in"))
    start_session(request, pair)
    await _note_device(request, pair)
    chosen = await auth_service.account_locale(session, _user_id(request, pair))
    if chosen is not None:  # the account's language follows the fan to this browser
        set_cookie(request, LOCALE_COOKIE, chosen, max_age=LOCALE_MAX_AGE)
    return RedirectResponse(target, status_code=303)


@router.get("/signup")
async def signup_page(request: Request, user: OptionalPageUser, next: str | None = None) -> Response:
    if user is not None:
        return RedirectResponse("/", status_code=303)
    return render(request, "signup.html", {"next": safe_next(next), "values": {}}, title=_("Sign up"))


@router.post("/signup", dependencies=[CsrfChecked])
async def signup_submit(request: Request, session: SessionDep, background: BackgroundTasks) -> Response:
    fields = await form_fields(request, "email", "password", "name", "next")
    target = safe_next(fields["next"])
    context: dict[str, Any] = {"next": target, "values": {"email": fields["email"], "name": fields["name"]}}
    runtime = runtime_of(request)
    try:
        data = SignupRequest(email=fields["email"], password=fields["password"], name=fields["name"])
        address = client_address(request, runtime.settings)
        created, link = await auth_service.signup(session, runtime, data, address)
        # the account keeps the language it was created in (its mails are written in it)
        await auth_service.choose_locale(session, created.id, current_locale())
        # background tasks run after the response, i.e. after the commit
        background.add_task(
            send_verification, runtime.settings, to=created.email, name=created.name, link=link
        )
        pair = await auth_service.login(
            session, runtime, LoginRequest(email=data.email, password=fields["password"]), address
        )
    except ValidationError as exc:
        context["error"] = form_error(exc)
        return render(request, "signup.html", context, status_code=422, title=_("Sign up"))
    except DomainError as exc:
        context["error"] = error_detail(exc.detail, exc.status)
        return render(request, "signup.html", context, status_code=exc.status, title=_("Sign up"))
    start_session(request, pair)
    await _note_device(request, pair)
    return RedirectResponse(target if target != "/" else "/account?welcome=1", status_code=303)


def _user_id(request: Request, pair: TokenPair) -> int:
    runtime = runtime_of(request)
    return verify_access_token(runtime.settings, pair.access_token, now=runtime.clock.now()).user_id


# ---------------------------------------------------------------- the language switch

LOCALE_MAX_AGE = 365 * 24 * 3600


@router.post("/language", dependencies=[CsrfChecked])
async def choose_language(request: Request, user: OptionalPageUser, session: SessionDep) -> Response:
    """The switch on every page: remembered in a cookie, and in the account when logged in."""
    fields = await form_fields(request, "locale", "next")
    locale = supported(fields["locale"])
    if locale is not None:
        set_cookie(request, LOCALE_COOKIE, locale, max_age=LOCALE_MAX_AGE)
        if user is not None:
            await auth_service.choose_locale(session, user.user_id, locale)
    return RedirectResponse(safe_next(fields["next"]), status_code=303)


async def _note_device(request: Request, pair: TokenPair) -> None:
    """The browser this account logged in from (a console signal; never in the way of a login)."""
    runtime = runtime_of(request)
    try:
        claims = verify_access_token(runtime.settings, pair.access_token, now=runtime.clock.now())
        await admin_flows.note_device(runtime, claims.user_id, device_id(request))
    except Exception as exc:
        runtime.failures.report(log, "device_note_failed", exc)


@router.post("/logout", dependencies=[CsrfChecked])
async def logout_submit(request: Request, user: OptionalPageUser) -> Response:
    if user is not None:
        try:
            await auth_service.logout(runtime_of(request), user.claims)
        except DomainError:
            pass  # the cookies go anyway; the access token expires on its own
    end_session(request)
    return RedirectResponse("/?bye=1", status_code=303)


def login_url(target: str) -> str:
    return f"/login?next={quote(target, safe='')}"
