"""Ticket use cases: read my tickets, scan at a gate (one statement, exactly once), sync an offline
gate, the door list and the console's entry counts. Issuing and voiding happen inside the payment
flows' own transactions (payments/flows.py), never here.

Every scan is ONE statement on a lean connection (autocommit): the conditional UPDATE that admits
and the log row commit together, so a scan costs one round trip and two gates scanning the same
ticket at once get one VALID and one ALREADY_USED from PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from boxoffice.db.uow import lean_unit_of_work
from boxoffice.errors import ReentryNotAllowed, ShowNotFound, TicketNotFound
from boxoffice.runtime import Runtime
from boxoffice.tickets import repository, service
from boxoffice.tickets.keys import keyring
from boxoffice.tickets.rules import ScanResult, seat_label

CONFLICTS_SHOWN = 50
PER_MINUTE_WINDOW = 60  # minutes of entries per minute the console shows


def _links(view: dict[str, Any]) -> dict[str, Any]:
    base = f"/api/tickets/{view['ticket_id']}"
    return {**view, "qr_svg": f"{base}/qr.svg", "qr_png": f"{base}/qr.png"}


async def my_tickets(runtime: Runtime, user_id: int, *, before: int | None, limit: int) -> dict[str, Any]:
    async with lean_unit_of_work(runtime.engine) as uow:
        items = await service.list_of_user(uow.conn, user_id, before=before, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return {
        "items": [_links(v) for v in items],
        "next_before": items[-1]["ticket_id"] if more and items else None,
    }


async def ticket(runtime: Runtime, ticket_id: int, *, user_id: int, role: str) -> dict[str, Any]:
    """The caller's own ticket (an administrator: anyone's); 404 TICKET_NOT_FOUND otherwise."""
    async with lean_unit_of_work(runtime.engine) as uow:
        view = await service.get_for(uow.conn, ticket_id, user_id=user_id, is_admin=role == "ADMIN")
    if view is None:
        raise TicketNotFound("Ticket not found")
    return _links(view)


async def order_tickets(
    runtime: Runtime, reservation_id: int, *, user_id: int, role: str
) -> list[dict[str, Any]]:
    """The tickets of one reservation (an order), the caller's own; 404 when there are none."""
    async with lean_unit_of_work(runtime.engine) as uow:
        views = await service.order_for(uow.conn, reservation_id, user_id=user_id, is_admin=role == "ADMIN")
    if views is None:
        raise TicketNotFound("No tickets for this reservation")
    return [_links(v) for v in views]


async def scan(
    runtime: Runtime,
    *,
    show_id: int,
    code: str | None,
    payload: str | None,
    gate: str,
    by_user: int,
) -> dict[str, Any]:
    now = runtime.clock.now()
    async with lean_unit_of_work(runtime.engine) as uow:
        answer = await service.scan(
            uow.conn,
            keyring(runtime),
            show_id=show_id,
            code=code,
            payload=payload,
            gate=gate,
            by_user=by_user,
            at=now,
        )
    if answer is None:
        raise ShowNotFound("Show not found")
    runtime.metrics.checkins.labels(answer["result"]).inc()
    return answer


async def sync_offline(
    runtime: Runtime, *, show_id: int, gate: str, scans: list[dict[str, Any]], by_user: int
) -> dict[str, Any]:
    """An offline gate's scans, replayed in its order with its times: each still admits at most
    once; one that finds its ticket already used (at another gate, or twice at this one) is
    recorded as a CONFLICT for the console: a double entry shows, it is never silent."""
    results = []
    async with lean_unit_of_work(runtime.engine) as uow:
        for scan_ in scans:
            answer = await service.scan(
                uow.conn,
                keyring(runtime),
                show_id=show_id,
                code=scan_.get("code"),
                payload=scan_.get("payload"),
                gate=gate,
                by_user=by_user,
                at=scan_["scanned_at"],
                offline=True,
            )
            if answer is None:
                raise ShowNotFound("Show not found")
            results.append(answer)
    for answer in results:
        runtime.metrics.checkins.labels(answer["result"]).inc()
    return {"results": results, "conflicts": sum(r["result"] == ScanResult.CONFLICT for r in results)}


async def check_out(runtime: Runtime, *, show_id: int, code: str, gate: str, by_user: int) -> None:
    """Re-entry: a used ticket back to valid, when the show allows it (409 otherwise)."""
    async with lean_unit_of_work(runtime.engine) as uow:
        if not await repository.show_exists(uow.conn, show_id):
            raise ShowNotFound("Show not found")
        done = await service.check_out(
            uow.conn, show_id=show_id, code=code, gate=gate, by_user=by_user, at=runtime.clock.now()
        )
    if not done:
        raise ReentryNotAllowed("This show has no re-entry, or the ticket is not inside")


async def door_list(runtime: Runtime, show_id: int) -> dict[str, Any]:
    async with lean_unit_of_work(runtime.engine) as uow:
        listing = await service.door_list(uow.conn, keyring(runtime), show_id)
    if listing is None:
        raise ShowNotFound("Show not found")
    return listing


async def public_keys(runtime: Runtime, show_id: int) -> dict[str, Any]:
    """Every key that verifies (the newest signs); the same for every show today."""
    async with lean_unit_of_work(runtime.engine) as uow:
        if not await repository.show_exists(uow.conn, show_id):
            raise ShowNotFound("Show not found")
    return {
        "keys": [
            {"key_id": k.key_id, "public_key": k.b64, "algorithm": "Ed25519"}
            for k in keyring(runtime).public_keys()
        ]
    }


async def entries(runtime: Runtime, show_id: int) -> dict[str, Any]:
    async with lean_unit_of_work(runtime.engine) as uow:
        if not await repository.show_exists(uow.conn, show_id):
            raise ShowNotFound("Show not found")
        since = runtime.clock.now() - timedelta(minutes=PER_MINUTE_WINDOW)
        counts = await repository.entries(uow.conn, show_id, since)
        conflicts = await repository.conflicts(uow.conn, show_id, CONFLICTS_SHOWN)
    return {
        "show_id": show_id,
        **counts,
        "recent_conflicts": [
            {
                "checkin_id": c["id"],
                "code": c["code"],
                "seat": seat_label(c["section"], c["row"], c["number"]),
                "gate": c["gate"],
                "scanned_at": c["scanned_at"],
                "used_at": c["used_at"],
                "used_gate": c["used_gate"],
            }
            for c in conflicts
        ],
    }
