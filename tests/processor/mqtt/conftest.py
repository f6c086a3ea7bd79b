"""A private Mosquitto per test, and gateways made of real MQTT sessions.

Each test starts its own broker on a free loopback port (``tests/mosquitto.py``:
``mosquitto -c`` with a config written to the test's tmp folder) and uses a
topic prefix of its own. Tests are skipped when the Mosquitto binary is not
installed. Every wait is bounded: a test fails with a message rather than hang.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from mqttio import BrokerAddress, Session, Subscription
from ocppgw.worker import WorkerSettings
from ocppj import (
    decode_downlink_batch,
    downlink_batch_subscription,
    downlink_subscription,
    encode_batch,
    encode_uplink_item,
    parse_downlink,
    presence_topic,
    uplink_batch_topic,
    uplink_topic,
)
from processor.clock import rfc3339

from ...mosquitto import Mosquitto, free_port

__all__ = [
    "WAIT",
    "Broker",
    "FakeGateway",
    "eventually",
    "free_port",
    "now_text",
    "worker_settings",
]

#: Bound on every wait of these tests (seconds).
WAIT = 10.0

#: The shared private broker of ``tests/mosquitto.py``, by the name these tests know.
Broker = Mosquitto


@pytest.fixture
def broker(mosquitto: Mosquitto) -> Mosquitto:
    """This test's own running Mosquitto (the ``mosquitto`` fixture of ``tests/conftest.py``)."""
    return mosquitto


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def worker_settings(broker: Broker, data_dir: Path, prefix: str, **environ: str) -> WorkerSettings:
    """Worker settings for tests: this broker and prefix, API on a free port, short timeouts."""
    env = {
        "MQTT_URL": broker.url,
        "OCPP_TOPIC_PREFIX": prefix,
        "OCPP_DATA_DIR": str(data_dir),
        "OCPP_MANAGEMENT_PORT": "0",
        "OCPP_CALL_TIMEOUT": "5",
        **environ,
    }
    return WorkerSettings.from_env(env)


def now_text(offset: float = 0.0) -> str:
    return rfc3339(datetime.fromtimestamp(time.time() + offset, UTC))


class FakeGateway:
    """One pooled gateway connection: publishes uplinks and presence, reads its
    route. Like the gateway it reads downlink batches, recording each frame as
    if it had come alone (``batches`` counts the batch publishes)."""

    def __init__(self, broker: Broker, prefix: str, route: str = "gw-test.1") -> None:
        self.prefix = prefix
        self.route = route
        self._address = BrokerAddress.parse(broker.url)
        self._session = Session(f"gw-{uuid.uuid4().hex[:12]}", on_message=self._received)
        self.received: asyncio.Queue[tuple[str, list[Any]]] = asyncio.Queue()
        self.batches = 0
        self.alone = 0

    async def __aenter__(self) -> FakeGateway:
        await self._session.start(
            self._address,
            subscriptions=[
                Subscription(downlink_subscription(self.prefix, self.route)),
                Subscription(downlink_batch_subscription(self.prefix, self.route)),
            ],
            timeout=WAIT,
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._session.close()

    def _received(self, topic: str | bytes, payload: bytes, qos: int) -> int:
        assert isinstance(topic, str), topic
        if topic == downlink_batch_subscription(self.prefix, self.route):
            items, skipped = decode_downlink_batch(payload)
            assert not skipped, skipped
            self.batches += 1
            for item in items:
                self.received.put_nowait((item.charge_point_id, orjson.loads(item.payload)))
            return 0
        route, charge_point_id = parse_downlink(topic, self.prefix)
        assert route == self.route, topic
        self.alone += 1
        self.received.put_nowait((charge_point_id, orjson.loads(payload)))
        return 0

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """QoS 1, waiting for room in the broker's in-flight window."""
        deadline = time.monotonic() + WAIT
        while not self._session.publish(topic, payload, retain=retain):
            assert time.monotonic() < deadline, "broker never acknowledged our publishes"
            await asyncio.sleep(0.005)

    async def send_batch(self, items: list[tuple[str, str, Any]]) -> None:
        """(charge point, protocol or "presence", frame or presence) in one publish."""
        parts = [
            encode_uplink_item(cp, kind, body if isinstance(body, bytes) else orjson.dumps(body))
            for cp, kind, body in items
        ]
        await self.publish(uplink_batch_topic(self.prefix, self.route), encode_batch(parts))

    async def send(self, charge_point_id: str, protocol: str, frame: Any) -> None:
        raw = frame if isinstance(frame, bytes) else orjson.dumps(frame)
        await self.publish(uplink_topic(self.prefix, charge_point_id, protocol, self.route), raw)

    async def presence(
        self,
        charge_point_id: str,
        connected: bool,
        *,
        protocol: str = "ocpp1.6",
        at: str | None = None,
        route: str | None = None,
        retain: bool = False,
    ) -> None:
        message = {
            "connected": connected,
            "route": route or self.route,
            "protocol": protocol,
            "at": at or now_text(),
        }
        topic = presence_topic(self.prefix, charge_point_id)
        await self.publish(topic, orjson.dumps(message), retain=retain)

    async def receive(self, timeout: float = WAIT) -> tuple[str, list[Any]]:
        """The next (charge point, frame) published to this route."""
        try:
            return await asyncio.wait_for(self.received.get(), timeout)
        except TimeoutError:
            pytest.fail(f"nothing arrived on route {self.route} within {timeout:g} s")

    async def receive_many(self, count: int, timeout: float = WAIT) -> list[tuple[str, list[Any]]]:
        deadline = time.monotonic() + timeout
        return [await self.receive(max(0.0, deadline - time.monotonic())) for _ in range(count)]

    async def silence(self, seconds: float) -> list[tuple[str, list[Any]]]:
        """What arrives within ``seconds`` (to check that nothing more does)."""
        await asyncio.sleep(seconds)
        extra = []
        while not self.received.empty():
            extra.append(self.received.get_nowait())
        return extra


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = WAIT, what: str = "condition"
) -> None:
    """Poll ``check`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not hold within {timeout:g} s")
        await asyncio.sleep(0.02)
