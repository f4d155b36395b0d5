"""A multiplexed Redis client for the hot paths (status polls, joins, seat holds, the deny-list).

redis-py's asyncio client spends ~140 us of CPU per command in this process (pool checkout,
retry wrapper, connection bookkeeping): more than the rest of a refused hold. Here every coroutine
of the process shares one connection per server: a command is written as it is issued, without
waiting, and replies are matched to callers in order (Redis answers a connection's commands in
order). Many concurrent requests therefore form natural pipelines, and a command costs ~20 us.

On a Redis Cluster (`cluster=True`) there is one such connection per master, a command goes to the
master owning its first key's slot (every command we send keeps its keys in one slot), MOVED
updates the slot table and retries, ASK sends ASKING + the command to the importing node, and a
connection failure (a master killed, its replica being promoted) refreshes the table from any
node that answers, at most every REFRESH_MIN_SECONDS.

Only what the hot paths need: `execute`, `issue` (written now, awaited later), `get`, `set`, `sadd`,
`exists`, `eval`, `evalsha`. Errors are
redis-py's own classes (ConnectionError, TimeoutError, ResponseError, NoScriptError), so callers'
`except RedisError` keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from boxoffice.kit import trace

Arg = bytes | str | int | float
SLOTS = 16384
REFRESH_MIN_SECONDS = 0.2
REDIRECTS_MAX = 5
BACKOFF_START_SECONDS = 0.05
BACKOFF_MAX_SECONDS = 1.0


def _encode(arg: Arg) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bool):  # bool is an int: refuse the ambiguity rather than send "True"
        raise TypeError("booleans are not Redis arguments")
    return repr(arg).encode() if isinstance(arg, float) else str(arg).encode()


def pack_command(args: Sequence[Arg]) -> bytes:
    """RESP, packed by hiredis's C code (a third of the Python version's CPU, the same bytes: str as
    UTF-8, float by repr, a bool refused)."""
    packed: bytes = hiredis.pack_command(cast(Any, args if isinstance(args, tuple) else tuple(args)))
    return packed


def command_key(args: Sequence[Arg]) -> bytes | None:
    """The key that routes a command (the first one; our commands keep their keys in one slot)."""
    name = _encode(args[0]).upper()
    if name in (b"EVAL", b"EVALSHA"):
        return _encode(args[3]) if len(args) > 3 and int(args[2]) > 0 else None
    if name in (b"PING", b"SCRIPT", b"INFO", b"CLUSTER", b"ASKING", b"AUTH", b"SELECT") or len(args) < 2:
        return None
    return _encode(args[1])


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect: one server, with the URL's credentials, database and TLS."""

    scheme: str
    host: str
    port: int
    path: str = ""
    username: str | None = None
    password: str | None = None
    db: str = "0"

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        scheme = {"redis+cluster": "redis", "rediss+cluster": "rediss"}.get(parts.scheme, parts.scheme)
        if scheme not in ("redis", "rediss", "unix"):
            raise RedisConnectionError(f"unsupported Redis URL scheme {parts.scheme!r}")
        query = parse_qs(parts.query)
        path_db = parts.path.lstrip("/") if scheme != "unix" else ""
        return cls(
            scheme=scheme,
            host=parts.hostname or "localhost",
            port=parts.port or 6379,
            path=unquote(parts.path) if scheme == "unix" else "",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            db=query.get("db", [path_db])[0] or "0",
        )

    def at(self, host: str, port: int) -> Endpoint:
        return Endpoint(self.scheme, host, port, "", self.username, self.password, "0")

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


Pending = deque[tuple[asyncio.Future[Any], float]]  # callers waiting, oldest first, with their send time


class _Replies(asyncio.Protocol):
    """One open connection: its transport and its own queue of waiting callers (so a dying
    connection's replies can never reach callers of the next one). Replies are parsed as the bytes
    arrive (`data_received` runs in the loop's I/O phase) and handed to their callers right there.
    A reader task would cost each reply one more pass of the event loop's ready queue, which under
    load (a flash sale's polls) is tens of milliseconds per pass: a buyer's hold makes several
    Redis calls."""

    def __init__(self, owner: _Connection, loop: asyncio.AbstractEventLoop) -> None:
        self.owner = owner
        self.loop = loop  # its transport's; asyncio.get_running_loop() costs a getpid() call
        self.pending: Pending = deque()
        self.parser = hiredis.Reader(replyError=ResponseError)
        self.transport: asyncio.Transport | None = None
        self.corked: bytearray | None = None  # MuxRedis.one_write: issued commands held for one write
        self.uncork_pending = False  # a batched one_write's write is scheduled (uncork_soon)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not registered subclasses of asyncio.Transport: no isinstance.
        self.transport = transport  # type: ignore[assignment]

    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, data: bytes) -> None:
        """Write now, after anything held by a cork (the replies come back in the order sent)."""
        assert self.transport is not None
        held, self.corked = self.corked, None
        self.transport.write(bytes(held) + data if held else data)

    def hold(self, data: bytes) -> None:
        """A command issued in a one_write block: held for the block's write."""
        if self.corked is None:
            self.corked = bytearray()
        self.corked += data

    def uncork(self) -> None:
        held, self.corked = self.corked, None
        if held and self.usable():  # a lost connection failed its callers already
            assert self.transport is not None
            self.transport.write(bytes(held))

    def uncork_soon(self) -> None:
        """Write what is held once this pass of the event loop is over (with whatever other
        blocks hold by then), unless a write goes out before."""
        if not self.uncork_pending:
            self.uncork_pending = True
            self.loop.call_soon(self._uncork_later)

    def _uncork_later(self) -> None:
        self.uncork_pending = False
        self.uncork()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        pending = self.pending
        try:
            self.parser.feed(data)
            while (reply := self.parser.gets()) is not False:
                future, _ = pending.popleft()
                if future.done():  # its caller was cancelled; the reply is consumed all the same
                    continue
                if isinstance(reply, ResponseError):
                    message = str(reply)
                    future.set_exception(NoScriptError(message) if message.startswith("NOSCRIPT") else reply)
                else:
                    future.set_result(reply)
        except Exception as exc:  # a protocol error (or a reply nobody asked for): start over
            self.owner._lost(self, RedisConnectionError(f"Redis reply stream broken: {exc!r}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc else ""
        self.owner._lost(self, RedisConnectionError(f"Redis closed the connection{reason}"))


class _Connection:
    """One multiplexed connection to one server; reconnects on demand, with a back-off."""

    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._live: _Replies | None = None  # the connection callers use (its handshake done)
        self._watcher: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()
        self._closed = False
        self._retry_at = 0.0
        self._backoff = 0.0

    async def execute(self, *commands: Sequence[Arg]) -> Any:
        """Send the commands back to back; the reply of the last one (ASKING + command)."""
        live = self._live
        if live is None or not live.usable():
            live = await self._connect()
        loop = live.loop
        now = loop.time()
        futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in commands]
        live.pending.extend((future, now) for future in futures)
        # Written at once, not batched to the next loop pass: under load a pass is what a buyer
        # waits for (one small write on a local socket costs a few microseconds).
        live.send(b"".join(map(pack_command, commands)))
        for future in futures[:-1]:
            with contextlib.suppress(ResponseError):
                await future
        return await futures[-1]

    def send_now(self, args: Sequence[Arg], cork: list[_Replies] | None = None) -> asyncio.Future[Any] | None:
        """Write one command at once on the live connection (or, with `cork`, hold it for the
        block's one write) and return its reply's future; None when there is no usable connection
        (the caller then goes through execute)."""
        live = self._live
        if live is None or not live.usable():
            return None
        loop = live.loop
        future: asyncio.Future[Any] = loop.create_future()
        future.add_done_callback(_retrieved)  # an issued reply nobody awaits may be an error
        live.pending.append((future, loop.time()))
        if cork is None:
            live.send(pack_command(args))  # after anything a batched block still holds
            return future
        if live not in cork:  # (a batched block's bytes may be held already: they go first)
            cork.append(live)
        live.hold(pack_command(args))
        return future

    async def aclose(self) -> None:
        self._closed = True
        self._drop(RedisConnectionError("client closed"))
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher

    async def _connect(self) -> _Replies:
        async with self._connect_lock:
            if self._live is not None and self._live.usable():
                return self._live
            if self._closed:
                raise RedisConnectionError("client closed")
            loop = asyncio.get_running_loop()
            if loop.time() < self._retry_at:  # a reconnect storm helps no one: fail fast meanwhile
                raise RedisConnectionError(f"Redis {self._where()} unreachable, retrying shortly")
            try:
                live = await self._open(loop)
            except Exception:
                self._backoff = min(BACKOFF_MAX_SECONDS, max(BACKOFF_START_SECONDS, self._backoff * 2))
                self._retry_at = loop.time() + self._backoff
                raise
            self._backoff = 0.0
            return live

    def _where(self) -> str:
        e = self.endpoint
        return e.path if e.scheme == "unix" else f"{e.host}:{e.port}"

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Replies:
        e = self.endpoint
        replies = _Replies(self, loop)
        try:
            async with asyncio.timeout(self.timeout):
                if e.scheme == "unix":
                    await loop.create_unix_connection(lambda: replies, e.path)
                else:
                    tls = ssl.create_default_context() if e.scheme == "rediss" else None
                    await loop.create_connection(lambda: replies, e.host, e.port, ssl=tls)
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis {self._where()}: {exc}") from exc
        setup: list[tuple[Arg, ...]] = []
        if e.password:
            setup.append(("AUTH", e.username, e.password) if e.username else ("AUTH", e.password))
        if e.db != "0":
            setup.append(("SELECT", e.db))
        futures = []
        for command in setup:
            future: asyncio.Future[Any] = loop.create_future()
            replies.pending.append((future, loop.time()))
            futures.append(future)
            replies.send(pack_command(command))
        try:
            async with asyncio.timeout(self.timeout):
                for future in futures:
                    await future
        except BaseException as exc:
            # Published only once AUTH/SELECT succeeded: a refused AUTH must not leave a
            # connection that answers every caller with NOAUTH.
            replies.close()
            _fail_all(replies.pending, RedisConnectionError("handshake abandoned"))
            if isinstance(exc, ResponseError | TimeoutError):
                raise RedisConnectionError(f"Redis {self._where()} refused the handshake: {exc}") from exc
            raise
        self._live = replies
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch())
        return replies

    def _lost(self, replies: _Replies, error: Exception) -> None:
        if self._live is replies:
            self._drop(error)
        else:  # still in the handshake (or an old connection): fail its own waiters
            _fail_all(replies.pending, error)

    async def _watch(self) -> None:
        """One timer per client instead of one per command: replies come back in order, so the
        oldest waiter tells whether Redis has stopped answering."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            await asyncio.sleep(min(1.0, self.timeout / 4))
            live = self._live
            if live is not None and live.pending and loop.time() - live.pending[0][1] > self.timeout:
                # The reply stream can no longer be trusted to line up: fail everyone, start over.
                self._drop(RedisTimeoutError(f"Redis did not answer within {self.timeout}s"))

    def _drop(self, error: Exception) -> None:
        """Forget the connection and fail every caller still waiting on it."""
        live, self._live = self._live, None
        if live is not None:
            live.close()
            _fail_all(live.pending, error)


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark an error reply as seen, so a dropped one is not logged as "never retrieved"."""
    if not future.cancelled():
        future.exception()


def _fail_all(pending: Pending, error: Exception) -> None:
    while pending:
        future, _ = pending.popleft()
        if not future.done():
            future.set_exception(error)
            future.exception()  # retrieved: a cancelled caller must not log "never retrieved"


def _redirect(error: ResponseError) -> tuple[str, int, tuple[str, int]] | None:
    """("MOVED"|"ASK", slot, (host, port)) from a redirection error, else None."""
    kind, _, rest = str(error).partition(" ")
    if kind not in ("MOVED", "ASK"):
        return None
    slot, _, address = rest.partition(" ")
    host, _, port = address.rpartition(":")
    return kind, int(slot), (host, int(port))


class Issued:
    """A command already written (MuxRedis.issue); awaiting it gives its reply."""

    __slots__ = ("_args", "_future", "_redis")

    def __init__(self, redis: MuxRedis, args: tuple[Arg, ...], future: asyncio.Future[Any] | None) -> None:
        self._redis = redis
        self._args = args
        self._future = future

    def __await__(self) -> Generator[Any, None, Any]:
        return self._redis._reply(self._args, self._future).__await__()


class MuxRedis:
    def __init__(self, url: str, *, timeout: float = 5.0, cluster: bool = False) -> None:
        self.url = url
        self.timeout = timeout
        self.cluster = cluster
        self._seed = Endpoint.from_url(url)
        self._connections: dict[tuple[str, int], _Connection] = {}
        self._slots: list[tuple[str, int] | None] = [None] * SLOTS
        self._refreshed_at = -REFRESH_MIN_SECONDS
        self._refresh_lock = asyncio.Lock()
        self._cork: list[_Replies] | None = None  # inside one_write: the connections holding commands

    # -- public API -----------------------------------------------------------------------------

    async def execute(self, *args: Arg) -> Any:
        if trace.ENABLED and trace.CURRENT is not None and trace.CURRENT.waiting is None:
            return await self._traced(args)  # back here, charged to Redis (kit/trace.py)
        if not self.cluster:
            return await self._connection(self._seed.address).execute(args)
        key = command_key(args)
        slot = key_slot(key) if key is not None else 0
        asking: tuple[str, int] | None = None
        for _ in range(REDIRECTS_MAX):
            address = asking or self._slots[slot] or await self._address_for(slot)
            try:
                if asking is not None:
                    asking = None
                    return await self._connection(address).execute(("ASKING",), args)
                return await self._connection(address).execute(args)
            except ResponseError as exc:
                redirect = _redirect(exc)
                if redirect is None:
                    if str(exc).startswith(("CLUSTERDOWN", "TRYAGAIN")):
                        await self._refresh()
                    raise
                kind, moved_slot, target = redirect
                if kind == "ASK":
                    asking = target
                else:
                    self._slots[moved_slot] = target
                    asyncio.get_running_loop().call_soon(self._refresh_soon)
            except RedisConnectionError:
                # Failover: the old master is gone; learn the new owner for the next command.
                self._slots[slot] = None
                raise
        raise RedisConnectionError(f"too many cluster redirections for slot {slot}")

    def issue(self, *args: Arg) -> Issued:
        """The command written now, its reply awaited later: `reply = redis.issue(...)`, other
        work (another command: the replies of one connection come back together), then
        `await reply`. Two independent commands cost one wait for the event loop instead of two.
        Not awaiting it is fine (the reply is read and dropped). Without a live connection, or
        with the slot's node unknown yet, the command is sent by `execute` when awaited."""
        return Issued(self, args, self._send_now(args))

    @contextlib.contextmanager
    def one_write(self, *, batched: bool = False) -> Iterator[None]:
        """Commands issued in the block (`issue`, never awaited inside it: the block holds no
        await) leave in one write per connection when it ends: independent commands issued back
        to back then cost one system call and one wake-up of Redis instead of one each. A command
        sent by `execute` meanwhile goes out after them, so replies keep their order.

        `batched`: the write leaves once this pass of the event loop is over, with every other
        batched block's of the pass (or sooner, ahead of any other write): for commands nobody
        waits on, the effects a hot route runs after its answer. A busy process's holds and
        payments then share a write, and Redis a wake-up, instead of one each. Never for what a
        buyer waits on: under load a pass is milliseconds."""
        if self._cork is not None:  # nested: the outer block writes
            yield
            return
        cork: list[_Replies] = []
        self._cork = cork
        try:
            yield
        finally:
            self._cork = None
            for live in cork:
                if batched:
                    live.uncork_soon()
                else:
                    live.uncork()

    def _send_now(self, args: tuple[Arg, ...]) -> asyncio.Future[Any] | None:
        if not self.cluster:
            return self._connection(self._seed.address).send_now(args, self._cork)
        key = command_key(args)
        address = self._slots[key_slot(key) if key is not None else 0]
        connection = self._connections.get(address) if address is not None else None
        return connection.send_now(args, self._cork) if connection is not None else None

    async def _reply(self, args: tuple[Arg, ...], future: asyncio.Future[Any] | None) -> Any:
        if future is None:
            return await self.execute(*args)
        if (
            trace.ENABLED
            and trace.CURRENT is not None
            and trace.CURRENT.waiting is None
            and not future.done()
        ):
            with trace.awaiting("redis", f"redis.{_encode(args[0]).decode().upper()}"):
                return await self._reply(args, future)
        try:
            return await future
        except ResponseError as exc:
            if _redirect(exc) is None:
                raise
            return await self.execute(*args)  # the slot moved: execute follows MOVED/ASK

    async def _traced(self, args: tuple[Arg, ...]) -> Any:
        with trace.awaiting("redis", f"redis.{_encode(args[0]).decode().upper()}"):
            return await self.execute(*args)

    async def exists(self, *keys: Arg) -> int:
        found: int = await self.execute("EXISTS", *keys)
        return found

    async def get(self, key: Arg) -> bytes | None:
        value: bytes | None = await self.execute("GET", key)
        return value

    async def set(self, key: Arg, value: Arg, *, ex: int | None = None) -> None:
        await self.execute("SET", key, value, *(("EX", ex) if ex is not None else ()))

    async def sadd(self, key: Arg, *members: Arg) -> int:
        added: int = await self.execute("SADD", key, *members)
        return added

    async def eval(self, script: str, numkeys: int, *keys_and_args: Arg) -> Any:
        return await self.execute("EVAL", script, numkeys, *keys_and_args)

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Arg) -> Any:
        return await self.execute("EVALSHA", sha, numkeys, *keys_and_args)

    async def aclose(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await connection.aclose()

    # -- cluster topology -----------------------------------------------------------------------

    def _connection(self, address: tuple[str, int]) -> _Connection:
        connection = self._connections.get(address)
        if connection is None:
            endpoint = self._seed if address == self._seed.address else self._seed.at(*address)
            connection = self._connections[address] = _Connection(endpoint, self.timeout)
        return connection

    async def _address_for(self, slot: int) -> tuple[str, int]:
        await self._refresh()
        address = self._slots[slot]
        if address is None:
            raise RedisConnectionError(f"no Redis Cluster master serves slot {slot} right now")
        return address

    def _refresh_soon(self) -> None:
        task = asyncio.ensure_future(self._refresh())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _refresh(self) -> None:
        """Read the slot table from the first node that answers (the seed, then known masters)."""
        async with self._refresh_lock:
            loop = asyncio.get_running_loop()
            if loop.time() - self._refreshed_at < REFRESH_MIN_SECONDS:
                return
            self._refreshed_at = loop.time()
            candidates = [self._seed.address, *self._connections]
            known = {a for a in self._slots if a is not None}
            candidates += sorted(known - set(candidates))
            last: Exception | None = None
            for address in dict.fromkeys(candidates):
                try:
                    reply = await self._connection(address).execute(("CLUSTER", "SLOTS"))
                except (RedisConnectionError, RedisTimeoutError, ResponseError) as exc:
                    last = exc
                    continue
                slots: list[tuple[str, int] | None] = [None] * SLOTS
                for start, end, master, *_replicas in reply:
                    host = master[0].decode() if master[0] else ""
                    target = (host if host and host != "?" else address[0], int(master[1]))
                    for s in range(int(start), int(end) + 1):
                        slots[s] = target
                self._slots = slots
                return
            raise RedisConnectionError(f"no Redis Cluster node answered CLUSTER SLOTS: {last}")
