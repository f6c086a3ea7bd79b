"""Fixtures shared by the suite: the whole system on a free port, chargers, brokers.

Everything runs for real: the embedded system listens on 127.0.0.1 port 0,
its state is a SQLite file in the test's tmp folder, charge points are
`websockets` clients (a WebSocket implementation independent of picows), and
MQTT tests get a private Mosquitto (``tests/mosquitto.py``).

The default run needs no external service and opens no connection beyond
loopback. Tests that need the package index (building the Lambda package for
arm64 downloads its wheels from PyPI) carry ``@pytest.mark.network`` and are
skipped, saying so, unless pytest runs with ``--run-network``:
``.venv/bin/pytest --run-network -m network`` runs just those. Without the
flag, a connection beyond loopback from the test process fails the test
(``tests/hermetic.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvloop
import websockets
from websockets.asyncio.client import ClientConnection

from ocppgw import DevSettings, EmbeddedSystem, run_embedded

from . import hermetic
from . import mosquitto as _mosquitto

REGISTERED = ("CP001", "CP002", "RDAM 123", "plus+id")

_RUN_NETWORK = "--run-network"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        _RUN_NETWORK,
        action="store_true",
        help="also run the tests marked 'network' (they download from PyPI)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption(_RUN_NETWORK):
        hermetic.install(f"mark it @pytest.mark.network and run it with {_RUN_NETWORK}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the ``network`` tests unless asked for: the default run is hermetic."""
    if config.getoption(_RUN_NETWORK):
        return
    skip = pytest.mark.skip(
        reason=f"needs the package index (PyPI); run with {_RUN_NETWORK} to include it"
    )
    for item in items:
        if item.get_closest_marker("network") is not None:
            item.add_marker(skip)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], Any]]:
    """Tests run on uvloop, as production does."""
    return {"uvloop": uvloop.new_event_loop}


def dev_settings(data_dir: Path, **environ: str) -> DevSettings:
    """Settings of the embedded default on a free loopback port."""
    env = {
        "OCPP_GATEWAY_HOST": "127.0.0.1",
        "OCPP_GATEWAY_PORT": "0",
        "OCPP_MANAGEMENT_PORT": "0",
        **environ,
    }
    env["OCPP_DATA_DIR"] = str(data_dir)
    return DevSettings.from_env(env)


@pytest.fixture
def mosquitto_binary() -> str:
    """The Mosquitto executable; the test is skipped, saying why, without one."""
    found = _mosquitto.executable()
    if found is None:
        pytest.skip(_mosquitto.MISSING)
    return found


@pytest.fixture
def mosquitto(mosquitto_binary: str, tmp_path: Path) -> Iterator[_mosquitto.Mosquitto]:
    """A private, running Mosquitto on a free loopback port (no persistence)."""
    with _mosquitto.Mosquitto(tmp_path / "mosquitto", binary=mosquitto_binary) as broker:
        yield broker


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
async def system(data_dir: Path) -> AsyncIterator[EmbeddedSystem]:
    async with run_embedded(dev_settings(data_dir)) as running:
        running.registry.add(REGISTERED, _EPOCH)
        yield running


class Charger:
    """A test charge point: sends CALLs and reads what comes back."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = (f"m{n}" for n in itertools.count(1))

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        """Send a CALL and return the answer, checking it answers this CALL."""
        message_id = next(self._ids)
        answer = await self.send_raw(orjson.dumps([2, message_id, action, payload]))
        assert answer[1] == message_id, answer
        return answer

    async def send_raw(self, frame: bytes | str) -> list[Any]:
        await self.ws.send(frame if isinstance(frame, str) else frame.decode())
        reply = await self.ws.recv()
        decoded: list[Any] = orjson.loads(reply)
        return decoded


def url(system: EmbeddedSystem, path: str) -> str:
    return f"ws://127.0.0.1:{system.port}{path}"


@pytest.fixture
def connect(system: EmbeddedSystem) -> Callable[..., Any]:
    """``async with connect("/CP001", "ocpp1.6") as charger``"""

    def open_charger(path: str, *subprotocols: str) -> _ChargerConnection:
        return _ChargerConnection(url(system, path), subprotocols)

    return open_charger


class _ChargerConnection:
    def __init__(self, address: str, subprotocols: tuple[str, ...]) -> None:
        self._connect = websockets.connect(
            address, subprotocols=[websockets.Subprotocol(s) for s in subprotocols] or None
        )

    async def __aenter__(self) -> Charger:
        return Charger(await self._connect.__aenter__())

    async def __aexit__(self, *exc: Any) -> None:
        await self._connect.__aexit__(*exc)


BOOT_V16 = {"chargePointVendor": "ACME Charging", "chargePointModel": "SmartCharger Pro"}
BOOT_V201 = {
    "reason": "PowerUp",
    "chargingStation": {
        "model": "SmartCharger Pro",
        "vendorName": "ACME Charging",
        "firmwareVersion": "v2.1.0",
        "serialNumber": "SC001234",
        "modem": {"iccid": "891004234814455936F", "imsi": "310410123456789"},
    },
}

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
