"""The multiplexed Redis client: ordering under concurrency, errors, scripts, loss and recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from boxoffice.backends import Backends, EmbeddedRedis
from boxoffice.redis_mux import MuxRedis, pack_command
from boxoffice.runtime import Runtime
from tests.helpers.net import eventually


def test_pack_command_is_resp() -> None:
    assert pack_command(["SET", "k", 1]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n"
    assert pack_command([b"\xff", 1.5]) == b"*2\r\n$1\r\n\xff\r\n$3\r\n1.5\r\n"
    with pytest.raises(TypeError):
        pack_command(["SET", "k", True])


async def test_many_concurrent_commands_each_get_their_own_reply(
    runtime: Runtime, backends: Backends
) -> None:
    mux = MuxRedis(backends.redis_url)
    try:
        await asyncio.gather(*(mux.execute("SET", f"mux:{i}", i) for i in range(500)))
        values = await asyncio.gather(*(mux.execute("GET", f"mux:{i}") for i in range(500)))
        assert values == [str(i).encode() for i in range(500)]
        assert await mux.exists("mux:1", "mux:2", "mux:none") == 2
        assert await mux.get("mux:7") == b"7" and await mux.get("mux:none") is None
        assert await mux.sadd("mux:set", 1, 2) == 2 and await mux.sadd("mux:set", 2) == 0
        assert await runtime.redis.get("mux:499") == b"499"  # same server, same database
    finally:
        await mux.aclose()


async def test_error_replies_raise_redis_errors_and_the_stream_stays_in_order(backends: Backends) -> None:
    mux = MuxRedis(backends.redis_url)
    try:
        await mux.execute("SET", "mux:s", "text")
        results = await asyncio.gather(
            mux.execute("INCR", "mux:s"), mux.execute("GET", "mux:s"), return_exceptions=True
        )
        assert isinstance(results[0], ResponseError) and results[1] == b"text"
    finally:
        await mux.aclose()


async def test_scripts_fall_back_to_eval_then_run_by_sha(backends: Backends) -> None:
    mux = MuxRedis(backends.redis_url)
    try:
        await mux.execute("SCRIPT", "FLUSH")
        script = mux.register_script("return {KEYS[1], ARGV[1]}")
        assert await script(keys=["k"], args=[7]) == [b"k", b"7"]  # NOSCRIPT -> EVAL
        assert await mux.evalsha(script.sha, 1, "k2", 8) == [b"k2", b"8"]  # now cached by sha
    finally:
        await mux.aclose()


async def test_a_lost_server_fails_waiters_and_a_restarted_one_is_used_again(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, persist=False)
    server.start()
    mux = MuxRedis(server.url, timeout=2)
    try:
        assert await mux.execute("PING") == b"PONG"
        server.stop()
        with pytest.raises(RedisError):
            await mux.execute("PING")
        with pytest.raises(RedisConnectionError):
            await mux.execute("PING")  # reconnect attempt fails cleanly too
        server.start()
        assert await mux.execute("PING") == b"PONG"
    finally:
        await mux.aclose()
        server.stop()


async def test_database_number_from_the_url_is_selected(backends: Backends, runtime: Runtime) -> None:
    url = backends.redis_url
    other = (url + "?db=3") if url.startswith("unix://") else url.rsplit("/", 1)[0] + "/3"
    mux = MuxRedis(other)
    try:
        await mux.execute("SET", "mux:db", "three")
        assert await runtime.redis.get("mux:db") is None  # the suite's database is another one
        assert await mux.execute("GET", "mux:db") == b"three"
        await mux.execute("FLUSHDB")
    finally:
        await mux.aclose()


async def test_a_cancelled_caller_does_not_shift_the_replies(backends: Backends, runtime: Runtime) -> None:
    mux = MuxRedis(backends.redis_url)
    try:
        await mux.execute("SET", "mux:c", "v")
        slow = asyncio.create_task(mux.execute("BLPOP", "mux:never", "1"))  # holds the connection

        async def blocked() -> bool:  # the server has the BLPOP: its reply is what must be skipped
            return any(c.get("cmd") == "blpop" for c in await runtime.redis.client_list())

        await eventually(blocked, deadline=10, what="the BLPOP to reach Redis")
        slow.cancel()
        assert await mux.execute("GET", "mux:c") == b"v"
    finally:
        await mux.aclose()


async def test_a_server_that_stops_answering_times_out_every_waiter() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # accept, read, never answer

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    mux = MuxRedis(f"redis://127.0.0.1:{port}/0", timeout=0.4)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        results = await asyncio.gather(*(mux.execute("PING") for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, RedisError) and "did not answer" in str(r) for r in results), results
        assert loop.time() - started < 2.0
    finally:
        await mux.aclose()
        server.close()
        await server.wait_closed()
