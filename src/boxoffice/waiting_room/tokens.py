"""Admission tokens: a JWT with its own key, bound to user (sub) and show (aud).

Verified by the seat and reservation endpoints of that show: the signature locally (once per token
and process), then one HGET on the multiplexed connection: a token issued before its holder left
the queue is refused. Redis down: the signed, short-lived token is accepted (holds and payments
do not stop with Redis; PostgreSQL still decides every seat).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from redis.exceptions import RedisError

from boxoffice.config import Settings, secret
from boxoffice.errors import QueueTokenForeign, QueueTokenRefused, QueueTokenRequired
from boxoffice.kit.jws import hmac_payload
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import store

ISSUER = "boxoffice-waiting-room"
LEEWAY_SECONDS = 30


def show_audience(show_id: int) -> str:
    return f"show:{show_id}"


@dataclass(frozen=True)
class QueueClaims:
    user_id: int
    show_id: int
    ticket: int
    jti: str
    expires_at: int
    issued_at_ms: int = 0


class QueueTokenInvalid(Exception):
    pass


class QueueTokenMismatch(Exception):
    pass


def issue_queue_token(
    settings: Settings, *, user_id: int, show_id: int, ticket: int, ttl_seconds: int, now: datetime
) -> tuple[str, datetime]:
    expires = now + timedelta(seconds=ttl_seconds)
    token = jwt.encode(
        {
            "sub": str(user_id),
            "aud": show_audience(show_id),
            "iss": ISSUER,
            "ticket": ticket,
            "jti": uuid.uuid4().hex,
            # In milliseconds (a NumericDate may have a fraction): a fan who leaves the queue and is
            # admitted again within the same second must get a token that works (see check).
            "iat": int(now.timestamp() * 1000) / 1000,
            "exp": int(expires.timestamp()),
        },
        secret(settings.queue_token_secret),
        algorithm="HS256",
    )
    return token, expires


_REQUIRED = ("sub", "aud", "exp", "iat", "jti", "ticket")


def _pyjwt_decode(token: str, key: str) -> dict[str, Any]:
    payload: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["HS256"],
        issuer=ISSUER,
        options={
            "require": list(_REQUIRED),
            "verify_aud": False,
            # exp is checked against the injected clock (_check_claims); iat is only compared
            # with when the user left the queue
            "verify_exp": False,
            "verify_iat": False,
        },
    )
    return payload


def decode_queue_token(settings: Settings, token: str) -> QueueClaims:
    """Signature and claims, without the time and ownership checks; raises QueueTokenInvalid."""
    try:
        key = secret(settings.queue_token_secret)
        payload = hmac_payload(token, key, "HS256")  # our own shape: one HMAC (kit.jws)
        if payload is None or payload.get("iss") != ISSUER or any(payload.get(c) is None for c in _REQUIRED):
            payload = _pyjwt_decode(token, key)
        audience = str(payload["aud"])
        if not audience.startswith("show:"):
            raise QueueTokenInvalid("not a show audience")
        return QueueClaims(
            user_id=int(payload["sub"]),
            show_id=int(audience.removeprefix("show:")),
            ticket=int(payload["ticket"]),
            jti=str(payload["jti"]),
            expires_at=int(payload["exp"]),
            issued_at_ms=round(float(payload["iat"]) * 1000),
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise QueueTokenInvalid(str(exc)) from exc


def _check_claims(claims: QueueClaims, *, user_id: int, show_id: int, now: datetime) -> QueueClaims:
    if claims.expires_at + LEEWAY_SECONDS <= int(now.timestamp()):
        raise QueueTokenInvalid("expired")
    if claims.user_id != user_id or claims.show_id != show_id:
        raise QueueTokenMismatch("token issued for another user or show")
    return claims


def admission_read(runtime: Runtime, user_id: int, show_id: int) -> Awaitable[Any]:
    """check_queue_token's one Redis read (when the fan left the show's queue), written now: hand
    it to check_queue_token as `ended` (a route issues it with its deny-list check: http.hot)."""
    return store.issue_admission_ended_at(runtime.hot_redis, show_id, user_id)


async def check_queue_token(
    runtime: Runtime, user_id: int, show_id: int, token: str | None, *, ended: Awaitable[Any] | None = None
) -> QueueClaims:
    """The gate: 401 QUEUE_TOKEN_REQUIRED / QUEUE_TOKEN_INVALID (also: issued before the user left
    the queue), 403 QUEUE_TOKEN_MISMATCH. A token's signature is checked once per process.
    `ended`: its read, issued earlier (admission_read)."""
    outcome = "valid"
    try:
        if not token:
            outcome = "missing"
            raise QueueTokenRequired("This show is queue-gated: send X-Queue-Token")
        try:
            cached = runtime.queue_tokens.get(token)
            claims = cached or decode_queue_token(runtime.settings, token)
            checked = _check_claims(claims, user_id=user_id, show_id=show_id, now=runtime.clock.now())
            if cached is None:  # remembered only once it passed its owner and show check, until it expires
                lifetime = claims.expires_at + LEEWAY_SECONDS - int(runtime.clock.now().timestamp())
                runtime.queue_tokens.put(token, claims, max(1, lifetime))
            try:
                left = await store.admission_ended_at(
                    ended if ended is not None else admission_read(runtime, user_id, show_id)
                )
            except RedisError:
                left = None
            if left is not None and checked.issued_at_ms <= left:
                raise QueueTokenInvalid("the user left the queue after this token was issued")
            return checked
        except QueueTokenInvalid:
            outcome = "invalid"
            raise QueueTokenRefused("Queue token is invalid or expired") from None
        except QueueTokenMismatch:
            outcome = "mismatch"
            raise QueueTokenForeign("Queue token belongs to another user or show") from None
    finally:
        runtime.metrics.queue_token_checks.labels(outcome).inc()


# ---------------------------------------------------------------------------- queue tickets
# A fan's number in line, signed at join: `v1.<show>.<user>.<number>.<mac>`. A poll that
# carries it is answered from the show's serving number alone (no per-fan Redis read). Not a JWT:
# it is checked on every poll, and one HMAC over a short string costs a few microseconds.
_TICKET_LABEL = b"boxoffice-queue-ticket-v1"


@dataclass(frozen=True, slots=True)
class QueueTicket:
    show_id: int
    user_id: int
    number: int  # 0: a provisional pre-queue slot (numbers are drawn at sale start)


class QueueTicketInvalid(Exception):
    pass


def _ticket_key(settings: Settings) -> bytes:
    return _derive_ticket_key(secret(settings.queue_token_secret))


@functools.lru_cache(maxsize=8)
def _derive_ticket_key(queue_secret: str) -> bytes:
    # Derived from the queue-token secret under its own label: a ticket is never a valid token.
    return hmac.new(queue_secret.encode(), _TICKET_LABEL, hashlib.sha256).digest()


def _ticket_mac(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode()


def issue_queue_ticket(settings: Settings, ticket: QueueTicket) -> str:
    payload = f"v1.{ticket.show_id}.{ticket.user_id}.{ticket.number}"
    return f"{payload}.{_ticket_mac(_ticket_key(settings), payload)}"


def verify_queue_ticket(settings: Settings, raw: str) -> QueueTicket:
    """Raises QueueTicketInvalid (malformed or not signed by us)."""
    if len(raw) > 160:
        raise QueueTicketInvalid("too long")
    payload, _, mac = raw.rpartition(".")
    parts = payload.split(".")
    if len(parts) != 4 or parts[0] != "v1":
        raise QueueTicketInvalid("malformed")
    if not hmac.compare_digest(mac.encode(), _ticket_mac(_ticket_key(settings), payload).encode()):
        raise QueueTicketInvalid("bad signature")
    try:
        show_id, user_id, number = int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError as exc:
        raise QueueTicketInvalid("malformed") from exc
    return QueueTicket(show_id=show_id, user_id=user_id, number=number)
