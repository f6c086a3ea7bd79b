"""Backpressure: who stops being read while the bus is full, and when reading resumes.

The policy on its own, with readers that record their state and a bus gauge
the test sets; ``test_flow_control`` runs it over real sockets.
"""

from __future__ import annotations

import asyncio

from gateway.backpressure import Backpressure


class Reader:
    """A connection as backpressure sees it."""

    def __init__(self) -> None:
        self.reading = True
        self.pauses = 0

    def pause_reading(self) -> None:
        self.reading = False
        self.pauses += 1

    def resume_reading(self) -> None:
        self.reading = True


class Gauge:
    def __init__(self) -> None:
        self.saturated = False


def setup(n: int) -> tuple[list[Reader], Gauge, Backpressure[Reader]]:
    readers = [Reader() for _ in range(n)]
    gauge = Gauge()
    return readers, gauge, Backpressure(readers, gauge)


def test_nothing_is_paused_while_the_bus_has_room() -> None:
    readers, _gauge, pressure = setup(3)
    pressure.check()
    pressure.joined(readers[0])
    assert all(r.reading for r in readers)
    assert pressure.paused == 0
    assert not pressure.holding


def test_a_saturated_bus_holds_everyone_until_it_drains() -> None:
    readers, gauge, pressure = setup(3)
    gauge.saturated = True
    pressure.check()
    assert pressure.holding
    assert not any(r.reading for r in readers)
    assert pressure.paused == 3
    pressure.check()  # already holding: nobody is paused twice
    assert [r.pauses for r in readers] == [1, 1, 1]
    gauge.saturated = False
    pressure.drained()
    assert all(r.reading for r in readers)
    assert pressure.paused == 0
    assert not pressure.holding


def test_a_charger_that_connects_during_a_hold_is_held_too() -> None:
    readers, gauge, pressure = setup(1)
    gauge.saturated = True
    pressure.check()
    newcomer = Reader()
    readers.append(newcomer)
    pressure.joined(newcomer)
    assert not newcomer.reading
    assert pressure.is_paused(newcomer)
    pressure.drained()
    assert newcomer.reading


def test_a_connect_that_fills_the_bus_starts_the_hold() -> None:
    readers, gauge, pressure = setup(2)
    gauge.saturated = True  # the newcomer's presence message filled it
    pressure.joined(readers[1])
    assert pressure.holding
    assert not any(r.reading for r in readers)


def test_a_charger_that_left_is_not_resumed() -> None:
    readers, gauge, pressure = setup(2)
    gauge.saturated = True
    pressure.check()
    pressure.left(readers[0])
    assert pressure.paused == 1
    pressure.drained()
    assert not readers[0].reading  # gone: nobody touches its socket again
    assert readers[1].reading


async def test_a_slowed_charger_is_read_again_after_its_delay() -> None:
    readers, _gauge, pressure = setup(2)
    pressure.slow_down(readers[0], 0.0)
    assert not readers[0].reading
    assert readers[1].reading
    pressure.slow_down(readers[0], 0.0)  # already paused: no second timer
    assert readers[0].pauses == 1
    for _ in range(10):  # call_later(0) runs within an iteration or two
        if readers[0].reading:
            break
        await asyncio.sleep(0)
    assert readers[0].reading
    assert pressure.paused == 0


async def test_a_slowed_charger_stays_paused_while_the_bus_is_full() -> None:
    readers, gauge, pressure = setup(2)
    resumed = asyncio.get_running_loop().create_future()
    pressure.slow_down(readers[0], 0.0)
    gauge.saturated = True
    pressure.check()
    # Due after the slow-down's timer, so that one has fired when this one has.
    asyncio.get_running_loop().call_later(0.01, resumed.set_result, None)
    await resumed
    assert not readers[0].reading
    gauge.saturated = False
    pressure.drained()
    assert all(r.reading for r in readers)
