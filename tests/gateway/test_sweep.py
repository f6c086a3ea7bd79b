"""Sweeper: every item about once per period, whatever the visits do.

Most tests drive ``advance(now)`` with explicit times; two run the real task
on the test's uvloop loop with a tick of a few milliseconds, bounded by
``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections import Counter, defaultdict

import pytest

from gateway.sweep import Sweeper

PERIOD = 1.0
TICK = 1 / 64  # exact in binary, so ticks add up to whole periods exactly


class Item:
    """Something registered, hashed by identity like a connection."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Item({self.name})"


def run(sweeper: Sweeper[Item], start: float, stop: float, tick: float = TICK) -> list[int]:
    """Advance from ``start`` to ``stop`` in steps of ``tick``; visits per step."""
    sweeper.advance(start)
    steps = round((stop - start) / tick)
    return [sweeper.advance(start + n * tick) for n in range(1, steps + 1)]


def test_each_item_is_visited_once_per_period() -> None:
    visits: Counter[Item] = Counter()
    sweeper = Sweeper[Item](lambda item, now: visits.update([item]), period=PERIOD, tick=TICK)
    items = [Item(str(n)) for n in range(1000)]
    for item in items:
        sweeper.add(item)

    per_step = run(sweeper, 0.0, 10 * PERIOD)

    # Ten periods: each item ten times, give or take the round in progress.
    assert set(visits.values()) <= {9, 10}
    assert sum(per_step) >= 9 * len(items)
    # The work is spread: no wake-up does more than its share (1000/64 visits).
    assert max(per_step) <= math.ceil(len(items) * TICK / PERIOD) + 1


def test_a_few_items_are_still_visited_once_per_period() -> None:
    """Fewer items than ticks per period: most wake-ups visit nobody."""
    times: defaultdict[Item, list[float]] = defaultdict(list)
    sweeper = Sweeper[Item](lambda item, now: times[item].append(now), period=PERIOD, tick=TICK)
    items = [Item(str(n)) for n in range(3)]
    for item in items:
        sweeper.add(item)

    run(sweeper, 0.0, 20 * PERIOD)

    for item in items:
        gaps = [b - a for a, b in itertools.pairwise(times[item])]
        assert len(times[item]) >= 19
        assert all(PERIOD - TICK <= gap <= PERIOD + 2 * TICK for gap in gaps), gaps


def test_the_visit_may_add_and_remove_items_during_the_sweep() -> None:
    """Each visit removes the item registered right after it in the snapshot,
    sometimes itself, and adds a new item: removed items are never visited
    again, new ones join within two periods and are then visited once per
    period."""
    visits: defaultdict[Item, list[float]] = defaultdict(list)
    removed_at: dict[Item, float] = {}
    added_at: dict[Item, float] = {}
    items = [Item(str(n)) for n in range(400)]
    counter = iter(range(10**6))

    def visit(item: Item, now: float) -> None:
        visits[item].append(now)
        n = int(item.name) if item.name.isdigit() else -1
        if n % 7 == 0 and n + 1 < len(items) and items[n + 1] in sweeper:
            sweeper.discard(items[n + 1])  # later in this round's snapshot
            removed_at[items[n + 1]] = now
        if n % 11 == 0 and item in sweeper:
            sweeper.discard(item)
            removed_at[item] = now
        if n % 5 == 0 and now < 4.0:
            new = Item(f"new{next(counter)}")
            sweeper.add(new)
            added_at[new] = now

    sweeper = Sweeper[Item](visit, period=PERIOD, tick=TICK)
    for item in items:
        sweeper.add(item)

    run(sweeper, 0.0, 8 * PERIOD)

    assert removed_at and added_at
    for item, when in removed_at.items():
        assert all(t <= when for t in visits[item]), item
        assert item not in sweeper
    for item, when in added_at.items():
        seen = visits[item]
        assert seen, item
        assert seen[0] - when <= 2 * PERIOD + TICK
        # An item's place in the round moves when items before it go: a
        # quarter of the first 400 do, so gaps stray by up to a quarter period.
        assert all(0.75 * PERIOD <= b - a <= 1.25 * PERIOD for a, b in itertools.pairwise(seen)), (
            seen
        )
    survivors = [item for item in items if item not in removed_at]
    assert all(len(visits[item]) in (7, 8) for item in survivors)


def test_an_item_removed_and_added_again_is_visited_once_per_round() -> None:
    visits: Counter[Item] = Counter()
    item, other = Item("x"), Item("y")

    def visit(seen: Item, now: float) -> None:
        visits.update([seen])
        sweeper.discard(item)
        sweeper.add(item)  # now last in the dict, still in this round's snapshot

    sweeper = Sweeper[Item](visit, period=PERIOD, tick=TICK)
    sweeper.add(item)
    sweeper.add(other)

    run(sweeper, 0.0, 5 * PERIOD)

    assert visits[item] == visits[other] == 5


def test_a_raising_visit_is_logged_and_the_sweep_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    visits: Counter[Item] = Counter()
    bad = Item("bad")

    def visit(item: Item, now: float) -> None:
        visits.update([item])
        if item is bad:
            raise RuntimeError("boom")

    sweeper = Sweeper[Item](visit, period=PERIOD, tick=TICK)
    items = [Item(str(n)) for n in range(50)]
    for item in [*items[:25], bad, *items[25:]]:
        sweeper.add(item)

    with caplog.at_level(logging.ERROR, logger="gateway.sweep"):
        run(sweeper, 0.0, 3 * PERIOD)

    assert all(visits[item] == 3 for item in [*items, bad])
    failures = [r for r in caplog.records if r.getMessage() == "sweep: visit failed"]
    assert len(failures) == 3
    assert failures[0].exc_info is not None
    assert getattr(failures[0], "item", None) == "Item(bad)"


def test_a_stalled_loop_catches_up_one_round_not_more() -> None:
    visits: Counter[Item] = Counter()
    sweeper = Sweeper[Item](lambda item, now: visits.update([item]), period=PERIOD, tick=TICK)
    items = [Item(str(n)) for n in range(100)]
    for item in items:
        sweeper.add(item)
    sweeper.advance(0.0)
    sweeper.advance(0.5)  # half a round

    visited = sweeper.advance(60.0)  # a minute without a wake-up

    assert visited == 50  # the rest of the round, nobody twice
    assert set(visits.values()) == {1}
    # And the minute is forgotten: the next wake-up does one tick's share.
    assert sweeper.advance(60.0 + TICK) <= math.ceil(100 * TICK / PERIOD)


def test_rounds_keep_time_when_ticks_do_not_divide_the_period() -> None:
    """Part of a visit owed at the end of a round carries over to the next,
    or rounds of few items would run late (here by 5 %)."""
    visits: Counter[Item] = Counter()
    tick = 0.07
    sweeper = Sweeper[Item](lambda item, now: visits.update([item]), period=PERIOD, tick=tick)
    items = [Item(str(n)) for n in range(4)]
    for item in items:
        sweeper.add(item)

    run(sweeper, 0.0, 60 * PERIOD, tick=tick)

    assert set(visits.values()) <= {59, 60}


def test_an_empty_sweeper_owes_nothing_when_items_arrive() -> None:
    visits: Counter[Item] = Counter()
    sweeper = Sweeper[Item](lambda item, now: visits.update([item]), period=PERIOD, tick=TICK)
    run(sweeper, 0.0, 100.0)
    items = [Item(str(n)) for n in range(64)]
    for item in items:
        sweeper.add(item)

    # The first wake-up after they arrived visits one tick's share, not a backlog.
    assert sweeper.advance(100.0 + TICK) == 1


def test_registration_is_a_set() -> None:
    sweeper = Sweeper[Item](lambda item, now: None, period=PERIOD, tick=TICK)
    item = Item("x")
    sweeper.add(item)
    sweeper.add(item)
    assert len(sweeper) == 1 and item in sweeper
    sweeper.discard(item)
    sweeper.discard(item)
    assert len(sweeper) == 0 and item not in sweeper


def test_a_clock_that_does_not_move_owes_nothing() -> None:
    sweeper = Sweeper[Item](lambda item, now: None, period=PERIOD, tick=TICK)
    sweeper.add(Item("x"))
    sweeper.advance(10.0)
    assert sweeper.advance(10.0) == 0
    assert sweeper.advance(5.0) == 0
    assert sweeper.advance(11.0) == 1


@pytest.mark.parametrize(
    ("period", "tick", "field"),
    [
        (1.0, 0.0, "tick"),
        (1.0, -1.0, "tick"),
        (1.0, math.nan, "tick"),
        (0.5, 1.0, "period"),
        (math.inf, 1.0, "period"),
    ],
)
def test_settings_are_checked(period: float, tick: float, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        Sweeper[Item](lambda item, now: None, period=period, tick=tick)


# -- the real task -----------------------------------------------------------------


async def test_the_task_sweeps_until_stopped() -> None:
    visits: Counter[Item] = Counter()
    items = [Item(str(n)) for n in range(10)]
    done = asyncio.Event()

    def visit(item: Item, now: float) -> None:
        visits.update([item])
        if item is items[3]:
            raise ValueError("one bad visit must not stop the sweep")
        if min(visits[i] for i in items) >= 3:
            done.set()

    sweeper = Sweeper[Item](visit, period=0.02, tick=0.002)
    for item in items:
        sweeper.add(item)
    sweeper.start()
    assert sweeper.running
    with pytest.raises(RuntimeError, match="already started"):
        sweeper.start()

    async with asyncio.timeout(2.0):
        await done.wait()
    await sweeper.stop()

    assert not sweeper.running
    seen = visits.copy()
    await asyncio.sleep(0.03)
    assert visits == seen, "visited after stop()"
    await sweeper.stop()  # a second stop does nothing


async def test_stop_before_start_and_restart() -> None:
    visited = asyncio.Event()
    sweeper = Sweeper[Item](lambda item, now: visited.set(), period=0.01, tick=0.002)
    await sweeper.stop()
    sweeper.add(Item("x"))

    for _ in range(2):
        visited.clear()
        sweeper.start()
        async with asyncio.timeout(2.0):
            await visited.wait()
        await sweeper.stop()
        assert not sweeper.running


async def test_cancelling_the_caller_of_stop_still_cancels_the_caller() -> None:
    sweeper = Sweeper[Item](lambda item, now: None, period=0.01, tick=0.002)
    sweeper.start()

    async def stopper() -> None:
        await sweeper.stop()

    task = asyncio.create_task(stopper())
    await asyncio.sleep(0)  # stopper is now waiting for the sweep task
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not sweeper.running
