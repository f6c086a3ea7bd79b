"""The connection table: one connection per charge point, the newest wins.

The rule on its own with plain members, then over real sockets: the
replaced connection is closed with 1008 and its late disconnect neither
removes its successor nor tells the bus that the charger left.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import websockets
from picows import WSCloseCode
from websockets.exceptions import ConnectionClosed

from gateway import GatewayConfig, GatewayServer
from gateway.connection_table import ConnectionTable
from ocppj import ChargePointAccess


class Member:
    """A connection as the table sees it; remembers how it was closed."""

    def __init__(self, charge_point_id: str, subprotocol: str = "ocpp1.6") -> None:
        self.charge_point_id = charge_point_id
        self.subprotocol = subprotocol
        self.closed: tuple[WSCloseCode, str] | None = None

    def close(self, code: WSCloseCode, reason: str) -> None:
        self.closed = (code, reason)


def test_a_newer_connection_replaces_and_closes_the_older() -> None:
    table: ConnectionTable[Member] = ConnectionTable()
    old, new = Member("CP1"), Member("CP1")
    assert table.add(old) is None
    assert table.add(new) is old
    assert old.closed == (WSCloseCode.POLICY_VIOLATION, "replaced by a newer connection")
    assert new.closed is None
    assert table.get("CP1") is new
    assert len(table) == 1


def test_the_replaced_connection_cannot_remove_its_successor() -> None:
    table: ConnectionTable[Member] = ConnectionTable()
    old, new = Member("CP1"), Member("CP1")
    table.add(old)
    table.add(new)
    assert table.remove(old) is False
    assert table.get("CP1") is new
    assert table.remove(new) is True
    assert table.get("CP1") is None
    assert table.remove(new) is False


def test_adding_the_same_connection_twice_closes_nothing() -> None:
    table: ConnectionTable[Member] = ConnectionTable()
    member = Member("CP1")
    table.add(member)
    assert table.add(member) is None
    assert member.closed is None


def test_counts_by_protocol_include_unused_ones_and_skip_others() -> None:
    table: ConnectionTable[Member] = ConnectionTable()
    for cp, protocol in [("A", "ocpp1.6"), ("B", "ocpp1.6"), ("C", "ocpp2.0.1"), ("D", "x")]:
        table.add(Member(cp, protocol))
    assert table.by_protocol(("ocpp1.6", "ocpp2.0.1", "ocpp2.1")) == {
        "ocpp1.6": 2,
        "ocpp2.0.1": 1,
        "ocpp2.1": 0,
    }
    assert table.subprotocol_of("C") == "ocpp2.0.1"
    assert table.subprotocol_of("nobody") is None


def test_iterating_is_a_snapshot_that_may_close_members() -> None:
    table: ConnectionTable[Member] = ConnectionTable()
    for cp in "ABC":
        table.add(Member(cp))
    for member in table:
        table.remove(member)
    assert len(table) == 0


class PresenceBus:
    """A bus with room for everything that records each presence message."""

    saturated = False
    healthy = True
    pending = 0

    def __init__(self) -> None:
        self.presence: list[tuple[str, bool]] = []

    async def start(self, deliver: object, on_drained: object) -> None:
        pass

    def publish(self, charge_point_id: str, subprotocol: str, frame: bytes) -> None:
        pass

    def announce(self, charge_point_id: str, subprotocol: str, connected: bool) -> None:
        self.presence.append((charge_point_id, connected))

    async def close(self, timeout: float) -> None:
        pass


async def find_any(charge_point_id: str) -> ChargePointAccess | None:
    return ChargePointAccess(charge_point_id, None)


async def test_a_replaced_connection_going_away_does_not_announce_the_charger_gone() -> None:
    bus = PresenceBus()
    gateway = GatewayServer(GatewayConfig(host="127.0.0.1", port=0), find_any, bus)
    await gateway.start()
    try:
        address = f"ws://127.0.0.1:{gateway.port}/CP1"
        offers: list[Any] = ["ocpp1.6"]
        async with (
            websockets.connect(address, subprotocols=offers) as first,
            websockets.connect(address, subprotocols=offers) as second,
        ):
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(first.recv(), 5)
            assert first.close_code == 1008
            # A round trip on the second: the first one's disconnect is
            # handled by now, and the second is still the charger's.
            await asyncio.wait_for(await second.ping(), 5)
            assert gateway.connection_count == 1
            assert gateway.subprotocol_of("CP1") == "ocpp1.6"
            assert bus.presence == [("CP1", True), ("CP1", True)]
            await second.send(orjson.dumps([2, "h", "Heartbeat", {}]).decode())
        for _ in range(100):  # bounded wait for the server to see the close
            if gateway.connection_count == 0:
                break
            await asyncio.sleep(0.01)
        assert gateway.connection_count == 0
        assert bus.presence == [("CP1", True), ("CP1", True), ("CP1", False)]
    finally:
        await gateway.shutdown()
