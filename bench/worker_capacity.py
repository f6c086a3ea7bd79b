"""How many messages of the standard mix one local worker handles per core.

``python -m bench.worker_capacity``: a private Mosquitto, one ``ocppgw
worker`` on its own SQLite folder, and this process in the gateway's place,
publishing the mix as uplink batches (``ocppj.batch``, ``--batch-frames`` a
publish, as the gateway packs them) onto one route as fast as the worker
answers, with at most ``--window`` batches unanswered. The worker is
saturated, so its CPU time over the run, divided by the messages it answered,
is what a message costs it, without the idle cost that a paced soak (the
pipeline scenario) spreads over few messages.

The mix is each charger's charging session in the proportions of DESIGN.md's
standard mix (a Heartbeat every 300 s, a reading every 60 s while charging,
30 % of the fleet charging, sessions of an hour): per charger a
StatusNotification and a session start, 60 readings (1.6 MeterValues, 2.0.1
TransactionEvent ``Updated``) with 40 Heartbeats among them, then the
session's end and a StatusNotification: 104 messages, 38 % Heartbeats, 58 %
readings. Half the chargers speak 1.6, half 2.0.1; chargers take turns, so
one charger's messages are far apart, as in a fleet. Prints one JSON object;
``messages_per_cpu_second`` is the figure of the target (≥ 10,000).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from mqttio import BrokerAddress, Session, Subscription
from ocppj import (
    decode_downlink_batch,
    downlink_batch_subscription,
    encode_batch,
    encode_uplink_item,
    uplink_batch_topic,
)
from ocppj.topics import downlink_subscription

from . import compare_mqtt, messages, systems
from .compare_echo import read_user_system_seconds
from .gateway_process import LOOPBACK

__all__ = ["main", "mix_frames", "run"]

ROUTE = "bench-capacity.0"
#: Readings per session; two Heartbeats come with every three (40 in all).
READINGS = 60
#: Seconds the whole run may take before it gives up.
DEADLINE_S = 300.0


def _charger_script(cp: str, protocol: str, n: int) -> list[tuple[str, dict[str, Any]]]:
    """One charger's session in the standard mix's proportions."""
    transaction: str | int = n + 1 if protocol == messages.V16 else f"tx-{cp}"
    calls = [messages.status(protocol, True)]
    calls.append(messages.session_start(protocol, "TAG1", 0, str(transaction), None))
    seq = 1
    for reading in range(READINGS):
        action, payload = messages.meter_reading(
            protocol, transaction, 100 * reading, 7000.0, seq_no=seq
        )
        # A minute apart, as in a session: a 1.6 reading is known by its time,
        # and readings built in one millisecond would be recorded once.
        stamp = f"2026-01-01T{reading // 60:02d}:{reading % 60:02d}:00.000Z"
        if protocol == messages.V16:
            payload["meterValue"] = [{**payload["meterValue"][0], "timestamp": stamp}]
        else:
            payload["timestamp"] = stamp
        calls.append((action, payload))
        seq += 1
        if reading % 3 != 2:  # two Heartbeats every three readings
            calls.append(("Heartbeat", {}))
    calls.append(messages.session_end(protocol, transaction, 100 * READINGS, seq, False))
    calls.append(messages.status(protocol, False))
    return calls


def mix_frames(chargers: int) -> list[tuple[str, str, bytes]]:
    """(charge point, subprotocol, CALL) of the whole run, chargers taking turns."""
    scripts = []
    for n in range(chargers):
        protocol = messages.PROTOCOLS[n % 2]
        cp = f"CAP{n:06d}"
        scripts.append((cp, protocol, _charger_script(cp, protocol, n)))
    frames = []
    for step in range(max(len(script) for _, _, script in scripts)):
        for cp, protocol, script in scripts:
            if step < len(script):
                action, payload = script[step]
                frame = orjson.dumps([2, f"{cp}-{step}", action, payload])
                frames.append((cp, protocol, frame))
    return frames


def _batches(frames: Sequence[tuple[str, str, bytes]], per_batch: int) -> list[bytes]:
    return [
        encode_batch(encode_uplink_item(cp, kind, frame) for cp, kind, frame in part)
        for part in (frames[i : i + per_batch] for i in range(0, len(frames), per_batch))
    ]


async def run(broker_port: int, worker_pid: int, args: argparse.Namespace) -> dict[str, Any]:
    frames = mix_frames(args.chargers)
    batches = _batches(frames, args.batch_frames)
    answered = errors = 0
    progress = asyncio.Event()
    prefix = compare_mqtt.PREFIX

    def on_message(topic: str | bytes, payload: bytes, qos: int) -> int:
        nonlocal answered, errors
        text = topic if isinstance(topic, str) else topic.decode()
        if "/batch/" in text:
            items, _ = decode_downlink_batch(payload)
            answers = [item.payload for item in items]
        else:
            answers = [payload]
        answered += len(answers)
        errors += sum(1 for answer in answers if answer.startswith(b"[4"))
        progress.set()
        return 0

    session = Session("bench-capacity", on_message=on_message)
    await session.start(
        BrokerAddress(LOOPBACK, broker_port),
        subscriptions=[
            Subscription(downlink_batch_subscription(prefix, ROUTE)),
            Subscription(downlink_subscription(prefix, ROUTE)),
        ],
    )
    topic = uplink_batch_topic(prefix, ROUTE)
    per_batch = args.batch_frames
    try:
        user0, system0 = read_user_system_seconds(worker_pid)
        started = time.perf_counter()
        deadline = started + DEADLINE_S
        sent = 0
        while answered < len(frames) and time.perf_counter() < deadline:
            while sent < len(batches) and sent - answered / per_batch < args.window:
                if not session.publish(topic, batches[sent]):
                    break
                sent += 1
            progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(progress.wait(), 1.0)
        elapsed = time.perf_counter() - started
        user1, system1 = read_user_system_seconds(worker_pid)
    finally:
        await session.close()
    cpu = (user1 - user0) + (system1 - system0)
    return {
        "chargers": args.chargers,
        "messages": len(frames),
        "answered": answered,
        "callerrors": errors,
        "batch_frames": per_batch,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(answered / elapsed, 1) if elapsed else None,
        "worker_cpu_s": round(cpu, 3),
        "worker_cpu_us_per_message": round(cpu / answered * 1e6, 1) if answered else None,
        "messages_per_cpu_second": round(answered / cpu) if cpu else None,
        "complete": answered == len(frames),
    }


@contextlib.contextmanager
def _system(folder: Path) -> Iterator[tuple[int, int]]:
    with compare_mqtt.mosquitto(folder) as broker, systems.worker(0, broker.port, folder, {}) as w:
        yield broker.port, w.pid


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_capacity", description=__doc__)
    parser.add_argument("--chargers", type=int, default=1000, help="chargers (104 messages each)")
    parser.add_argument("--batch-frames", type=int, default=16, help="frames per uplink batch")
    parser.add_argument("--window", type=int, default=64, help="batches unanswered at most")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="ocppgw-capacity-") as name,
        _system(Path(name)) as (port, pid),
    ):
        result = asyncio.run(run(port, pid, args))
    print(json.dumps(result))
    return 0 if result["complete"] and not result["callerrors"] else 1


if __name__ == "__main__":
    sys.exit(main())
