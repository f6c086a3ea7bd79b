"""Presence: parsing, the ordering rules, the ledgers, and end to end through a broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ocppgw.mqtt_worker import MqttWorker
from ocppgw.mqtt_worker_config import WorkerConfig
from ocppgw.worker import WorkerSystem, run_worker
from processor.adapters import Database, SqliteShadowStore
from processor.adapters.memory import MemoryShadowStore
from processor.clock import SystemClock
from processor.presence import Presence, ShadowPresenceLedger, presence_applies

from .conftest import WAIT, Broker, FakeGateway, eventually, worker_settings

T1 = "2026-05-01T10:00:00.000Z"
T2 = "2026-05-01T10:00:01.000Z"
T3 = "2026-05-01T10:00:02.000Z"


def presence(connected: bool, route: str, at: str, protocol: str = "ocpp1.6") -> Presence:
    return Presence(connected, route, protocol, at)


def record(connected: bool, route: str, since: str, protocol: str = "ocpp1.6") -> dict[str, Any]:
    return {"connected": connected, "route": route, "protocol": protocol, "since": since}


# -- parsing --------------------------------------------------------------------------


def test_presence_is_parsed_from_the_gateways_json() -> None:
    payload = orjson.dumps(
        {"connected": True, "route": "gw-1.2", "protocol": "ocpp2.0.1", "at": T1}
    )
    parsed = Presence.from_payload(payload)
    assert parsed == Presence(True, "gw-1.2", "ocpp2.0.1", T1)
    assert parsed.record() == record(True, "gw-1.2", T1, "ocpp2.0.1")


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ([], "not a JSON object"),
        ({"connected": 1, "route": "r", "protocol": "ocpp1.6", "at": T1}, "connected"),
        ({"connected": True, "route": "", "protocol": "ocpp1.6", "at": T1}, "route"),
        ({"connected": True, "route": "r", "protocol": "mqtt", "at": T1}, "protocol"),
        ({"connected": True, "route": "r", "protocol": "ocpp1.6", "at": 17}, "at"),
        ({"connected": True, "route": "r", "protocol": "ocpp1.6", "at": "yesterday"}, "at"),
        ({"connected": True, "route": "r", "protocol": "ocpp1.6", "at": "2026-05-01T10:00"}, "at"),
    ],
)
def test_malformed_presence_is_refused_naming_the_field(message: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Presence.from_payload(orjson.dumps(message))


def test_not_json_is_refused() -> None:
    with pytest.raises(ValueError):
        Presence.from_payload(b"{nope")


# -- the rules -------------------------------------------------------------------------


def test_a_first_presence_is_recorded() -> None:
    assert presence_applies(presence(True, "A", T1), None)
    assert presence_applies(presence(False, "A", T1), None)
    assert presence_applies(presence(True, "A", T1), {"since": "garbage"})


def test_an_older_presence_is_ignored() -> None:
    assert not presence_applies(presence(True, "A", T1), record(True, "A", T2))
    assert not presence_applies(presence(False, "A", T1), record(True, "A", T2))
    assert not presence_applies(presence(True, "B", T1), record(False, "A", T2))


def test_a_newer_presence_replaces_the_record() -> None:
    assert presence_applies(presence(False, "A", T2), record(True, "A", T1))
    assert presence_applies(presence(True, "B", T2), record(True, "A", T1))
    assert presence_applies(presence(True, "A", T3), record(False, "A", T2))


def test_a_disconnect_of_another_route_never_replaces_a_connect() -> None:
    # Route A noticed its dead connection after the charger was back on B.
    assert not presence_applies(presence(False, "A", T3), record(True, "B", T2))
    # ... but it does replace a disconnect record.
    assert presence_applies(presence(False, "A", T3), record(False, "B", T2))


def test_a_redelivered_presence_changes_nothing() -> None:
    assert not presence_applies(presence(True, "A", T1), record(True, "A", T1))


def test_times_compare_as_instants_whatever_their_zone() -> None:
    later_in_paris = "2026-05-01T12:00:01+02:00"  # 10:00:01Z
    assert presence_applies(presence(True, "B", later_in_paris), record(True, "A", T1))
    assert not presence_applies(
        presence(True, "B", "2026-05-01T11:59:59+02:00"), record(True, "A", T1)
    )


# -- ledgers --------------------------------------------------------------------------


async def test_shadow_ledger_writes_the_connection_record() -> None:
    shadows = MemoryShadowStore(SystemClock())
    ledger = ShadowPresenceLedger(shadows)
    assert await ledger.record("CP1", presence(True, "A", T2))
    assert not await ledger.record("CP1", presence(False, "A", T1))
    shadow = await shadows.get("CP1")
    assert shadow is not None
    assert shadow["state"]["reported"]["connection"] == record(True, "A", T2)


async def test_the_ledger_over_sqlite_decides_and_writes_atomically_across_processes(
    tmp_path: Path,
) -> None:
    """Two workers (two database handles on one folder) record two connects at once:
    the newer always wins, whichever transaction runs first."""
    clock = SystemClock()
    first, second = Database(tmp_path), Database(tmp_path)
    try:
        shadows = SqliteShadowStore(first, clock)
        ledgers = (
            ShadowPresenceLedger(shadows),
            ShadowPresenceLedger(SqliteShadowStore(second, clock)),
        )
        for n in range(30):
            cp = f"CP{n}"
            await ledgers[0].record(cp, presence(True, "A", T1))
            older, newer = presence(True, "B", T2), presence(True, "C", T3)
            pair = (older, newer) if n % 2 else (newer, older)
            await asyncio.gather(ledgers[0].record(cp, pair[0]), ledgers[1].record(cp, pair[1]))
            shadow = await shadows.get(cp)
            assert shadow is not None
            assert shadow["state"]["reported"]["connection"] == record(True, "C", T3), n
    finally:
        first.close()
        second.close()


async def test_the_ledger_over_sqlite_keeps_the_rest_of_the_shadow(tmp_path: Path) -> None:
    clock = SystemClock()
    database = Database(tmp_path)
    try:
        shadows = SqliteShadowStore(database, clock)
        await shadows.update("CP1", {"reported": {"ocppVersion": "1.6"}})
        assert await ShadowPresenceLedger(shadows).record("CP1", presence(True, "A", T1))
        shadow = await shadows.get("CP1")
        assert shadow is not None
        assert shadow["version"] == 2
        assert shadow["state"]["reported"] == {
            "ocppVersion": "1.6",
            "connection": record(True, "A", T1),
        }
    finally:
        database.close()


# -- through the broker ------------------------------------------------------------------


@pytest.fixture
async def system(broker: Broker, prefix: str, tmp_path: Path) -> AsyncIterator[WorkerSystem]:
    async with run_worker(worker_settings(broker, tmp_path / "state", prefix)) as running:
        await running.worker.wait_subscribed(WAIT)
        yield running


async def connection_of(system: WorkerSystem, cp: str) -> Any:
    shadow = await system.shadows.get(cp)
    return None if shadow is None else shadow["state"]["reported"].get("connection")


async def test_presence_updates_the_connection_record_and_older_presence_is_ignored(
    system: WorkerSystem, broker: Broker, prefix: str
) -> None:
    stats = system.worker.stats
    async with FakeGateway(broker, prefix, route="gw-b.1") as gateway:
        await gateway.presence("CP001", True, protocol="ocpp2.0.1", at=T2)

        async def recorded() -> bool:
            expected = record(True, "gw-b.1", T2, "ocpp2.0.1")
            return bool(await connection_of(system, "CP001") == expected)

        await eventually(recorded, what="the connect recorded")

        # Older than the record: ignored.
        await gateway.presence("CP001", False, at=T1)
        # Route A's late disconnect while the charger is connected on B: ignored.
        await gateway.presence("CP001", False, at=T3, route="gw-a.1")

        async def both_ignored() -> bool:
            return stats.presence_ignored == 2

        await eventually(both_ignored, what="two presences ignored")
        assert await recorded()

        # B's own disconnect ends the connection.
        await gateway.presence("CP001", False, at=T3, protocol="ocpp2.0.1")

        async def disconnected() -> bool:
            expected = record(False, "gw-b.1", T3, "ocpp2.0.1")
            return bool(await connection_of(system, "CP001") == expected)

        await eventually(disconnected, what="the disconnect recorded")
    assert stats.presence_recorded == 2


@pytest.mark.parametrize("replay", [False, True])
async def test_retained_presence_is_replayed_on_subscribing_only_when_asked(
    broker: Broker, prefix: str, tmp_path: Path, replay: bool
) -> None:
    """Gateways retain presence. By default a subscribing worker does not reread
    the fleet's (the shadow has it); ``replay_presence`` recovers it."""
    async with FakeGateway(broker, prefix, route="gw-r.1") as gateway:
        await gateway.presence("CP-RET", True, at=T1, retain=True)
        await asyncio.sleep(0.1)  # the broker holds it before any worker subscribes
        config = WorkerConfig(url=broker.url, replay_presence=replay)
        shadows = MemoryShadowStore(SystemClock())
        worker = MqttWorker(_NoFrames(), shadows, prefix, config)
        worker.start()
        try:
            await worker.wait_subscribed(WAIT)
            # A live presence of another charger: once it is recorded, anything
            # replayed before it has been handled too.
            await gateway.presence("CP-LIVE", True, at=T2)

            async def live_recorded() -> bool:
                return await shadows.get("CP-LIVE") is not None

            await eventually(live_recorded, what="the live presence recorded")
        finally:
            await worker.stop(WAIT)
    replayed = await shadows.get("CP-RET")
    if replay:
        assert replayed is not None
        assert replayed["state"]["reported"]["connection"] == record(True, "gw-r.1", T1)
    else:
        assert replayed is None


class _NoFrames:
    async def handle(self, charge_point_id: str, subprotocol: str, frame: bytes) -> bytes | None:
        raise AssertionError("no frame expected")
