"""FastAPI dependencies for the authentication step every protected endpoint goes through (seed
000's gateway). The check itself is `auth.service.authenticate_token` (shared with the lean routes
and the gRPC door): it verifies the bearer token, checks the logout deny-list and the soft-delete
marker (one Redis round trip), and hands the endpoint the caller's id and role.
Missing/invalid/expired/denied -> 401 with WWW-Authenticate: Bearer; wrong role -> 403.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from boxoffice import errors as e
from boxoffice.auth.service import access_check, authenticate_token, bearer_token, verified_claims
from boxoffice.auth.tokens import AccessClaims
from boxoffice.http.deps import RuntimeDep
from boxoffice.http.hot import Caller
from boxoffice.http.problems import raises
from boxoffice.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/auth/login")


@raises(e.AuthRequired, e.InvalidAccessToken)
async def current_claims(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims:
    token = credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else None
    claims = await authenticate_token(runtime, token)
    request.state.user_id = claims.user_id
    return claims


CurrentUser = Annotated[AccessClaims, Depends(current_claims)]


@raises(e.Forbidden)
async def require_admin(claims: CurrentUser) -> AccessClaims:
    if claims.role != "ADMIN":
        raise e.Forbidden("Administrator role required")
    return claims


AdminUser = Annotated[AccessClaims, Depends(require_admin)]


class HeaderAuthentication:
    """The hot routes' token check (http.hot.Authenticate), installed by the app: the two halves
    of authenticate_token."""

    @staticmethod
    def verify(runtime: Runtime, authorization: str | None) -> AccessClaims:
        return verified_claims(runtime, bearer_token(authorization))

    @staticmethod
    def check(runtime: Runtime, caller: Caller, recent_ok: bool) -> Awaitable[None]:
        assert isinstance(caller, AccessClaims)  # what verify returned
        return access_check(runtime, caller, recent_ok=recent_ok)
