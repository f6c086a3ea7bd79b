"""A trivial backend over MQTT: answers every uplink CALL at once.

    .venv/bin/python -m bench.mqtt_responder --port 1883 [--prefix ocpp]

The stand-in for the processor in ``bench.compare_mqtt``: one MQTT session
on uvloop that subscribes (QoS 1) to every uplink, ``{prefix}/in/+/+/+``, and
answers each CALL ``[2,id,action,...]`` with ``[3,id,{...}]`` on the
downlink topic of the route named in the uplink topic,
``{prefix}/out/{route}/{cp}`` (the charge point level is copied as it came:
it is already encoded as ``ocppj.topics`` encodes it). It answers uplink
batches too (``{prefix}/batch/in/{route}``, ``ocppj.batch``) as the worker
does: the answers of one batch go back together on
``{prefix}/batch/out/{route}``, in batches of at most 5,000 bytes. A BootNotification is
answered ``{"status":"Accepted","currentTime":...,"interval":300}``,
anything else ``{"currentTime":...}`` (valid for a Heartbeat). Answers go out
at QoS 0, so the responder never runs out of packet ids and the broker keeps
no state for them. Anything that is not a CALL on a well-formed uplink topic
is ignored.

It prints ``ready`` on stdout once the broker has granted the subscription;
SIGTERM or SIGINT stops it. Loopback brokers only.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson
import uvloop

from mqttio import BrokerAddress, Session, Subscription
from ocppj import (
    DEFAULT_BATCH_BYTES,
    PRESENCE,
    decode_uplink_batch,
    downlink_publishes,
    parse_uplink_batch,
    uplink_batch_subscription,
)

__all__ = ["answer", "answer_batch", "main"]

#: Seconds to connect and have the subscription granted.
START_TIMEOUT = 10.0
#: The CALL message type of OCPP-J.
CALL = 2


class _Clock:
    """``currentTime`` in RFC 3339, recomputed at most once a second."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        return self._text


_clock = _Clock()


def _result(payload: bytes) -> bytes | None:
    """The CALLRESULT of a CALL; None for anything else."""
    try:
        message = orjson.loads(payload)
        if message[0] != CALL:
            return None
        message_id, action = message[1], message[2]
    except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
        return None
    result: dict[str, Any] = {"currentTime": _clock.now()}
    if action == "BootNotification":
        result = {"status": "Accepted", "currentTime": result["currentTime"], "interval": 300}
    return orjson.dumps([3, message_id, result])


def answer(topic: str, payload: bytes, prefix: str) -> tuple[str, bytes] | None:
    """(downlink topic, CALLRESULT) for an uplink CALL; None for anything else."""
    levels = topic.split("/")
    if len(levels) != 5 or levels[0] != prefix or levels[1] != "in":
        return None
    result = _result(payload)
    return None if result is None else (f"{prefix}/out/{levels[4]}/{levels[2]}", result)


def answer_batch(topic: str, payload: bytes, prefix: str) -> list[tuple[str, bytes]]:
    """The publishes that answer every CALL of an uplink batch."""
    try:
        route = parse_uplink_batch(topic, prefix)
        items, _ = decode_uplink_batch(payload)
    except ValueError:
        return []
    answers = []
    for item in items:
        result = None if item.kind == PRESENCE else _result(item.payload)
        if result is not None:
            answers.append((item.charge_point_id, result))
    return [(t, p) for t, p, _ in downlink_publishes(prefix, route, answers, DEFAULT_BATCH_BYTES)]


async def serve(host: str, port: int, prefix: str, client_id: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    batches = f"{prefix}/batch/"

    def on_message(topic: str | bytes, payload: bytes, qos: int) -> int:
        if not isinstance(topic, str):
            return 0
        if topic.startswith(batches):
            for reply in answer_batch(topic, payload, prefix):
                session.publish(reply[0], reply[1], qos=0)
            return 0
        single = answer(topic, payload, prefix)
        if single is not None:
            session.publish(single[0], single[1], qos=0)
        return 0

    # A session never reconnects by itself: a lost broker ends the benchmark run.
    session = Session(client_id, on_message=on_message, on_lost=stop.set)
    await session.start(
        BrokerAddress(host, port),
        subscriptions=[
            Subscription(f"{prefix}/in/+/+/+"),
            Subscription(uplink_batch_subscription(prefix)),
        ],
        timeout=START_TIMEOUT,
    )
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        await session.close()


def _loopback(text: str) -> str:
    try:
        if ipaddress.ip_address(text).is_loopback:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text} is not a loopback address")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mqtt_responder", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", type=_loopback, default="127.0.0.1")
    parser.add_argument("--prefix", default="ocpp")
    parser.add_argument("--client-id", default="bench-responder")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port, args.prefix, args.client_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
