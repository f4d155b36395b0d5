"""The `boxoffice` command. Thin: it builds Settings, opens resources and calls services."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
import uvicorn
from rich.console import Console

from boxoffice.backends import (
    BackendError,
    Backends,
    DataDirLock,
    EmbeddedPostgres,
    EmbeddedRedis,
    ensure_writable,
    publish_backends,
    published_backends,
    start_backends,
    withdraw_backends,
)
from boxoffice.bench.commands import bench_app
from boxoffice.config import Settings, with_secrets
from boxoffice.httpserver import server_config

if TYPE_CHECKING:
    from boxoffice.runtime import Runtime

T = TypeVar("T")
app = typer.Typer(help="Boxoffice: flash-sale concert ticketing.", no_args_is_help=True, add_completion=False)
app.add_typer(bench_app, name="bench")
console = Console(stderr=True, width=120)


class UserError(Exception):
    """A problem the operator can fix; printed as one line, exit code 1."""


def _fail(message: str) -> NoReturn:
    console.print(f"[bold red]boxoffice: error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _settings(**overrides: object) -> Settings:
    from pydantic import ValidationError

    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(
            f"invalid setting BOXOFFICE_{'_'.join(map(str, first['loc'])).upper()}: {first['msg']}"
        ) from exc
    data_dir = settings.data_dir.expanduser().resolve()
    ensure_writable(data_dir)
    return with_secrets(settings.model_copy(update={"data_dir": data_dir}))


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop (what uvicorn picks for its own workers): the API and the jobs are event-loop
    bound, and the stock loop's Python-level socket transports cost a visible share of each request."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops everything the same way Ctrl-C does


@contextlib.contextmanager
def _errors_as_one_line() -> Iterator[None]:
    try:
        yield
    except (UserError, BackendError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        console.print("stopped")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48):
            raise UserError(f"port {port} on {host} is already in use (set BOXOFFICE_PORT)") from exc
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def _check_reachable(database_url: str, redis_url: str) -> None:
    import asyncpg
    from redis.asyncio import Redis

    from boxoffice.db import plain_url
    from boxoffice.redis_client import plain_redis_url

    try:
        conn = await asyncpg.connect(plain_url(database_url), timeout=5)
        await conn.close()
    except Exception as exc:
        raise UserError(f"cannot reach PostgreSQL at BOXOFFICE_DATABASE_URL: {_reason(exc)}") from exc
    client = Redis.from_url(plain_redis_url(redis_url), socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    except Exception as exc:
        raise UserError(f"cannot reach Redis at BOXOFFICE_REDIS_URL: {_reason(exc)}") from exc
    finally:
        await client.aclose()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _open_backends(settings: Settings) -> Backends:
    backends = start_backends(settings.data_dir, settings.database_url, settings.redis_url)
    try:
        asyncio.run(_check_reachable(backends.database_url, backends.redis_url))
    except BaseException:
        backends.stop()
        raise
    return backends


@contextlib.contextmanager
def _running_backends(settings: Settings, *, migrate: bool = True, owner: bool = False) -> Iterator[Backends]:
    """The backends, migrated. One owner per data dir: the first command to take the data dir's
    lock starts the embedded servers (and stops them on the way out) and publishes their URLs; a
    command that finds a live owner attaches to its servers and never starts or stops them.
    `owner=True` (`up`) refuses to run beside another owner instead."""
    if not (settings.embedded_database or settings.embedded_redis):
        backends = _open_backends(settings)
        try:
            if migrate:
                _migrate(backends.database_url)
            yield backends
        finally:
            backends.stop()
        return
    lock = DataDirLock(settings.data_dir)
    if not lock.try_acquire():
        live = published_backends(settings.data_dir)
        if owner or live is None:
            # Starting our own servers would mean stopping the live ones first: refuse instead.
            raise BackendError(f"another boxoffice process is using the data dir {settings.data_dir}")
        pid, attached = live
        console.print(f"attached to the backends of the running boxoffice (pid {pid})", highlight=False)
        asyncio.run(_check_reachable(attached.database_url, attached.redis_url))
        if migrate:
            _migrate(attached.database_url)
        yield attached
        return
    try:
        backends = _open_backends(settings)
        try:
            publish_backends(settings.data_dir, backends)
            if migrate:
                _migrate(backends.database_url)
            yield backends
        finally:
            withdraw_backends(settings.data_dir)
            backends.stop()
    finally:
        lock.__exit__(None, None, None)


def _migrate(database_url: str) -> None:
    from boxoffice.schema import upgrade

    try:
        upgrade(database_url)
    except Exception as exc:
        raise UserError(f"migration failed: {_reason(exc)}") from exc


def _configure_logging(settings: Settings) -> None:
    from boxoffice.observability import configure_logging

    configure_logging(settings)


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Listen address (BOXOFFICE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (BOXOFFICE_PORT)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data dir (BOXOFFICE_DATA_DIR)")] = None,
    roles: Annotated[
        bool, typer.Option("--roles", help="Each role its own process group behind the system's nginx")
    ] = False,
) -> None:
    """Everything in one command: backends (embedded unless URLs are set), migrations, demo data,
    the API, the background workers and the payment-provider simulator. Ctrl-C stops it all."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    with _errors_as_one_line():
        settings = _settings(host=host, port=port, data_dir=data_dir)
        _configure_logging(settings)
        if roles:
            _up_roles(settings)
            return
        listener = _bind(settings.host, settings.port)
        with _running_backends(settings, owner=True) as backends:
            _run(_run_everything(settings, backends, listener))


def _up_roles(settings: Settings) -> None:
    from boxoffice.gateway import GatewayError, RolesStack, nginx_binary

    try:
        nginx_binary()  # before anything starts
    except GatewayError as exc:
        raise UserError(str(exc)) from exc
    _bind(settings.host, settings.port).close()  # the gateway's port is free (one-line error if not)
    with _running_backends(settings, owner=True) as backends:
        summary = _run(_seed(settings, backends))
        env = {
            "BOXOFFICE_DATABASE_URL": backends.database_url,
            "BOXOFFICE_REDIS_URL": backends.redis_url,
            "BOXOFFICE_DATA_DIR": str(settings.data_dir),
        }
        simulator = None
        if settings.payment_provider_url is None:
            simulator = subprocess.Popen(
                [sys.executable, "-m", "boxoffice.cli", "payment-provider"],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        stack = RolesStack(settings.data_dir / "roles", env, listen_port=settings.port, host=settings.host)
        try:
            stack.start()
            _print_banner(settings, backends, summary, settings.grpc_port)
            console.print(
                "  Roles          "
                + ", ".join(f"{g.name}:{g.port}" if g.port else g.name for g in stack.groups.values())
                + f" behind nginx (each role's own /docs on its port); logs in {stack.run_dir}",
                highlight=False,
            )
            while all(g.proc.poll() is None for g in stack.groups.values()):
                time.sleep(0.5)
            raise UserError("a role process exited; see its log in " + str(stack.run_dir))
        except GatewayError as exc:
            raise UserError(str(exc)) from exc
        finally:
            stack.stop()
            if simulator is not None:
                simulator.terminate()
                simulator.wait(10)


async def _run_everything(settings: Settings, backends: Backends, listener: socket.socket) -> None:
    from boxoffice.app import create_app
    from boxoffice.demo import seed_demo
    from boxoffice.runtime import open_runtime

    stop = asyncio.Event()
    async with open_runtime(settings, backends.database_url, backends.redis_url) as runtime:
        summary = await seed_demo(runtime)
        await runtime.warm_up(settings.db_pool_size)
        api = create_app(settings, runtime=runtime)
        server = _Server(server_config(settings, api, lifespan="off"))
        _stop_on_signals(server, stop)
        grpc_server, grpc_port = await _start_grpc(runtime, settings)
        children = _supervise(settings, backends, runtime, stop)
        _print_banner(settings, backends, summary, grpc_port)
        try:
            await server.serve(sockets=[listener])
        finally:
            stop.set()
            await grpc_server.stop(2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(children[0], 10)  # the worker finishes its tick
            for task in children:
                task.cancel()
            await asyncio.gather(*children, return_exceptions=True)


def _supervise(
    settings: Settings, backends: Backends, runtime: Runtime, stop: asyncio.Event
) -> list[asyncio.Task[None]]:
    """The worker first, then the simulator and the embedded servers, each restarted if it dies."""
    from boxoffice.payments.simulator import serve_simulator
    from boxoffice.supervisor import Supervisor
    from boxoffice.worker import run_worker

    sup = Supervisor(runtime, stop)
    tasks = [asyncio.create_task(sup.keep_running("worker", lambda: run_worker(runtime, stop)))]
    if settings.payment_provider_url is None:
        tasks.append(
            asyncio.create_task(sup.keep_running("payment-provider", lambda: serve_simulator(settings)))
        )
    for name, server in (("postgres", backends.postgres), ("redis", backends.redis)):
        if server is not None:
            alive = functools.partial(_alive, server)
            tasks.append(asyncio.create_task(sup.watch_process(name, alive, server.start)))
    return tasks


def _alive(server: EmbeddedPostgres | EmbeddedRedis) -> bool:
    return server.proc is not None and server.proc.poll() is None


async def _start_grpc(runtime: Any, settings: Settings) -> tuple[Any, int]:
    from boxoffice.grpc.server import BindError, start_server

    try:
        return await start_server(runtime, settings.host, settings.grpc_port)
    except BindError as exc:
        raise UserError(str(exc)) from exc


class _Server(uvicorn.Server):
    """uvicorn without its own signal capture: `up` owns SIGINT/SIGTERM and stops in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _stop_on_signals(server: object, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def _request_stop() -> None:
        if getattr(server, "should_exit", False):
            server.force_exit = True  # type: ignore[attr-defined]  # second Ctrl-C: don't wait
        server.should_exit = True  # type: ignore[attr-defined]
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _request_stop)


def _admin_password_shown_once(settings: Settings) -> str:
    """A generated admin password is printed at the first start only; a configured one never."""
    from boxoffice.config import first_time, secret

    if Settings().admin_password is not None:  # configured by the operator
        return "(BOXOFFICE_ADMIN_PASSWORD)"
    if first_time(settings.data_dir, "admin-password-shown"):
        return f"{secret(settings.admin_password)}   (generated; shown once, kept in secrets.json)"
    return f"(generated at the first start; in {settings.data_dir / 'secrets.json'})"


def _print_banner(settings: Settings, backends: Backends, summary: object, grpc_port: int) -> None:
    base = f"http://{settings.host}:{settings.port}"
    pg = f"embedded, {settings.data_dir}" if backends.postgres else "configured URL"
    rd = f"embedded, {settings.data_dir}" if backends.redis else "configured URL"
    lines = [
        "[bold green]Boxoffice is up[/]",
        f"  API            {base}/api   (docs {base}/docs, OpenAPI {base}/openapi.json)",
        f"  Health         {base}/healthz  {base}/readyz  {base}/metrics",
        f"  gRPC           {settings.host}:{grpc_port}   (boxoffice.v1.TicketService, health, reflection)",
        f"  PostgreSQL     {pg}",
        f"  Redis          {rd}",
        f"  Admin login    {settings.admin_email} / {_admin_password_shown_once(settings)}",
        f"  Demo fan       {settings.demo_fan_email} / {settings.demo_fan_password.get_secret_value()}",
    ]
    if summary:
        lines.append(f"  Demo data      {summary}")
    lines.append("  Ctrl-C stops everything.")
    console.print("\n".join(lines), highlight=False)


@app.command()
def serve(
    workers: Annotated[int, typer.Option(min=1, max=64, help="API processes")] = 1,
    host: Annotated[str | None, typer.Option(help="Listen address (BOXOFFICE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (BOXOFFICE_PORT)")] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="auth|catalog|queue|booking|payments|admin|web|all, or a comma list (BOXOFFICE_ROLES)"
        ),
    ] = None,
) -> None:
    """API processes only (no background jobs). Uses the configured URLs, or the embedded backends."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    with _errors_as_one_line():
        settings = _settings(host=host, port=port, api_workers=workers, roles=role)
        _check_roles(settings)
        _configure_logging(settings)
        listener = _bind(settings.host, settings.port)
        with _running_backends(settings, migrate=settings.migrate_on_start) as backends:
            # attaches to a running `up`'s backends
            _serve_api(settings, backends, listener, workers)


def _serve_api(settings: Settings, backends: Backends, listener: socket.socket, workers: int) -> None:
    # Child processes rebuild Settings from the environment: hand them the resolved URLs.
    os.environ["BOXOFFICE_DATABASE_URL"] = backends.database_url
    os.environ["BOXOFFICE_REDIS_URL"] = backends.redis_url
    os.environ["BOXOFFICE_DATA_DIR"] = str(settings.data_dir)
    os.environ["BOXOFFICE_ROLES"] = settings.roles
    config = server_config(settings, "boxoffice.app:app_from_environment", factory=True, workers=workers)
    if workers == 1:
        _run(uvicorn.Server(config).serve(sockets=[listener]))
    else:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[listener]).run()


def _check_roles(settings: Settings) -> None:
    from boxoffice.app import role_routes

    try:
        role_routes(settings.role_list)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


@app.command("grpc")
def grpc_command(
    host: Annotated[str | None, typer.Option(help="Listen address (BOXOFFICE_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (BOXOFFICE_GRPC_PORT)")] = None,
) -> None:
    """The gRPC TicketService alone (no HTTP, no background jobs). Any number of processes may
    serve one port (SO_REUSEPORT). Uses the configured URLs, or the embedded backends."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    with _errors_as_one_line():
        settings = _settings(host=host, grpc_port=port)
        _configure_logging(settings)
        with _running_backends(settings, migrate=settings.migrate_on_start) as backends:
            # attaches to a running `up`'s backends
            _run(_serve_grpc(settings, backends))


def _stop_event() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (call inside the running loop): the command's clean stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    return stop


async def _serve_grpc(settings: Settings, backends: Backends) -> None:
    from boxoffice.runtime import open_runtime

    stop = _stop_event()
    async with open_runtime(settings, backends.database_url, backends.redis_url) as runtime:
        await runtime.warm_up(min(8, settings.db_pool_size))
        server, port = await _start_grpc(runtime, settings)
        console.print(f"gRPC TicketService on {settings.host}:{port}   Ctrl-C stops it.", highlight=False)
        try:
            await stop.wait()
        finally:
            await server.stop(3)  # open streams get 3 s, then are cancelled


@app.command()
def worker(
    jobs: Annotated[
        str | None, typer.Option(help="Comma-separated job names (default: all) (BOXOFFICE_JOBS)")
    ] = None,
) -> None:
    """Background jobs only: queue admission, hold expiry, inventory, payment reconciliation, event relay."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    with _errors_as_one_line():
        settings = _settings(jobs=jobs)
        _selected_jobs(settings)
        _configure_logging(settings)
        with _running_backends(settings, migrate=settings.migrate_on_start) as backends:
            _run(_run_worker(settings, backends))


async def _run_worker(settings: Settings, backends: Backends) -> None:
    from boxoffice.runtime import open_runtime
    from boxoffice.worker import run_worker

    stop = _stop_event()
    async with open_runtime(settings, backends.database_url, backends.redis_url) as runtime:
        await run_worker(runtime, stop, _selected_jobs(settings))


def _selected_jobs(settings: Settings) -> list[Any] | None:
    from boxoffice.worker import all_jobs

    if not settings.job_list:
        return None
    known = {job.name: job for job in all_jobs(settings)}
    unknown = [name for name in settings.job_list if name not in known]
    if unknown:
        raise UserError(f"unknown job {unknown[0]!r}; jobs: {', '.join(known)}")
    return [known[name] for name in settings.job_list]


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
    down: Annotated[bool, typer.Option("--down", help="Downgrade to the revision instead")] = False,
) -> None:
    """Apply (or revert) database migrations."""
    with _errors_as_one_line():
        settings = _settings()
        with _running_backends(settings, migrate=False) as backends:
            if down:
                from boxoffice.schema import downgrade

                downgrade(backends.database_url, "base" if revision == "head" else revision)
            else:
                from boxoffice.schema import upgrade

                upgrade(backends.database_url, revision)
        console.print(f"migrated {'down to' if down else 'up to'} {revision}")


@app.command("seed-demo")
def seed_demo_command() -> None:
    """Create the demo data (admin, fan, venue, concerts, shows) unless it exists already."""
    with _errors_as_one_line():
        settings = _settings()
        _configure_logging(settings)
        with _running_backends(settings) as backends:
            summary = _run(_seed(settings, backends))
        console.print(f"demo data: {summary}")


async def _seed(settings: Settings, backends: Backends) -> object:
    from boxoffice.demo import seed_demo
    from boxoffice.runtime import open_runtime

    async with open_runtime(settings, backends.database_url, backends.redis_url) as runtime:
        return await seed_demo(runtime)


@app.command("payment-provider")
def payment_provider(
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Listen port (BOXOFFICE_PAYMENT_PROVIDER_PORT)")
    ] = None,
    host: Annotated[str, typer.Option(help="Listen address")] = "127.0.0.1",
    latency_ms: Annotated[int, typer.Option(min=0, max=60_000, help="Added to every charge")] = 0,
    failure_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of charges declined")] = 0.0,
    timeout_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Charged, answer after the client gave up")
    ] = 0.0,
    lost_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Charged, but the answer is lost (502)")
    ] = 0.0,
) -> None:
    """The payment-provider simulator (an external card API with configurable faults)."""
    from boxoffice.payments.simulator import SimulatorConfig, serve_simulator

    with _errors_as_one_line():
        if failure_rate + timeout_rate + lost_rate > 1:
            raise UserError("--failure-rate + --timeout-rate + --lost-rate must not exceed 1")
        settings = _settings(payment_provider_port=port)
        _configure_logging(settings)
        config = SimulatorConfig(
            latency_ms=latency_ms, failure_rate=failure_rate, timeout_rate=timeout_rate, lost_rate=lost_rate
        )
        console.print(f"payment-provider simulator on http://{host}:{settings.payment_provider_port}")
        asyncio.run(serve_simulator(settings, config, host=host, own_signals=True))


def main() -> None:
    try:
        app()
    except UserError as exc:  # raised outside a command body (should not happen, but never a traceback)
        console.print(f"boxoffice: error: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
