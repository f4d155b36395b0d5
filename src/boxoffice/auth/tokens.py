"""Access tokens: short-lived JWTs signed with the key from settings.

Only the configured algorithm is accepted (no `none`, no algorithm switching); every claim the
product relies on is required.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from boxoffice.config import Settings, secret
from boxoffice.kit.jws import hmac_payload

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


def _decode(
    settings: Settings, token: str, *, audience: str, require: list[str], now: datetime
) -> dict[str, Any]:
    """Signature (the configured algorithm only), audience, issuer, required claims, and exp
    against the injected clock: PyJWT's own time checks use the wall clock, so they are off.
    A token of exactly the shape we issue is checked by kit.jws (one HMAC); any other goes to PyJWT."""
    key = secret(settings.jwt_secret)
    fast = hmac_payload(token, key, settings.jwt_algorithm)
    if (
        fast is not None
        and fast.get("aud") == audience
        and fast.get("iss") == ISSUER
        and all(fast.get(claim) is not None for claim in require)
    ):
        if int(fast["exp"]) <= int(now.timestamp()):
            raise InvalidToken("token expired")
        return fast
    payload: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[settings.jwt_algorithm],
        audience=audience,
        issuer=ISSUER,
        options={"require": require, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    if int(payload["exp"]) <= int(now.timestamp()):
        raise InvalidToken("token expired")
    return payload


def verify_access_token(settings: Settings, token: str, *, now: datetime) -> AccessClaims:
    try:
        payload = _decode(
            settings, token, audience=ACCESS_AUDIENCE, require=["sub", "role", "jti", "iat", "exp"], now=now
        )
        exp = int(payload["exp"])
        role = payload["role"]
        if role not in ("USER", "ADMIN", "DOOR"):
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
        payload = _decode(
            settings,
            token,
            audience=VERIFY_EMAIL_AUDIENCE,
            require=["sub", "email", "purpose", "iat", "exp"],
            now=now,
        )
        if payload["purpose"] != VERIFY_EMAIL_PURPOSE:
            raise InvalidToken("wrong purpose")
        email = payload["email"]
        if not isinstance(email, str):
            raise InvalidToken("bad email")
        return int(payload["sub"]), email
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise InvalidToken(str(exc)) from exc
