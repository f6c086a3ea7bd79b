"""Fixtures of the MQTT bus tests: a private Mosquitto per test, and a backend.

Every test gets its own broker on a free loopback port (started and killed
here, so a test may stop and restart it) and its own topic prefix. Without a
Mosquitto executable the tests are skipped, saying so.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .support import Backend, Broker, mosquitto_executable

_prefixes = itertools.count(1)


@pytest.fixture
def mosquitto() -> str:
    executable = mosquitto_executable()
    if executable is None:
        pytest.skip("mosquitto is not installed (apt install mosquitto / brew install mosquitto)")
    return executable


@pytest.fixture
async def broker(mosquitto: str, tmp_path: Path) -> AsyncIterator[Broker]:
    running = Broker(mosquitto, tmp_path)
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
