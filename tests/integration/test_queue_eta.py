"""The ETA comes from the measured admission rate and holds up in a simulated run; a status poll
issues the same few O(1) Redis commands whatever the queue length."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from redis.asyncio import RedisCluster

from boxoffice.kit.clock import OffsetClock
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import service, store
from tests.factories import make_user
from tests.integration.test_queue_support import make_show, tick

# Commands whose cost grows with a collection's size; none may appear on the poll path.
O_N_COMMANDS = {
    "zrank", "zrevrank", "zrange", "zrangebyscore", "zrevrange", "zcount", "lrange", "lpos", "lindex",
    "hgetall", "hkeys", "hvals", "smembers", "sinter", "keys", "scan", "hscan", "zscan", "sort",
}  # fmt: skip


async def test_first_eta_is_within_25_percent_of_actual_admission(
    runtime: Runtime, clock: OffsetClock
) -> None:
    # Configured 10/s, but only 5 may be active and leases free up at 2/s (buyers paying):
    # the real pace is 2/s, and only a measured rate can know that.
    show = await make_show(runtime, admit_per_second=10, max_active=5)
    sid, cid = show["id"], show["concert_id"]
    for uid in range(1, 151):
        await service.join(runtime, uid, cid, sid)
    probes: dict[int, dict[str, Any]] = {}
    sim = 0.0
    for step in range(400):
        if step in (50, 60, 70):  # probes join once the rate has been measured for a while
            uid = 10_000 + step
            view = await service.join(runtime, uid, cid, sid)
            assert view.estimate_basis == "measured"
            probes[uid] = {"eta": view.estimated_wait_seconds, "joined": sim, "position": view.position}
        active = await store.active_users(runtime.redis, sid)
        if active:
            await service.issue_release_lease(runtime.hot_redis, sid, active[0])  # one buyer pays every 0.5 s
        result = await tick(runtime, sid)
        for uid in result.admitted_users:
            if uid in probes:
                probes[uid]["admitted"] = sim
        if probes and all("admitted" in p for p in probes.values()):
            break
        # keep everyone fresh as their browsers would (status polls update last-seen)
        if step % 40 == 0:
            await asyncio.gather(*(service.status(runtime, u, cid, sid) for u in [*range(1, 151), *probes]))
        clock.advance(0.5)
        sim += 0.5
    assert len(probes) == 3
    for uid, p in probes.items():
        actual = p["admitted"] - p["joined"]
        assert actual > 10, p
        assert abs(p["eta"] - actual) <= 0.25 * actual, (uid, p, actual)


async def _commandstats(runtime: Runtime) -> dict[str, int]:
    """Calls per command, summed over every master when the suite runs on a Redis Cluster."""
    redis = runtime.redis
    if not isinstance(redis, RedisCluster):
        raw = await redis.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in raw.items()}
    total: dict[str, int] = {}
    for node in redis.get_primaries():
        for name, v in (await redis.info("commandstats", target_nodes=node)).items():
            total[name.removeprefix("cmdstat_")] = total.get(name.removeprefix("cmdstat_"), 0) + int(
                v["calls"]
            )
    return total


async def _reset_stats(runtime: Runtime) -> None:
    redis = runtime.redis
    if isinstance(redis, RedisCluster):
        await redis.config_resetstat(target_nodes=RedisCluster.PRIMARIES)
    else:
        await redis.config_resetstat()


async def test_status_poll_work_does_not_grow_with_queue_length(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    small, big = await make_show(runtime), await make_show(runtime)
    fan_small, fan_big = await make_user(runtime), await make_user(runtime)
    for uid in range(1_000_000, 1_000_009):
        await service.join(runtime, uid, small["concert_id"], small["id"])
    now_ms = int(runtime.clock.now().timestamp() * 1000)
    for start in range(2_000_000, 2_010_000, 500):  # the store directly: the fill is not under test
        await asyncio.gather(
            *(
                store.join(runtime.hot_redis, big["id"], u, now_ms, pre_queue=False, seed="")
                for u in range(start, start + 500)
            )
        )
    await client.post("/api/queue", json=small["body"], headers=fan_small["headers"])
    await client.post("/api/queue", json=big["body"], headers=fan_big["headers"])

    async def poll(show: dict[str, Any], fan: dict[str, Any]) -> tuple[dict[str, int], dict[str, Any]]:
        params = {"concert_id": show["concert_id"], "show_id": show["id"]}
        await client.get("/api/queue/status", params=params, headers=fan["headers"])  # warm caches
        await _reset_stats(runtime)
        resp = await client.get("/api/queue/status", params=params, headers=fan["headers"])
        stats = await _commandstats(runtime)
        stats.pop("info", None)
        stats.pop("config|resetstat", None)
        return stats, resp.json()

    small_cmds, small_view = await poll(small, fan_small)
    big_cmds, big_view = await poll(big, fan_big)
    assert small_view["position"] == 10 and big_view["position"] == 10_001
    assert small_cmds == big_cmds, (small_cmds, big_cmds)
    assert not (set(big_cmds) & O_N_COMMANDS), big_cmds
    assert sum(big_cmds.values()) <= 15
