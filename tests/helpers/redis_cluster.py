"""A local Redis Cluster on loopback for the tests (started from the system's or the wheel's redis-server)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boxoffice.ops.backends.process import BackendError, _stop, ensure_writable
from boxoffice.ops.backends.redis import redis_server_binary


def _port_pair_free(port: int) -> bool:
    """A cluster node needs its port and port + 10000 (the cluster bus)."""
    for candidate in (port, port + 10000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                return False
    return True


def free_cluster_ports(count: int, start: int = 21000, stop: int = 29000) -> list[int]:
    import random

    ports: list[int] = []
    for port in random.sample(range(start, stop), stop - start):
        if _port_pair_free(port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise BackendError(f"no {count} free port pairs for a Redis Cluster between {start} and {stop}")


@dataclass
class LocalRedisCluster:
    """A Redis Cluster on loopback: `masters` masters with `replicas` replicas each, started from
    the redis-server binary (tests, `bench` side by side runs). Slots are split evenly; the node
    timeout is short so a killed master's replica is promoted within a few seconds."""

    data_dir: Path
    masters: int = 3
    replicas: int = 0
    ports: list[int] = field(default_factory=list)
    node_timeout_ms: int = 2000
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self, timeout: float = 30) -> None:
        total = self.masters * (1 + self.replicas)
        if not self.ports:
            self.ports = free_cluster_ports(total)
        try:
            for port in self.ports:
                self._start_node(port)
            for port in self.ports:
                _wait_for_port(port, self.procs[port], timeout, self._node_dir(port) / "redis.log")
            self._form(timeout)
        except BaseException:
            self.stop()
            raise

    def _node_dir(self, port: int) -> Path:
        return self.data_dir / f"redis-cluster-{port}"

    def _start_node(self, port: int) -> None:
        node_dir = self._node_dir(port)
        ensure_writable(node_dir)
        for stale in ("nodes.conf", "dump.rdb"):
            (node_dir / stale).unlink(missing_ok=True)
        self.procs[port] = subprocess.Popen(
            [
                str(redis_server_binary()),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                "--cluster-replica-validity-factor",
                "0",  # a replica may always take over (tests kill masters on purpose)
                "--dir",
                str(node_dir),
                "--logfile",
                str(node_dir / "redis.log"),
                "--appendonly",
                "no",
                "--save",
                "",
                "--maxclients",
                "10000",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _form(self, timeout: float) -> None:
        import redis

        clients: dict[int, Any] = {
            p: redis.Redis(host="127.0.0.1", port=p, socket_timeout=5) for p in self.ports
        }
        try:
            masters = self.ports[: self.masters]
            per = 16384 // self.masters
            for i, port in enumerate(masters):
                end = 16383 if i == self.masters - 1 else (i + 1) * per - 1
                clients[port].execute_command("CLUSTER ADDSLOTS", *range(i * per, end + 1))
            for port in self.ports[1:]:
                clients[port].execute_command("CLUSTER MEET", "127.0.0.1", self.ports[0])
            ids = {port: clients[port].execute_command("CLUSTER MYID").decode() for port in masters}
            deadline = time.monotonic() + timeout
            replicas = self.ports[self.masters :]
            for n, port in enumerate(replicas):
                master = masters[n % self.masters]
                while True:  # the replica must have heard of its master through the gossip first
                    try:
                        clients[port].execute_command("CLUSTER REPLICATE", ids[master])
                        break
                    except redis.ResponseError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
            while not all(self._ready(c) for c in clients.values()):
                if time.monotonic() > deadline:
                    raise BackendError(f"Redis Cluster on ports {self.ports} did not become ready")
                time.sleep(0.1)
        finally:
            for client in clients.values():
                client.close()

    def _ready(self, client: Any) -> bool:
        info = client.execute_command("CLUSTER INFO")  # parsed by redis-py into a dict
        if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != len(self.ports):
            return False
        nodes = client.execute_command("CLUSTER NODES").values()
        return sum(1 for node in nodes if "slave" in node["flags"]) == self.masters * self.replicas

    def master_of(self, key: str) -> int:
        """The port of the master that owns this key's slot now."""
        import redis
        from redis.crc import key_slot

        slot = key_slot(key.encode())
        for port in self.live_ports():
            try:
                with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as client:
                    for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
                        if int(start) <= slot <= int(end):
                            return int(master[1])
            except redis.RedisError:
                continue
        raise BackendError(f"no node of the cluster knows slot {slot}")

    def live_ports(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def kill(self, port: int) -> None:
        """kill -9 one node (the failover test)."""
        proc = self.procs[port]
        proc.kill()
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            _stop(proc, signal.SIGTERM, timeout=10)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BackendError(f"redis-server on port {port} exited with code {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise BackendError(f"timed out after {timeout:.0f}s waiting for redis-server on port {port}; see {log}")
