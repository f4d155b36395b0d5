"""FastAPI dependencies for the authentication step every protected endpoint goes through (seed
000's gateway). The check itself is `auth.service.authenticate_token` (shared with the lean routes
and the gRPC door): it verifies the bearer token, checks the logout deny-list and the soft-delete
marker (one Redis round trip), and hands the endpoint the caller's id and role.
Missing/invalid/expired/denied -> 401 with WWW-Authenticate: Bearer; wrong role -> 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from boxoffice import errors as e
from boxoffice.auth.service import authenticate_token, bearer_token
from boxoffice.auth.tokens import AccessClaims
from boxoffice.http.deps import RuntimeDep
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


async def authenticate_header(runtime: Runtime, authorization: str | None, recent_ok: bool) -> AccessClaims:
    """The hot routes' token check (http.hot.Authenticate), installed by the app."""
    return await authenticate_token(runtime, bearer_token(authorization), recent_ok=recent_ok)
