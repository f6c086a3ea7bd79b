"""The default run's guard: no connection beyond loopback from the test process."""

from __future__ import annotations

import socket

import pytest

from .hermetic import NonLoopbackConnection


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        socket.create_connection(server.getsockname(), timeout=5).close()


def test_anything_else_is_refused_with_the_reason(pytestconfig: pytest.Config) -> None:
    if pytestconfig.getoption("--run-network"):
        pytest.skip("the guard is off when the network tests run")
    # 192.0.2.0/24 is TEST-NET-1: never routed, so nothing leaves even unguarded.
    with socket.socket() as sock, pytest.raises(NonLoopbackConnection, match="--run-network"):
        sock.settimeout(0.5)
        sock.connect(("192.0.2.1", 9))
