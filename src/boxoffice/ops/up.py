"""`boxoffice up` and the long-running commands' machinery: backends (one owner per data dir),
migrations, the demo seed, the fork server whose children are the API processes and the worker,
their supervision, the roles behind nginx, and the banner."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from multiprocessing.process import BaseProcess
from typing import Any

import typer
import uvicorn

from boxoffice.config import Settings
from boxoffice.http.server import server_config
from boxoffice.kit import heap
from boxoffice.ops.backends.datadir import (
    Backends,
    DataDirLock,
    publish_backends,
    published_backends,
    start_backends,
    withdraw_backends,
)
from boxoffice.ops.backends.postgres import EmbeddedPostgres
from boxoffice.ops.backends.process import BackendError
from boxoffice.ops.backends.redis import EmbeddedRedis
from boxoffice.ops.run import (
    UserError,
    bind,
    configure_logging,
    console,
    errors_as_one_line,
    reason,
    run,
    stop_event,
)
from boxoffice.ops.supervisor import Supervisor


async def check_reachable(database_url: str, redis_url: str) -> None:
    import asyncpg
    from redis.asyncio import Redis

    from boxoffice.db.uow import plain_url
    from boxoffice.redis.client import plain_redis_url

    try:
        conn = await asyncpg.connect(plain_url(database_url), timeout=5)
        await conn.close()
    except Exception as exc:
        raise UserError(f"cannot reach PostgreSQL at BOXOFFICE_DATABASE_URL: {reason(exc)}") from exc
    client = Redis.from_url(plain_redis_url(redis_url), socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    except Exception as exc:
        raise UserError(f"cannot reach Redis at BOXOFFICE_REDIS_URL: {reason(exc)}") from exc
    finally:
        await client.aclose()


def open_backends(settings: Settings) -> Backends:
    from boxoffice.ops.backends.postgres import initialised

    say_what_starts(settings, first=settings.embedded_database and not initialised(settings.data_dir))
    backends = start_backends(settings.data_dir, settings.database_url, settings.redis_url)
    try:
        asyncio.run(check_reachable(backends.database_url, backends.redis_url))
    except BaseException:
        backends.stop()
        raise
    return backends


@contextlib.contextmanager
def running_backends(settings: Settings, *, migrate: bool = True, owner: bool = False) -> Iterator[Backends]:
    """The backends, migrated. One owner per data dir: the first command to take the data dir's
    lock starts the embedded servers (and stops them on the way out) and publishes their URLs; a
    command that finds a live owner attaches to its servers and never starts or stops them.
    `owner=True` (`up`) refuses to run beside another owner instead."""
    if not (settings.embedded_database or settings.embedded_redis):
        backends = open_backends(settings)
        try:
            if migrate:
                migrate_to_head(backends.database_url)
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
        asyncio.run(check_reachable(attached.database_url, attached.redis_url))
        if migrate:
            migrate_to_head(attached.database_url)
        yield attached
        return
    try:
        backends = open_backends(settings)
        try:
            publish_backends(settings.data_dir, backends)
            if migrate:
                migrate_to_head(backends.database_url)
            yield backends
        finally:
            withdraw_backends(settings.data_dir)
            backends.stop()
    finally:
        lock.__exit__(None, None, None)


def say_what_starts(settings: Settings, *, first: bool) -> None:
    """One line before the backends start, so a first start (initdb: seconds) is not silent."""
    embedded = [
        name
        for name, on in (("PostgreSQL", settings.embedded_database), ("Redis", settings.embedded_redis))
        if on
    ]
    if not embedded:
        return
    if first:
        console.print(
            f"first start: initialising {' and '.join(embedded)} in {settings.data_dir} (a few seconds)",
            highlight=False,
        )
    else:
        console.print(f"starting {' and '.join(embedded)} (embedded, {settings.data_dir})", highlight=False)


def migrate_to_head(database_url: str) -> None:
    from boxoffice.db.migrate import current, head, upgrade

    try:
        at, latest = asyncio.run(current(database_url)), head()
        if at != latest:
            console.print(f"migrating the database: {at or 'empty'} -> {latest}", highlight=False)
        upgrade(database_url)
    except Exception as exc:
        raise UserError(f"migration failed: {reason(exc)}") from exc


def up_roles(settings: Settings) -> None:
    from boxoffice.ops.gateway import GatewayError, RolesStack, nginx_binary

    try:
        nginx_binary()  # before anything starts
    except GatewayError as exc:
        raise UserError(str(exc)) from exc
    bind(settings.host, settings.port).close()  # the gateway's port is free (one-line error if not)
    with running_backends(settings, owner=True) as backends:
        summary = run(seed(settings, backends))
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
        stack = RolesStack(
            settings.data_dir / "roles",
            env,
            listen_port=settings.port,
            host=settings.host,
            nice={"queue": settings.queue_nice},
        )
        try:
            stack.start()
            print_banner(settings, backends, summary, settings.grpc_port)
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


async def run_everything(settings: Settings, backends: Backends, listener: socket.socket) -> None:
    """Seed the demo once, then run and supervise the children until SIGINT/SIGTERM: the API
    processes (HTTP on the shared listener, gRPC on one SO_REUSEPORT port), the worker process, the
    simulator and the embedded servers. `up` itself serves no request, so a child that dies is
    restarted by a process that did not."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    from boxoffice.observability import reset_multiprocess_dir

    metrics_dir = settings.data_dir / "metrics" / "up"
    reset_multiprocess_dir(metrics_dir)  # the children's metrics: any API process reports them all
    settings = settings.model_copy(update={"grpc_port": free_grpc_port(settings), "metrics_dir": metrics_dir})
    start_fork_server()
    console.print("loading the demo data (created once, then kept)", highlight=False)
    summary = await seed(settings, backends)
    sup = Supervisor(settings.data_dir, stop)
    processes, others = supervise(sup, settings, backends, listener)
    print_banner(settings, backends, summary, settings.grpc_port)
    try:
        await stop.wait()
    finally:
        stop.set()
        await asyncio.wait(processes, timeout=20)  # each child process stops (SIGTERM, then SIGKILL)
        for task in [*processes, *others]:
            task.cancel()
        await asyncio.gather(*processes, *others, return_exceptions=True)
        sup.close()


def supervise(
    sup: Supervisor, settings: Settings, backends: Backends, listener: socket.socket
) -> tuple[list[asyncio.Task[None]], list[asyncio.Task[None]]]:
    """(the child processes' tasks, the others'): the worker and the API processes; the simulator
    and the embedded servers. Each is restarted if it dies."""
    from boxoffice.payments.simulator import serve_simulator

    urls = Backends(database_url=backends.database_url, redis_url=backends.redis_url)
    child = functools.partial(spawn, child_main, os.getpid(), settings)
    processes = [asyncio.create_task(sup.keep_process("worker", functools.partial(child, run_worker, urls)))]
    for n in range(1, settings.api_workers + 1):
        api = functools.partial(child, serve_front_doors, urls, listener)
        processes.append(asyncio.create_task(sup.keep_process(f"api-{n}", api, readiness=False)))
    others = []
    if settings.payment_provider_url is None:
        others.append(
            asyncio.create_task(sup.keep_running("payment-provider", lambda: serve_simulator(settings)))
        )
    for name, server in (("postgres", backends.postgres), ("redis", backends.redis)):
        if server is not None:
            alive = functools.partial(server_alive, server)
            others.append(asyncio.create_task(sup.watch_process(name, alive, server.start)))
    return processes, others


# What a child of `up` imports, loaded once by multiprocessing's fork server: a restarted child is
# a fork of that clean, single-threaded process, so it serves in a fraction of a second instead of
# paying ~1.5 s of CPU for imports on a machine that is busy with the sale.
CHILD_MODULES = ["boxoffice.app", "boxoffice.worker", "boxoffice.grpc.server"]


def start_fork_server() -> None:
    """Now, so that it imports while `up` seeds the demo (multiprocessing starts it again if it
    dies)."""
    from multiprocessing import forkserver

    multiprocessing.set_forkserver_preload(CHILD_MODULES)
    forkserver.ensure_running()


def spawn(target: Callable[..., None], *args: object) -> BaseProcess:
    """A process running target(*args), forked from the fork server: nothing of `up`'s event loop
    or pools is inherited; the listener socket is passed along."""
    proc = multiprocessing.get_context("forkserver").Process(target=target, args=args)
    proc.start()
    return proc


def child_main(
    up_pid: int, settings: Settings, main: Callable[..., Coroutine[Any, Any, None]], *args: object
) -> None:
    """A child of `up`: main(settings, *args) on its own loop, with its own logging; an operator's
    error is one line and exit code 1, as from a command."""
    stop_when_gone(up_pid)
    try:
        with errors_as_one_line():
            configure_logging(settings)
            if settings.metrics_dir is not None:
                from boxoffice.observability import enable_multiprocess

                enable_multiprocess(settings.metrics_dir)
            run(main(settings, *args))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)


def stop_when_gone(pid: int) -> None:
    """SIGTERM to this process (a graceful stop) once `up` (pid) is gone, so that no API process
    keeps the port after a kill -9 of `up`. (PR_SET_PDEATHSIG would not do: the parent is the fork
    server, which every child keeps alive.)"""

    def watch() -> None:
        while True:
            time.sleep(1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="up-watch", daemon=True).start()


async def serve_front_doors(settings: Settings, backends: Backends, listener: socket.socket) -> None:
    """One of `up`'s API processes: the HTTP API and web app on the listener `up` bound, the gRPC
    TicketService on settings.grpc_port (shared with the other API processes: SO_REUSEPORT)."""
    from boxoffice.app import create_app
    from boxoffice.runtime import open_runtime

    async with open_runtime(settings, backends.database_url, backends.redis_url) as runtime:
        await runtime.warm_up(settings.db_pool_size)
        api = create_app(settings, runtime=runtime)
        # Without the `grpc` extra, `up` serves HTTP alone (its banner says so).
        grpc_server = (await start_grpc(runtime, settings))[0] if grpc_installed() else None
        try:  # uvicorn stops on SIGINT/SIGTERM (open requests get 5 s)
            await uvicorn.Server(server_config(settings, api, lifespan="off")).serve(sockets=[listener])
        finally:
            if grpc_server is not None:
                await grpc_server.stop(2)


def free_grpc_port(settings: Settings) -> int:
    """The gRPC port the API processes will share, checked here so that a port in use is one line
    from `up` rather than API processes dying at start; 0 picks a free one."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.grpc_port))
        except OSError as exc:
            if not grpc_installed():  # nothing will listen there
                return settings.grpc_port
            from boxoffice.grpc.server import bind_error

            raise UserError(str(bind_error(settings.host, settings.grpc_port))) from exc
        return int(probe.getsockname()[1])


def server_alive(server: EmbeddedPostgres | EmbeddedRedis) -> bool:
    return server.proc is not None and server.proc.poll() is None


def grpc_installed() -> bool:
    """Is the `grpc` extra installed (grpcio and its health/reflection/status packages)?"""
    import importlib.util

    needed = ("grpc", "grpc_health", "grpc_reflection", "grpc_status", "google.protobuf")
    try:
        return all(importlib.util.find_spec(name) is not None for name in needed)
    except ModuleNotFoundError:  # a parent package (google) is missing
        return False


GRPC_MISSING = "gRPC is not installed: pip install 'boxoffice[grpc]'"


async def start_grpc(runtime: Any, settings: Settings) -> tuple[Any, int]:
    if not grpc_installed():
        raise UserError(GRPC_MISSING)
    from boxoffice.grpc.server import BindError, start_server

    try:
        return await start_server(runtime, settings.host, settings.grpc_port)
    except BindError as exc:
        raise UserError(str(exc)) from exc


def admin_password_shown_once(settings: Settings) -> str:
    """A generated admin password is printed at the first start only; a configured one never."""
    from boxoffice.config import first_time, secret

    if Settings().admin_password is not None:  # configured by the operator
        return "(BOXOFFICE_ADMIN_PASSWORD)"
    if first_time(settings.data_dir, "admin-password-shown"):
        return f"{secret(settings.admin_password)}   (generated; shown once, kept in secrets.json)"
    return f"(generated at the first start; in {settings.data_dir / 'secrets.json'})"


def mode_line(settings: Settings) -> str:
    """What BOXOFFICE_ENVIRONMENT means for this run, in one line."""
    if settings.environment == "prod":
        return "prod: a real sale (no free top-ups, no demo fan; fans pay by card)"
    return (
        f"{settings.environment}: for trying it out (free balance top-ups and the demo fan); "
        "BOXOFFICE_ENVIRONMENT=prod for a real sale"
    )


def print_banner(settings: Settings, backends: Backends, summary: object, grpc_port: int) -> None:
    base = f"http://{settings.host}:{settings.port}"
    pg = f"embedded, {settings.data_dir}" if backends.postgres else "configured URL"
    rd = f"embedded, {settings.data_dir}" if backends.redis else "configured URL"
    lines = [
        "[bold green]Boxoffice is up[/]",
        f"  Web app        {base}/        (fans: concerts, waiting room, seat map, checkout)",
        f"  Console        {base}/admin   (promoters: venues, shows, live sale dashboard)",
        f"  Admin login    {settings.admin_email} / {admin_password_shown_once(settings)}",
    ]
    if settings.demo_fan:
        lines.append(
            f"  Demo fan       {settings.demo_fan_email} / {settings.demo_fan_password.get_secret_value()}"
        )
    lines += [
        f"  API            {base}/api   (docs {base}/docs, OpenAPI {base}/openapi.json)",
        f"  gRPC           {settings.host}:{grpc_port}   (boxoffice.v1.TicketService, health, reflection)"
        if grpc_installed()
        else f"  gRPC           off: {GRPC_MISSING}",
        f"  Health         {base}/healthz  {base}/readyz  {base}/metrics",
        f"  PostgreSQL     {pg}",
        f"  Redis          {rd}",
    ]
    lines.append(f"  Mode           {mode_line(settings)}")
    if summary:
        lines.append(f"  Demo data      {summary}")
    lines.append("  Ctrl-C stops everything.")
    console.print("\n".join(lines), highlight=False)


async def serve_grpc(settings: Settings, backends: Backends) -> None:
    from boxoffice.runtime import open_runtime

    stop = stop_event()
    async with open_runtime(settings, backends.database_url, backends.redis_url) as runtime:
        await runtime.warm_up(min(8, settings.db_pool_size))
        server, port = await start_grpc(runtime, settings)
        serve_own_metrics(runtime, settings)
        heap.settle()
        console.print(f"gRPC TicketService on {settings.host}:{port}   Ctrl-C stops it.", highlight=False)
        try:
            await stop.wait()
        finally:
            await server.stop(3)  # open streams get 3 s, then are cancelled


async def run_worker(settings: Settings, backends: Backends) -> None:
    from boxoffice.runtime import open_runtime
    from boxoffice.worker import run_worker

    stop = stop_event()
    async with open_runtime(settings, backends.database_url, backends.redis_url) as runtime:
        serve_own_metrics(runtime, settings)
        heap.settle()
        await run_worker(runtime, stop, selected_jobs(settings))


def serve_own_metrics(runtime: Any, settings: Settings) -> None:
    """/metrics on BOXOFFICE_METRICS_PORT for a process without an HTTP port (worker, grpc)."""
    if settings.metrics_port is None:
        return
    from boxoffice.observability import serve_metrics

    try:
        serve_metrics(runtime.metrics, settings.host, settings.metrics_port)
    except OSError as exc:
        raise UserError(
            f"cannot serve metrics on {settings.host}:{settings.metrics_port} (BOXOFFICE_METRICS_PORT): "
            f"{exc.strerror or exc}"
        ) from exc


def selected_jobs(settings: Settings) -> list[Any] | None:
    from boxoffice.worker import all_jobs

    if not settings.job_list:
        return None
    known = {job.name: job for job in all_jobs(settings)}
    unknown = [name for name in settings.job_list if name not in known]
    if unknown:
        raise UserError(f"unknown job {unknown[0]!r}; jobs: {', '.join(known)}")
    return [known[name] for name in settings.job_list]


async def seed(settings: Settings, backends: Backends) -> object:
    from boxoffice.ops.demo import seed_demo
    from boxoffice.runtime import open_runtime

    async with open_runtime(settings, backends.database_url, backends.redis_url) as runtime:
        return await seed_demo(runtime)
