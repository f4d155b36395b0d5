"""A TCP port for a child process to listen on.

The child binds the port a moment (an interpreter start) after it is chosen here, so the port
must stay free meanwhile. `bind(("127.0.0.1", 0))` answers from the kernel's ephemeral range,
the same range every outgoing connection takes its local port from: while the child starts,
any connection to PostgreSQL or Redis may take the port and the child fails with "already in
use" (it did, in CI). So the port comes from below that range, where only explicit listeners
live, and the ports this process has handed out are never handed out twice.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Below Linux's default ephemeral range (32768-60999), and clear of the test Redis Cluster's
# nodes (21000-29000) and their buses (+10000).
LOW, HIGH = 11000, 21000

_handed_out: set[int] = set()  # per process: two children never get the same port


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:  # no SO_REUSEADDR: a port in TIME_WAIT counts as taken
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    high = min(HIGH, _ephemeral_low())
    for port in random.sample(range(LOW, high), min(200, max(high - LOW, 0))):
        if port not in _handed_out and _bindable(host, port):
            _handed_out.add(port)
            return port
    with socket.socket() as s:  # an unusual ephemeral range: fall back to the kernel's choice
        s.bind((host, 0))
        port = int(s.getsockname()[1])
    _handed_out.add(port)
    return port
