"""Engine, session factory and the units of work (house rule 3).

Flows (`<domain>/flows.py`: the use cases and jobs) and the request dependency `deps.SessionDep`
open units of work; services and repositories receive the session and never commit. Side effects
that must follow the commit (shield marks, seat-map patches, lease release) are registered with
`after_commit` and run once the transaction has committed, never when it rolled back.

The hot writes (a winning hold, a balance payment) use `lean_unit_of_work` instead: the raw
asyncpg connection under a pool connection, with no ORM session (which was a third of their CPU),
for a write that is ONE statement and so commits on its own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

import asyncpg
import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn

from boxoffice.config import Settings
from boxoffice.errors import DomainError
from boxoffice.kit import trace

log = structlog.get_logger("boxoffice.db.uow")

Effect = Callable[[], Awaitable[object]]


def async_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+asyncpg:// and return the asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"unsupported database URL scheme: {url.split('://', 1)[0]}")


def plain_url(url: str) -> str:
    """The libpq / asyncpg form (postgresql://...), for raw asyncpg connections."""
    return "postgresql://" + async_url(url)[len("postgresql+asyncpg://") :]


class TracedConnection(asyncpg.Connection):  # type: ignore[misc]
    """asyncpg's connection whose statements a traced request charges to PostgreSQL (kit/trace.py).
    Used only when tracing is on at the engine's creation: otherwise asyncpg's own class."""

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:  # noqa: ASYNC109
        if trace.CURRENT is None:
            return await super().execute(query, *args, timeout=timeout)  # type: ignore[no-any-return]
        with trace.awaiting("pg", "pg.execute", query):
            return await super().execute(query, *args, timeout=timeout)  # type: ignore[no-any-return]

    async def _execute(self, query: str, args: Any, limit: int, timeout: float | None, **kw: Any) -> Any:  # noqa: ASYNC109
        if trace.CURRENT is None:
            return await super()._execute(query, args, limit, timeout, **kw)
        with trace.awaiting("pg", "pg.query", query):
            return await super()._execute(query, args, limit, timeout, **kw)


def _trace_statements(engine: AsyncEngine) -> None:
    """The ORM's statements (prepared through SQLAlchemy's dialect) as PostgreSQL waits."""
    from sqlalchemy import event

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        current = trace.CURRENT
        if current is not None and current.waiting is None and context is not None:
            context._bo_wait = (current, trace.begin(current, "pg", "pg.statement", statement))

    def after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        wait = getattr(context, "_bo_wait", None)
        if wait is not None:
            context._bo_wait = None
            trace.end(*wait)

    def failed(exception_context: Any) -> None:
        after(None, None, "", None, exception_context.execution_context, False)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)
    event.listen(engine.sync_engine, "handle_error", failed)


def create_engine(settings: Settings, url: str) -> AsyncEngine:
    engine = _create_engine(settings, url)
    if trace.ENABLED:
        _trace_statements(engine)
    return engine


async def _checkout(engine: AsyncEngine) -> Any:
    """A raw pool connection; a traced request charges the wait for it to PostgreSQL."""
    if trace.CURRENT is None:
        return await engine.raw_connection()
    with trace.awaiting("pg", trace.POOL_CHECKOUT):
        return await engine.raw_connection()


def _create_engine(settings: Settings, url: str) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        pool_pre_ping=False,
        pool_recycle=1800,
        hide_parameters=True,  # error messages never carry row values (emails, hashes) into logs
        # asyncpg's per-release RESET ALL costs 7-10% on hot paths; our sessions set no state.
        pool_reset_on_return="rollback",
        connect_args={
            "server_settings": {
                "application_name": "boxoffice",
                # No statement of ours should queue for a row lock this long; a duplicate request
                # waiting on an idempotency key gets 409 IDEMPOTENCY_IN_PROGRESS instead.
                "lock_timeout": "3s",
                # Every statement of ours is an index lookup. A plan cached while a table was
                # nearly empty (a first sale: reservations, their seats and the idempotency keys
                # grow by thousands a minute) would seq-scan it until autovacuum's next ANALYZE,
                # and so would PostgreSQL's own foreign-key checks. A seq scan stays where no
                # index applies.
                "enable_seqscan": "off",
            },
            "statement_cache_size": 512,
            **({"connection_class": TracedConnection} if trace.ENABLED else {}),
        },
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def sqlstate(exc: DBAPIError) -> str | None:
    """PostgreSQL's SQLSTATE of a driver error (e.g. 40P01 deadlock, 55P03 lock timeout)."""
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


async def run_effects(effects: list[Effect]) -> None:
    """Best effort, in order: the commit stands whatever an effect does (each one's state is
    rebuilt from PostgreSQL when it is lost), so a failing effect is logged, never raised."""
    for effect in effects:
        try:
            await effect()
        except Exception as exc:
            log.warning("after_commit_effect_failed", error=type(exc).__name__)


# Where a lean write's effects go when they may leave after the answer (see effects_after_answer).
_AFTER_ANSWER: ContextVar[list[Effect] | None] = ContextVar("boxoffice_after_answer", default=None)


@contextmanager
def effects_after_answer() -> Iterator[list[Effect]]:
    """Within this block, the lean writes' after-commit effects (the shield, the seat-map patch,
    the queue lease: best effort, rebuilt from PostgreSQL when lost) are collected here instead of
    run before the flow returns; the hot routes send them as the response's background task. A
    buyer's answer then waits for its statement only, not for those Redis round trips (each one
    a pass of a busy event loop)."""
    sink: list[Effect] = []
    token = _AFTER_ANSWER.set(sink)
    try:
        yield sink
    finally:
        _AFTER_ANSWER.reset(token)


class _Effects:
    """The effects to run after a transaction commits."""

    def __init__(self) -> None:
        self._effects: list[Effect] = []

    def after_commit(self, effect: Effect) -> None:
        self._effects.append(effect)

    def take_effects(self) -> list[Effect]:
        effects, self._effects = self._effects, []
        return effects

    async def run_effects(self) -> None:
        await run_effects(self.take_effects())


class UnitOfWork(_Effects):
    """One transaction's session plus the effects to run after it commits. Both owners of a unit
    of work (the flows' `unit_of_work` and the request dependency, http/deps.py) build one, so a
    service handed only the session still defers its effects: `after_commit(session, effect)`."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__()
        self.session = session
        session.info["uow"] = self


def after_commit(session: AsyncSession, effect: Effect) -> None:
    """Run `effect` once the session's transaction has committed (dropped on rollback): cache
    invalidations and publishes, so no reader re-caches the old state in between."""
    uow = session.info.get("uow")
    if not isinstance(uow, UnitOfWork):
        raise RuntimeError("after_commit needs a session opened by a unit of work")
    uow.after_commit(effect)


class LeanUnitOfWork(_Effects):
    """A raw asyncpg connection plus the effects to run after its write committed. The connection
    is in autocommit: each statement is its own transaction, so a flow writes through ONE statement
    (all or nothing by construction: see booking.repository.hold); reads around it are fine."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        super().__init__()
        self.conn = conn


@asynccontextmanager
async def unit_of_work(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[UnitOfWork]:
    """One transaction: commit when the block exits cleanly (then run the after-commit effects),
    roll back on any exception (and drop them)."""
    async with sessions() as session:
        uow = UnitOfWork(session)
        async with session.begin():
            if trace.CURRENT is not None:  # a traced request: the pool wait is PostgreSQL's
                with trace.awaiting("pg", trace.POOL_CHECKOUT):
                    await session.connection()
            yield uow
    await uow.run_effects()


class _LeanPool:
    """The lean writes' connections of one engine on one event loop.

    At most pool_size lean units of work run at once (`gate`). Past that, a lean write queues on
    the semaphore (a future) instead of in the pool's own wait (a greenlet, a timed queue get and
    overflow connections: measured ~0.26 ms of CPU per hold at 50 in flight with a pool of 20), and
    the pool's overflow stays free for the ORM's requests.

    A connection a lean write gives back stays checked out of the engine's pool, idle here for the
    next lean write: SQLAlchemy's checkout and check-in (a greenlet each way, the pool's events and
    its reset) cost ~42 µs of CPU per write on a 2-core VM whose `/healthz` costs ~210 µs. One left
    unused for IDLE_SECONDS goes back to the engine's pool, where the ORM's requests find it when
    the hot writes pause; `close_lean` gives them all back before the engine is disposed.
    """

    IDLE_SECONDS = 1.0

    def __init__(self, engine: AsyncEngine, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.engine = engine
        self.loop = loop
        self.gate = asyncio.Semaphore(size)
        self.idle: deque[tuple[Any, float]] = deque()  # (pool connection, given back at), newest last
        self._sweep: asyncio.TimerHandle | None = None
        self._check_ins: set[asyncio.Task[None]] = set()

    async def take(self) -> Any:
        while self.idle:
            raw = self.idle.pop()[0]
            if not raw.driver_connection.is_closed():
                return raw
            await _check_in_all([raw], invalidate=True)  # the server closed it (a restart)
        return await _checkout(self.engine)

    def give_back(self, raw: Any) -> None:
        self.idle.append((raw, self.loop.time()))
        if self._sweep is None:
            self._sweep = self.loop.call_later(self.IDLE_SECONDS, self._check_in_unused)

    def _check_in_unused(self) -> None:
        self._sweep = None
        now = self.loop.time()
        unused = []
        while self.idle and self.idle[0][1] <= now - self.IDLE_SECONDS:
            unused.append(self.idle.popleft()[0])
        if unused:
            task = self.loop.create_task(_check_in_all(unused))
            self._check_ins.add(task)
            task.add_done_callback(self._check_ins.discard)
        if self.idle:
            self._sweep = self.loop.call_at(self.idle[0][1] + self.IDLE_SECONDS, self._check_in_unused)

    async def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        idle = [raw for raw, _ in self.idle]
        self.idle.clear()
        await _check_in_all(idle)
        if self._check_ins:
            await asyncio.gather(*self._check_ins, return_exceptions=True)


async def _check_in(raw: Any, *, invalidate: bool = False, reason: BaseException | None = None) -> None:
    """Back to the engine's pool, in a greenlet as the pool's own async code does it (returning an
    overflow connection closes it, which awaits)."""
    if invalidate:
        await greenlet_spawn(raw.invalidate, reason if isinstance(reason, Exception) else None)
    await greenlet_spawn(raw.close)


async def _check_in_all(connections: list[Any], *, invalidate: bool = False) -> None:
    """Each back to the pool; one that fails is logged, never raised (the caller goes on)."""
    for raw in connections:
        try:
            await _check_in(raw, invalidate=invalidate)
        except Exception as exc:
            log.warning("lean_check_in_failed", error=type(exc).__name__)


def _lean_pool(engine: AsyncEngine) -> _LeanPool:
    pool = engine.sync_engine.pool
    lean: _LeanPool | None = getattr(pool, "_bo_lean", None)
    loop = asyncio.get_running_loop()
    if lean is None or lean.loop is not loop:
        size = pool.size() if isinstance(pool, QueuePool) else 1_000_000
        lean = _LeanPool(engine, loop, max(1, size))
        pool._bo_lean = lean  # type: ignore[attr-defined]
    return lean


async def close_lean(engine: AsyncEngine) -> None:
    """Give the lean writes' idle connections back to the engine's pool (before disposing it)."""
    lean: _LeanPool | None = getattr(engine.sync_engine.pool, "_bo_lean", None)
    if lean is not None and lean.loop is asyncio.get_running_loop():
        await lean.close()


class _LeanUse:
    """`async with lean_unit_of_work(engine) as uow` (a class: an async generator's context
    manager costs two generator round trips per write)."""

    __slots__ = ("pool", "raw", "uow")

    def __init__(self, pool: _LeanPool) -> None:
        self.pool = pool

    async def __aenter__(self) -> LeanUnitOfWork:
        gate = self.pool.gate
        await gate.acquire()
        try:
            self.raw = await self.pool.take()
        except BaseException:
            gate.release()
            raise
        self.uow = LeanUnitOfWork(self.raw.driver_connection)
        return self.uow

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            # A statement PostgreSQL refused, or a refusal of ours, leaves the connection idle;
            # anything else (a cancellation mid-statement, a broken socket) leaves it in an unknown
            # state: invalidated, never reused.
            if exc is None or isinstance(exc, asyncpg.PostgresError | DomainError):
                self.pool.give_back(self.raw)
            else:
                await _check_in(self.raw, invalidate=True, reason=exc)
        finally:
            self.pool.gate.release()
        if exc is None:
            later = _AFTER_ANSWER.get()
            if later is None:
                await self.uow.run_effects()
            else:
                later.extend(self.uow.take_effects())


def lean_unit_of_work(engine: AsyncEngine) -> _LeanUse:
    """The engine's pool connection without the ORM (measured: its checkout costs ~15 us more than
    a separate asyncpg pool's, which would double the connections a process opens), kept between
    lean writes (see _LeanPool). The effects run when the block exits cleanly, after the connection
    went back (or after the answer, inside effects_after_answer)."""
    return _LeanUse(_lean_pool(engine))
