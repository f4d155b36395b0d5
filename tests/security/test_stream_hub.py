"""Seat streams share the process's Redis reads (streams.StreamHub): 200 seat streams (beside queue
and dashboard streams) cost a small constant number of Redis connections (counted with CLIENT LIST
from outside) and every one gets the change, the last
listener leaving ends the read, logins keep working while one fan holds a hundred streams (they
used to empty the pool: 503), a slow listener gets a resync instead of holding the others back,
and a Redis outage mid-stream ends in a resync or the missed change, never a silent stream."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from boxoffice.app import create_app
from boxoffice.booking import service as booking
from boxoffice.config import Settings
from boxoffice.db.outbox import relay_once, show_stream
from boxoffice.ops.backends.datadir import Backends
from boxoffice.ops.backends.redis import EmbeddedRedis
from boxoffice.redis.client import plain_redis_url
from boxoffice.redis.streams import Resync, StreamHub, StreamSlots
from boxoffice.runtime import Runtime, open_runtime
from tests.factories import make_user
from tests.helpers.redis_cluster import LocalRedisCluster
from tests.helpers.server import serve
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import gated


def connections_bound(masters: int) -> int:
    """What one process may add to Redis while it serves hundreds of live streams: per master a
    multiplexed hot-path connection and a pool connection, the hub's one read of the show, and two
    more pool connections in flight (the hold, the relay, the dashboard's frame)."""
    return 2 * masters + 3


async def redis_clients(url: str) -> list[dict[str, Any]]:
    """Every client connection of the Redis server (of every node of a cluster) but the probe's."""
    first = Redis.from_url(plain_redis_url(url))
    probes = [first]
    try:
        info = await first.info("cluster")
        if info.get("cluster_enabled"):
            nodes = await first.execute_command("CLUSTER NODES")
            probes += [
                Redis(host=addr.split(":")[0], port=int(addr.split(":")[1].split("@")[0]))
                for addr in nodes
                if "myself" not in nodes[addr]["flags"]
            ]
        found: list[dict[str, Any]] = []
        for probe in probes:
            found += [c for c in await probe.client_list() if c.get("cmd") != "client|list"]
        return found
    finally:
        for probe in probes:
            await probe.aclose()


async def replicated(port: int, seconds: float = 30) -> None:
    """Until the master's replica is online and has everything the master has."""
    node = Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + seconds
    try:
        while True:
            info = await node.info("replication")
            replica = info.get("slave0") or {}
            if replica.get("state") == "online" and int(replica["offset"]) >= int(info["master_repl_offset"]):
                return
            assert time.monotonic() < deadline, f"the replica of {port} did not catch up: {info}"
            await asyncio.sleep(0.2)
    finally:
        await node.aclose()


def blocked_reads(clients: list[dict[str, Any]]) -> int:
    return sum(1 for c in clients if c.get("cmd") == "xread" and "b" in c.get("flags", ""))


@contextlib.asynccontextmanager
async def own_process(
    settings: Settings, backends: Backends, redis_url: str | None = None, **changes: Any
) -> AsyncIterator[tuple[Runtime, str]]:
    """An API process of its own (its own pools and hub) under uvicorn, stream caps raised."""
    async with open_runtime(
        settings.model_copy(update=changes), backends.database_url, redis_url or backends.redis_url
    ) as rt:
        rt.streams = StreamSlots(per_user=500, per_process=1000)
        async with serve(create_app(rt.settings, runtime=rt)) as base:
            yield rt, base


async def open_streams(
    client: httpx.AsyncClient, url: str, headers: list[dict[str, str]], params: dict[str, Any] | None = None
) -> list[Any]:
    """SSE streams, each read up to its first line (`retry:`: a seat stream sends it once it is
    subscribed); -> [(response, lines)]."""

    async def one(h: dict[str, str]) -> Any:
        resp = await client.send(client.build_request("GET", url, headers=h, params=params), stream=True)
        assert resp.status_code == 200, (await resp.aread()).decode()
        lines = resp.aiter_lines()
        async for line in lines:
            if line.startswith("retry:"):
                return resp, lines
        raise AssertionError("the stream ended before it began")

    return list(await asyncio.gather(*(one(h) for h in headers)))


async def next_event(lines: Any, name: str = "seats") -> str:
    """The data line of the next `event: <name>`."""
    wanted = False
    async for line in lines:
        if line.startswith("event: "):
            wanted = line == f"event: {name}"
        elif wanted and line.startswith("data: "):
            return str(line.removeprefix("data: "))
    raise AssertionError("stream ended")


async def hold(client: httpx.AsyncClient, rt: Runtime, show_id: int, seat_ids: list[int]) -> None:
    """A new buyer holds these seats over the API (PostgreSQL decides, with or without Redis)."""
    buyer = await make_user(rt)
    held = await client.post(
        "/api/reservations",
        json={"show_id": show_id, "seat_ids": seat_ids},
        headers=gated(rt, buyer, show_id),
    )
    assert held.status_code == 201, held.text


async def test_200_seat_streams_share_one_redis_read_beside_queue_and_dashboard_streams(
    runtime: Runtime, settings: Settings, backends: Backends
) -> None:
    show = await make_show(runtime, seats=4)
    sid = show["show_id"]
    fans = [await make_user(runtime) for _ in range(10)]
    admin = await make_user(runtime, role="ADMIN")
    before = len(await redis_clients(backends.redis_url))
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with (
        own_process(settings, backends, redis_pool_size=16) as (rt, base),
        httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client,
    ):
        streams = await open_streams(
            client, f"/api/shows/{sid}/seats/stream", [gated(rt, fans[i % 10], sid) for i in range(200)]
        )
        # Beside them, the other live streams: 20 queue streams and 5 admin dashboards.
        for f in fans:
            assert (
                await client.post("/api/queue", json=show["body"], headers=f["headers"])
            ).status_code == 200
        q = {"concert_id": show["concert_id"], "show_id": sid}
        others = await open_streams(client, "/api/queue/stream", [f["headers"] for f in fans] * 2, q)
        others += await open_streams(
            client, f"/api/admin/shows/{sid}/dashboard/stream", [admin["headers"]] * 5
        )
        try:
            during = await redis_clients(backends.redis_url)
            assert blocked_reads(during) == 1, "one blocking read for the show, whatever the listeners"
            assert rt.stream_hub.listeners() == {show_stream(sid): 200}
            await hold(client, rt, sid, show["seat_ids"][:2])
            await relay_once(rt)
            got = await asyncio.wait_for(asyncio.gather(*(next_event(lines) for _, lines in streams)), 30)
            assert all(f'"seat_ids":{show["seat_ids"][:2]}'.replace(" ", "") in data for data in got)
            after = await redis_clients(backends.redis_url)
            added = max(len(during), len(after)) - before
            print(
                f"redis clients: {before} before, {len(during)} with 225 streams, {len(after)} after a delivery"
            )
            bound = connections_bound(3 if rt.redis_cluster else 1)
            assert added <= bound, f"225 streams added {added} Redis connections (at most {bound})"
        finally:
            await asyncio.gather(*(resp.aclose() for resp, _ in streams + others))


async def test_the_last_listener_leaving_ends_the_read(
    runtime: Runtime, settings: Settings, backends: Backends
) -> None:
    show = await make_show(runtime, seats=4)
    sid, name = show["show_id"], show_stream(show["show_id"])
    fan = await make_user(runtime)
    async with (
        own_process(settings, backends) as (rt, base),
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        url = f"/api/shows/{sid}/seats/stream"
        streams = await open_streams(client, url, [gated(rt, fan, sid)] * 3)
        assert rt.stream_hub.listeners() == {name: 3}
        for resp, _ in streams[:2]:
            await resp.aclose()
        await wait_for(lambda: rt.stream_hub.listeners() == {name: 1}, "two listeners left")
        assert blocked_reads(await redis_clients(backends.redis_url)) == 1  # the one left still reads
        await streams[2][0].aclose()
        await wait_for(lambda: name not in rt.stream_hub.listeners(), "the read of the last one ended")
        clients = await redis_clients(backends.redis_url)
        assert blocked_reads(clients) == 0, "the pool connection of the read went back"
        # A new listener starts a new read and gets what is published after it came.
        [(resp, lines)] = await open_streams(client, url, [gated(rt, fan, sid)])
        await hold(client, rt, sid, show["seat_ids"][:1])
        await relay_once(rt)
        assert '"seat.held"' in await asyncio.wait_for(next_event(lines), 10)
        await resp.aclose()


async def wait_for(check: Any, what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.05)


async def test_logins_work_while_one_fan_holds_100_streams(
    runtime: Runtime, settings: Settings, backends: Backends
) -> None:
    show = await make_show(runtime, seats=4)
    sid = show["show_id"]
    fan = await make_user(runtime)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    # The production pool size (64): a hundred streams holding a connection each emptied it.
    async with (
        own_process(settings, backends, redis_pool_size=64) as (rt, base),
        httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client,
    ):
        accounts = [
            {"email": f"login{i}@example.test", "password": "long-enough-1", "name": "L"} for i in range(4)
        ]
        for body in accounts:
            assert (await client.post("/api/auth/signup", json=body)).status_code == 201
        streams = await open_streams(client, f"/api/shows/{sid}/seats/stream", [gated(rt, fan, sid)] * 100)
        try:
            started = time.monotonic()
            logins = await asyncio.gather(
                *(
                    client.post("/api/auth/login", json={k: b[k] for k in ("email", "password")})
                    for b in accounts
                )
            )
            assert [r.status_code for r in logins] == [200] * 4, [r.text for r in logins]
            assert time.monotonic() - started < 10
        finally:
            await asyncio.gather(*(resp.aclose() for resp, _ in streams))


async def test_a_slow_listener_gets_a_resync_and_holds_nobody_back(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    rt = dataclasses.replace(runtime, stream_hub=StreamHub(queue_size=5))
    show = await make_show(runtime, seats=12)
    sid = show["show_id"]
    last = show["seat_ids"][-1]

    async def collect(updates: AsyncIterator[Any]) -> list[Any]:
        got: list[Any] = []
        async for update in updates:
            if update is not None:
                got.append(update)
                if isinstance(update, booking.SeatEvent) and update.seat_ids == [last]:
                    return got
        return got

    async with (
        booking.watch_seats(rt, sid, None) as fast,
        booking.watch_seats(rt, sid, None) as slow,
    ):
        quick = asyncio.create_task(collect(fast))  # reads as the changes come; `slow` reads nothing
        for seat in show["seat_ids"]:
            await hold(client, runtime, sid, [seat])
            await relay_once(runtime)
        assert [e.seat_ids[0] for e in await asyncio.wait_for(quick, 10)] == show["seat_ids"]
        late = await asyncio.wait_for(collect(slow), 10)
        assert isinstance(late[0], Resync), late
        assert late[0].stream_id is not None and len(late) <= 5
        tail = [e.seat_ids[0] for e in late[1:]]
        assert tail and tail == show["seat_ids"][-len(tail) :]  # after the resync: the newest, in order
    await rt.stream_hub.aclose()


async def test_a_redis_outage_mid_stream_ends_in_a_resync_not_a_hang(
    runtime: Runtime, settings: Settings, backends: Backends, tmp_path: Path
) -> None:
    """A Redis of its own is killed under an open stream; a hold meanwhile goes through PostgreSQL
    and waits in the outbox. Single server: restarted empty, so the stream gets `reset` (the map,
    reloaded, shows the truth) and then the change once the relay publishes it. Cluster: the show's
    master is killed and its replica promoted with the stream: the stream resumes where it was (no
    reset: nothing was lost) and the change arrives."""
    cluster = runtime.redis_cluster
    server: Any = (
        LocalRedisCluster(tmp_path / "c", masters=3, replicas=1)
        if cluster
        else EmbeddedRedis(tmp_path, persist=False)
    )
    server.start()
    try:
        show = await make_show(runtime, seats=4)
        sid, (first, second) = show["show_id"], show["seat_ids"][:2]
        fan = await make_user(runtime)
        async with (
            own_process(settings, backends, server.url) as (rt, base),
            httpx.AsyncClient(base_url=base, timeout=30) as client,
        ):

            async def relay() -> None:
                deadline = time.monotonic() + 30
                while True:  # the outbox publishes once Redis (or the promoted replica) answers
                    with contextlib.suppress(RedisError):
                        if await relay_once(rt):
                            return
                    assert time.monotonic() < deadline, "the relay never published the held seat"
                    await asyncio.sleep(0.5)

            [(resp, lines)] = await open_streams(
                client, f"/api/shows/{sid}/seats/stream", [gated(rt, fan, sid)]
            )
            events: list[tuple[str, str]] = []

            async def read() -> None:
                name = ""
                async for line in lines:
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        events.append((name, line.removeprefix("data: ")))

            def seen(name: str, seat: int | None = None) -> bool:
                return any(n == name and (seat is None or f"[{seat}]" in d) for n, d in events)

            reader = asyncio.create_task(read())
            await hold(client, rt, sid, [first])
            await relay()
            await wait_for(lambda: seen("seats", first), "the change before the outage")
            if cluster:
                master = server.master_of(show_stream(sid))
                await replicated(master)  # Redis 7 starts a replica's first sync after 5 s
                server.kill(master)
            else:
                server.proc.kill()
                server.proc.wait(10)
            await hold(client, rt, sid, [second])
            await asyncio.sleep(1.5)  # the hub's read has failed and retries
            if not cluster:
                server.start()  # empty: the stream, and the change relayed before, are gone
                await wait_for(lambda: seen("reset"), "the reset after Redis came back", 15)
                seats = await client.get(f"/api/shows/{sid}/seats", headers=gated(rt, fan, sid))
                taken = [s["id"] for s in seats.json()["seats"] if s["status"] != "AVAILABLE"]
                assert taken == [first, second]  # the reloaded map has what the stream could not say
            await relay()
            await wait_for(lambda: seen("seats", second), "the change held during the outage", 15)
            assert seen("reset") != cluster, events
            reader.cancel()
            await resp.aclose()
    finally:
        server.stop()
