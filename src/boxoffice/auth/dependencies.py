"""The authentication step every protected endpoint goes through (seed 000's gateway).

It verifies the bearer token, checks the logout deny-list and the soft-delete marker (one Redis
round trip, two O(1) EXISTS), and hands the endpoint the caller's id
and role. Missing/invalid/expired/denied -> 401 with WWW-Authenticate: Bearer; wrong role -> 403.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from boxoffice.auth.store import is_access_refused
from boxoffice.auth.tokens import AccessClaims, InvalidToken, verify_access_token
from boxoffice.deps import RuntimeDep
from boxoffice.errors import AuthRequired, Forbidden, InvalidAccessToken
from boxoffice.runtime import Runtime

log = structlog.get_logger("boxoffice.auth")
_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/auth/login")


async def current_claims(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims:
    token = credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else None
    claims = await authenticate_token(runtime, token)
    request.state.user_id = claims.user_id
    return claims


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, for routes without FastAPI's DI."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def authenticate_token(runtime: Runtime, token: str | None) -> AccessClaims:
    """The whole check behind CurrentUser: signature and expiry, then the deny-list."""
    if not token:
        raise AuthRequired("Missing bearer token")
    claims = _verified(runtime, token)
    try:
        denied = await is_access_refused(runtime.hot_redis, claims.user_id, claims.jti, claims.session_id)
    except Exception as exc:
        log.warning("auth_denylist_unavailable", error=type(exc).__name__, reason=str(exc)[:200])
        # Redis down: fail closed for the deny-list would lock everyone out; the token is
        # short-lived and signed, so we accept it and log. Logout during a Redis outage is the gap.
        denied = False
    if denied:
        raise InvalidAccessToken("Access token was revoked")
    return claims


def _verified(runtime: Runtime, token: str) -> AccessClaims:
    """Signature checked once per token and process (the cache keys on the exact string); the
    expiry is checked on every request against the injected clock."""
    now = runtime.clock.now()
    claims: AccessClaims | None = runtime.verified_tokens.get(token)
    if claims is None:
        try:
            claims = verify_access_token(runtime.settings, token, now=now)
        except InvalidToken:
            raise InvalidAccessToken("Invalid or expired access token") from None
        runtime.verified_tokens.put(token, claims)
    elif claims.expires_at <= int(now.timestamp()):
        raise InvalidAccessToken("Invalid or expired access token")
    return claims


CurrentUser = Annotated[AccessClaims, Depends(current_claims)]


async def require_admin(claims: CurrentUser) -> AccessClaims:
    if claims.role != "ADMIN":
        raise Forbidden("Administrator role required")
    return claims


AdminUser = Annotated[AccessClaims, Depends(require_admin)]
