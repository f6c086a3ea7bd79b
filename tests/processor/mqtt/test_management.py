"""Remote commands through a worker's management API (HTTP), over a real broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from ocppgw.worker import WorkerSystem, run_worker
from processor import Processor, ProcessorConfig, Services, build_router
from processor.adapters import (
    Database,
    SqlitePendingCalls,
    SqliteShadowStore,
    SqliteTransactions,
    StaticIdTokens,
)
from processor.adapters.memory import MemoryOutbound
from processor.clock import SystemClock
from processor.ids import RandomIds

from .conftest import WAIT, Broker, FakeGateway, eventually, worker_settings

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def system(broker: Broker, prefix: str, tmp_path: Path) -> AsyncIterator[WorkerSystem]:
    async with run_worker(worker_settings(broker, tmp_path / "state", prefix)) as running:
        await running.worker.wait_subscribed(WAIT)
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as session:
        yield session


async def post(
    http: aiohttp.ClientSession, system: WorkerSystem, path: str, body: Any
) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{system.management_port}{path}"
    async with http.post(url, data=orjson.dumps(body)) as response:
        return response.status, orjson.loads(await response.read())


async def online(system: WorkerSystem, cp: str, gateway: FakeGateway, protocol: str) -> None:
    """Announce ``cp`` on the gateway's route and wait until the worker knows it."""
    await gateway.presence(cp, True, protocol=protocol)

    async def known() -> bool:
        return await system.services.outbound.subprotocol(cp) == protocol

    await eventually(known, what=f"{cp} online")


async def test_remote_start_reaches_the_route_of_the_presence_record_and_waits_for_the_answer(
    system: WorkerSystem, broker: Broker, prefix: str, http: aiohttp.ClientSession
) -> None:
    system.registry.add(["CP001"], EPOCH)
    async with (
        FakeGateway(broker, prefix, route="gw-x.4") as gateway,
        FakeGateway(broker, prefix, route="gw-y.1") as elsewhere,
    ):
        await online(system, "CP001", gateway, "ocpp1.6")
        request = asyncio.create_task(
            post(http, system, "/remote-start", {"chargePointId": "CP001", "idTag": "TAG-1"})
        )
        charge_point_id, call = await gateway.receive()
        assert charge_point_id == "CP001"
        assert call[0] == 2
        assert call[2:] == ["RemoteStartTransaction", {"idTag": "TAG-1"}]

        await gateway.send("CP001", "ocpp1.6", [3, call[1], {"status": "Accepted"}])
        status, body = await asyncio.wait_for(request, WAIT)
        assert await elsewhere.silence(0.0) == []

    assert status == 200, body
    assert body == {
        "outcome": "Accepted",
        "messageId": call[1],
        "action": "RemoteStartTransaction",
        "response": {"status": "Accepted"},
    }
    shadow = await system.shadows.get("CP001")
    assert shadow is not None
    assert shadow["state"]["reported"]["lastCallResult"]["messageId"] == call[1]


async def test_remote_start_in_201_to_an_identity_with_mqtt_characters(
    system: WorkerSystem, broker: Broker, prefix: str, http: aiohttp.ClientSession
) -> None:
    identity = "RDAM #1+2 x"
    system.registry.add([identity], EPOCH)
    async with FakeGateway(broker, prefix) as gateway:
        await online(system, identity, gateway, "ocpp2.0.1")
        request = asyncio.create_task(
            post(
                http,
                system,
                "/remote-start",
                {"chargePointId": identity, "idTag": "TAG-2", "connectorId": 1},
            )
        )
        charge_point_id, call = await gateway.receive()
        assert charge_point_id == identity
        assert call[2] == "RequestStartTransaction"
        assert call[3]["idToken"] == {"idToken": "TAG-2", "type": "ISO14443"}
        assert call[3]["evseId"] == 1
        await gateway.send(identity, "ocpp2.0.1", [3, call[1], {"status": "Rejected"}])
        status, body = await asyncio.wait_for(request, WAIT)
    assert (status, body["outcome"]) == (200, "Rejected")


async def test_an_offline_charger_gets_409(
    system: WorkerSystem, broker: Broker, prefix: str, http: aiohttp.ClientSession
) -> None:
    system.registry.add(["CP-OFF"], EPOCH)
    command = {"chargePointId": "CP-OFF", "idTag": "TAG"}
    status, body = await post(http, system, "/remote-start", command)
    assert (status, body["outcome"]) == (409, "offline")

    async with FakeGateway(broker, prefix) as gateway:
        await online(system, "CP-OFF", gateway, "ocpp1.6")
        await gateway.presence("CP-OFF", False)

        async def offline() -> bool:
            return await system.services.outbound.subprotocol("CP-OFF") is None

        await eventually(offline, what="CP-OFF offline")
        status, body = await post(http, system, "/remote-stop", {**command, "transactionId": 7})
        assert (status, body["outcome"]) == (409, "offline")
        assert await gateway.silence(0.1) == []


async def test_the_charge_point_list_shows_who_is_connected(
    system: WorkerSystem, broker: Broker, prefix: str, http: aiohttp.ClientSession
) -> None:
    system.registry.add(["CP-A", "CP-B"], EPOCH)
    async with FakeGateway(broker, prefix) as gateway:
        await online(system, "CP-A", gateway, "ocpp1.6")
        url = f"http://127.0.0.1:{system.management_port}/charge-points"
        async with http.get(url) as response:
            listing = orjson.loads(await response.read())
    connected = {entry["chargePointId"]: entry["connected"] for entry in listing["chargePoints"]}
    assert connected == {"CP-A": True, "CP-B": False}


async def test_an_answer_matched_by_another_worker_still_answers_the_waiting_request(
    system: WorkerSystem,
    broker: Broker,
    prefix: str,
    http: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    """The charger's answer goes to another worker of the group: this worker's
    API finds it in the shared shadow (lastCallResult)."""
    system.registry.add(["CP001"], EPOCH)
    # "Another worker": a processor on its own handle of the same data folder.
    database = Database(tmp_path / "state")
    clock = SystemClock()
    other = Processor(
        build_router(),
        Services(
            config=ProcessorConfig(),
            shadows=SqliteShadowStore(database, clock),
            clock=clock,
            ids=RandomIds(),
            id_tokens=StaticIdTokens(None),
            transactions=SqliteTransactions(database),
            pending=SqlitePendingCalls(database),
            outbound=MemoryOutbound(),
        ),
    )
    try:
        async with FakeGateway(broker, prefix) as gateway:
            await online(system, "CP001", gateway, "ocpp1.6")
            request = asyncio.create_task(
                post(http, system, "/remote-start", {"chargePointId": "CP001", "idTag": "T"})
            )
            _, call = await gateway.receive()
            answer = orjson.dumps([3, call[1], {"status": "Accepted"}])
            assert await other.handle("CP001", "ocpp1.6", answer) is None
            status, body = await asyncio.wait_for(request, WAIT)
    finally:
        database.close()
    assert (status, body["outcome"], body["messageId"]) == (200, "Accepted", call[1])


async def test_commands_through_one_worker_of_a_group_of_two(
    broker: Broker, prefix: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Answers are spread over both workers by the broker; every request gets its own."""
    settings = worker_settings(broker, tmp_path / "state", prefix)
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(run_worker(settings))
        second = await stack.enter_async_context(run_worker(settings))
        await first.worker.wait_subscribed(WAIT)
        await second.worker.wait_subscribed(WAIT)
        first.registry.add(["CP001"], EPOCH)
        gateway = await stack.enter_async_context(FakeGateway(broker, prefix))
        await online(first, "CP001", gateway, "ocpp1.6")
        for n in range(6):
            request = asyncio.create_task(
                post(http, first, "/remote-start", {"chargePointId": "CP001", "idTag": f"T{n}"})
            )
            _, call = await gateway.receive()
            assert call[3] == {"idTag": f"T{n}"}
            await gateway.send("CP001", "ocpp1.6", [3, call[1], {"status": "Accepted"}])
            status, body = await asyncio.wait_for(request, WAIT)
            assert (status, body["outcome"], body["messageId"]) == (200, "Accepted", call[1])
        handled = first.worker.stats.frames + second.worker.stats.frames
        assert handled == 6
