"""Bulk setup through the services, not timed: fans with balances, a show of S seats on sale now.

Fans are inserted with one INSERT ... SELECT generate_series sharing one precomputed argon2 hash of
the bench password (hashing 5,000 passwords would take minutes), with ledger rows so balances equal
their ledgers (I3). Access tokens are minted directly instead of 5,000 logins; a small sample logs
in over HTTP to exercise that path.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from boxoffice.auth.passwords import hash_password
from boxoffice.auth.tokens import issue_access_token
from boxoffice.bench import repository
from boxoffice.db.uow import unit_of_work
from boxoffice.runtime import Runtime

BENCH_PASSWORD = "bench-password-not-secret"  # noqa: S105 - the known password of throwaway bench fans
SEATS_PER_ROW = 20
MAX_ROWS = 200
PRICE = 50_000  # minor units


@dataclass(frozen=True)
class Fans:
    user_ids: list[int]
    tokens: list[str]
    emails_prefix: str


@dataclass(frozen=True)
class SaleShow:
    concert_id: int
    show_id: int
    seats: int
    hold_seconds: int
    max_seats: int
    price: int


def sections_for(seats: int, seats_per_row: int = SEATS_PER_ROW) -> list[dict[str, Any]]:
    """A layout with exactly `seats` seats: full sections of 20-seat rows, then the remainder."""
    width = min(seats_per_row, seats)
    full_rows, rest = divmod(seats, width)
    sections: list[dict[str, Any]] = []
    while full_rows > 0:
        rows = min(MAX_ROWS, full_rows)
        sections.append({"name": f"S{len(sections) + 1}", "rows": rows, "seats_per_row": width})
        full_rows -= rows
    if rest:
        sections.append({"name": f"S{len(sections) + 1}", "rows": 1, "seats_per_row": rest})
    return sections


async def create_fans(runtime: Runtime, count: int, balance: int) -> Fans:
    import asyncio

    password_hash = await asyncio.to_thread(hash_password, BENCH_PASSWORD)
    prefix = f"fan-{uuid.uuid4().hex[:8]}-"
    async with unit_of_work(runtime.sessions) as uow:
        session = uow.session
        user_ids = await repository.insert_fans(
            session, prefix=prefix, count=count, password_hash=password_hash, balance=balance
        )
    now = runtime.clock.now()
    tokens = [issue_access_token(runtime.settings, user_id=uid, role="USER", now=now)[0] for uid in user_ids]
    return Fans(user_ids=user_ids, tokens=tokens, emails_prefix=prefix)


async def create_show(
    runtime: Runtime,
    *,
    seats: int,
    hold_seconds: int,
    admit_per_second: float,
    max_active: int | None,
    oversubscription: float | None,
    max_seats: int = 4,
    token_ttl_seconds: int = 600,
    seats_per_row: int = SEATS_PER_ROW,
    pow_difficulty: int = 0,
) -> SaleShow:
    """A venue, concert and show on sale now, through the catalog service."""
    from boxoffice.catalog import service as catalog
    from boxoffice.catalog.schemas import ConcertIn, ShowIn, VenueIn

    now = runtime.clock.now()
    tag = uuid.uuid4().hex[:6]
    sections = sections_for(seats, seats_per_row)
    async with unit_of_work(runtime.sessions) as uow:
        session = uow.session
        venue = await catalog.create_venue(
            session, VenueIn.model_validate({"name": f"Bench Arena {tag}", "sections": sections})
        )
        concert = await catalog.create_concert(
            session,
            ConcertIn.model_validate(
                {"name": f"Flash Sale {tag}", "artist": "The Benchmarks", "venue_id": venue["id"]}
            ),
        )
        show = await catalog.create_show(
            session,
            runtime.clock,
            concert["id"],
            ShowIn.model_validate(
                {
                    "starts_at": now + timedelta(days=30),
                    "sale_opens_at": now - timedelta(minutes=1),
                    "prices": {s["name"]: PRICE for s in sections},
                    "hold_seconds": hold_seconds,
                    "max_seats_per_reservation": max_seats,
                    "queue": {
                        "admit_per_second": admit_per_second,
                        "max_active": max_active,
                        "oversubscription": oversubscription,
                        # Admission leases last as long as the token: short, so walk-aways'
                        # leases lapse within the run and their seats reach the fans still waiting.
                        "token_ttl_seconds": token_ttl_seconds,
                        # The toll at the door is off unless asked for (--bots): the bench's fans
                        # measure the line, not their own hashing (which would share the bench
                        # machine's CPU with it).
                        "pow_difficulty": pow_difficulty,
                    },
                }
            ),
        )
    return SaleShow(
        concert_id=int(concert["id"]),
        show_id=int(show["id"]),
        seats=seats,
        hold_seconds=hold_seconds,
        max_seats=max_seats,
        price=PRICE,
    )


def queue_tokens(runtime: Runtime, user_ids: list[int], show_id: int) -> list[str]:
    """Admission tokens minted directly (burst: the queue is not what it measures)."""
    from boxoffice.waiting_room.tokens import issue_queue_token

    now = runtime.clock.now()
    return [
        issue_queue_token(
            runtime.settings, user_id=uid, show_id=show_id, ticket=i + 1, ttl_seconds=1800, now=now
        )[0]
        for i, uid in enumerate(user_ids)
    ]


async def admin_token(runtime: Runtime, user_id: int) -> str:
    """Make one bench account an administrator (to watch the dashboard) and mint its token."""
    async with unit_of_work(runtime.sessions) as uow:
        await repository.make_admin(uow.session, user_id)
    return issue_access_token(runtime.settings, user_id=user_id, role="ADMIN", now=runtime.clock.now())[0]


async def create_door_staff(runtime: Runtime) -> int:
    """A gate account (role DOOR) for the door bench's scans."""
    async with unit_of_work(runtime.sessions) as uow:
        return await repository.insert_door_staff(uow.session)
