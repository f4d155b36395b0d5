"""The roles behind nginx on one machine (`boxoffice up --roles`, the gateway test).

Each role runs as its own process group (`boxoffice serve --role ROLE`), the background jobs in
another (`boxoffice worker`), the gRPC ticket server in another (`boxoffice grpc`), and the
system's nginx in front with the shipped deploy/nginx.conf, of which only the three lines marked
"local:" are rewritten (listen address, cache dir, upstreams).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from boxoffice.app import ROLES
from boxoffice.kit.net import free_port
from boxoffice.kit.shipped import shipped

SHIPPED_CONFIG = shipped("deploy") / "nginx.conf"
UPSTREAMS = {role: f"bo_{role}" for role in ROLES}


class GatewayError(RuntimeError):
    """Something the operator can fix (nginx missing, a role that does not start); one line."""


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if found is None:
        raise GatewayError("nginx is not installed (Debian: apt-get install -y nginx); --roles needs it")
    return found


def render_config(
    shipped: str, *, listen: str, cache_dir: Path, upstreams_file: Path, per_address_limits: bool = True
) -> str:
    """The shipped gateway with its "local:" lines pointed at this machine. Without
    `per_address_limits` (the bench: thousands of fans, all from 127.0.0.1) the per-address
    `limit_req` lines are left out."""
    out = []
    for line in shipped.splitlines():
        if not per_address_limits and line.strip().startswith("limit_req zone="):
            continue
        if "# local: listen" in line:
            line = f"    listen {listen};"
        elif "# local: cache" in line:
            line = line.replace("/var/cache/nginx/boxoffice", str(cache_dir)).split("  # local:")[0]
        elif "# local: upstreams" in line:
            line = f"include {upstreams_file};"
        out.append(line)
    rendered = "\n".join(out)
    if rendered.count(str(upstreams_file)) != 1 or str(cache_dir) not in rendered or listen not in rendered:
        raise GatewayError(f"{SHIPPED_CONFIG} lost one of its 'local:' lines")
    return rendered + "\n"


@dataclass
class RoleGroup:
    name: str
    port: int | None
    proc: subprocess.Popen[bytes]


AUTOGROUP_SWITCH = Path("/proc/sys/kernel/sched_autogroup_enabled")


def yield_cpu(pid: int, nice: int) -> None:
    """Lower a session leader's CPU priority, for it and the processes it starts. With the kernel's
    autogroups on (Linux's default outside a cgroup of its own: sched_autogroup_enabled=1), a
    process's own nice ranks it only against its own session, and a role process is a session of
    its own (start_new_session): the session's autogroup gets the nice too, or nothing changes.
    Raising a nice needs no privilege."""
    os.setpriority(os.PRIO_PROCESS, pid, nice)
    with contextlib.suppress(OSError):  # not Linux, or a kernel without autogroups
        if AUTOGROUP_SWITCH.read_text().strip() == "1":
            Path(f"/proc/{pid}/autogroup").write_text(str(nice))


@dataclass
class RolesStack:
    """Roles + worker + nginx. `env` carries the resolved backend URLs and secrets to children;
    the database is migrated already (the children do not migrate)."""

    run_dir: Path
    env: dict[str, str]
    listen_port: int
    host: str = "127.0.0.1"
    workers_per_role: int = 1
    # One process group per entry; an entry may name several roles ("booking,payments"): one
    # process serves them all and each of their upstreams points at it.
    roles: list[str] = field(default_factory=lambda: list(ROLES))
    grpc: bool = True
    per_address_limits: bool = True
    # Scheduling niceness per entry of `roles` (0: as started, see yield_cpu). A niced queue tier
    # yields the CPU to the buyers' processes and the databases whenever they have work.
    nice: dict[str, int] = field(default_factory=dict)
    groups: dict[str, RoleGroup] = field(default_factory=dict)
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.listen_port}"

    def start(self, timeout: float = 90) -> None:
        nginx = nginx_binary()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            for role in self.roles:
                port = free_port()
                self.groups[role] = RoleGroup(
                    role,
                    port,
                    self._spawn(
                        role,
                        [
                            "serve",
                            "--role",
                            role,
                            "--port",
                            str(port),
                            "--workers",
                            str(self.workers_per_role),
                        ],
                    ),
                )
            self.groups["worker"] = RoleGroup("worker", None, self._spawn("worker", ["worker"]))
            if self.grpc:  # the ticket server's role, on BOXOFFICE_GRPC_PORT (not behind nginx)
                self.groups["grpc"] = RoleGroup("grpc", None, self._spawn("grpc", ["grpc"]))
            deadline = time.monotonic() + timeout
            for group in self.groups.values():
                if group.port is not None:
                    self._wait_healthy(group, deadline)
            self.nginx = self._start_nginx(nginx, deadline)
        except BaseException:
            self.stop()
            raise

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self._log(name), "ab")  # handed to the child, closed here
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "boxoffice.cli", *args],
                env={**os.environ, "BOXOFFICE_MIGRATE_ON_START": "false", **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped (or killed) as one
            )
        finally:
            log.close()
        if self.nice.get(name):  # before it starts any worker process: they inherit it
            yield_cpu(proc.pid, self.nice[name])
        return proc

    def _log(self, name: str) -> Path:
        return self.run_dir / f"{name.replace(',', '+')}.log"

    def _wait_healthy(self, group: RoleGroup, deadline: float) -> None:
        url = f"http://127.0.0.1:{group.port}/healthz"
        while time.monotonic() < deadline:
            if group.proc.poll() is not None:
                log = self._log(group.name).read_text(errors="replace").strip().splitlines()
                raise GatewayError(
                    f"role {group.name} exited ({group.proc.returncode}): {log[-1] if log else ''}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise GatewayError(f"role {group.name} did not answer {url} in time; see {self._log(group.name)}")

    def _start_nginx(self, binary: str, deadline: float) -> subprocess.Popen[bytes]:
        upstreams = self.run_dir / "upstreams.conf"
        port_of = {
            role: group.port
            for group in self.groups.values()
            if group.port is not None
            for role in group.name.split(",")
        }
        upstreams.write_text(
            "".join(
                f"upstream {UPSTREAMS[role]} {{ server 127.0.0.1:{port_of[role]} max_fails=0;"
                " keepalive 64; }\n"
                for role in ROLES
                if role in port_of
            )
        )
        missing = [role for role in ROLES if role not in port_of]
        if missing:  # a role not started still needs its upstream name: point it at a closed port
            with upstreams.open("a") as f:
                for role in missing:
                    f.write(f"upstream {UPSTREAMS[role]} {{ server 127.0.0.1:9 down; }}\n")
        gateway = render_config(
            SHIPPED_CONFIG.read_text(),
            listen=f"{self.host}:{self.listen_port}",
            cache_dir=self.run_dir / "cache",
            upstreams_file=upstreams,
            per_address_limits=self.per_address_limits,
        )
        (self.run_dir / "boxoffice.conf").write_text(gateway)
        temp = self.run_dir / "nginx-temp"
        temp.mkdir(exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        main = (
            f"{user}worker_processes 1;\ndaemon off;\npid {self.run_dir / 'nginx.pid'};\n"
            f"error_log {self.run_dir / 'nginx-error.log'} warn;\n"
            "events { worker_connections 8192; }\n"
            "http {\n"
            f"  access_log off;\n  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n"
            f"  fastcgi_temp_path {temp}/fastcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n"
            f"  scgi_temp_path {temp}/scgi;\n"
            f"  include {self.run_dir / 'boxoffice.conf'};\n"
            "}\n"
        )
        (self.run_dir / "nginx.conf").write_text(main)
        log = open(self.run_dir / "nginx.log", "ab")  # handed to the child, closed here
        try:
            proc = subprocess.Popen(
                [binary, "-p", str(self.run_dir), "-c", str(self.run_dir / "nginx.conf")],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                error = (self.run_dir / "nginx-error.log").read_text(errors="replace").strip().splitlines()
                raise GatewayError(f"nginx exited: {error[-1] if error else 'see ' + str(self.run_dir)}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.url}/healthz", timeout=1)
                return proc
            time.sleep(0.1)
        raise GatewayError(f"nginx did not listen on {self.url} in time")

    def kill_group(self, name: str) -> None:
        """kill -9 every process of one role (the test: losing the queue tier)."""
        group = self.groups[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group.proc.pid, signal.SIGKILL)
        group.proc.wait(10)

    def stop(self) -> None:
        procs = [g.proc for g in self.groups.values()] + ([self.nginx] if self.nginx else [])
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
