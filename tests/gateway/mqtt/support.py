"""What the MQTT bus tests share: a private Mosquitto, a backend client, waits.

The "backend" is a second, independent gmqtt client that sees what the
gateway publishes and publishes downlinks, as the processor would. Like the
processor it reads batches (``ocppj.batch``): subscribing to a prefix's
uplinks or presence subscribes to its uplink batches too, and each item of a
batch is recorded as if it had come alone (``Received.batched`` says it did
not), so a relay test holds whatever company the frames travelled in.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gmqtt

from gateway.mqtt_bus import MqttBus
from gateway.mqtt_settings import MqttSettings
from ocppj import PRESENCE, Downlink, decode_uplink_batch, presence_topic, uplink_topic

from ...mosquitto import Mosquitto, free_port

__all__ = [
    "WAIT",
    "Backend",
    "Broker",
    "Delivered",
    "Proxy",
    "Received",
    "eventually",
    "free_port",
    "running",
    "settings",
]

#: Every wait in these tests ends within this many seconds.
WAIT = 10.0


async def eventually(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {condition}")
        await asyncio.sleep(0.01)


class Broker:
    """A private Mosquitto whose persistent sessions survive a restart, driven
    from the event loop: ``await start()``, ``await stop()``, ``await start()``
    again on the same port, while the bus under test keeps running."""

    def __init__(self, executable: str, folder: Path, extra: str = "") -> None:
        self.mosquitto = Mosquitto(folder, persistence=True, extra=extra, binary=executable)

    @property
    def port(self) -> int:
        return self.mosquitto.port

    @property
    def url(self) -> str:
        return self.mosquitto.url

    async def start(self) -> None:
        await asyncio.to_thread(self.mosquitto.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self.mosquitto.stop)


def settings(broker: Broker, prefix: str, **overrides: Any) -> MqttSettings:
    """Settings of a bus on ``broker`` that reconnects fast enough for a test."""
    values: dict[str, Any] = {
        "url": broker.url,
        "gateway_id": "gw-test",
        "prefix": prefix,
        "connect_timeout": 2.0,
        "reconnect_initial": 0.05,
        "reconnect_max": 0.4,
        **overrides,
    }
    return MqttSettings(**values)


@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    at: float
    #: The route's batch topic it arrived on, "" if it came alone.
    batched: str = ""


class Backend:
    """A second MQTT client: what the processor would see and send."""

    def __init__(self, client_id: str) -> None:
        # A persistent session: what the gateway publishes while the backend
        # reconnects (say, after a broker restart) waits for it.
        self.client = gmqtt.Client(client_id, clean_session=False, session_expiry_interval=3600)
        self.client.set_config({"reconnect_retries": -1, "reconnect_delay": 0.1})
        self.client.on_message = self._on_message
        self.received: list[Received] = []
        #: Uplink batch publishes, as they arrived.
        self.batches: list[Received] = []
        #: Prefix -> what its batches are read for ("in", "presence").
        self._batch_prefixes: dict[str, set[str]] = {}
        self._subscribed: dict[int, asyncio.Future[None]] = {}
        self.client.on_subscribe = self._on_subscribe

    async def connect(self, broker: Broker) -> None:
        await self.client.connect("127.0.0.1", broker.port, keepalive=10)

    async def subscribe(self, topic_filter: str, batches: bool = True) -> None:
        for suffix, what in (("/in/+/+/+", "in"), ("/presence/+", "presence")):
            prefix = topic_filter.removesuffix(suffix)
            if batches and prefix != topic_filter and "+" not in prefix and "#" not in prefix:
                first = prefix not in self._batch_prefixes
                self._batch_prefixes.setdefault(prefix, set()).add(what)
                if first:
                    await self._subscribe(f"{prefix}/batch/in/+")
        await self._subscribe(topic_filter)

    async def _subscribe(self, topic_filter: str) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._subscribed[self.client.subscribe(topic_filter, qos=1)] = waiter
        await asyncio.wait_for(waiter, WAIT)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1)

    def on(self, topic_filter: Callable[[str], bool]) -> list[Received]:
        return [r for r in self.received if topic_filter(r.topic)]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.disconnect(), 2)

    def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, props: Any) -> int:
        retain = bool(props.get("retain"))
        received = Received(topic, payload, qos, retain, time.monotonic())
        prefix, _, route = topic.rpartition("/batch/in/")
        if prefix in self._batch_prefixes and route and "/" not in route:
            self.batches.append(received)
            self._split(prefix, route, received)
        else:
            self.received.append(received)
        return 0

    def _split(self, prefix: str, route: str, batch: Received) -> None:
        wanted = self._batch_prefixes[prefix]
        items, skipped = decode_uplink_batch(batch.payload)
        assert not skipped, f"the gateway sent a batch with bad items: {skipped}"
        for item in items:
            if item.kind == PRESENCE:
                if "presence" not in wanted:
                    continue
                topic = presence_topic(prefix, item.charge_point_id)
            else:
                if "in" not in wanted:
                    continue
                topic = uplink_topic(prefix, item.charge_point_id, item.kind, route)
            self.received.append(
                Received(topic, item.payload, batch.qos, False, batch.at, batch.topic)
            )

    def _on_subscribe(self, client: Any, mid: int, qos: Any, props: Any) -> None:
        waiter = self._subscribed.pop(mid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Delivered:
    """The gateway's side of downlinks: records ``deliver(cp, downlink)``
    (the frames, and the downlinks as the bus described them)."""

    def __init__(self, connected: bool = True) -> None:
        self.frames: list[tuple[str, bytes]] = []
        self.downlinks: list[tuple[str, Downlink]] = []
        self.connected = connected
        self.drained = 0

    def __call__(self, charge_point_id: str, downlink: Downlink) -> bool:
        self.frames.append((charge_point_id, downlink.frame))
        self.downlinks.append((charge_point_id, downlink))
        return self.connected

    def on_drained(self) -> None:
        self.drained += 1


@contextlib.asynccontextmanager
async def running(bus: MqttBus, delivered: Delivered | None = None) -> AsyncIterator[Delivered]:
    """Start ``bus``; close it (briefly) at the end, whatever happens."""
    delivered = delivered or Delivered()
    await bus.start(delivered, delivered.on_drained)
    try:
        yield delivered
    finally:
        await bus.close(timeout=2)


class Proxy:
    """A TCP relay between the bus and a broker that a test can disturb as a
    network would: ``hold`` stops what the broker sends (PUBACKs included)
    from reaching the client, ``refuse`` drops new connections at once (the
    broker looks unreachable), ``cut`` drops every relayed connection."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.hold = False
        self.refuse = False
        self.port = 0

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self._broker.port
            )
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        tasks = [
            asyncio.create_task(self._pipe(reader, upstream_writer, held=False)),
            asyncio.create_task(self._pipe(upstream_reader, writer, held=True)),
        ]
        self._tasks.update(tasks)
        for task in tasks:
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, held: bool
    ) -> None:
        withheld = b""
        try:
            while data := await reader.read(65536):
                if held and self.hold:
                    withheld += data
                    continue
                writer.write(withheld + data)
                withheld = b""
        except OSError:
            pass
        finally:
            writer.transport.abort()
