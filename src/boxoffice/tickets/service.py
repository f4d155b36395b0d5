"""Ticket operations on a connection given to them (they never commit): issue a confirmed
reservation's tickets, void them, read them, scan one at a gate. The units of work are the
payment flows' (issue, void: inside the confirming / refunding transaction) and `tickets/flows.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from boxoffice.kit.i18n import current_locale
from boxoffice.kit.timefmt import local_time
from boxoffice.tickets import repository
from boxoffice.tickets.keys import Keyring
from boxoffice.tickets.rules import (
    ScanResult,
    TicketClaims,
    display_code,
    new_code,
    normalize_code,
    seat_label,
    status_words,
)

MAX_PAGE = 100


@dataclass(frozen=True)
class Signed:
    """Signed tickets, one per seat, in seat order (what repository.insert_tickets or issue_ctes
    writes)."""

    key_id: str
    codes: list[str]
    seat_ids: list[int]
    holders: list[str]
    payloads: list[str]


def sign(keyring: Keyring, seats: Sequence[Mapping[str, Any]], now: datetime) -> Signed:
    """One signed ticket per seat (seat_id, section, row, number, show_id, holder)."""
    key_id = keyring.signing_key_id
    issued = int(now.timestamp())
    codes, payloads = [], []
    for seat in seats:
        code = new_code()
        claims = TicketClaims(
            key_id=key_id,
            code=code,
            show_id=seat["show_id"],
            seat_id=seat["seat_id"],
            section=seat["section"],
            row=seat["row"],
            number=seat["number"],
            holder=seat["holder"][:200],
            issued_at=issued,
        )
        codes.append(code)
        payloads.append(keyring.sign(claims))
    return Signed(key_id, codes, [s["seat_id"] for s in seats], [s["holder"][:200] for s in seats], payloads)


async def issue(
    conn: asyncpg.Connection,
    keyring: Keyring,
    reservation_id: int,
    now: datetime,
) -> list[int]:
    """One signed ticket per seat the reservation just bought; call it inside the transaction that
    confirmed the reservation (the seats must read RESERVED). Returns the new tickets' ids. The
    database refuses a second live ticket for a seat (tickets_one_live_per_seat). The order
    confirmation mail is queued by the same statement."""
    seats = await repository.sold_seats(conn, reservation_id)
    if not seats:
        return []
    signed = sign(keyring, seats, now)
    rows = await repository.insert_tickets(
        conn,
        reservation_id=reservation_id,
        show_id=seats[0]["show_id"],
        user_id=seats[0]["user_id"],
        key_id=signed.key_id,
        issued_at=now,
        codes=signed.codes,
        seat_ids=signed.seat_ids,
        holders=signed.holders,
        payloads=signed.payloads,
    )
    return [r["id"] for r in rows]


async def void(conn: asyncpg.Connection, reservation_id: int, now: datetime) -> list[int]:
    """Void every live ticket of a reservation (cancelled or refunded): they never scan VALID again.
    Queues the refund mail in the same statement."""
    return await repository.void_of_reservation(conn, reservation_id, now)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def ticket_view(row: dict[str, Any]) -> dict[str, Any]:
    """A ticket as the API, the pages and the mails show it (times in the venue's time zone too)."""
    tz = zone(row["time_zone"])
    starts_local = row["starts_at"].astimezone(tz)
    used_local = row["used_at"].astimezone(tz) if row["used_at"] is not None else None
    return {
        "ticket_id": row["id"],
        "code": display_code(row["code"]),
        "status": row["status"],
        "status_text": status_words(row["status"], used_local),
        "reservation_id": row["reservation_id"],
        "show_id": row["show_id"],
        "seat_id": row["seat_id"],
        "section": row["section"],
        "row": row["row"],
        "number": row["number"],
        "seat": seat_label(row["section"], row["row"], row["number"]),
        "holder": row["holder_name"],
        "concert_id": row["concert_id"],
        "concert": row["concert"],
        "artist": row["artist"],
        "venue": row["venue"],
        "time_zone": tz.key,
        "starts_at": row["starts_at"],
        "starts_at_local": starts_local.isoformat(),
        "starts_text": local_time(row["starts_at"], tz.key, current_locale()),
        "issued_at": row["issued_at"],
        "used_at": row["used_at"],
        "used_gate": row["used_gate"],
        "voided_at": row["voided_at"],
        "payload": row["payload"],
    }


async def get_for(
    conn: asyncpg.Connection, ticket_id: int, *, user_id: int, is_admin: bool
) -> dict[str, Any] | None:
    """The ticket if the caller owns it (or is an administrator); None otherwise (a 404 either way:
    nobody learns that someone else's ticket exists)."""
    row = await repository.get(conn, ticket_id)
    if row is None or (row["user_id"] != user_id and not is_admin):
        return None
    return ticket_view(row)


async def list_of_user(
    conn: asyncpg.Connection, user_id: int, *, before: int | None, limit: int
) -> list[dict[str, Any]]:
    rows = await repository.of_user(conn, user_id, before=before or 2**63 - 1, limit=min(limit, MAX_PAGE))
    return [ticket_view(r) for r in rows]


async def order_for(
    conn: asyncpg.Connection, reservation_id: int, *, user_id: int | None, is_admin: bool
) -> list[dict[str, Any]] | None:
    """A reservation's tickets if the caller owns them (or is an administrator; user_id None: the
    product itself, for its mails); None otherwise or when it has none."""
    rows = await repository.of_reservation(conn, reservation_id)
    if not rows or (user_id is not None and rows[0]["user_id"] != user_id and not is_admin):
        return None
    return [ticket_view(r) for r in rows]


async def scan(
    conn: asyncpg.Connection,
    keyring: Keyring,
    *,
    show_id: int,
    code: str | None,
    payload: str | None,
    gate: str,
    by_user: int | None,
    at: datetime,
    offline: bool = False,
) -> dict[str, Any] | None:
    """One scan at a gate: the answer, decided by the database (exactly one scan of a ticket is
    VALID). A payload must carry one of our signatures; a typed code must be one. None: no such
    show. An offline gate's synced scan that finds the ticket used answers CONFLICT."""
    stored: str | None
    if payload is not None:
        claims = keyring.verify(payload)
        stored = claims.code if claims is not None else None
    else:
        stored = normalize_code(code or "")
    row = await repository.scan(
        conn, code=stored, show_id=show_id, at=at, gate=gate, by_user=by_user, offline=offline
    )
    if not row["show_exists"]:
        return None
    result = row["result"]
    answer: dict[str, Any] = {"result": result, "show_id": show_id, "gate": gate, "scanned_at": at}
    if result in (ScanResult.NOT_A_TICKET, ScanResult.WRONG_SHOW):
        return answer
    answer.update(
        ticket_id=row["id"],
        seat=seat_label(row["section"], row["row"], row["number"]),
        holder=row["holder_name"],
    )
    if result == ScanResult.VALID:
        answer.update(used_at=at, used_gate=gate)
    elif result in (ScanResult.ALREADY_USED, ScanResult.CONFLICT):
        answer.update(used_at=row["used_at"], used_gate=row["used_gate"])
    return answer


async def check_out(
    conn: asyncpg.Connection, *, show_id: int, code: str, gate: str, by_user: int | None, at: datetime
) -> bool:
    stored = normalize_code(code)
    if stored is None:
        return False
    return await repository.check_out(conn, code=stored, show_id=show_id, at=at, gate=gate, by_user=by_user)


async def door_list(conn: asyncpg.Connection, keyring: Keyring, show_id: int) -> dict[str, Any] | None:
    if not await repository.show_exists(conn, show_id):
        return None
    return {
        "show_id": show_id,
        "keys": [
            {"key_id": k.key_id, "public_key": k.b64, "algorithm": "Ed25519"} for k in keyring.public_keys()
        ],
        "tickets": [
            {
                "code": r["code"],
                "status": r["status"],
                "seat": seat_label(r["section"], r["row"], r["number"]),
                "used_at": r["used_at"],
                "used_gate": r["used_gate"],
            }
            for r in await repository.door_list(conn, show_id)
        ],
    }
