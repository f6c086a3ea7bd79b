"""The MQTT stand-in backend of ``bench.compare_mqtt`` answers single frames and batches."""

from __future__ import annotations

import orjson

from bench.mqtt_responder import answer, answer_batch
from ocppj import PRESENCE, decode_downlink_batch, encode_batch, encode_uplink_item


def test_a_single_call_is_answered_on_its_downlink_topic() -> None:
    reply = answer("bench/in/CP1/ocpp1.6/gw.0", b'[2,"m1","Heartbeat",{}]', "bench")
    assert reply is not None
    topic, payload = reply
    assert topic == "bench/out/gw.0/CP1"
    assert orjson.loads(payload)[:2] == [3, "m1"]


def test_a_batch_is_answered_with_one_batch_and_presence_is_not() -> None:
    batch = encode_batch(
        [
            encode_uplink_item("CP1", "ocpp1.6", b'[2,"b1","BootNotification",{}]'),
            encode_uplink_item("CP2", PRESENCE, b'{"connected":true}'),
            encode_uplink_item("CP2", "ocpp2.0.1", b'[2,"h1","Heartbeat",{}]'),
            encode_uplink_item("CP3", "ocpp1.6", b'[3,"x",{}]'),  # not a CALL
        ]
    )
    replies = answer_batch("bench/batch/in/gw.0", batch, "bench")
    assert [topic for topic, _ in replies] == ["bench/batch/out/gw.0"]
    items, problems = decode_downlink_batch(replies[0][1])
    assert problems == []
    answers = [(item.charge_point_id, orjson.loads(item.payload)) for item in items]
    assert [(cp, frame[:2]) for cp, frame in answers] == [("CP1", [3, "b1"]), ("CP2", [3, "h1"])]
    assert answers[0][1][2]["status"] == "Accepted"


def test_a_batch_on_a_foreign_topic_is_ignored() -> None:
    batch = encode_batch([encode_uplink_item("CP1", "ocpp1.6", b'[2,"m","Heartbeat",{}]')])
    assert answer_batch("other/batch/in/gw.0", batch, "bench") == []
