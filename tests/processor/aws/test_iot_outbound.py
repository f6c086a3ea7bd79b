"""RoutedOutbound over IotDataPublisher against moto's IoT data plane, over HTTP.

moto offers no HTTP way to read back what was published (its ``/moto-api/``
dashboard lists model instances, and published messages are a plain list on
the iot-data backend). The server runs in this process, though, so the tests
read that list, ``published_payloads``: what moto's Publish handler received
after the request crossed HTTP. It records topic and payload only; the QoS
is checked on the request the client sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from moto.iotdata.models import iotdata_backends

from ocppj import Downlink, MessageType, downlink_topic
from processor.adapters.iot_publisher import IotDataPublisher
from processor.adapters.iot_shadow import IotShadowStore
from processor.adapters.routed_outbound import PublishError, RoutedOutbound
from processor.adapters.thing_names import thing_name
from processor.ports import ChargePointOffline

from ...moto_support import ACCOUNT, REGION
from .conftest import make_client

FRAME = b'[2,"m1","RemoteStartTransaction",{"idTag":"ABC","connectorId":1}]'
COMMAND = Downlink(MessageType.CALL, "m1", FRAME)


def published(prefix: str) -> list[tuple[str, bytes]]:
    """What moto's iot-data backend received on topics under ``prefix``."""
    messages = iotdata_backends[ACCOUNT][REGION].published_payloads
    return [(topic, payload) for topic, payload in messages if topic.startswith(prefix + "/")]


@pytest.fixture
def shadows(iot_data: Any) -> IotShadowStore:
    return IotShadowStore(iot_data)


@pytest.fixture
def outbound(iot_data: Any, shadows: IotShadowStore, unique: str) -> RoutedOutbound:
    return iot_outbound(iot_data, shadows, unique)


def iot_outbound(client: Any, shadows: IotShadowStore, prefix: str) -> RoutedOutbound:
    return RoutedOutbound(shadows, prefix, IotDataPublisher(client))


@pytest.fixture
def charger(iot: Any, unique: str) -> Callable[[str], str]:
    """A registered thing for the identity (moto wants one before a shadow)."""

    def create(identity: str) -> str:
        iot.create_thing(thingName=thing_name(identity))
        return identity

    return create


def presence(connected: bool, route: Any = "gw-7f3a.2", protocol: Any = "ocpp1.6") -> Any:
    return {
        "reported": {
            "connection": {
                "connected": connected,
                "route": route,
                "protocol": protocol,
                "since": "2026-01-01T00:00:00.000Z",
            }
        }
    }


async def test_send_publishes_to_the_route_holding_the_charger(
    shadows: IotShadowStore, charger: Callable[[str], str], unique: str, moto_endpoint: str
) -> None:
    cp = charger(f"{unique} +#/%\u00e9")
    await shadows.update(cp, presence(True))
    client = make_client("iot-data", moto_endpoint)
    urls: list[str] = []
    client.meta.events.register(
        "before-send.iot-data.Publish", lambda request, **_: urls.append(request.url)
    )
    await iot_outbound(client, shadows, unique).send(cp, COMMAND)
    topic = downlink_topic(unique, "gw-7f3a.2", cp)
    assert published(unique) == [(topic, FRAME)]
    assert topic.count("/") == 3
    assert len(urls) == 1
    assert urls[0].endswith("?qos=1")


async def test_subprotocol_comes_from_the_presence_record(
    outbound: RoutedOutbound, shadows: IotShadowStore, charger: Callable[[str], str], unique: str
) -> None:
    cp = charger(unique)
    assert await outbound.subprotocol(cp) is None  # no shadow at all
    await shadows.update(cp, {"reported": {"ocppVersion": "2.0.1"}})
    assert await outbound.subprotocol(cp) is None  # a shadow, but no presence record
    await shadows.update(cp, presence(True, protocol="ocpp2.0.1"))
    assert await outbound.subprotocol(cp) == "ocpp2.0.1"
    await shadows.update(cp, presence(False))
    assert await outbound.subprotocol(cp) is None


@pytest.mark.parametrize(
    "record",
    [
        presence(False),
        presence(True, route=""),
        presence(True, route=None),
        presence(True, protocol=7),
        {"reported": {"connection": "yes"}},
        {"reported": {"connection": {"connected": "true", "route": "r", "protocol": "p"}}},
    ],
)
async def test_send_to_an_offline_charger_names_it(
    outbound: RoutedOutbound,
    shadows: IotShadowStore,
    charger: Callable[[str], str],
    unique: str,
    record: Any,
) -> None:
    cp = charger(f"{unique}-RDAM 1")
    await shadows.update(cp, record)
    with pytest.raises(ChargePointOffline, match=f"'{unique}-RDAM 1'"):
        await outbound.send(cp, COMMAND)
    assert published(unique) == []


async def test_send_without_any_shadow_is_offline(outbound: RoutedOutbound, unique: str) -> None:
    with pytest.raises(ChargePointOffline, match=unique):
        await outbound.send(unique, COMMAND)


async def test_a_reply_answers_on_the_given_route(outbound: RoutedOutbound, unique: str) -> None:
    await outbound.reply("gw-1.0", "RDAM 123", b'[3,"1",{}]')
    await outbound.reply("gw-2.3", "RDAM 123", b'[3,"2",{}]')
    assert published(unique) == [
        (f"{unique}/out/gw-1.0/RDAM%20123", b'[3,"1",{}]'),
        (f"{unique}/out/gw-2.3/RDAM%20123", b'[3,"2",{}]'),
    ]


async def test_a_reply_refuses_a_bad_route(outbound: RoutedOutbound, unique: str) -> None:
    with pytest.raises(ValueError, match="route 'gw/1' contains '/'"):
        await outbound.reply("gw/1", "CP1", b"[]")
    assert published(unique) == []


async def test_a_failed_publish_names_the_topic(
    shadows: IotShadowStore, unique: str, dead_endpoint: str
) -> None:
    client = make_client("iot-data", dead_endpoint, retries={"total_max_attempts": 1})
    with pytest.raises(PublishError, match=f"for '{unique}/out/gw-1/CP1'"):
        await iot_outbound(client, shadows, unique).reply("gw-1", "CP1", b"[]")


def test_a_bad_prefix_is_refused_at_once(iot_data: Any, shadows: IotShadowStore) -> None:
    with pytest.raises(ValueError, match="prefix 'a/b'"):
        iot_outbound(iot_data, shadows, "a/b")
