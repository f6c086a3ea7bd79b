"""The batch half of the topic contract: topics, the codec, downlink chunking."""

from __future__ import annotations

import orjson
import pytest

from ocppj import (
    BATCH_OVERHEAD,
    PRESENCE,
    BatchItem,
    decode_downlink_batch,
    decode_uplink_batch,
    downlink_batch_subscription,
    downlink_batch_topic,
    downlink_publishes,
    downlink_topic,
    encode_batch,
    encode_downlink_item,
    encode_uplink_item,
    parse_uplink_batch,
    uplink_batch_subscription,
    uplink_batch_topic,
)


def test_batch_topics() -> None:
    assert uplink_batch_topic("ocpp", "gw-1.0") == "ocpp/batch/in/gw-1.0"
    assert downlink_batch_topic("ocpp", "gw-1.0") == "ocpp/batch/out/gw-1.0"
    assert uplink_batch_subscription("ocpp") == "ocpp/batch/in/+"
    assert downlink_batch_subscription("ocpp", "gw-1.0") == "ocpp/batch/out/gw-1.0"
    assert parse_uplink_batch("ocpp/batch/in/gw-1.0", "ocpp") == "gw-1.0"


@pytest.mark.parametrize(
    "topic", ["ocpp/batch/out/gw", "ocpp/batch/in", "ocpp/batch/in/gw/x", "other/batch/in/gw"]
)
def test_what_is_not_an_uplink_batch_topic_is_refused(topic: str) -> None:
    with pytest.raises(ValueError):
        parse_uplink_batch(topic, "ocpp")


def test_a_route_that_is_not_a_topic_level_is_refused() -> None:
    with pytest.raises(ValueError):
        uplink_batch_topic("ocpp", "gw/+")


def test_uplink_items_round_trip_byte_for_byte() -> None:
    # Whitespace, unicode escapes and deep nesting survive: the frame is a string.
    frame = b'[2, "1", "DataTransfer", {"data": "\\u00e9 ' + b"[" * 200 + b"]" * 200 + b'"}]'
    status = orjson.dumps({"connected": True, "route": "gw.0"})
    batch = encode_batch(
        [
            encode_uplink_item("CP /+#1", "ocpp1.6", frame),
            encode_uplink_item("CP2", PRESENCE, status),
        ]
    )
    items, skipped = decode_uplink_batch(batch)
    assert skipped == []
    assert items == [BatchItem("CP /+#1", "ocpp1.6", frame), BatchItem("CP2", PRESENCE, status)]
    # The IoT rule hands the Lambda the object already parsed.
    assert decode_uplink_batch(orjson.loads(batch)) == (items, [])


def test_a_batch_is_as_long_as_its_overhead_items_and_commas() -> None:
    parts = [encode_downlink_item(f"CP{n}", b'[3,"x",{}]') for n in range(3)]
    assert len(encode_batch(parts)) == BATCH_OVERHEAD + sum(map(len, parts)) + 2


def test_unreadable_items_are_skipped_with_a_reason_and_the_rest_kept() -> None:
    body = {
        "frames": [["CP1", "ocpp1.6", "[2]"], ["CP2"], 7, ["", "ocpp1.6", "[2]"], ["C", 1, "x"]]
    }
    items, skipped = decode_uplink_batch(orjson.dumps(body))
    assert items == [BatchItem("CP1", "ocpp1.6", b"[2]")]
    assert skipped == [
        "item 1: not an array of 3 strings",
        "item 2: not an array of 3 strings",
        "item 3: charge point identity is empty",
        "item 4: not an array of 3 strings",
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"nope", "not JSON"), (b"[]", '"frames" array'), (b'{"frames": {}}', '"frames" array')],
)
def test_what_is_not_a_batch_is_refused(payload: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_uplink_batch(payload)
    with pytest.raises(ValueError, match=reason):
        decode_downlink_batch(payload)


def test_downlink_items_round_trip() -> None:
    batch = encode_batch(
        [encode_downlink_item("A", b'[3,"1",{}]'), encode_downlink_item("B", b"[4]")]
    )
    assert decode_downlink_batch(batch) == (
        [BatchItem("A", "", b'[3,"1",{}]'), BatchItem("B", "", b"[4]")],
        [],
    )


def answers(count: int) -> list[tuple[str, bytes]]:
    return [(f"CP{n}", f'[3,"m{n}",{{}}]'.encode()) for n in range(count)]


def test_answers_for_a_route_travel_in_batches_within_the_limit() -> None:
    ready = answers(10)
    item = len(encode_downlink_item(*ready[0]))
    limit = BATCH_OVERHEAD + 4 * item + 3  # exactly four to a batch
    publishes = downlink_publishes("ocpp", "gw.0", ready, limit)
    assert [count for _, _, count in publishes] == [4, 4, 2]
    assert all(topic == "ocpp/batch/out/gw.0" for topic, _, _ in publishes)
    assert all(len(payload) <= limit for _, payload, _ in publishes)
    carried = [i for _, payload, _ in publishes for i in decode_downlink_batch(payload)[0]]
    assert [(i.charge_point_id, i.payload) for i in carried] == ready


def test_a_lone_answer_goes_on_its_own_topic() -> None:
    ready = answers(5)
    item = len(encode_downlink_item(*ready[0]))
    publishes = downlink_publishes("ocpp", "gw.0", ready, BATCH_OVERHEAD + 2 * item + 1)
    assert [count for _, _, count in publishes] == [2, 2, 1]
    assert publishes[-1] == (downlink_topic("ocpp", "gw.0", "CP4"), ready[4][1], 1)


def test_limit_zero_sends_every_answer_alone() -> None:
    ready = answers(3)
    assert downlink_publishes("ocpp", "gw.0", ready, 0) == [
        (downlink_topic("ocpp", "gw.0", cp), frame, 1) for cp, frame in ready
    ]
    assert downlink_publishes("ocpp", "gw.0", [], 4096) == []


def test_an_answer_larger_than_the_limit_still_goes_alone() -> None:
    big = [("A", b"[3," + b" " * 5000 + b"]"), ("B", b"[3]")]
    publishes = downlink_publishes("ocpp", "gw.0", big, 4096)
    assert [(topic, count) for topic, _, count in publishes] == [
        (downlink_topic("ocpp", "gw.0", "A"), 1),
        (downlink_topic("ocpp", "gw.0", "B"), 1),
    ]
