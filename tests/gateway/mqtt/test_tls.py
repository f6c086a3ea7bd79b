"""Mutual TLS to a broker, as to AWS IoT Core: ``ssl_context_from_pem`` end to end."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from gateway.mqtt_bus import MqttBus
from gateway.mqtt_settings import ssl_context_from_pem
from ocppj import uplink_subscription

from .support import Backend, Broker, eventually, free_port, running, settings


class TlsBroker(Broker):
    """A Mosquitto with a plain listener (for the backend) and a TLS one
    that requires a client certificate from ``ca``."""

    def __init__(self, executable: str, folder: Path, ca: trustme.CA) -> None:
        self.tls_port = free_port()
        ca.cert_pem.write_to_path(str(folder / "ca.pem"))
        server = ca.issue_cert("127.0.0.1")
        server.cert_chain_pems[0].write_to_path(str(folder / "server.pem"))
        server.private_key_pem.write_to_path(str(folder / "server.key"))
        extra = "\n".join(
            [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {folder / 'ca.pem'}",
                f"certfile {folder / 'server.pem'}",
                f"keyfile {folder / 'server.key'}",
                "require_certificate true",
                "tls_version tlsv1.2",
                "",
            ]
        )
        super().__init__(executable, folder, extra)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_broker(
    mosquitto_binary: str, tmp_path: Path, ca: trustme.CA
) -> AsyncIterator[TlsBroker]:
    running_broker = TlsBroker(mosquitto_binary, tmp_path, ca)
    await running_broker.start()
    try:
        yield running_broker
    finally:
        await running_broker.stop()


async def test_the_bus_connects_with_its_client_certificate(
    tls_broker: TlsBroker, ca: trustme.CA, prefix: str
) -> None:
    backend = Backend("tls-backend")
    await backend.connect(tls_broker)
    try:
        await backend.subscribe(uplink_subscription(prefix))
        issued = ca.issue_cert("gw-test")
        context = ssl_context_from_pem(
            ca.cert_pem.bytes().decode(),
            issued.cert_chain_pems[0].bytes().decode(),
            issued.private_key_pem.bytes().decode(),
        )
        url = f"mqtts://127.0.0.1:{tls_broker.tls_port}"
        bus = MqttBus(settings(tls_broker, prefix, url=url, ssl_context=context))
        async with running(bus):
            assert bus.healthy
            bus.publish("CP001", "ocpp1.6", b'[2,"1","Heartbeat",{}]')
            await eventually(lambda: len(backend.received) == 1)
        assert backend.received[0].payload == b'[2,"1","Heartbeat",{}]'
    finally:
        await backend.close()


async def test_without_a_client_certificate_the_bus_stays_down(
    tls_broker: TlsBroker, ca: trustme.CA, prefix: str
) -> None:
    context = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
    url = f"mqtts://127.0.0.1:{tls_broker.tls_port}"
    bus = MqttBus(settings(tls_broker, prefix, url=url, ssl_context=context, connect_timeout=0.5))
    async with running(bus):
        assert not bus.healthy
