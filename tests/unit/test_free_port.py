"""`kit.net.free_port`: a port no outgoing connection can take while the child starts."""

from __future__ import annotations

import socket

from boxoffice.kit import net


def test_ports_come_from_below_the_ephemeral_range_and_never_twice() -> None:
    low = net._ephemeral_low()
    ports = [net.free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert all(net.LOW <= port < min(net.HIGH, low) for port in ports), ports
    for port in ports[:20]:  # and they are free to listen on
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_port_another_program_listens_on_counts_as_taken() -> None:
    port = net.free_port()
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        assert not net._bindable("127.0.0.1", port)
    assert net._bindable("127.0.0.1", port)


def test_an_outgoing_connection_cannot_take_the_port_meanwhile() -> None:
    """Why the range matters: the kernel gives outgoing connections ports from the ephemeral
    range only."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        clients = [socket.create_connection(server.getsockname()) for _ in range(50)]
        try:
            local_ports = {c.getsockname()[1] for c in clients}
        finally:
            for c in clients:
                c.close()
    assert min(local_ports) >= net._ephemeral_low() >= net.HIGH
