"""The seat-map cache under concurrency: one PostgreSQL rebuild for a stampede of cold reads over
separate connections, and no change lost when it lands while a rebuild is in flight."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from boxoffice.catalog import cache, flows, seatmap, service
from boxoffice.runtime import Runtime
from boxoffice.waiting_room.tokens import issue_queue_token
from tests.factories import make_user

SECTIONS = [{"name": "A", "rows": 20, "seats_per_row": 25}, {"name": "B", "rows": 20, "seats_per_row": 25}]


async def _show(client: httpx.AsyncClient, admin: dict[str, Any]) -> int:
    h = admin["headers"]
    venue = (
        await client.post("/api/admin/venues", json={"name": "Dome", "sections": SECTIONS}, headers=h)
    ).json()
    concert = (
        await client.post(
            "/api/admin/concerts", json={"name": "C", "artist": "A", "venue_id": venue["id"]}, headers=h
        )
    ).json()
    now = datetime.now(UTC)
    show = await client.post(
        f"/api/admin/concerts/{concert['id']}/shows",
        json={
            "starts_at": (now + timedelta(days=3)).isoformat(),
            "sale_opens_at": (now - timedelta(minutes=5)).isoformat(),
            "prices": {"A": 5000, "B": 3000},
        },
        headers=h,
    )
    assert show.status_code == 201, show.text
    return int(show.json()["id"])


async def _truth(runtime: Runtime, show_id: int) -> dict[int, str]:
    async with runtime.sessions() as s:
        rows = (
            await s.execute(text("SELECT id, status FROM seats WHERE show_id = :s"), {"s": show_id})
        ).all()
    return {int(i): str(st) for i, st in rows}


async def test_100_concurrent_cold_reads_rebuild_once(live_server: str, runtime: Runtime) -> None:
    admin = await make_user(runtime, role="ADMIN")
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as c:
        show_id = await _show(c, admin)
    users = [await make_user(runtime) for _ in range(10)]
    headers = []
    for i in range(100):
        user = users[i % 10]
        token, _ = issue_queue_token(
            runtime.settings,
            user_id=user["id"],
            show_id=show_id,
            ticket=i + 1,
            ttl_seconds=600,
            now=runtime.clock.now(),
        )
        headers.append({**user["headers"], "X-Queue-Token": token})
    assert await cache.rebuild_count(runtime.redis, show_id) == 0

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=live_server, timeout=60, limits=limits) as c:
        responses = await asyncio.gather(*(c.get(f"/api/shows/{show_id}/seats", headers=h) for h in headers))

    assert [r.status_code for r in responses] == [200] * 100
    maps = [r.json() for r in responses]
    assert all(len(m["seats"]) == 1000 for m in maps)
    assert len({tuple(s["id"] for s in m["seats"]) for m in maps}) == 1
    assert await cache.rebuild_count(runtime.redis, show_id) == 1
    truth = await _truth(runtime, show_id)
    assert {s["id"]: s["status"] for s in maps[0]["seats"]} == truth


async def test_changes_during_a_rebuild_are_not_lost(live_server: str, runtime: Runtime) -> None:
    """The rebuilder read PostgreSQL before a hold committed; the hold's patch arrives before the
    rebuilder stores its (older) snapshot. The stored map must still show the hold."""
    admin = await make_user(runtime, role="ADMIN")
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as c:
        show_id = await _show(c, admin)
    token = "rebuilder-under-test"
    gen = await cache.try_lock(runtime.redis, show_id, token)
    assert gen is not None
    assert await cache.try_lock(runtime.redis, show_id, "someone-else") is None  # single rebuilder
    async with runtime.sessions() as s:
        rows = [cache.SeatRow(*r) for r in await service.repository.fetch_seat_rows(s, show_id)]
    snapshot = cache.build_seat_map(rows)

    # Meanwhile, concurrent holds commit and report themselves (separate connections).
    seat_ids = [r.id for r in rows[:20]]

    async def hold(seat_id: int) -> None:
        async with runtime.sessions() as s, s.begin():
            await s.execute(text("SELECT 1"))  # a real transaction on its own connection
        await cache.issue_seat_changes(runtime.hot_redis, show_id, [(seat_id, "RESERVED")])

    await asyncio.gather(*(hold(sid) for sid in seat_ids))
    version = await cache.store_seat_map(runtime.redis, show_id, token, gen, snapshot, full=True)
    assert version is not None
    got = await cache.read_seat_map(runtime.redis, show_id)
    assert got is not None
    rendered = cache.render(show_id, got.version, got.layout, got.status, "RESERVED")
    import json

    assert sorted(s["id"] for s in json.loads(rendered)["seats"]) == sorted(seat_ids)
    # The lock is released: the next stale read may refresh.
    assert await cache.try_lock(runtime.redis, show_id, "next") is not None


async def test_invalidation_during_a_rebuild_drops_its_snapshot(live_server: str, runtime: Runtime) -> None:
    admin = await make_user(runtime, role="ADMIN")
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as c:
        show_id = await _show(c, admin)
    gen = await cache.try_lock(runtime.redis, show_id, "t")
    assert gen is not None
    async with runtime.sessions() as s:
        rows = [cache.SeatRow(*r) for r in await service.repository.fetch_seat_rows(s, show_id)]
    await cache.invalidate_seat_map(runtime.redis, show_id)  # a change made straight in PostgreSQL
    assert (
        await cache.store_seat_map(runtime.redis, show_id, "t", gen, cache.build_seat_map(rows), full=True)
        is None
    )
    assert await cache.read_seat_map(runtime.redis, show_id) is None  # the next read rebuilds
    assert await cache.try_lock(runtime.redis, show_id, "u") is not None  # and the lock was released


async def test_reads_racing_real_holds_converge_to_the_truth(live_server: str, runtime: Runtime) -> None:
    """Cold and warm reads race committed seat changes (each patched after its commit); afterwards
    the cached map equals PostgreSQL."""
    admin = await make_user(runtime, role="ADMIN")
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as c:
        show_id = await _show(c, admin)
    user = await make_user(runtime)
    token, _ = issue_queue_token(
        runtime.settings,
        user_id=user["id"],
        show_id=show_id,
        ticket=1,
        ttl_seconds=600,
        now=runtime.clock.now(),
    )
    h = {**user["headers"], "X-Queue-Token": token}
    truth = await _truth(runtime, show_id)
    targets = sorted(truth)[:40]

    async def sell(seat_id: int) -> None:
        # Only the seat row changes here (the status is what the map shows); booking does the rest.
        async with runtime.sessions() as s, s.begin():
            res = (
                await s.execute(
                    text(
                        "INSERT INTO reservations (user_id, show_id, status, total_price, seat_count, expires_at) "
                        "VALUES (:u, :s, 'RESERVED', 1, 1, now()) RETURNING id"
                    ),
                    {"u": user["id"], "s": show_id},
                )
            ).scalar_one()
            await s.execute(
                text("UPDATE seats SET status = 'RESERVED', reservation_id = :r WHERE id = :id"),
                {"r": res, "id": seat_id},
            )
        await cache.issue_seat_changes(runtime.hot_redis, show_id, [(seat_id, "RESERVED")])
        seatmap.changed(runtime, show_id)  # as booking.effects.publish_seat_changes does

    limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=live_server, timeout=60, limits=limits) as c:
        reads = [c.get(f"/api/shows/{show_id}/seats", headers=h) for _ in range(30)]
        results = await asyncio.gather(*reads, *(sell(sid) for sid in targets))
        assert all(r.status_code == 200 for r in results[:30])  # type: ignore[union-attr]
        final = (await c.get(f"/api/shows/{show_id}/seats", headers=h)).json()
    assert {s["id"]: s["status"] for s in final["seats"]} == await _truth(runtime, show_id)


async def test_concurrent_inventory_recounts_agree_with_the_seats(live_server: str, runtime: Runtime) -> None:
    """Several workers recount while seats change: nobody deadlocks or waits (SKIP LOCKED), and the
    recount after the dust settles equals the number of AVAILABLE seats."""
    admin = await make_user(runtime, role="ADMIN")
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as c:
        show_ids = [await _show(c, admin) for _ in range(3)]
    user = await make_user(runtime)

    async def sell(show_id: int, offset: int) -> None:
        async with runtime.sessions() as s, s.begin():
            res = (
                await s.execute(
                    text(
                        "INSERT INTO reservations (user_id, show_id, status, total_price, seat_count, expires_at) "
                        "VALUES (:u, :s, 'RESERVED', 1, 1, now()) RETURNING id"
                    ),
                    {"u": user["id"], "s": show_id},
                )
            ).scalar_one()
            await s.execute(
                text(
                    "UPDATE seats SET status = 'RESERVED', reservation_id = :r "
                    "WHERE id = (SELECT min(id) + :o FROM seats WHERE show_id = :s)"
                ),
                {"r": res, "o": offset, "s": show_id},
            )

    sales = [sell(show_id, k) for show_id in show_ids for k in range(15)]
    recounts = [flows.recount_on_sale(runtime) for _ in range(10)]
    await asyncio.gather(*sales, *recounts)
    await flows.recount_on_sale(runtime)
    async with runtime.sessions() as s:
        rows = (
            await s.execute(
                text(
                    "SELECT i.show_id, i.remaining, (SELECT count(*) FROM seats WHERE show_id = i.show_id "
                    "AND status = 'AVAILABLE') AS truth FROM inventory i ORDER BY i.show_id"
                )
            )
        ).all()
    assert [(r.show_id, r.remaining) for r in rows] == [(sid, 1000 - 15) for sid in show_ids]
    assert all(r.remaining == r.truth for r in rows)
