"""The hot-path client on a real Redis Cluster: routing by slot, MOVED, ASK, detection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from boxoffice.redis.client import detect_cluster
from boxoffice.redis.mux import MuxRedis
from tests.helpers.redis_cluster import LocalRedisCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    started = LocalRedisCluster(Path(tmp_path_factory.mktemp("cluster")), masters=3)
    started.start()
    yield started
    started.stop()


def _node(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)


def _node_id(port: int) -> str:
    with _node(port) as client:
        return str(client.execute_command("CLUSTER MYID").decode())


async def test_cluster_mode_is_detected_from_any_node_or_named_by_the_scheme(
    cluster: LocalRedisCluster,
) -> None:
    assert await detect_cluster(f"redis://127.0.0.1:{cluster.ports[2]}")
    assert await detect_cluster(f"redis+cluster://127.0.0.1:{cluster.ports[1]}")


async def test_keys_of_every_slot_reach_their_master(cluster: LocalRedisCluster) -> None:
    mux = MuxRedis(f"redis://127.0.0.1:{cluster.ports[1]}", cluster=True)
    try:
        keys = [f"bo:{{{i}}}:k" for i in range(300)]
        await asyncio.gather(*(mux.execute("SET", k, i) for i, k in enumerate(keys)))
        assert await asyncio.gather(*(mux.get(k) for k in keys)) == [str(i).encode() for i in range(300)]
        assert {cluster.master_of(k) for k in keys} == set(cluster.ports)  # all three masters served
        script = "return redis.call('GET', KEYS[1])"
        assert await mux.eval(script, 1, keys[7]) == b"7"  # scripts route by their first key
    finally:
        await mux.aclose()


async def test_a_moved_slot_is_followed_and_remembered(cluster: LocalRedisCluster) -> None:
    key = "bo:{moved-test}:k"
    slot = key_slot(key.encode())
    owner = cluster.master_of(key)
    target = next(p for p in cluster.ports if p != owner)
    mux = MuxRedis(cluster.url, cluster=True)
    try:
        assert await mux.get(key) is None  # the slot table is loaded: the key goes to `owner`
        with _node(target) as client:  # a newer epoch: the gossip keeps the new owner, not the old
            client.execute_command("CLUSTER BUMPEPOCH")
        for port in cluster.ports:  # the (empty) slot changes hands behind the client's back
            with _node(port) as client:
                client.execute_command("CLUSTER SETSLOT", slot, "NODE", _node_id(target))
        # A command written at once (issue) goes to `owner` too; its MOVED is followed when awaited.
        await mux.issue("SET", key, "after-move")
        with _node(target) as client:
            assert client.get(key) == b"after-move"
        assert await mux.get(key) == b"after-move"
        assert await mux.issue("GET", key) == b"after-move"  # the new owner, written at once
    finally:
        await mux.aclose()


async def test_an_ask_redirect_during_slot_migration_is_followed(cluster: LocalRedisCluster) -> None:
    key = "bo:{ask-test}:k"
    slot = key_slot(key.encode())
    source = cluster.master_of(key)
    target = next(p for p in cluster.ports if p != source)
    mux = MuxRedis(cluster.url, cluster=True)
    try:
        assert await mux.get(key) is None
        with _node(target) as client:
            client.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", _node_id(source))
        with _node(source) as client:
            client.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", _node_id(target))
        # The key is not on the source any more: it answers ASK; ASKING + SET go to the target.
        await mux.execute("SET", key, "asked")
        with _node(target) as client:
            assert client.execute_command("ASKING") and client.get(key) == b"asked"
    finally:
        await mux.aclose()
        for port in cluster.ports:
            with _node(port) as client:
                client.execute_command("CLUSTER SETSLOT", slot, "NODE", _node_id(source))
