"""What a server that was never started says when it is asked what only a
started one knows: a clear error, even under ``python -O``."""

from __future__ import annotations

import pytest

from gateway import GatewayConfig, GatewayServer, InProcessBus
from gateway.backpressure import Backpressure
from gateway.connection_table import ConnectionTable
from gateway.metrics import GatewayMetrics
from gateway.relay import Relay


async def _find_nobody(charge_point_id: str) -> None:
    return None


def _unstarted() -> GatewayServer:
    async def handle(cp: str, protocol: str, frame: bytes) -> bytes | None:
        return None

    return GatewayServer(
        GatewayConfig(host="127.0.0.1", port=0), _find_nobody, InProcessBus(handle)
    )


def test_the_port_of_an_unstarted_gateway_is_an_error_naming_start() -> None:
    with pytest.raises(RuntimeError, match=r"before start\(\)"):
        _ = _unstarted().port


def test_the_loop_time_of_an_unstarted_relay_is_an_error_naming_start() -> None:
    async def handle(cp: str, protocol: str, frame: bytes) -> bytes | None:
        return None

    bus = InProcessBus(handle)
    table: ConnectionTable = ConnectionTable()  # type: ignore[type-arg]
    relay = Relay(
        GatewayConfig(host="127.0.0.1", port=0),
        bus,
        table,
        Backpressure(table, bus),
        GatewayMetrics(),
    )
    with pytest.raises(RuntimeError, match=r"before start\(\)"):
        relay.loop_time()
