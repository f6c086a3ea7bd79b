"""Fixtures of the MQTT bus tests: a private Mosquitto per test, and a backend.

Every test gets its own broker on a free loopback port (``tests/mosquitto.py``,
started and stopped here, so a test may stop and restart it) and its own
topic prefix. Without a Mosquitto executable the tests are skipped, saying so
(the ``mosquitto_binary`` fixture of ``tests/conftest.py``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .support import Backend, Broker

_prefixes = itertools.count(1)


@pytest.fixture
async def broker(mosquitto_binary: str, tmp_path: Path) -> AsyncIterator[Broker]:
    running = Broker(mosquitto_binary, tmp_path / "broker")
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test's own."""
    return f"t{os.getpid()}x{next(_prefixes)}"


_backends = itertools.count(1)


@pytest.fixture
async def backend(broker: Broker) -> AsyncIterator[Backend]:
    client = Backend(f"backend-{os.getpid()}-{next(_backends)}")
    await client.connect(broker)
    try:
        yield client
    finally:
        await client.close()
