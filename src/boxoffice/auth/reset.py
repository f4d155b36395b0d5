"""Password-reset links (pure: no I/O). A token is `<body>.<HMAC-SHA256>` where body names the user,
an expiry and a fingerprint of the password hash it may replace: short-lived (settings) and single
use without any stored state, since resetting the password changes the fingerprint and so kills
every link minted before (used or not). The key is derived from the JWT secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

_CONTEXT = b"boxoffice password reset v1:"
MAX_TOKEN_LENGTH = 512


def _key(secret: str) -> bytes:
    return hashlib.sha256(_CONTEXT + secret.encode()).digest()


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:24]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(secret: str, *, user_id: int, password_hash: str, expires_at: int) -> str:
    body = _b64(json.dumps({"u": user_id, "e": expires_at, "f": fingerprint(password_hash)}).encode())
    mac = hmac.new(_key(secret), body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


@dataclass(frozen=True, slots=True)
class ResetClaims:
    user_id: int
    expires_at: int
    fingerprint: str


def read(secret: str, token: str, *, now: int) -> ResetClaims | None:
    """The claims of an authentic, unexpired token; None otherwise. The caller still compares the
    fingerprint with the user's current password hash (that is what makes a link single-use)."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    try:
        given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
        expected = hmac.new(_key(secret), body.encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(given, expected):
            return None
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        claims = ResetClaims(int(data["u"]), int(data["e"]), str(data["f"]))
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        return None
    if claims.expires_at <= now:
        return None
    return claims
