"""The presence ledger over IoT shadows, against moto's IoT data plane: a write
conditional on the shadow version read (``IotShadowStore.update_if``), so that
two Lambda containers judging one charger at the same instant cannot leave a
stale record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from processor.adapters._presence import connection_record
from processor.adapters.iot_shadow import IotShadowStore, ShadowStoreError
from processor.adapters.thing_names import thing_name
from processor.presence import Presence, ShadowPresenceLedger, presence_applies


def presence(connected: bool, route: str, second: int) -> Presence:
    return Presence(connected, route, "ocpp2.0.1", f"2026-05-01T10:00:{second:02d}.000Z")


class Interleaving(IotShadowStore):
    """An IoT store that lets another container write between this one's read
    and its first write: the race, made deterministic."""

    def __init__(self, client: Any, meanwhile: Callable[[], Awaitable[object]]) -> None:
        super().__init__(client)
        self._meanwhile: Callable[[], Awaitable[object]] | None = meanwhile
        self.updates = 0

    async def update(
        self, thing: str, state: dict[str, Any], *, version: int | None = None
    ) -> None:
        self.updates += 1
        if self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            await meanwhile()
        await super().update(thing, state, version=version)


@pytest.fixture
def charger(iot: Any, unique: str) -> str:
    identity = f"{unique} CP"
    iot.create_thing(thingName=thing_name(identity))
    return identity


async def recorded(iot_data: Any, cp: str) -> Any:
    return connection_record(await IotShadowStore(iot_data).get(cp))


async def test_a_stale_disconnect_judged_at_the_same_instant_does_not_land(
    iot_data: Any, charger: str
) -> None:
    # The charger was on route A, and reconnected on B.
    other = ShadowPresenceLedger(IotShadowStore(iot_data))
    assert await other.record(charger, presence(True, "gw-a.0", 0))
    # Container 1 judges A's late disconnect against the record "connected on A";
    # before it writes, container 2 records the connect on B.
    store = Interleaving(iot_data, lambda: other.record(charger, presence(True, "gw-b.0", 2)))
    written = await ShadowPresenceLedger(store).record(charger, presence(False, "gw-a.0", 1))
    assert written is False  # read again, the disconnect no longer applies
    assert store.updates == 1
    record = await recorded(iot_data, charger)
    assert (record["connected"], record["route"]) == (True, "gw-b.0")


async def test_without_the_version_that_race_is_lost(iot_data: Any, charger: str) -> None:
    """The harness reproduces the race: read, decide and an unconditional write
    in two steps let the stale disconnect land."""
    other = ShadowPresenceLedger(IotShadowStore(iot_data))
    assert await other.record(charger, presence(True, "gw-a.0", 0))
    store = Interleaving(iot_data, lambda: other.record(charger, presence(True, "gw-b.0", 2)))
    stale = presence(False, "gw-a.0", 1)
    assert presence_applies(stale, connection_record(await store.get(charger)))
    await store.update(charger, {"reported": {"connection": stale.record()}})
    assert (await recorded(iot_data, charger))["connected"] is False  # yet it is on B


async def test_a_conflict_that_still_applies_is_written_on_the_next_attempt(
    iot_data: Any, charger: str
) -> None:
    other = ShadowPresenceLedger(IotShadowStore(iot_data))
    assert await other.record(charger, presence(True, "gw-a.0", 0))
    # Meanwhile an older connect lands; the newer disconnect of A still applies.
    store = Interleaving(iot_data, lambda: other.record(charger, presence(True, "gw-a.0", 0)))
    assert await ShadowPresenceLedger(store).record(charger, presence(False, "gw-a.0", 5))
    record = await recorded(iot_data, charger)
    assert (record["connected"], record["since"]) == (False, "2026-05-01T10:00:05.000Z")


async def test_a_first_presence_needs_no_version(iot_data: Any, charger: str) -> None:
    assert await ShadowPresenceLedger(IotShadowStore(iot_data)).record(
        charger, presence(True, "gw-a.0", 0)
    )
    assert (await recorded(iot_data, charger))["route"] == "gw-a.0"


async def test_a_shadow_that_keeps_changing_is_given_back_to_sqs(
    iot_data: Any, charger: str
) -> None:
    class Busy(IotShadowStore):
        async def update(
            self, thing: str, state: dict[str, Any], *, version: int | None = None
        ) -> None:
            # Someone else always writes first.
            await IotShadowStore(iot_data).update(thing, {"reported": {"busy": version}})
            await super().update(thing, state, version=version)

    ledger = ShadowPresenceLedger(IotShadowStore(iot_data))
    assert await ledger.record(charger, presence(True, "gw-a.0", 0))
    with pytest.raises(ShadowStoreError, match="changed under 3 attempts"):
        await ShadowPresenceLedger(Busy(iot_data, attempts=3)).record(
            charger, presence(False, "gw-a.0", 1)
        )
