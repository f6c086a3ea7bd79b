"""IotShadowStore against moto's IoT data plane, over HTTP.

Two ways in which moto differs from IoT Core shape these tests:

* moto keeps a shadow only for a thing in the IoT registry (anything else is
  ResourceNotFoundException), whereas IoT Core's classic shadows need no
  registry entry. Tests create the thing first; production does not need to.
* moto ignores a section given as ``null`` (``{"reported": null}``) but still
  counts a version, whereas IoT Core deletes the section (and so does
  ``processor.shadow``). ``test_moto_ignores_a_null_section`` pins this, so a
  moto upgrade that fixes it shows up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from processor.adapters.iot_shadow import IotShadowStore, ShadowStoreError
from processor.adapters.thing_names import thing_name
from processor.shadow import apply_update

from .conftest import make_client


@pytest.fixture
def new_thing(iot: Any, unique: str) -> Callable[[str], str]:
    """Register a thing for a charge point (moto needs it) and return the identity."""

    def create(suffix: str = "") -> str:
        identity = f"{unique} {suffix}".strip()
        iot.create_thing(thingName=thing_name(identity))
        return identity

    return create


@pytest.fixture
def store(iot_data: Any) -> IotShadowStore:
    return IotShadowStore(iot_data)


async def test_a_thing_without_shadow_has_none(
    store: IotShadowStore, new_thing: Callable[[str], str], unique: str
) -> None:
    assert await store.get(new_thing("")) is None
    assert await store.get(unique + "-not-registered-at-all") is None


async def test_update_then_get_returns_the_document_without_metadata(
    store: IotShadowStore, new_thing: Callable[[str], str]
) -> None:
    cp = new_thing("")
    await store.update(cp, {"reported": {"ocppVersion": "1.6", "meter": 12.5}})
    document = await store.get(cp)
    assert document is not None
    assert set(document) == {"state", "version", "timestamp"}
    assert document["state"] == {"reported": {"ocppVersion": "1.6", "meter": 12.5}}
    assert document["version"] == 1
    assert isinstance(document["timestamp"], int)


async def test_shadow_lives_under_the_mapped_thing_name(
    store: IotShadowStore, new_thing: Callable[[str], str], iot_data: Any
) -> None:
    cp = new_thing("with space+plus")
    await store.update(cp, {"reported": {"a": 1}})
    name = thing_name(cp)
    assert ":20" in name
    raw = json.loads(iot_data.get_thing_shadow(thingName=name)["payload"].read())
    assert raw["state"]["reported"] == {"a": 1}


UPDATES: list[dict[str, Any]] = [
    {"reported": {"connectors": {"1": {"status": "Available"}}, "tags": [1, 2, 3]}},
    {"reported": {"connectors": {"2": {"status": "Charging"}}, "tags": [4]}},
    {"reported": {"connectors": {"1": None}, "chargingStation": {"model": "X", "serial": None}}},
    {"desired": {"interval": 300}},
    {"reported": {"chargingStation": {"model": "Y", "vendor": "ACME"}}},
    {"reported": {"tags": None}, "desired": {"interval": None}},
]


async def test_iot_merge_rules_match_the_local_shadow_rules(
    store: IotShadowStore, new_thing: Callable[[str], str]
) -> None:
    cp = new_thing("")
    expected: dict[str, Any] | None = None
    for number, update in enumerate(UPDATES, start=1):
        await store.update(cp, update)
        expected = apply_update(expected, update, timestamp=0)
        document = await store.get(cp)
        assert document is not None
        assert document["version"] == number
        # moto drops a section once it is empty; processor.shadow keeps it as {}.
        local = {section: value for section, value in expected["state"].items() if value}
        assert document["state"] == local, f"after update {number}"
    assert document["state"] == {
        "reported": {
            "connectors": {"2": {"status": "Charging"}},
            "chargingStation": {"model": "Y", "vendor": "ACME"},
        }
    }


async def test_moto_ignores_a_null_section(
    store: IotShadowStore, new_thing: Callable[[str], str]
) -> None:
    cp = new_thing("")
    await store.update(cp, {"reported": {"a": 1}, "desired": {"b": 2}})
    await store.update(cp, {"reported": None})
    document = await store.get(cp)
    assert document is not None
    assert document["version"] == 2
    # IoT Core (and processor.shadow) would leave {"desired": {"b": 2}} only.
    assert document["state"] == {"reported": {"a": 1}, "desired": {"b": 2}}


async def test_delta_is_not_part_of_the_document(
    store: IotShadowStore, new_thing: Callable[[str], str], iot_data: Any
) -> None:
    cp = new_thing("")
    await store.update(cp, {"desired": {"interval": 60}, "reported": {"interval": 300}})
    raw = json.loads(iot_data.get_thing_shadow(thingName=thing_name(cp))["payload"].read())
    assert raw["state"]["delta"] == {"interval": 60}  # what IoT returns ...
    document = await store.get(cp)
    assert document is not None
    assert document["state"] == {"desired": {"interval": 60}, "reported": {"interval": 300}}


async def test_refused_update_names_the_thing(
    store: IotShadowStore, new_thing: Callable[[str], str]
) -> None:
    cp = new_thing("x.y")
    with pytest.raises(ShadowStoreError, match=r"update the shadow of thing '.*:2ey'") as caught:
        await store.update(cp, {"unknown": {"a": 1}})
    assert "InvalidRequestException" in str(caught.value)
    assert caught.value.__cause__ is not None


async def test_unreachable_endpoint_is_a_shadow_store_error(
    unique: str, dead_endpoint: str
) -> None:
    client = make_client("iot-data", dead_endpoint, retries={"total_max_attempts": 1})
    store = IotShadowStore(client)
    with pytest.raises(ShadowStoreError, match=f"read the shadow of thing '{unique}'"):
        await store.get(unique)
    with pytest.raises(ShadowStoreError, match=f"update the shadow of thing '{unique}'"):
        await store.update(unique, {"reported": {"a": 1}})


async def test_calls_run_on_the_given_executor(
    iot_data: Any, new_thing: Callable[[str], str]
) -> None:
    used: list[str] = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            used.append(getattr(fn, "__name__", type(fn).__name__))
            return super().submit(fn, *args, **kwargs)

    with Recording(max_workers=2) as executor:
        store = IotShadowStore(iot_data, executor)
        cp = new_thing("")
        await store.update(cp, {"reported": {"a": 1}})
        assert await store.get(cp) is not None
    assert len(used) == 2
