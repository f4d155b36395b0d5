"""Idempotency for every write of the product (top-ups, reservations, payments).

A key is scoped per user and route and kept 24 h. The first request claims the key in a short
transaction of its own; its work then runs in a second transaction that also stores the response,
so the effect and the stored answer commit together (exactly once). Then:
- the same key with the same body replays the stored response without doing the work again;
- the same key with a different body -> 422 IDEMPOTENCY_KEY_REUSED;
- a request arriving while the first is still running waits briefly for its answer, then 409
  IDEMPOTENCY_IN_PROGRESS;
- errors are not stored: the claim is released and a retry does the work.
A claim abandoned by a crashed process is taken over after CLAIM_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.errors import BadRequest, Conflict, Unprocessable
from boxoffice.runtime import Runtime
from boxoffice.worker import Job

KEY_TTL = timedelta(hours=24)
CLAIM_TIMEOUT = timedelta(seconds=60)
WAIT_FOR_FIRST_SECONDS = 2.0
MAX_KEY_LENGTH = 255

Work = Callable[[AsyncSession], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class IdempotentResult:
    status: int
    body: Any
    replayed: bool

    def as_response(self) -> JSONResponse:
        """The stored or fresh answer; a replay says so in `Idempotent-Replayed: true`."""
        headers = {"Idempotent-Replayed": "true"} if self.replayed else None
        return JSONResponse(self.body, status_code=self.status, headers=headers)


@dataclass(frozen=True)
class Claim:
    user_id: int
    scope: str
    key: str
    request_hash: str
    claimed_at: datetime


def fingerprint_hash(fingerprint: object) -> str:
    canonical = json.dumps(jsonable_encoder(fingerprint), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters", code="IDEMPOTENCY_KEY_INVALID"
        )
    return key


_CLAIM = text(
    """
    INSERT INTO idempotency_keys AS k (user_id, scope, key, request_hash, state, created_at, expires_at)
    VALUES (:user_id, :scope, :key, :hash, 'IN_PROGRESS', :now, :expires)
    ON CONFLICT (user_id, scope, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, state = 'IN_PROGRESS', created_at = EXCLUDED.created_at,
            expires_at = EXCLUDED.expires_at, response_status = NULL, response_body = NULL
        WHERE k.expires_at <= EXCLUDED.created_at
           OR (k.state = 'IN_PROGRESS' AND k.created_at <= :abandoned_before)
    RETURNING created_at
    """
)
_EXISTING = text(
    "SELECT request_hash, state, response_status, response_body FROM idempotency_keys "
    "WHERE user_id = :user_id AND scope = :scope AND key = :key"
)
_STORE = text(
    """
    UPDATE idempotency_keys
    SET state = 'DONE', response_status = :status, response_body = CAST(:body AS jsonb)
    WHERE user_id = :user_id AND scope = :scope AND key = :key
      AND state = 'IN_PROGRESS' AND created_at = :claimed_at
    """
)
_RELEASE = text(
    "DELETE FROM idempotency_keys WHERE user_id = :user_id AND scope = :scope AND key = :key "
    "AND state = 'IN_PROGRESS' AND created_at = :claimed_at"
)
_PURGE = text(
    "DELETE FROM idempotency_keys WHERE ctid IN "
    "(SELECT ctid FROM idempotency_keys WHERE expires_at <= :now LIMIT 5000)"
)


async def claim_key(
    runtime: Runtime, *, user_id: int, scope: str, key: str, fingerprint: object
) -> Claim | IdempotentResult:
    """Claim the key, or return the stored result of the request that already used it."""
    request_hash = fingerprint_hash(fingerprint)
    deadline = asyncio.get_running_loop().time() + WAIT_FOR_FIRST_SECONDS
    delay = 0.01
    while True:
        now = runtime.clock.now()
        params = {"user_id": user_id, "scope": scope, "key": key, "hash": request_hash}
        async with runtime.sessions() as session, session.begin():
            claimed_at = (
                await session.execute(
                    _CLAIM,
                    {**params, "now": now, "expires": now + KEY_TTL, "abandoned_before": now - CLAIM_TIMEOUT},
                )
            ).scalar()
            if claimed_at is not None:
                return Claim(user_id, scope, key, request_hash, claimed_at)
            row = (await session.execute(_EXISTING, params)).mappings().first()
        if row is None:
            continue  # released between our two statements: try to claim again
        if row["request_hash"] != request_hash:
            raise Unprocessable(
                "This Idempotency-Key was used with a different request body", code="IDEMPOTENCY_KEY_REUSED"
            )
        if row["state"] == "DONE":
            return IdempotentResult(row["response_status"], row["response_body"], replayed=True)
        if asyncio.get_running_loop().time() >= deadline:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry shortly",
                code="IDEMPOTENCY_IN_PROGRESS",
                headers={"Retry-After": "1"},
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)


async def store_response(session: AsyncSession, claim: Claim, status: int, body: Any) -> Any:
    """Store the response inside the work's transaction. Returns the JSON-ready body."""
    encoded = jsonable_encoder(body)
    result = await session.execute(
        _STORE,
        {
            "user_id": claim.user_id,
            "scope": claim.scope,
            "key": claim.key,
            "claimed_at": claim.claimed_at,
            "status": status,
            "body": json.dumps(encoded),
        },
    )
    if getattr(result, "rowcount", 1) != 1:
        # Our claim was taken over (we were slower than CLAIM_TIMEOUT): roll the work back.
        raise Conflict("The idempotency claim expired; retry the request", code="IDEMPOTENCY_IN_PROGRESS")
    return encoded


async def release_claim(runtime: Runtime, claim: Claim) -> None:
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            _RELEASE,
            {
                "user_id": claim.user_id,
                "scope": claim.scope,
                "key": claim.key,
                "claimed_at": claim.claimed_at,
            },
        )


async def run_idempotent(
    runtime: Runtime,
    *,
    user_id: int,
    scope: str,
    key: str | None,
    fingerprint: object,
    work: Work,
    required: bool = True,
) -> IdempotentResult:
    """Run `work(session)` at most once per (user, scope, key); see the module docstring."""
    if key is None:
        if required:
            raise BadRequest("This request needs an Idempotency-Key header", code="IDEMPOTENCY_KEY_REQUIRED")
        async with runtime.sessions() as session, session.begin():
            status, body = await work(session)
        return IdempotentResult(status, jsonable_encoder(body), replayed=False)
    outcome = await claim_key(
        runtime, user_id=user_id, scope=scope, key=validate_key(key), fingerprint=fingerprint
    )
    if isinstance(outcome, IdempotentResult):
        return outcome
    try:
        async with runtime.sessions() as session, session.begin():
            status, body = await work(session)
            encoded = await store_response(session, outcome, status, body)
    except BaseException:
        await asyncio.shield(release_claim(runtime, outcome))
        raise
    return IdempotentResult(status, encoded, replayed=False)


async def purge_expired(runtime: Runtime) -> None:
    async with runtime.sessions() as session, session.begin():
        await session.execute(_PURGE, {"now": runtime.clock.now()})


JOBS: list[Job] = [Job("idempotency_purge", 300, purge_expired)]
