"""The multiplexed Redis client: ordering under concurrency, errors, scripts, loss and recovery."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from boxoffice.ops.backends.datadir import Backends
from boxoffice.ops.backends.redis import EmbeddedRedis
from boxoffice.redis.client import Script
from boxoffice.redis.mux import MuxRedis, pack_command
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
    mux = MuxRedis(backends.redis_url, cluster=runtime.redis_cluster)
    try:
        await asyncio.gather(*(mux.execute("SET", f"mux:{i}", i) for i in range(500)))
        values = await asyncio.gather(*(mux.execute("GET", f"mux:{i}") for i in range(500)))
        assert values == [str(i).encode() for i in range(500)]
        assert await mux.exists("mux:{t}1", "mux:{t}2", "mux:{t}none") == 0  # one slot: three keys
        await mux.execute("SET", "mux:{t}1", 1)
        assert await mux.exists("mux:{t}1", "mux:{t}none") == 1
        assert await mux.get("mux:7") == b"7" and await mux.get("mux:none") is None
        assert await mux.sadd("mux:set", 1, 2) == 2 and await mux.sadd("mux:set", 2) == 0
        assert await runtime.redis.get("mux:499") == b"499"  # same server, same database
    finally:
        await mux.aclose()


async def test_error_replies_raise_redis_errors_and_the_stream_stays_in_order(
    backends: Backends, runtime: Runtime
) -> None:
    mux = MuxRedis(backends.redis_url, cluster=runtime.redis_cluster)
    try:
        await mux.execute("SET", "mux:s", "text")
        results = await asyncio.gather(
            mux.execute("INCR", "mux:s"), mux.execute("GET", "mux:s"), return_exceptions=True
        )
        assert isinstance(results[0], ResponseError) and results[1] == b"text"
    finally:
        await mux.aclose()


async def test_issued_commands_are_written_at_once_and_their_replies_awaited_later(
    backends: Backends, runtime: Runtime
) -> None:
    mux = MuxRedis(backends.redis_url, cluster=runtime.redis_cluster)
    try:
        # No connection yet: the command is sent when awaited (as execute would).
        assert await mux.issue("SET", "mux:i", "text") == b"OK"
        connections = list(mux._connections.values())
        in_flight = sum(len(c._live.pending) for c in connections if c._live is not None)
        assert in_flight == 0
        dropped = mux.issue("GET", "mux:i")  # never awaited: its reply is read and dropped
        bad = mux.issue("INCR", "mux:i")
        good = mux.issue("GET", "mux:i")
        # All three are on the wire before anyone waits.
        assert sum(len(c._live.pending) for c in connections if c._live is not None) == 3
        assert await good == b"text"
        with pytest.raises(ResponseError):
            await bad
        assert await mux.execute("GET", "mux:i") == b"text"  # the stream stays in order
        forgotten = mux.issue("INCR", "mux:i")  # an error reply nobody awaits: read, marked seen
        await mux.execute("PING")
        assert forgotten._future is not None and forgotten._future.done()
        assert forgotten._future._log_traceback is False  # not logged as "never retrieved"
        assert isinstance(forgotten._future.exception(), ResponseError)
        del dropped, forgotten
    finally:
        await mux.aclose()


@contextlib.asynccontextmanager
async def _counted_reads(tmp_path: Path) -> AsyncIterator[tuple[MuxRedis, Callable[[], Awaitable[int]]]]:
    """A Redis of our own, a client of it, and the server's count of read events so far (an
    observer's INFO, itself one of them): how many writes the client's commands arrived in."""
    server = EmbeddedRedis(tmp_path, persist=False)
    server.start()
    mux, observer = MuxRedis(server.url), MuxRedis(server.url)

    async def reads() -> int:
        info = (await observer.execute("INFO", "stats")).decode()
        return int(info.split("total_reads_processed:")[1].split()[0])

    try:
        await observer.execute("PING")
        yield mux, reads
    finally:
        await mux.aclose()
        await observer.aclose()
        server.stop()


async def test_commands_issued_in_one_write_reach_redis_in_one_read(tmp_path: Path) -> None:
    async with _counted_reads(tmp_path) as (mux, reads):
        await mux.execute("SET", "w:a", "x")
        before = await reads()
        with mux.one_write():
            replies = [mux.issue("GET", "w:a"), mux.issue("INCR", "w:n"), mux.issue("EXISTS", "w:a", "w:b")]
            live = mux._connection(mux._seed.address)._live
            assert live is not None and live.corked and b"w:n" in live.corked  # held, not written
        assert live.corked is None
        assert [await r for r in replies] == [b"x", 1, 1]
        assert await reads() - before == 2, "the three commands should arrive in one read (+ the INFO)"
        # An execute inside the block writes what was held first: the replies keep their order.
        with mux.one_write():
            held = mux.issue("INCR", "w:n")
            assert await mux.execute("GET", "w:n") == b"2"
        assert await held == 2


async def test_batched_blocks_of_one_pass_share_a_write_and_never_delay_another(tmp_path: Path) -> None:
    async with _counted_reads(tmp_path) as (mux, reads):
        await mux.execute("SET", "b:a", "x")
        live = mux._connection(mux._seed.address)._live
        assert live is not None
        # Twenty after-answer blocks in one pass (no await between them): held until the pass ends.
        before = await reads()
        replies = []
        for _ in range(20):
            with mux.one_write(batched=True):
                replies.append(mux.issue("INCR", "b:n"))
                replies.append(mux.issue("GET", "b:a"))
        assert live.corked is not None and live.corked.count(b"INCR") == 20  # not written yet
        assert [await r for r in replies] == [x for n in range(1, 21) for x in (n, b"x")]
        assert await reads() - before == 2, "twenty blocks should arrive in one read (+ the INFO)"

        # What a buyer waits on is written at once, after (never behind) what a batch holds.
        with mux.one_write(batched=True):
            later = mux.issue("INCR", "b:n")
        assert live.corked is not None
        now = mux.issue("GET", "b:n")  # a plain issue: written now, the held INCR first
        assert live.corked is None
        assert await now == b"21" and await later == 21
        with mux.one_write(batched=True):
            later = mux.issue("INCR", "b:n")
        with mux.one_write():  # a plain block in the same pass takes the held bytes along
            now = mux.issue("GET", "b:n")
        assert live.corked is None
        assert await now == b"22" and await later == 22
        assert await mux.execute("GET", "b:n") == b"22"  # the stream stays in order


async def test_an_issued_script_falls_back_to_eval(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, persist=False)
    server.start()
    mux = MuxRedis(server.url)
    try:
        await mux.execute("PING")
        script = Script("return {KEYS[1], ARGV[1], 'issued'}")
        reply = script.issue(mux, ["k"], [7])  # EVALSHA written now: the server answers NOSCRIPT
        assert await reply == [b"k", b"7", b"issued"]  # ... and the script runs by EVAL
        assert await script.issue(mux, ["k"], [8]) == [b"k", b"8", b"issued"]  # by sha now
    finally:
        await mux.aclose()
        server.stop()


async def test_scripts_fall_back_to_eval_then_run_by_sha(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, persist=False)
    server.start()
    mux = MuxRedis(server.url)
    try:
        script = Script("return {KEYS[1], ARGV[1]}")
        assert await script(mux, ["k"], [7]) == [b"k", b"7"]  # NOSCRIPT -> EVAL
        assert await mux.evalsha(script.sha, 1, "k2", 8) == [b"k2", b"8"]  # now cached by sha
    finally:
        await mux.aclose()
        server.stop()


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
        assert await _eventually_pong(mux)  # after the reconnect back-off
    finally:
        await mux.aclose()
        server.stop()


async def _eventually_pong(mux: MuxRedis, deadline_s: float = 10) -> bool:
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    while True:
        try:
            return bool(await mux.execute("PING") == b"PONG")
        except RedisConnectionError:
            if loop.time() > until:
                raise
            await asyncio.sleep(0.05)


async def test_database_number_from_the_url_is_selected(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, persist=False)  # a single node of our own: a cluster has db 0 only
    server.start()
    mux, default = MuxRedis(server.url + "?db=3"), MuxRedis(server.url)
    try:
        await mux.execute("SET", "mux:db", "three")
        assert await default.get("mux:db") is None  # database 0 is another one
        assert await mux.execute("GET", "mux:db") == b"three"
    finally:
        await mux.aclose()
        await default.aclose()
        server.stop()


async def test_a_refused_auth_is_an_error_and_no_connection_is_published(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path, persist=False)
    server.start()
    admin = MuxRedis(server.url)
    try:
        # The embedded Redis has only ACL users (the default user is off): add one to log in as.
        await admin.execute("ACL", "SETUSER", "tester", "on", ">right", "~*", "+@all")
        socket_path = server.url.rsplit("@", 1)[1]
        wrong = MuxRedis(f"unix://tester:wrong@{socket_path}")
        with pytest.raises(RedisConnectionError, match="handshake"):
            await wrong.execute("PING")
        with pytest.raises(RedisConnectionError):  # not a connection answering NOAUTH: none at all
            await wrong.execute("PING")
        await wrong.aclose()
        right = MuxRedis(f"unix://tester:right@{socket_path}")
        assert await right.execute("PING") == b"PONG"
        await right.aclose()
    finally:
        await admin.aclose()
        server.stop()


async def test_a_cancelled_caller_does_not_shift_the_replies(backends: Backends, runtime: Runtime) -> None:
    mux = MuxRedis(backends.redis_url, cluster=runtime.redis_cluster)
    try:
        await mux.execute("SET", "mux:{c}", "v")
        slow = asyncio.create_task(mux.execute("BLPOP", "mux:{c}never", "1"))  # holds the connection

        async def blocked() -> bool:  # the server has the BLPOP: its reply is what must be skipped
            if isinstance(runtime.redis, RedisCluster):
                per_node = await runtime.redis.client_list(target_nodes=RedisCluster.PRIMARIES)
                clients = [c for node in per_node.values() for c in node]
            else:
                clients = await runtime.redis.client_list()
            return any(c.get("cmd") == "blpop" for c in clients)

        await eventually(blocked, deadline=10, what="the BLPOP to reach Redis")
        slow.cancel()
        assert await mux.execute("GET", "mux:{c}") == b"v"
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
