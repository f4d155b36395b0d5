"""Access tokens: short-lived JWTs signed with the key from settings.

Only the configured algorithm is accepted (no `none`, no algorithm switching); every claim the
product relies on is required.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from boxoffice.config import Settings, secret

ACCESS_AUDIENCE = "boxoffice-api"
ISSUER = "boxoffice"


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    role: str
    jti: str
    issued_at: int
    expires_at: int


class InvalidToken(Exception):
    """The token is malformed, forged, expired or otherwise unacceptable."""


def issue_access_token(settings: Settings, *, user_id: int, role: str, now: datetime) -> tuple[str, AccessClaims]:
    iat = int(now.timestamp())
    exp = int((now + timedelta(seconds=settings.access_token_ttl_seconds)).timestamp())
    claims = AccessClaims(user_id=user_id, role=role, jti=uuid.uuid4().hex, issued_at=iat, expires_at=exp)
    token = jwt.encode(
        {
            "sub": str(user_id),
            "role": role,
            "jti": claims.jti,
            "iat": iat,
            "exp": exp,
            "aud": ACCESS_AUDIENCE,
            "iss": ISSUER,
        },
        secret(settings.jwt_secret),
        algorithm=settings.jwt_algorithm,
    )
    return token, claims


def verify_access_token(settings: Settings, token: str, *, now: datetime) -> AccessClaims:
    try:
        payload = jwt.decode(
            token,
            secret(settings.jwt_secret),
            algorithms=[settings.jwt_algorithm],
            audience=ACCESS_AUDIENCE,
            issuer=ISSUER,
            options={"require": ["sub", "role", "jti", "iat", "exp"], "verify_exp": False},
        )
        exp = int(payload["exp"])
        if exp <= int(now.timestamp()):
            raise InvalidToken("token expired")
        role = payload["role"]
        if role not in ("USER", "ADMIN"):
            raise InvalidToken("unknown role")
        return AccessClaims(
            user_id=int(payload["sub"]),
            role=role,
            jti=str(payload["jti"]),
            issued_at=int(payload["iat"]),
            expires_at=exp,
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise InvalidToken(str(exc)) from exc
