"""Browser sessions: the login's tokens in HttpOnly, SameSite=Lax cookies; CSRF tokens for writes.

- `bo_access` holds the access JWT, `bo_refresh` the rotating refresh token. Both are HttpOnly (no
  script ever reads a token) and never appear in a URL or in localStorage. When the access token is
  missing, expired or about to expire, the server rotates the refresh token itself and sets both
  cookies on the response. Requests of one process that present the same refresh token from the
  same browser (the same `bo_csrf` secret) share one rotation (single-flight, remembered for a
  minute), so a page and its own fetches racing at expiry do not look like a replayed token;
  the same refresh token from any other browser is a replay and revokes the login.
- `bo_q_<show_id>` holds the waiting room's admission token for that show (HttpOnly too).
- CSRF: `bo_csrf` is a random per-browser value (HttpOnly); a page write must carry
  HMAC(jwt_secret, that value) in the form field `csrf_token` or the `X-CSRF-Token` header
  (signed double submit; SameSite=Lax is the second line). `csrf_token(request)` gives the value
  to put in a form; templates get it as `csrf_token`.

Dependencies for routes: `OptionalPageUser` (None when logged out), `PageUser` (401
AUTH_REQUIRED otherwise: pages redirect to /login, /web JSON answers problem+json),
`AdminPageUser` (403 for other roles), `CsrfChecked` (403 CSRF_FAILED). Cookies a route wants to
set go through `set_cookie`/`clear_cookie`; the web middleware writes them on whatever response
the route returns (a template, a redirect, a stream or an error page).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request

from boxoffice.auth import service as auth_service
from boxoffice.auth.schemas import TokenPair
from boxoffice.auth.service import authenticate_token
from boxoffice.auth.tokens import AccessClaims
from boxoffice.config import secret
from boxoffice.errors import AuthRequired, CsrfFailed, DomainError, Forbidden, Unauthorized
from boxoffice.http.peer import is_https
from boxoffice.runtime import Runtime

log = structlog.get_logger("boxoffice.web")

ACCESS_COOKIE = "bo_access"
REFRESH_COOKIE = "bo_refresh"
CSRF_COOKIE = "bo_csrf"
QUEUE_COOKIE_PREFIX = "bo_q_"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Refresh a little before expiry, so the fetches a page makes right after it still carry a live token.
REFRESH_MARGIN_SECONDS = 60
COOKIES_STATE = "bo_set_cookies"  # request.state attribute the middleware reads


@dataclass(frozen=True, slots=True)
class WebUser:
    user_id: int
    role: str
    claims: AccessClaims
    access_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == "ADMIN"


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _secure(request: Request) -> bool:
    """Secure cookies whenever the browser reached us over HTTPS: the request's own scheme or the
    trusted gateway's X-Forwarded-Proto (or a public URL that says https)."""
    settings = _runtime(request).settings
    return is_https(request, settings) or settings.public_base_url.startswith("https://")


def _pending(request: Request) -> dict[str, tuple[str, str]]:
    """name -> (value, Set-Cookie header) of the cookies this request sets (kept in the ASGI scope's
    state, where the web middleware finds them)."""
    pending: dict[str, tuple[str, str]] | None = getattr(request.state, COOKIES_STATE, None)
    if pending is None:
        pending = {}
        setattr(request.state, COOKIES_STATE, pending)
    return pending


# Over HTTPS every cookie is a `__Host-` cookie: the browser keeps it only if it came Secure,
# with Path=/ and no Domain, so neither a sibling subdomain nor a plain-HTTP page can plant or
# overwrite it (RFC 6265bis 4.1.3.2). Over plain HTTP (local development) the bare names.
HOST_PREFIX = "__Host-"


def _wire_name(request: Request, name: str) -> str:
    return HOST_PREFIX + name if _secure(request) else name


def set_cookie(request: Request, name: str, value: str, *, max_age: int) -> None:
    """Queue an HttpOnly, SameSite=Lax cookie for the response (written by the web middleware)."""
    flags = "; Secure" if _secure(request) else ""
    attributes = f"Path=/; Max-Age={max(0, max_age)}; HttpOnly; SameSite=Lax{flags}"
    header = f"{_wire_name(request, name)}={value}; {attributes}"
    _pending(request)[name] = (value, header)


def clear_cookie(request: Request, name: str) -> None:
    set_cookie(request, name, "", max_age=0)


def cookie(request: Request, name: str) -> str | None:
    """The cookie as this request will leave it (a value set during the request wins)."""
    changed = _pending(request).get(name)
    if changed is not None:
        return changed[0] or None
    return sent_cookie(request, name)


def sent_cookie(request: Request, name: str) -> str | None:
    """The cookie as the browser sent it (under its `__Host-` name over HTTPS)."""
    return request.cookies.get(_wire_name(request, name)) or None


# ---------------------------------------------------------------- the device cookie

DEVICE_COOKIE = "bo_dev"
DEVICE_MAX_AGE = 2 * 365 * 24 * 3600


def device_id(request: Request) -> str:
    """This browser's random id (set on first use, kept two years): the console's "same device"
    signal compares the hashes of the ids each account logged in with."""
    current = cookie(request, DEVICE_COOKIE)
    if current is None or not (16 <= len(current) <= 64) or not current.isalnum():
        current = secrets.token_hex(16)
        set_cookie(request, DEVICE_COOKIE, current, max_age=DEVICE_MAX_AGE)
    return current


# ---------------------------------------------------------------- login state


def start_session(request: Request, pair: TokenPair) -> None:
    """After a login: both tokens into cookies."""
    settings = _runtime(request).settings
    set_cookie(request, ACCESS_COOKIE, pair.access_token, max_age=settings.access_token_ttl_seconds)
    set_cookie(request, REFRESH_COOKIE, pair.refresh_token, max_age=settings.refresh_token_ttl_seconds)


def end_session(request: Request) -> None:
    """Forget the login in this browser (the caller revokes it server side first)."""
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        clear_cookie(request, name)
    for sent in request.cookies:
        name = sent.removeprefix(HOST_PREFIX)
        if name.startswith(QUEUE_COOKIE_PREFIX) and sent == _wire_name(request, name):
            clear_cookie(request, name)
    request.state.bo_user = None


async def _refreshed(runtime: Runtime, refresh_token: str, browser_secret: str | None) -> TokenPair:
    """Rotate the refresh token. The owner's own requests racing at expiry (a page and its
    fetches, two tabs) share one rotation: they present the same refresh token AND the same
    browser secret (the HttpOnly CSRF cookie). Anyone else presenting that refresh token, a
    replay from another browser, rotates on its own and gets the reuse answer, which revokes
    the login."""

    async def rotate() -> TokenPair:
        # The rotation itself is in Redis; PostgreSQL is only read (is the account still live?).
        async with runtime.sessions() as session:
            return await auth_service.refresh(session, runtime, refresh_token)

    if not browser_secret:
        return await rotate()
    digest = hmac.new(browser_secret.encode(), refresh_token.encode(), hashlib.sha256).hexdigest()
    pair: TokenPair = await runtime.web_refreshes.get_or_load(digest, rotate)
    return pair


async def _resolve(request: Request) -> WebUser | None:
    runtime = _runtime(request)
    access = cookie(request, ACCESS_COOKIE)
    claims: AccessClaims | None = None
    if access:
        try:
            claims = await authenticate_token(runtime, access)
        except Unauthorized:
            claims = None
    now = int(runtime.clock.now().timestamp())
    if claims is not None and claims.expires_at - now > REFRESH_MARGIN_SECONDS:
        return WebUser(claims.user_id, claims.role, claims, access or "")
    refresh_token = cookie(request, REFRESH_COOKIE)
    if refresh_token is None or len(refresh_token) > 200:
        if claims is not None:
            return WebUser(claims.user_id, claims.role, claims, access or "")
        if access:
            clear_cookie(request, ACCESS_COOKIE)
        return None
    try:
        browser = sent_cookie(request, CSRF_COOKIE)
        pair = await _refreshed(runtime, refresh_token, browser if browser and len(browser) <= 100 else None)
        fresh = await authenticate_token(runtime, pair.access_token)
    except DomainError as exc:
        log.info("web_refresh_refused", code=exc.code)
        end_session(request)
        return None
    start_session(request, pair)
    return WebUser(fresh.user_id, fresh.role, fresh, pair.access_token)


async def web_user(request: Request) -> WebUser | None:
    """The logged-in fan of this request, or None (resolved once per request)."""
    if not getattr(request.state, "bo_resolved", False):
        user = await _resolve(request)
        request.state.bo_user = user
        request.state.bo_resolved = True
        if user is not None:
            request.state.user_id = user.user_id  # the access log's field
    found: WebUser | None = request.state.bo_user
    return found


async def require_user(request: Request) -> WebUser:
    user = await web_user(request)
    if user is None:
        raise AuthRequired("Please log in to continue")
    return user


async def require_admin(request: Request) -> WebUser:
    user = await require_user(request)
    if not user.is_admin:
        raise Forbidden("This page is for administrators")
    return user


OptionalPageUser = Annotated[WebUser | None, Depends(web_user)]
PageUser = Annotated[WebUser, Depends(require_user)]
AdminPageUser = Annotated[WebUser, Depends(require_admin)]


# ---------------------------------------------------------------- CSRF


def _sign(runtime: Runtime, value: str) -> str:
    key = secret(runtime.settings.jwt_secret).encode()
    return hmac.new(key, b"csrf:" + value.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token for this browser's forms; creates the browser's CSRF cookie on first use."""
    value = cookie(request, CSRF_COOKIE)
    if value is None or len(value) > 100:
        value = secrets.token_urlsafe(32)
        set_cookie(request, CSRF_COOKIE, value, max_age=_runtime(request).settings.refresh_token_ttl_seconds)
    return _sign(_runtime(request), value)


async def verify_csrf(request: Request) -> None:
    """403 CSRF_FAILED unless the request carries this browser's token (header or form field)."""
    presented: Any = request.headers.get(CSRF_HEADER)
    if presented is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        presented = (await request.form()).get(CSRF_FIELD)
    value = sent_cookie(request, CSRF_COOKIE)
    if not isinstance(presented, str) or not value or len(value) > 100 or len(presented) > 100:
        raise CsrfFailed("This form has expired; reload the page and try again")
    if not hmac.compare_digest(presented.encode(), _sign(_runtime(request), value).encode()):
        raise CsrfFailed("This form has expired; reload the page and try again")


CsrfChecked = Depends(verify_csrf)


# ---------------------------------------------------------------- admission tokens


def queue_cookie_name(show_id: int) -> str:
    return f"{QUEUE_COOKIE_PREFIX}{show_id}"


def queue_token(request: Request, show_id: int) -> str | None:
    """This browser's admission token for the show (or None)."""
    value = cookie(request, queue_cookie_name(show_id))
    return value if value is not None and len(value) <= 4096 else None


def keep_queue_token(request: Request, show_id: int, token: str, *, max_age: int) -> None:
    set_cookie(request, queue_cookie_name(show_id), token, max_age=max_age)
