"""A multiplexed Redis client for the hot paths (status polls, joins, seat holds, the deny-list).

redis-py's asyncio client spends ~140 us of CPU per command in this process (pool checkout,
retry wrapper, connection bookkeeping): more than the rest of a refused hold. Here every coroutine
of the process shares one connection: a command is written as it is issued, without waiting, and
replies are matched to callers in order (Redis answers a connection's commands in order). Many
concurrent requests therefore form natural pipelines, and a command costs ~20 us.

Only what the hot paths need: `execute`, `get`, `sadd`, `exists`, `eval`, `evalsha`,
`register_script`. Errors are
redis-py's own classes (ConnectionError, TimeoutError, ResponseError, NoScriptError), so callers'
`except RedisError` keeps working. Everything else keeps using the redis-py client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = bytes | str | int | float


def _encode(arg: Arg) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bool):  # bool is an int: refuse the ambiguity rather than send "True"
        raise TypeError("booleans are not Redis arguments")
    return repr(arg).encode() if isinstance(arg, float) else str(arg).encode()


def pack_command(args: Sequence[Arg]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _encode(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class MuxScript:
    """EVALSHA with a fall back to EVAL when the server does not know the script yet."""

    def __init__(self, client: MuxRedis, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()) -> Any:
        try:
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.client.eval(self.source, len(keys), *keys, *args)


class MuxRedis:
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._outbox: list[bytes] = []
        self._reader_task: asyncio.Task[None] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()
        self._scripts: dict[str, MuxScript] = {}
        self._closed = False

    # -- public API -----------------------------------------------------------------------------

    async def execute(self, *args: Arg) -> Any:
        writer = self._writer
        if writer is None or writer.is_closing():
            writer = await self._connect()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((future, loop.time()))
        # Commands issued in the same loop iteration leave in one write (one send() syscall).
        if not self._outbox:
            loop.call_soon(self._flush, writer)
        self._outbox.append(pack_command(args))
        return await future

    async def exists(self, *keys: Arg) -> int:
        found: int = await self.execute("EXISTS", *keys)
        return found

    async def get(self, key: Arg) -> bytes | None:
        value: bytes | None = await self.execute("GET", key)
        return value

    async def sadd(self, key: Arg, *members: Arg) -> int:
        added: int = await self.execute("SADD", key, *members)
        return added

    async def eval(self, script: str, numkeys: int, *keys_and_args: Arg) -> Any:
        return await self.execute("EVAL", script, numkeys, *keys_and_args)

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Arg) -> Any:
        return await self.execute("EVALSHA", sha, numkeys, *keys_and_args)

    def register_script(self, source: str) -> MuxScript:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = MuxScript(self, source)
        return script

    async def aclose(self) -> None:
        self._closed = True
        self._drop(RedisConnectionError("client closed"))
        for task in (self._reader_task, self._watchdog_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _flush(self, writer: asyncio.StreamWriter) -> None:
        data, self._outbox = b"".join(self._outbox), []
        if writer is self._writer and not writer.is_closing():
            writer.write(data)

    # -- connection -----------------------------------------------------------------------------

    async def _connect(self) -> asyncio.StreamWriter:
        async with self._connect_lock:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            if self._closed:
                raise RedisConnectionError("client closed")
            parts = urlsplit(self.url)
            query = parse_qs(parts.query)
            try:
                async with asyncio.timeout(self.timeout):
                    if parts.scheme == "unix":
                        reader, writer = await asyncio.open_unix_connection(unquote(parts.path))
                    elif parts.scheme in ("redis", "rediss"):
                        tls = ssl.create_default_context() if parts.scheme == "rediss" else None
                        reader, writer = await asyncio.open_connection(
                            parts.hostname or "localhost", parts.port or 6379, ssl=tls
                        )
                    else:
                        raise RedisConnectionError(f"unsupported Redis URL scheme {parts.scheme!r}")
            except (OSError, TimeoutError) as exc:
                raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
            # Each connection has its own queue of waiting callers, so a dying connection's reader
            # can never hand its replies to callers of the next one.
            pending: deque[tuple[asyncio.Future[Any], float]] = deque()
            self._reader, self._writer, self._pending, self._outbox = reader, writer, pending, []
            self._reader_task = asyncio.create_task(self._read_replies(reader, writer, pending))
            self._watchdog_task = asyncio.create_task(self._watch(writer, pending))
            db = query.get("db", [parts.path.lstrip("/") if parts.scheme != "unix" else ""])[0] or "0"
            setup: list[tuple[Arg, ...]] = []
            if parts.password:
                user = unquote(parts.username) if parts.username else None
                setup.append(
                    ("AUTH", user, unquote(parts.password)) if user else ("AUTH", unquote(parts.password))
                )
            if db != "0":
                setup.append(("SELECT", db))
            # Written together before any await: no caller's command can slip in between.
            futures = []
            loop = asyncio.get_running_loop()
            for command in setup:
                future: asyncio.Future[Any] = loop.create_future()
                pending.append((future, loop.time()))
                futures.append(future)
                writer.write(pack_command(command))
            for future in futures:
                await future
            return writer

    async def _read_replies(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pending: deque[tuple[asyncio.Future[Any], float]],
    ) -> None:
        parser = hiredis.Reader(replyError=ResponseError)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    raise RedisConnectionError("Redis closed the connection")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    future, _ = pending.popleft()
                    if future.done():  # its caller was cancelled; the reply is consumed all the same
                        continue
                    if isinstance(reply, ResponseError):
                        message = str(reply)
                        future.set_exception(
                            NoScriptError(message) if message.startswith("NOSCRIPT") else reply
                        )
                    else:
                        future.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc if isinstance(exc, RedisConnectionError) else RedisConnectionError(str(exc))
            if self._writer is writer:
                self._drop(error)

    async def _watch(
        self, writer: asyncio.StreamWriter, pending: deque[tuple[asyncio.Future[Any], float]]
    ) -> None:
        """One timer per connection instead of one per command: replies come back in order, so
        the oldest waiter tells whether Redis has stopped answering."""
        loop = asyncio.get_running_loop()
        while self._writer is writer:
            await asyncio.sleep(min(1.0, self.timeout / 4))
            if pending and loop.time() - pending[0][1] > self.timeout and self._writer is writer:
                # The reply stream can no longer be trusted to line up: fail everyone, start over.
                self._drop(RedisTimeoutError(f"Redis did not answer within {self.timeout}s"))

    def _drop(self, error: Exception) -> None:
        """Forget the connection and fail every caller still waiting on it."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
        pending, self._pending, self._outbox = self._pending, deque(), []
        while pending:
            future, _ = pending.popleft()
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: a cancelled caller must not log "never retrieved"
