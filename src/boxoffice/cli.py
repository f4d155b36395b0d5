"""The `boxoffice` command. Thin: it builds Settings and calls the operator machinery in `ops/`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from boxoffice.bench.commands import bench_app
from boxoffice.config import Settings, environment_configured, with_secrets
from boxoffice.http.server import server_config
from boxoffice.ops.backends.datadir import (
    Backends,
)
from boxoffice.ops.backends.process import ensure_writable
from boxoffice.ops.run import UserError, bind, configure_logging, console, errors_as_one_line, run
from boxoffice.ops.up import (
    GRPC_MISSING,
    grpc_installed,
    run_everything,
    run_worker,
    running_backends,
    seed,
    selected_jobs,
    serve_grpc,
    up_roles,
)

app = typer.Typer(help="Boxoffice: flash-sale concert ticketing.", no_args_is_help=True, add_completion=False)
app.add_typer(bench_app, name="bench")


def _version(value: bool) -> None:
    if value:
        from boxoffice import __version__

        typer.echo(f"boxoffice {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    """Boxoffice: flash-sale concert ticketing."""


def _settings(**overrides: object) -> Settings:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except SettingsError as exc:  # a value the settings source could not even parse (bad JSON)
        raise UserError(f"invalid setting: {str(exc).splitlines()[0]}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(
            f"invalid setting BOXOFFICE_{'_'.join(map(str, first['loc'])).upper()}: {first['msg']}"
        ) from exc
    data_dir = settings.data_dir.expanduser().resolve()
    ensure_writable(data_dir)
    return with_secrets(settings.model_copy(update={"data_dir": data_dir}))


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops everything the same way Ctrl-C does


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
    with errors_as_one_line():
        # `up` is the one-command try-out: dev (free top-ups, the demo fan) unless the operator
        # chose BOXOFFICE_ENVIRONMENT; every other command defaults to prod.
        environment = None if environment_configured() else "dev"
        settings = _settings(host=host, port=port, data_dir=data_dir, environment=environment)
        # Child processes (workers, roles) rebuild Settings from the environment: the same mode.
        os.environ["BOXOFFICE_ENVIRONMENT"] = settings.environment
        configure_logging(settings)
        if roles:
            up_roles(settings)
            return
        listener = bind(settings.host, settings.port)
        with running_backends(settings, owner=True) as backends:
            run(run_everything(settings, backends, listener))


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
    with errors_as_one_line():
        settings = _settings(host=host, port=port, api_workers=workers, roles=role)
        _check_roles(settings)
        configure_logging(settings)
        listener = bind(settings.host, settings.port)
        with running_backends(settings, migrate=settings.migrate_on_start) as backends:
            # attaches to a running `up`'s backends
            _serve_api(settings, backends, listener, workers)


def _serve_api(settings: Settings, backends: Backends, listener: socket.socket, workers: int) -> None:
    # Child processes rebuild Settings from the environment: hand them the resolved URLs.
    os.environ["BOXOFFICE_DATABASE_URL"] = backends.database_url
    os.environ["BOXOFFICE_REDIS_URL"] = backends.redis_url
    os.environ["BOXOFFICE_DATA_DIR"] = str(settings.data_dir)
    os.environ["BOXOFFICE_ROLES"] = settings.roles
    if workers > 1:  # they share the port: one metrics directory, so any of them reports all
        from boxoffice.observability import reset_multiprocess_dir

        metrics_dir = settings.data_dir / "metrics" / f"serve-{settings.port}"
        reset_multiprocess_dir(metrics_dir)
        os.environ["BOXOFFICE_METRICS_DIR"] = str(metrics_dir)
    config = server_config(settings, "boxoffice.app:app_from_environment", factory=True, workers=workers)
    if workers == 1:
        run(uvicorn.Server(config).serve(sockets=[listener]))
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
    with errors_as_one_line():
        if not grpc_installed():
            raise UserError(GRPC_MISSING)
        settings = _settings(host=host, grpc_port=port)
        configure_logging(settings)
        with running_backends(settings, migrate=settings.migrate_on_start) as backends:
            # attaches to a running `up`'s backends
            run(serve_grpc(settings, backends))


@app.command()
def worker(
    jobs: Annotated[
        str | None, typer.Option(help="Comma-separated job names (default: all) (BOXOFFICE_JOBS)")
    ] = None,
) -> None:
    """Background jobs only: queue admission, hold expiry, inventory, payment reconciliation, event relay."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    with errors_as_one_line():
        settings = _settings(jobs=jobs)
        selected_jobs(settings)
        configure_logging(settings)
        with running_backends(settings, migrate=settings.migrate_on_start) as backends:
            run(run_worker(settings, backends))


@app.command()
def migrate(
    revision: Annotated[
        str | None,
        typer.Argument(help="Target revision (default: head); 'status' shows where the database is"),
    ] = None,
    down: Annotated[
        bool, typer.Option("--down", help="Downgrade to REVISION (required; 'base' drops every table)")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm a downgrade to base (drops all data)")] = False,
) -> None:
    """Apply database migrations (to head by default), revert them with --down REVISION, or show
    where the database is with `boxoffice migrate status`."""
    from boxoffice.db import migrate as migrations

    with errors_as_one_line():
        if revision == "status":
            if down:
                raise UserError("migrate status takes no --down")
            settings = _settings()
            with running_backends(settings, migrate=False) as backends:
                at = asyncio.run(migrations.current(backends.database_url))
            latest = migrations.head()
            for rev, doc in migrations.revisions():
                mark = "->" if rev == at else "  "
                console.print(f"{mark} {rev}  {doc}", highlight=False)
            state = "up to date" if at == latest else f"behind: head is {latest}"
            console.print(f"database at {at or 'nothing (never migrated)'}: {state}", highlight=False)
            return
        if down:
            if revision is None or revision == "head":
                raise UserError(
                    "migrate --down needs the revision to go down to (see 'boxoffice migrate status'); "
                    "'base' drops every table and needs --yes"
                )
            if revision == "base" and not yes:
                raise UserError("migrate --down base drops every table and all data: add --yes to confirm")
        target = revision or "head"
        known = {rev for rev, _ in migrations.revisions()} | {"head", "base"}
        if target not in known:
            raise UserError(f"unknown revision {target!r} (see 'boxoffice migrate status')")
        settings = _settings()
        with running_backends(settings, migrate=False) as backends:
            if down:
                migrations.downgrade(backends.database_url, target)
            else:
                migrations.upgrade(backends.database_url, target)
        console.print(f"migrated {'down to' if down else 'up to'} {target}", highlight=False)


@app.command("rotate-ticket-key")
def rotate_ticket_key() -> None:
    """A new Ed25519 key signs new tickets from now on; the old keys keep verifying the tickets they
    signed. Restart the API processes to pick it up. (With BOXOFFICE_TICKET_SIGNING_KEYS set, rotate
    there instead: put a new secret first.)"""
    from boxoffice.tickets.keys import rotate

    with errors_as_one_line():
        settings = _settings()
        if settings.ticket_signing_keys is not None:
            raise UserError("BOXOFFICE_TICKET_SIGNING_KEYS is set: put a new secret in front of it instead")
        console.print(f"ticket signing key {rotate(settings.data_dir)} signs from now on (restart the API)")


@app.command("seed-demo")
def seed_demo_command() -> None:
    """Create the demo data (admin, fan, venue, concerts, shows) unless it exists already."""
    with errors_as_one_line():
        settings = _settings()
        configure_logging(settings)
        with running_backends(settings) as backends:
            summary = run(seed(settings, backends))
        console.print(f"demo data: {summary}")


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

    with errors_as_one_line():
        if failure_rate + timeout_rate + lost_rate > 1:
            raise UserError("--failure-rate + --timeout-rate + --lost-rate must not exceed 1")
        settings = _settings(payment_provider_port=port)
        configure_logging(settings)
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
