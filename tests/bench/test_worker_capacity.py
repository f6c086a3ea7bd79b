"""The worker-capacity benchmark: its mix, and a small run against a real worker."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections import Counter
from pathlib import Path

import orjson
import pytest

from bench import worker_capacity
from bench.compare_mqtt import MOSQUITTO


def test_the_mix_has_the_standard_proportions_and_keeps_each_chargers_order() -> None:
    frames = worker_capacity.mix_frames(4)
    assert len(frames) == 4 * 104
    actions = Counter(orjson.loads(frame)[2] for _, _, frame in frames)
    assert actions["Heartbeat"] == 4 * 40
    assert actions["MeterValues"] == 2 * 60  # the two 1.6 chargers
    assert actions["StatusNotification"] == 4 * 2
    assert {kind for _, kind, _ in frames} == {"ocpp1.6", "ocpp2.0.1"}
    first = [orjson.loads(frame) for cp, _, frame in frames if cp == "CAP000001"]
    assert [call[1] for call in first] == [f"CAP000001-{n}" for n in range(104)]
    assert first[0][2] == "StatusNotification" and first[-1][2] == "StatusNotification"
    # Every 1.6 reading is its own event (its key is its time), not a duplicate.
    calls = [orjson.loads(f) for cp, _, f in frames if cp == "CAP000000"]
    stamps = [c[3]["meterValue"][0]["timestamp"] for c in calls if c[2] == "MeterValues"]
    assert len(stamps) == len(set(stamps)) == 60
    # Chargers take turns: a charger's messages are apart.
    assert [cp for cp, _, _ in frames[:4]] == [f"CAP{n:06d}" for n in range(4)]


@pytest.mark.skipif(not os.access(MOSQUITTO, os.X_OK), reason=f"{MOSQUITTO} is not installed")
def test_a_worker_answers_every_message_of_the_mix() -> None:
    args = argparse.Namespace(chargers=6, batch_frames=16, window=8)
    with (
        tempfile.TemporaryDirectory() as name,
        worker_capacity._system(Path(name)) as (port, pid),
    ):
        result = asyncio.run(worker_capacity.run(port, pid, args))
    assert result["complete"], result
    assert (result["answered"], result["callerrors"]) == (6 * 104, 0)
    assert result["worker_cpu_s"] > 0 and result["messages_per_cpu_second"] > 0
