"""The gateway's IoT policy against the topic contract (``ocppj.topics``).

Each question is asked the way IoT Core asks it: this client id, this
action, this topic or filter.
"""

from __future__ import annotations

import pytest

from infra.policies import Account, iot_gateway_policy
from ocppj.batch import (
    downlink_batch_subscription,
    downlink_batch_topic,
    uplink_batch_subscription,
    uplink_batch_topic,
)
from ocppj.topics import (
    downlink_subscription,
    downlink_topic,
    presence_subscription,
    presence_topic,
    uplink_subscription,
    uplink_topic,
)

from .iot_policy import allows

POLICY = iot_gateway_policy(Account("aws", "eu-west-1", "123456789012"), "ocpp")
ME = "gw-7f3a01bc.2"
OTHER = "gw-7f3a01bc.3"
CP = "RDAM 123/ä"  # percent-encoded in topics


def test_a_pool_connection_may_connect_under_the_gateway_prefix_only() -> None:
    assert allows(POLICY, ME, "iot:Connect", f"client/{ME}")
    assert allows(POLICY, "gw-7f3a01bc-1.0", "iot:Connect", "client/gw-7f3a01bc-1.0")
    assert not allows(POLICY, "worker-1", "iot:Connect", "client/worker-1")
    assert not allows(POLICY, "CP001", "iot:Connect", "client/CP001")


def test_it_may_publish_uplinks_on_its_own_route_only() -> None:
    for protocol in ("ocpp1.6", "ocpp2.0.1"):
        assert allows(POLICY, ME, "iot:Publish", "topic/" + uplink_topic("ocpp", CP, protocol, ME))
    # Replies come back to the route in the topic: another route is not its to claim.
    assert not allows(
        POLICY, ME, "iot:Publish", "topic/" + uplink_topic("ocpp", CP, "ocpp1.6", OTHER)
    )


def test_it_may_publish_retained_presence() -> None:
    topic = "topic/" + presence_topic("ocpp", CP)
    assert allows(POLICY, ME, "iot:Publish", topic)
    assert allows(POLICY, ME, "iot:RetainPublish", topic)
    assert not allows(
        POLICY, ME, "iot:RetainPublish", "topic/" + uplink_topic("ocpp", CP, "ocpp1.6", ME)
    )


def test_it_may_not_publish_downlinks_or_outside_the_prefix() -> None:
    assert not allows(POLICY, ME, "iot:Publish", "topic/" + downlink_topic("ocpp", ME, CP))
    assert not allows(POLICY, ME, "iot:Publish", "topic/$aws/things/CP001/shadow/update")
    assert not allows(POLICY, ME, "iot:Publish", "topic/other/in/CP001/ocpp1.6/" + ME)


def test_it_may_subscribe_to_and_receive_its_own_downlinks_only() -> None:
    assert allows(POLICY, ME, "iot:Subscribe", "topicfilter/" + downlink_subscription("ocpp", ME))
    assert allows(POLICY, ME, "iot:Receive", "topic/" + downlink_topic("ocpp", ME, CP))
    assert not allows(
        POLICY, ME, "iot:Subscribe", "topicfilter/" + downlink_subscription("ocpp", OTHER)
    )
    assert not allows(POLICY, ME, "iot:Receive", "topic/" + downlink_topic("ocpp", OTHER, CP))


def test_it_may_publish_batches_on_its_own_route_only() -> None:
    assert allows(POLICY, ME, "iot:Publish", "topic/" + uplink_batch_topic("ocpp", ME))
    assert not allows(POLICY, ME, "iot:Publish", "topic/" + uplink_batch_topic("ocpp", OTHER))
    # Nor a batch of answers: those come from the processor.
    assert not allows(POLICY, ME, "iot:Publish", "topic/" + downlink_batch_topic("ocpp", ME))
    assert not allows(POLICY, ME, "iot:RetainPublish", "topic/" + uplink_batch_topic("ocpp", ME))


def test_it_may_subscribe_to_and_receive_its_own_downlink_batches_only() -> None:
    mine = downlink_batch_subscription("ocpp", ME)
    assert allows(POLICY, ME, "iot:Subscribe", "topicfilter/" + mine)
    assert allows(POLICY, ME, "iot:Receive", "topic/" + downlink_batch_topic("ocpp", ME))
    theirs = downlink_batch_subscription("ocpp", OTHER)
    assert not allows(POLICY, ME, "iot:Subscribe", "topicfilter/" + theirs)
    assert not allows(POLICY, ME, "iot:Receive", "topic/" + downlink_batch_topic("ocpp", OTHER))
    # The uplink batches of every connection are the processor's to read.
    assert not allows(POLICY, ME, "iot:Receive", "topic/" + uplink_batch_topic("ocpp", ME))


@pytest.mark.parametrize(
    "wide",
    [
        "ocpp/out/+/+",
        "ocpp/#",
        "#",
        uplink_subscription("ocpp"),
        presence_subscription("ocpp"),
        uplink_batch_subscription("ocpp"),
        "ocpp/batch/out/+",
        "ocpp/batch/#",
    ],
)
def test_it_may_not_subscribe_to_anything_wider(wide: str) -> None:
    assert not allows(POLICY, ME, "iot:Subscribe", "topicfilter/" + wide)


def test_the_policy_names_no_wildcard_action() -> None:
    actions = {a for s in POLICY["Statement"] for a in s["Action"]}
    assert actions == {
        "iot:Connect",
        "iot:Publish",
        "iot:RetainPublish",
        "iot:Subscribe",
        "iot:Receive",
    }
