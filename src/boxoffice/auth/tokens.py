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
# A different audience (and a purpose claim): a verification link is never an access token.
VERIFY_EMAIL_AUDIENCE = "boxoffice-verify-email"
VERIFY_EMAIL_PURPOSE = "verify-email"
VERIFY_EMAIL_TTL_SECONDS = 24 * 3600
ISSUER = "boxoffice"


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    role: str
    jti: str
    issued_at: int
    expires_at: int
    # The login (refresh-token family) this token belongs to; logout revokes it. None for tokens
    # minted outside a login (test factories).
    session_id: str | None = None


class InvalidToken(Exception):
    """The token is malformed, forged, expired or otherwise unacceptable."""


def issue_access_token(
    settings: Settings, *, user_id: int, role: str, now: datetime, session_id: str | None = None
) -> tuple[str, AccessClaims]:
    iat = int(now.timestamp())
    exp = int((now + timedelta(seconds=settings.access_token_ttl_seconds)).timestamp())
    claims = AccessClaims(
        user_id=user_id, role=role, jti=uuid.uuid4().hex, issued_at=iat, expires_at=exp, session_id=session_id
    )
    payload: dict[str, object] = {
        "sub": str(user_id),
        "role": role,
        "jti": claims.jti,
        "iat": iat,
        "exp": exp,
        "aud": ACCESS_AUDIENCE,
        "iss": ISSUER,
    }
    if session_id is not None:
        payload["sid"] = session_id
    token = jwt.encode(payload, secret(settings.jwt_secret), algorithm=settings.jwt_algorithm)
    return token, claims


def verify_access_token(settings: Settings, token: str, *, now: datetime) -> AccessClaims:
    try:
        payload = jwt.decode(
            token,
            secret(settings.jwt_secret),
            algorithms=[settings.jwt_algorithm],
            audience=ACCESS_AUDIENCE,
            issuer=ISSUER,
            # exp is checked against the injected clock below; PyJWT's own time checks use the
            # wall clock (tests and the clock move time forward), so they are off.
            options={
                "require": ["sub", "role", "jti", "iat", "exp"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        exp = int(payload["exp"])
        if exp <= int(now.timestamp()):
            raise InvalidToken("token expired")
        role = payload["role"]
        if role not in ("USER", "ADMIN"):
            raise InvalidToken("unknown role")
        sid = payload.get("sid")
        if sid is not None and not isinstance(sid, str):
            raise InvalidToken("bad sid")
        return AccessClaims(
            user_id=int(payload["sub"]),
            role=role,
            jti=str(payload["jti"]),
            issued_at=int(payload["iat"]),
            expires_at=exp,
            session_id=sid,
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise InvalidToken(str(exc)) from exc


def issue_email_verification_token(settings: Settings, *, user_id: int, email: str, now: datetime) -> str:
    """The signed token of a verification link: bound to the user and the address it was sent to."""
    iat = int(now.timestamp())
    return jwt.encode(
        {
            "sub": str(user_id),
            "email": email,
            "purpose": VERIFY_EMAIL_PURPOSE,
            "iat": iat,
            "exp": iat + VERIFY_EMAIL_TTL_SECONDS,
            "aud": VERIFY_EMAIL_AUDIENCE,
            "iss": ISSUER,
        },
        secret(settings.jwt_secret),
        algorithm=settings.jwt_algorithm,
    )


def verify_email_verification_token(settings: Settings, token: str, *, now: datetime) -> tuple[int, str]:
    """(user_id, email) of a valid verification token; InvalidToken otherwise."""
    try:
        payload = jwt.decode(
            token,
            secret(settings.jwt_secret),
            algorithms=[settings.jwt_algorithm],
            audience=VERIFY_EMAIL_AUDIENCE,
            issuer=ISSUER,
            options={
                "require": ["sub", "email", "purpose", "iat", "exp"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        if payload["purpose"] != VERIFY_EMAIL_PURPOSE:
            raise InvalidToken("wrong purpose")
        if int(payload["exp"]) <= int(now.timestamp()):
            raise InvalidToken("token expired")
        email = payload["email"]
        if not isinstance(email, str):
            raise InvalidToken("bad email")
        return int(payload["sub"]), email
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise InvalidToken(str(exc)) from exc
