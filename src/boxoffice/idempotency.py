"""Idempotency for every write of the product (top-ups, reservations, payments).

A key is scoped per user and route and kept 24 h. The request's work runs in ONE transaction that
first inserts the key (the claim), then does the work, then stores the response, so the effect and
the stored answer commit together or not at all (exactly once):
- the same key with the same body replays the stored response without doing the work again;
- the same key with a different body -> 422 IDEMPOTENCY_KEY_REUSED;
- a duplicate arriving while the first is still running waits on the first one's uncommitted key
  row (PostgreSQL's unique index does the queueing) and replays its answer once it commits; if it
  waits longer than the connection's lock_timeout -> 409 IDEMPOTENCY_IN_PROGRESS;
- errors are not stored: the claim rolls back with the work, and a retry does the work. A crashed
  process leaves nothing behind either, so no claim ever has to be taken over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.db import sqlstate
from boxoffice.errors import BadRequest, Conflict, Unprocessable
from boxoffice.runtime import Runtime
from boxoffice.worker import Job

KEY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout expired while a duplicate held the key row

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


def fingerprint_hash(fingerprint: object) -> str:
    canonical = json.dumps(jsonable_encoder(fingerprint), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters", code="IDEMPOTENCY_KEY_INVALID"
        )
    return key


# Inserts the claim, or (expired keys only) takes the row over; returns nothing when the key is
# in use. Blocks while another open transaction holds the same key.
_CLAIM = text(
    """
    INSERT INTO idempotency_keys AS k (user_id, scope, key, request_hash, state, created_at, expires_at)
    VALUES (:user_id, :scope, :key, :hash, 'IN_PROGRESS', :now, :expires)
    ON CONFLICT (user_id, scope, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, state = 'IN_PROGRESS', created_at = EXCLUDED.created_at,
            expires_at = EXCLUDED.expires_at, response_status = NULL, response_body = NULL
        WHERE k.expires_at <= EXCLUDED.created_at
    RETURNING 1
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
    """
)
_PURGE = text(
    "DELETE FROM idempotency_keys WHERE ctid IN "
    "(SELECT ctid FROM idempotency_keys WHERE expires_at <= :now LIMIT 5000)"
)


def _replay(row: Any, request_hash: str) -> IdempotentResult:
    if row["request_hash"] != request_hash:
        raise Unprocessable(
            "This Idempotency-Key was used with a different request body", code="IDEMPOTENCY_KEY_REUSED"
        )
    if row["state"] != "DONE":  # only a row written by an older version could be left like this
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly",
            code="IDEMPOTENCY_IN_PROGRESS",
            headers={"Retry-After": "1"},
        )
    return IdempotentResult(row["response_status"], row["response_body"], replayed=True)


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
    params = {"user_id": user_id, "scope": scope, "key": validate_key(key)}
    request_hash = fingerprint_hash(fingerprint)
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        try:
            claimed = (
                await session.execute(
                    _CLAIM, {**params, "hash": request_hash, "now": now, "expires": now + KEY_TTL}
                )
            ).scalar()
        except DBAPIError as exc:
            if sqlstate(exc) != LOCK_NOT_AVAILABLE:
                raise
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry shortly",
                code="IDEMPOTENCY_IN_PROGRESS",
                headers={"Retry-After": "1"},
            ) from None
        if claimed is not None:
            status, body = await work(session)
            encoded = jsonable_encoder(body)
            await session.execute(_STORE, {**params, "status": status, "body": json.dumps(encoded)})
            return IdempotentResult(status, encoded, replayed=False)
        row = (await session.execute(_EXISTING, params)).mappings().one()
    return _replay(row, request_hash)


async def stored_answer(
    runtime: Runtime, *, user_id: int, scope: str, key: str | None, fingerprint: object
) -> IdempotentResult | None:
    """The stored answer for this key, if a first request already completed (else None).

    For work whose inputs are chosen from live state (best available): a retry must replay the
    first answer even when the state it would choose from has changed since (by that answer)."""
    if key is None:
        return None
    params = {"user_id": user_id, "scope": scope, "key": validate_key(key)}
    async with runtime.sessions() as session:
        row = (await session.execute(_EXISTING, params)).mappings().first()
    if row is None or row["state"] != "DONE":
        return None
    return _replay(row, fingerprint_hash(fingerprint))


async def purge_expired(runtime: Runtime) -> None:
    async with runtime.sessions() as session, session.begin():
        await session.execute(_PURGE, {"now": runtime.clock.now()})


JOBS: list[Job] = [Job("idempotency_purge", 300, purge_expired)]
