"""Domain events through a transactional outbox.

`emit` writes the event row in the caller's transaction, so an event exists if and only if the
change it describes committed. The relay job publishes unpublished rows to Redis Streams at least
once; every event carries a unique `event_id` consumers dedupe on. Several relays may run: rows are
claimed with FOR UPDATE SKIP LOCKED.

Streams: `bo:events` (everything) and `bo:{show_id}:events` (one show's events, for the live seat
map; the braces keep a show's keys in one cluster slot).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from boxoffice.db import tables
from boxoffice.db.uow import unit_of_work
from boxoffice.kit import trace
from boxoffice.kit.clock import iso
from boxoffice.runtime import Runtime

ALL_EVENTS_STREAM = "bo:events"
STREAM_MAXLEN = 200_000
RELAY_BATCH = 500


def show_stream(show_id: int) -> str:
    return f"bo:{{{show_id}}}:events"


def outbox_rows(events: str) -> str:
    """The one SQL form of outbox rows written inside a larger statement (the payments' confirm):
    `events` is a SELECT of (event_type, aggregate_type, aggregate_id, show_id, payload)."""
    return f"INSERT INTO outbox (event_type, aggregate_type, aggregate_id, show_id, payload) {events}"


async def emit(
    session: AsyncSession,
    event_type: str,
    *,
    aggregate_type: str,
    aggregate_id: int,
    show_id: int | None = None,
    payload: Mapping[str, Any] | None = None,
) -> None:
    body = dict(payload or {})
    if trace.ENABLED and (parent := trace.traceparent()) is not None:
        body["traceparent"] = parent  # the event's consumers can continue the request's trace
    await session.execute(
        insert(tables.outbox).values(
            event_type=event_type,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            show_id=show_id,
            payload=body,
        )
    )


_CLAIM = text(
    """
    SELECT id, event_id, event_type, aggregate_type, aggregate_id, show_id, payload, created_at
    FROM outbox
    WHERE published_at IS NULL
    ORDER BY id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)
_MARK = text("UPDATE outbox SET published_at = now() WHERE id = ANY(:ids)")
_LAG = text("SELECT EXTRACT(EPOCH FROM now() - min(created_at)) FROM outbox WHERE published_at IS NULL")


async def relay_once(runtime: Runtime, limit: int = RELAY_BATCH) -> int:
    """Publish one batch. Rows are marked only after Redis accepted them (at-least-once)."""
    async with unit_of_work(runtime.sessions) as uow:
        session = uow.session
        rows = (await session.execute(_CLAIM, {"limit": limit})).mappings().all()
        if not rows:
            runtime.metrics.outbox_lag.set(0)
            return 0
        pipe = runtime.redis.pipeline(transaction=False)
        for row in rows:
            fields = {
                "event_id": str(row["event_id"]),
                "type": row["event_type"],
                "aggregate_type": row["aggregate_type"],
                "aggregate_id": str(row["aggregate_id"]),
                "show_id": "" if row["show_id"] is None else str(row["show_id"]),
                "payload": json.dumps(row["payload"], separators=(",", ":")),
                "created_at": iso(row["created_at"]),
            }
            pipe.xadd(ALL_EVENTS_STREAM, fields, maxlen=STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
            if row["show_id"] is not None:
                pipe.xadd(show_stream(row["show_id"]), fields, maxlen=20_000, approximate=True)  # type: ignore[arg-type]
        await pipe.execute()
        await session.execute(_MARK, {"ids": [row["id"] for row in rows]})
        lag = (await session.execute(_LAG)).scalar()
        runtime.metrics.outbox_lag.set(float(lag or 0))
        return len(rows)


async def relay(runtime: Runtime) -> None:
    """The outbox_relay job."""
    while await relay_once(runtime) == RELAY_BATCH:
        pass
