"""Two workers in one shared-subscription group split the load: each message once."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ocppgw.worker import WorkerSystem, run_worker

from .conftest import WAIT, Broker, FakeGateway, worker_settings

CHARGERS = [f"CP{n:02}" for n in range(20)]
ROUNDS = 10


@pytest.fixture
async def workers(
    broker: Broker, prefix: str, tmp_path: Path
) -> AsyncIterator[tuple[WorkerSystem, WorkerSystem]]:
    """Two workers on one data folder and one group, as two processes would be."""
    settings = worker_settings(broker, tmp_path / "state", prefix)
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(run_worker(settings))
        second = await stack.enter_async_context(run_worker(settings))
        await first.worker.wait_subscribed(WAIT)
        await second.worker.wait_subscribed(WAIT)
        yield first, second


async def test_every_message_is_answered_exactly_once_by_one_of_the_group(
    workers: tuple[WorkerSystem, WorkerSystem], broker: Broker, prefix: str
) -> None:
    """200 frames from 20 chargers published at once."""
    async with FakeGateway(broker, prefix) as gateway:
        for round_ in range(ROUNDS):
            for cp in CHARGERS:
                await gateway.send(cp, "ocpp1.6", [2, f"{cp}-{round_}", "Heartbeat", {}])
        answers = await gateway.receive_many(len(CHARGERS) * ROUNDS, timeout=30)
        assert await gateway.silence(0.3) == [], "an answer arrived twice"

    counts = Counter(answer[1] for _, answer in answers)
    expected = {f"{cp}-{n}" for cp in CHARGERS for n in range(ROUNDS)}
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    assert all(answer[0] == 3 for _, answer in answers)
    first, second = (system.worker.stats.frames for system in workers)
    assert first + second == len(CHARGERS) * ROUNDS
    assert first > 0 and second > 0, (first, second)


async def test_chargers_keep_their_order_across_the_group(
    workers: tuple[WorkerSystem, WorkerSystem], broker: Broker, prefix: str
) -> None:
    """OCPP chargers send a CALL only once the previous one is answered; with
    that rule the answers of each charger come back in order, whichever
    worker handles each frame."""
    async with FakeGateway(broker, prefix) as gateway:
        answered: dict[str, list[str]] = {cp: [] for cp in CHARGERS}
        inboxes: dict[str, asyncio.Queue[str]] = {cp: asyncio.Queue() for cp in CHARGERS}

        async def dispatch() -> None:
            while True:
                cp, answer = await gateway.receive(timeout=30)
                answered[cp].append(answer[1])
                inboxes[cp].put_nowait(answer[1])

        async def charger(cp: str) -> None:
            for round_ in range(ROUNDS):
                message_id = f"{cp}-{round_}"
                await gateway.send(cp, "ocpp1.6", [2, message_id, "Heartbeat", {}])
                assert await asyncio.wait_for(inboxes[cp].get(), WAIT) == message_id

        dispatcher = asyncio.create_task(dispatch())
        try:
            await asyncio.wait_for(asyncio.gather(*(charger(cp) for cp in CHARGERS)), 30)
        finally:
            dispatcher.cancel()
            await asyncio.gather(dispatcher, return_exceptions=True)
        assert await gateway.silence(0.3) == []

    assert answered == {cp: [f"{cp}-{n}" for n in range(ROUNDS)] for cp in CHARGERS}
    assert all(system.worker.stats.frames > 0 for system in workers)
