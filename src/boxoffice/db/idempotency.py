"""Idempotency for every write of the product (top-ups, reservations, payments).

A key is scoped per user and route and kept 24 h. Two modes.

`run_idempotent` (one step): the work runs in ONE unit of work that first inserts the key (the
claim), then does the work, then stores the response, so the effect and the stored answer commit
together or not at all (exactly once):
- the same key with the same body replays the stored response without doing the work again;
- the same key with a different body -> 422 IDEMPOTENCY_KEY_REUSED;
- a duplicate arriving while the first is still running waits on the first one's uncommitted key
  row (PostgreSQL's unique index does the queueing) and replays its answer once it commits; if it
  waits longer than the connection's lock_timeout -> 409 IDEMPOTENCY_IN_PROGRESS;
- errors are not stored: the claim rolls back with the work, and a retry does the work. A crashed
  process leaves nothing behind either, so no claim ever has to be taken over.

`run_lean_idempotent` (one statement, for the hot writes: a winning hold, a balance payment): the
work is ONE SQL statement on a lean unit of work that reads the stored answer (`LEAN_PRIOR`: then
it does nothing else) and writes the key with its answer beside the effect (`lean_claim`), so
effect and answer commit together or not at all, in one round trip. A duplicate that runs while the
first is in flight is refused by what the first did (the seats are taken, the hold is paid), or
runs into the key's unique index: either way it reads the key again and replays the first answer.

`run_idempotent_steps` (several steps, for work that calls another system, e.g. a card charge):
the claim commits on its own, the work then opens its own units of work (no transaction is open
across the HTTP call, one pool connection at a time), and the answer is stored in a last one.
The work must be safe to run again for the same key (it finds and finishes what an earlier run
left): a duplicate that finds the claim IN_PROGRESS (the first still running, or crashed between
the steps) runs it again and gets the same answer, never a 409; an error deletes the claim.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.db.uow import LeanUnitOfWork, UnitOfWork, lean_unit_of_work, sqlstate, unit_of_work
from boxoffice.errors import (
    Conflict,
    DomainError,
    IdempotencyInProgress,
    IdempotencyKeyInvalid,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    TooManyRequests,
)
from boxoffice.kit.clock import iso
from boxoffice.runtime import Runtime

KEY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout expired while a duplicate held the key row

Work = Callable[[UnitOfWork], Awaitable[tuple[int, Any]]]
Steps = Callable[[], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class IdempotentResult:
    status: int
    body: Any
    replayed: bool

    @property
    def headers(self) -> dict[str, str] | None:
        """A replay says so in `Idempotent-Replayed: true`."""
        return {"Idempotent-Replayed": "true"} if self.replayed else None


def _json_default(value: object) -> object:
    # The same JSON FastAPI's jsonable_encoder gave (what stored answers have always looked like).
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def jsonable(value: object) -> Any:
    """Plain JSON values (datetimes as ISO 8601 strings), as stored and replayed."""
    return json.loads(json.dumps(value, default=_json_default))


def fingerprint_hash(fingerprint: object) -> str:
    """SHA-256 of the fingerprint's canonical JSON, in one encoding pass (a fingerprint's keys are
    strings: sorted, they are what jsonable's round trip would sort)."""
    canonical = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise IdempotencyKeyInvalid(f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters")
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
# A key is live until it expires: an expired row (not purged yet) is absent everywhere — never
# replayed, and taken over by the next request that uses the key (_CLAIM, lean_claim).
_EXISTING = text(
    "SELECT request_hash, state, response_status, response_body FROM idempotency_keys "
    "WHERE user_id = :user_id AND scope = :scope AND key = :key AND expires_at > :now"
)
_STORE = text(
    """
    UPDATE idempotency_keys
    SET state = 'DONE', response_status = :status, response_body = CAST(:body AS jsonb)
    WHERE user_id = :user_id AND scope = :scope AND key = :key
    """
)
_RELEASE = text(
    "DELETE FROM idempotency_keys WHERE user_id = :user_id AND scope = :scope AND key = :key "
    "AND state = 'IN_PROGRESS'"
)
_PURGE = text(
    "DELETE FROM idempotency_keys WHERE ctid IN "
    "(SELECT ctid FROM idempotency_keys WHERE expires_at <= :now LIMIT 5000)"
)


def replay(row: Any, request_hash: str) -> IdempotentResult:
    if row["request_hash"] != request_hash:
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request body")
    if row["state"] != "DONE":  # a one-step claim is never seen uncommitted: a multi-step one's
        raise _in_progress()
    return IdempotentResult(row["response_status"], row["response_body"], replayed=True)


def _in_progress() -> Conflict:
    return IdempotencyInProgress(
        "A request with this Idempotency-Key is still being processed; retry shortly",
        headers={"Retry-After": "1"},
    )


async def _claim(session: AsyncSession, params: dict[str, Any], request_hash: str, runtime: Runtime) -> bool:
    now = runtime.clock.now()
    try:
        claimed = (
            await session.execute(
                _CLAIM, {**params, "hash": request_hash, "now": now, "expires": now + KEY_TTL}
            )
        ).scalar()
    except DBAPIError as exc:
        if sqlstate(exc) != LOCK_NOT_AVAILABLE:
            raise
        raise _in_progress() from None
    return claimed is not None


def _key_params(user_id: int, scope: str, key: str | None, required: bool) -> dict[str, Any] | None:
    if key is None:
        if required:
            raise IdempotencyKeyRequired("This request needs an Idempotency-Key header")
        return None
    return {"user_id": user_id, "scope": scope, "key": validate_key(key)}


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
    """Run `work(uow)` at most once per (user, scope, key), in one unit of work; see the module
    docstring. The work's after-commit effects run only when it ran (not on a replay)."""
    params = _key_params(user_id, scope, key, required)
    if params is None:
        async with unit_of_work(runtime.sessions) as uow:
            status, body = await work(uow)
        return IdempotentResult(status, jsonable(body), replayed=False)
    request_hash = fingerprint_hash(fingerprint)
    async with unit_of_work(runtime.sessions) as uow:
        if await _claim(uow.session, params, request_hash, runtime):
            status, body = await work(uow)
            encoded = jsonable(body)
            await uow.session.execute(_STORE, {**params, "status": status, "body": json.dumps(encoded)})
            result = IdempotentResult(status, encoded, replayed=False)
        else:
            live = {**params, "now": runtime.clock.now()}
            row = (await uow.session.execute(_EXISTING, live)).mappings().first()
            if row is None:  # it expired the instant after our claim found it live: retry
                raise _in_progress()
            result = replay(row, request_hash)
    return result


async def run_idempotent_steps(
    runtime: Runtime,
    *,
    user_id: int,
    scope: str,
    key: str | None,
    fingerprint: object,
    work: Steps,
    required: bool = True,
) -> IdempotentResult:
    """Claim (commit), `work()` in its own units of work, store the answer; see the module docstring."""
    params = _key_params(user_id, scope, key, required)
    if params is None:
        status, body = await work()
        return IdempotentResult(status, jsonable(body), replayed=False)
    request_hash = fingerprint_hash(fingerprint)
    async with unit_of_work(runtime.sessions) as uow:
        claimed = await _claim(uow.session, params, request_hash, runtime)
        live = {**params, "now": runtime.clock.now()}
        row = None if claimed else (await uow.session.execute(_EXISTING, live)).mappings().first()
        if not claimed and row is None:  # it expired the instant after our claim found it live
            raise _in_progress()
    if row is not None and (row["request_hash"] != request_hash or row["state"] == "DONE"):
        return replay(row, request_hash)
    # Claimed now, or IN_PROGRESS: the first run is still going or died between the steps.
    try:
        status, body = await work()
    except BaseException:
        async with unit_of_work(runtime.sessions) as uow:  # errors are not stored: a retry redoes it
            await uow.session.execute(_RELEASE, params)
        raise
    encoded = jsonable(body)
    async with unit_of_work(runtime.sessions) as uow:
        await uow.session.execute(_STORE, {**params, "status": status, "body": json.dumps(encoded)})
    return IdempotentResult(status, encoded, replayed=False)


# ---------------------------------------------------------------- one statement (the hot writes)
# A lean statement's parameters $1-$6 are LeanKey.args; its CTEs include LEAN_PRIOR first and
# lean_claim(...) last. Without a key ($3 NULL) `prior` is empty and nothing is claimed.
LEAN_PRIOR = """prior AS (
    SELECT request_hash, state, response_status, response_body FROM idempotency_keys
    WHERE user_id = $1 AND scope = $2 AND key = $3 AND expires_at > $5
)"""


def lean_claim(answer: str) -> str:
    """The CTEs that store `answer`'s (status, body) under the key: an expired key is taken over
    (purged first, as the InitPlan count makes sure); a live one, committed or in flight, makes the
    INSERT fail with a unique violation, which aborts the whole statement."""
    return f"""purged AS (
    DELETE FROM idempotency_keys
    WHERE user_id = $1 AND scope = $2 AND key = $3 AND expires_at <= $5 RETURNING 1
), claimed AS (
    INSERT INTO idempotency_keys (user_id, scope, key, request_hash, state, response_status,
                                  response_body, created_at, expires_at)
    SELECT $1, $2, $3, $4, 'DONE', a.status, a.body, $5, $6 FROM {answer} a
    WHERE $3 IS NOT NULL AND (SELECT count(*) FROM purged) >= 0
)"""  # noqa: S608 - `answer` is a CTE name of ours; every value is bound


_KEY_TAKEN = "idempotency_keys_pkey"


@dataclass(frozen=True)
class LeanKey:
    """An Idempotency-Key (or none) as a lean statement takes it."""

    user_id: int
    scope: str
    key: str | None
    request_hash: str
    now: datetime

    @property
    def args(self) -> tuple[Any, ...]:
        return (self.user_id, self.scope, self.key, self.request_hash, self.now, self.now + KEY_TTL)

    def replay(self, prior: Any) -> IdempotentResult | None:
        """The stored answer the statement read (its `prior` row), if there was one."""
        return None if prior is None else replay(prior, self.request_hash)


def lean_key(
    user_id: int, scope: str, key: str | None, fingerprint: object, now: datetime, *, required: bool
) -> LeanKey:
    """400/422 for a missing (when required) or malformed key, before any work."""
    params = _key_params(user_id, scope, key, required)
    return LeanKey(
        user_id, scope, None if params is None else params["key"], fingerprint_hash(fingerprint), now
    )


def key_taken(exc: asyncpg.PostgresError) -> bool:
    """Did a lean statement fail because a request with its key committed (or is in flight)?"""
    return isinstance(exc, asyncpg.UniqueViolationError) and exc.constraint_name == _KEY_TAKEN


R = TypeVar("R")


async def run_lean_idempotent(
    runtime: Runtime, key: LeanKey, work: Callable[[LeanUnitOfWork], Awaitable[R]]
) -> R | IdempotentResult:
    """Run `work(uow)`, whose one statement claims the key (see the module docstring); a refusal or
    a key taken meanwhile replays what the request that took it answered, once it committed."""
    async with lean_unit_of_work(runtime.engine) as uow:
        try:
            return await work(uow)
        except asyncpg.UniqueViolationError as exc:
            if not key_taken(exc):
                raise
            answer = await _settled(uow.conn, key)
            if answer is None:
                raise _in_progress() from None
            return answer
        except (IdempotencyKeyReused, IdempotencyInProgress, TooManyRequests):
            raise  # a limit refuses before the work: no lookup of the key for it either
        except DomainError:
            answer = await _settled(uow.conn, key) if key.key is not None else None
            if answer is None:
                raise
            return answer


_SETTLED = (
    "SELECT request_hash, state, response_status, response_body::text AS body FROM idempotency_keys "
    "WHERE user_id = $1 AND scope = $2 AND key = $3 AND expires_at > $4"
)


async def _settled(conn: asyncpg.Connection, key: LeanKey) -> IdempotentResult | None:
    """The key's answer if a request with it has completed (a multi-step one may be in flight)."""
    row = await conn.fetchrow(_SETTLED, key.user_id, key.scope, key.key, key.now)
    if row is None or (row["state"] != "DONE" and row["request_hash"] == key.request_hash):
        return None
    stored = dict(row, response_body=json.loads(row["body"]) if row["body"] else None)
    return replay(stored, key.request_hash)


async def stored_answer(
    runtime: Runtime, *, user_id: int, scope: str, key: str | None, fingerprint: object
) -> IdempotentResult | None:
    """The stored answer for this key, if a first request already completed (else None).

    For work whose inputs are chosen from live state (best available): a retry must replay the
    first answer even when the state it would choose from has changed since (by that answer)."""
    if key is None:
        return None
    params = {"user_id": user_id, "scope": scope, "key": validate_key(key), "now": runtime.clock.now()}
    async with runtime.sessions() as session:
        row = (await session.execute(_EXISTING, params)).mappings().first()
    if row is None or row["state"] != "DONE":
        return None
    return replay(row, fingerprint_hash(fingerprint))


async def purge_expired(runtime: Runtime) -> None:
    """The idempotency_purge job."""
    async with unit_of_work(runtime.sessions) as uow:
        await uow.session.execute(_PURGE, {"now": runtime.clock.now()})
