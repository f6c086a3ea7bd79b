"""The gateway's handshake and framing rules, over real sockets."""

from __future__ import annotations

import asyncio
import http.client
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from gateway import BusFull, GatewayConfig, GatewayServer
from ocppgw import EmbeddedSystem, run_embedded
from ocppgw.cli import main
from ocppj import ChargePointAccess

from ..conftest import _EPOCH, REGISTERED, dev_settings, url


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    def get() -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    return await asyncio.to_thread(get)


async def test_health_answers_200_with_json(system: EmbeddedSystem, connect: Any) -> None:
    status, body = await http_get(system.port, "/health")
    assert status == 200
    assert orjson.loads(body) == {"status": "ok", "connections": 0, "bus": "up"}
    async with connect("/CP001", "ocpp1.6"):
        status, body = await http_get(system.port, "/health")
        assert orjson.loads(body)["connections"] == 1


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/UNKNOWN", "unknown charge point"),
        ("/ocpp/UNKNOWN", "unknown charge point"),
        ("/", "identity is empty"),
        ("/" + "x" * 49, "longer than 48"),
        ("/bad%3Aid", "contains ':'"),
        ("/bad%FFid", "percent-encoded UTF-8"),
        ("/a%2Fb", "contains '/'"),
    ],
)
async def test_unknown_or_malformed_identity_gets_404_before_upgrade(
    system: EmbeddedSystem, path: str, reason: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url(system, path), subprotocols=["ocpp1.6"]):
            pass
    assert refused.value.response.status_code == 404
    assert reason in refused.value.response.body.decode()


@pytest.mark.parametrize(
    ("path", "identity"),
    [("/RDAM%20123", "RDAM 123"), ("/plus+id", "plus+id"), ("/ocpp/plus%2Bid", "plus+id")],
)
async def test_percent_encoded_identity_is_decoded(
    system: EmbeddedSystem, connect: Any, path: str, identity: str
) -> None:
    async with connect(path, "ocpp1.6") as charger:
        boot = await charger.call(
            "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
        )
        assert boot[2]["status"] == "Accepted"
    shadow = await system.shadows.get(identity)
    assert shadow is not None
    assert shadow["state"]["reported"]["chargingStation"]["vendorName"] == "V"


async def test_subprotocol_is_the_first_acceptable_offer(connect: Any) -> None:
    async with connect("/CP001", "ocpp2.1", "ocpp1.6", "ocpp2.0.1") as charger:
        assert charger.ws.subprotocol == "ocpp1.6"


async def test_no_acceptable_subprotocol_completes_handshake_then_closes(
    system: EmbeddedSystem,
) -> None:
    async with websockets.connect(url(system, "/CP001"), subprotocols=["ocpp2.1"]) as ws:
        # The handshake succeeded without a Sec-WebSocket-Protocol header...
        assert ws.subprotocol is None
        assert "Sec-WebSocket-Protocol" not in ws.response.headers
        # ...and the server closes at once.
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1002
    assert "ocpp1.6" in (ws.close_reason or "")


async def test_no_offer_is_refused_unless_a_default_is_configured(
    system: EmbeddedSystem, data_dir: Path, tmp_path: Path
) -> None:
    async with websockets.connect(url(system, "/CP001")) as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1002

    settings = dev_settings(tmp_path / "other", OCPP_DEFAULT_PROTOCOL="ocpp1.6")
    async with run_embedded(settings) as other:
        other.registry.add(["CP001"], _EPOCH)
        address = f"ws://127.0.0.1:{other.port}/CP001"
        async with websockets.connect(address) as ws:
            assert ws.subprotocol is None
            await ws.send(orjson.dumps([2, "1", "Heartbeat", {}]).decode())
            assert orjson.loads(await ws.recv())[0] == 3


async def test_only_enabled_protocols_are_served(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, OCPP_PROTOCOLS="ocpp2.0.1")
    async with run_embedded(settings) as only_201:
        only_201.registry.add(["CP001"], _EPOCH)
        address = f"ws://127.0.0.1:{only_201.port}/CP001"
        async with websockets.connect(address, subprotocols=["ocpp1.6", "ocpp2.0.1"]) as ws:
            assert ws.subprotocol == "ocpp2.0.1"


async def test_a_charger_registered_while_running_connects_at_once(
    system: EmbeddedSystem, data_dir: Path
) -> None:

    address = url(system, "/LATE-1")
    with pytest.raises(InvalidStatus):
        async with websockets.connect(address, subprotocols=["ocpp1.6"]):
            pass
    # Another process's view: the CLI opens the same state folder itself.
    exit_code = await asyncio.to_thread(
        main, ["charge-points", "add", "--data-dir", str(data_dir), "LATE-1"], {}
    )
    assert exit_code == 0
    async with websockets.connect(address, subprotocols=["ocpp1.6"]) as ws:
        assert ws.subprotocol == "ocpp1.6"


async def test_fragmented_message_is_reassembled(connect: Any) -> None:
    async with connect("/CP001", "ocpp1.6") as charger:
        frame = orjson.dumps([2, "frag", "Heartbeat", {}]).decode()
        await charger.ws.send(iter([frame[:5], frame[5:12], frame[12:]]))
        answer = orjson.loads(await charger.ws.recv())
        assert answer[:2] == [3, "frag"]


async def test_binary_frames_are_refused_with_1003(connect: Any) -> None:
    async with connect("/CP001", "ocpp1.6") as charger:
        await charger.ws.send(b'[2,"1","Heartbeat",{}]')
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(charger.ws.recv(), 5)
        assert charger.ws.close_code == 1003


async def test_oversized_message_is_refused_with_1009(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, OCPP_MAX_MESSAGE_SIZE="2048")
    async with run_embedded(settings) as small:
        small.registry.add(["CP001"], _EPOCH)
        address = f"ws://127.0.0.1:{small.port}/CP001"
        async with websockets.connect(address, subprotocols=["ocpp1.6"]) as ws:
            big = orjson.dumps([2, "big", "DataTransfer", {"vendorId": "v", "data": "x" * 4096}])
            await ws.send(big.decode())
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1009


async def test_a_second_connection_replaces_the_first(connect: Any, system: EmbeddedSystem) -> None:
    async with connect("/CP001", "ocpp1.6") as first, connect("/CP001", "ocpp1.6") as second:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(first.ws.recv(), 5)
        assert first.ws.close_code == 1008
        heartbeat = await second.call("Heartbeat", {})
        assert heartbeat[0] == 3
        _status, body = await http_get(system.port, "/health")
        assert orjson.loads(body)["connections"] == 1


async def test_shutdown_closes_chargers_with_going_away(tmp_path: Path) -> None:
    async with run_embedded(dev_settings(tmp_path)) as running:
        running.registry.add(REGISTERED, _EPOCH)
        ws = await websockets.connect(
            f"ws://127.0.0.1:{running.port}/CP001",
            subprotocols=["ocpp1.6"],
        )
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1001


class FullBus:
    """A bus that has no room, as a real one has when its consumer stalls."""

    saturated = False
    healthy = True
    pending = 0

    async def start(self, deliver: object, on_drained: object) -> None:
        pass

    def publish(self, charge_point_id: str, subprotocol: str, frame: bytes) -> None:
        raise BusFull("no room")

    def announce(self, charge_point_id: str, subprotocol: str, connected: bool) -> None:
        pass

    async def close(self, timeout: float) -> None:
        pass


async def find_cp001(charge_point_id: str) -> ChargePointAccess | None:
    return ChargePointAccess(charge_point_id, None) if charge_point_id == "CP001" else None


async def test_a_call_the_bus_cannot_take_is_answered_not_lost() -> None:
    gateway = GatewayServer(GatewayConfig(host="127.0.0.1", port=0), find_cp001, FullBus())
    await gateway.start()
    try:
        address = f"ws://127.0.0.1:{gateway.port}/CP001"
        async with websockets.connect(address, subprotocols=["ocpp1.6"]) as ws:
            await ws.send(orjson.dumps([2, "busy", "Heartbeat", {}]).decode())
            answer = orjson.loads(await ws.recv())
            assert answer[:3] == [4, "busy", "GenericError"]
            assert "retry" in answer[3]
    finally:
        await gateway.shutdown()
