"""The stack under test: started here (backends, `boxoffice serve --workers W`, `boxoffice worker`)
or an existing one named by --target. Everything started here is stopped on the way out, always
(Ctrl-C and SIGTERM included): the servers run in their own sessions and are stopped in order.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from boxoffice.config import Settings, secret
from boxoffice.kit.net import free_port
from boxoffice.ops.backends.datadir import Backends, start_backends


@dataclass
class Stack:
    base_url: str
    database_url: str
    redis_url: str
    settings: Settings
    # Process groups whose CPU the report shows (empty for a remote --target).
    cpu_groups: dict[str, list[int]] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)
    started_here: bool = False
    # host:port of the gRPC TicketService (None: not part of this stack).
    grpc_target: str | None = None
    # The API processes whose memory the report shows.
    api_pids: list[int] = field(default_factory=list)
    # Where /metrics is scraped (empty: base_url). It is open to direct loopback clients only, so
    # behind the gateway each tier is asked directly.
    metrics_urls: list[str] = field(default_factory=list)


# `--layout tiers`: the waiting room in its own process, everything a buyer touches in another,
# the shipped nginx gateway in front routing by path (what deploy/ describes for N hosts).
TIERS = {"api-queue": "queue", "api-buyers": "booking,payments,catalog,auth,admin,web"}


def _wait_healthy(
    base_url: str, procs: dict[str, subprocess.Popen[bytes]], logs: list[Path], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for (name, proc), log in zip(procs.items(), logs, strict=True):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"boxoffice {name} exited with {proc.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the API did not become ready at {base_url} within {timeout:.0f}s")


def _wait_serving(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Until `boxoffice grpc` says it serves (it prints that once bound and started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if proc.poll() is not None:
            raise RuntimeError(f"boxoffice grpc exited with {proc.returncode}:\n{text[-2000:]}")
        if "TicketService on" in text:
            return
        time.sleep(0.1)
    raise RuntimeError(f"boxoffice grpc did not start within {timeout:.0f}s (see {log})")


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the uvicorn workers go too
        proc.wait(5)


@contextlib.contextmanager
def local_stack(
    settings: Settings,
    *,
    api_workers: int,
    data_dir: Path | None,
    log_dir: Path,
    server_log_level: str = "WARNING",
    extra_env: dict[str, str] | None = None,
    grpc: bool = False,
    layout: str = "shared",
    queue_nice: int = 0,
) -> Iterator[Stack]:
    """Backends (embedded unless URLs are configured), migrations, API processes and one worker
    (and one `boxoffice grpc` process when `grpc`). `layout` "shared": `api_workers` processes
    serve every route; "tiers": see TIERS."""
    from boxoffice.db.migrate import upgrade
    from boxoffice.ops.gateway import RolesStack

    if layout not in ("shared", "tiers"):
        raise ValueError(f"unknown layout {layout!r} (shared or tiers)")
    if layout == "tiers" and grpc:
        raise ValueError("the tiers layout has no gRPC server: use --layout shared with --via grpc")

    temp_dir = None
    if data_dir is None:
        temp_dir = Path(tempfile.mkdtemp(prefix="bo-bench-"))
        data_dir = temp_dir
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    backends: Backends | None = None
    procs: list[subprocess.Popen[bytes]] = []
    tiers: RolesStack | None = None
    try:
        backends = start_backends(data_dir, settings.database_url, settings.redis_url, persist_redis=False)
        upgrade(backends.database_url)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "BOXOFFICE_DATABASE_URL": backends.database_url,
            "BOXOFFICE_REDIS_URL": backends.redis_url,
            "BOXOFFICE_DATA_DIR": str(data_dir),
            "BOXOFFICE_HOST": "127.0.0.1",
            "BOXOFFICE_PORT": str(port),
            "BOXOFFICE_JWT_SECRET": secret(settings.jwt_secret),
            "BOXOFFICE_QUEUE_TOKEN_SECRET": secret(settings.queue_token_secret),
            "BOXOFFICE_LOG_LEVEL": server_log_level,
            **(extra_env or {}),
        }
        if layout == "tiers":
            tiers = RolesStack(
                log_dir / "tiers",
                env,
                listen_port=port,
                roles=list(TIERS.values()),
                grpc=False,
                per_address_limits=False,  # the bench's fans all come from 127.0.0.1
                nice={TIERS["api-queue"]: queue_nice},
            )
            tiers.start()
            pids = {name: tiers.groups[roles].proc.pid for name, roles in TIERS.items()}
            yield Stack(
                base_url=base_url,
                database_url=backends.database_url,
                redis_url=backends.redis_url,
                settings=_configured(settings, backends, data_dir),
                cpu_groups={
                    **{name: [pid] for name, pid in pids.items()},
                    "worker": [tiers.groups["worker"].proc.pid],
                    "nginx": [tiers.nginx.pid] if tiers.nginx else [],
                    **_backend_groups(backends),
                },
                logs=sorted((log_dir / "tiers").glob("*.log")),
                started_here=True,
                api_pids=list(pids.values()),
                metrics_urls=[f"http://127.0.0.1:{tiers.groups[roles].port}" for roles in TIERS.values()],
            )
            return
        logs = [log_dir / "api.log", log_dir / "worker.log"]
        commands = [
            [
                sys.executable,
                "-m",
                "boxoffice.cli",
                "serve",
                "--workers",
                str(api_workers),
                "--port",
                str(port),
            ],
            [sys.executable, "-m", "boxoffice.cli", "worker"],
        ]
        for command, log in zip(commands, logs, strict=True):
            with open(log, "wb") as out:
                procs.append(
                    subprocess.Popen(
                        command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        _wait_healthy(base_url, {"serve": procs[0], "worker": procs[1]}, logs, timeout=90)
        groups: dict[str, list[int]] = {"api": [procs[0].pid], "worker": [procs[1].pid]}
        grpc_target = None
        if grpc:
            # As many `boxoffice grpc` processes as API workers, on one port (SO_REUSEPORT), so
            # the two doors are compared on the same number of processes.
            grpc_port = free_port()
            for n in range(api_workers):
                logs.append(log_dir / f"grpc-{n}.log")
                with open(logs[-1], "wb") as out:
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "boxoffice.cli", "grpc", "--port", str(grpc_port)],
                            env=env,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
                _wait_serving(procs[-1], logs[-1], timeout=60)
            groups["grpc"] = [p.pid for p in procs[2:]]
            grpc_target = f"127.0.0.1:{grpc_port}"
        groups.update(_backend_groups(backends))
        yield Stack(
            base_url=base_url,
            database_url=backends.database_url,
            redis_url=backends.redis_url,
            settings=_configured(settings, backends, data_dir),
            cpu_groups=groups,
            logs=logs,
            started_here=True,
            grpc_target=grpc_target,
            api_pids=[procs[0].pid],
        )
    finally:
        # Stop in order, whatever happened: API and worker first, then the backends under them.
        for proc in procs:
            _terminate(proc)
        if tiers is not None:
            tiers.stop()
        if backends is not None:
            backends.stop()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _configured(settings: Settings, backends: Backends, data_dir: Path) -> Settings:
    return settings.model_copy(
        update={"database_url": backends.database_url, "redis_url": backends.redis_url, "data_dir": data_dir}
    )


def _backend_groups(backends: Backends) -> dict[str, list[int]]:
    groups = {}
    if backends.postgres is not None and backends.postgres.proc is not None:
        groups["postgres"] = [backends.postgres.proc.pid]
    if backends.redis is not None and backends.redis.proc is not None:
        groups["redis"] = [backends.redis.proc.pid]
    return groups


@contextlib.contextmanager
def remote_stack(settings: Settings, target: str, grpc_target: str | None = None) -> Iterator[Stack]:
    """An already running deployment: setup and audit still need its database and Redis URLs."""
    if settings.database_url is None or settings.redis_url is None:
        raise RuntimeError(
            "--target needs BOXOFFICE_DATABASE_URL and BOXOFFICE_REDIS_URL of that deployment "
            "(for the setup and the audit) and its BOXOFFICE_JWT_SECRET / BOXOFFICE_QUEUE_TOKEN_SECRET"
        )
    yield Stack(
        base_url=target.rstrip("/"),
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        settings=settings,
        grpc_target=grpc_target,
    )
