"""One periodic sweep over every connection, instead of a timer or a task each.

A timer handle per connection costs memory (a ``TimerHandle`` and its
callback) and heap operations on every reset; a task per connection (picows'
auto-ping) costs far more. A ``Sweeper`` owns one task that wakes every
``tick`` seconds and visits the next slice of its items, so each item is
visited about once per ``period`` seconds and each wake-up does
``n * tick / period`` visits: O(n / period) work per second, never a full
scan in one go. Keep-alive (``gateway.keepalive``), call time-outs
(``gateway.callqueue``) and dropping settled flood states
(``gateway.ratelimit``) all fit in one ``visit(item, now)``.

Registration is O(1): a dict serves as an ordered set. A round walks a
snapshot of the keys (a list taken when the round begins, once per period),
so the visit may register and unregister items freely, itself included:

* an item unregistered during a round is skipped (a dict look-up before each
  visit), though the snapshot keeps a reference to it until the round ends;
* an item registered during a round is first visited in the next round, so
  within two periods, then once per period;
* an item's place in a round is its rank among the registered items, so when
  many items before it come or go between rounds, the gap between two of its
  visits strays from ``period`` by about the fraction that changed.

The number of visits per wake-up follows the time that really passed, not
the nominal tick, so a loop that runs late still completes a round per period
(a stall longer than a round finishes the current round, no more).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Sweeper"]

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Hashable)


class Sweeper(Generic[T]):
    """Calls ``visit(item, now)`` for each registered item about once per ``period`` seconds.

    ``now`` is the event loop's clock at the wake-up (``loop.time()``). An
    exception in a visit is logged and the sweep goes on. Lifecycle:
    ``start()`` inside the running loop, ``await stop()`` before it closes.
    """

    def __init__(self, visit: Callable[[T, float], object], *, period: float, tick: float) -> None:
        if not (tick > 0 and math.isfinite(tick)):
            raise ValueError(f"tick: must be a positive number of seconds, not {tick}")
        if not (period >= tick and math.isfinite(period)):
            raise ValueError(f"period: must be at least tick ({tick} s), not {period}")
        self._visit = visit
        self.period = period
        self.tick = tick
        self._items: dict[T, None] = {}
        self._round: list[T] = []
        self._cursor = 0
        # Visits owed but not yet made: a fraction carries over between wake-ups.
        self._credit = 0.0
        self._last: float | None = None
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def add(self, item: T) -> None:
        """Register ``item`` (again: no effect)."""
        self._items[item] = None

    def discard(self, item: T) -> None:
        """Unregister ``item``; not registered: no effect."""
        self._items.pop(item, None)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin sweeping on the running loop."""
        if self._task is not None:
            raise RuntimeError("Sweeper already started")
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._task = loop.create_task(self._run(loop), name="sweeper")
        self._task.add_done_callback(_report_death)

    async def stop(self) -> None:
        """Stop sweeping and wait until the task has ended. A visit is never cut in half:
        visits are synchronous, so the task is only ever cancelled between wake-ups."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            # Our own cancellation (not the sweeper's) must go on propagating.
            if current is not None and current.cancelling():
                raise

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self.advance(loop.time())

    def advance(self, now: float) -> int:
        """Visit the items owed for the time passed since the last call; how many were visited.

        The task calls this on every wake-up; tests call it with their own
        ``now`` to drive time. The first call only sets the clock (unless
        ``start`` did).
        """
        last = self._last
        if last is not None and now <= last:
            return 0  # the same instant, or a clock that went back: nothing owed
        self._last = now
        if last is None:
            return 0
        if self._cursor >= len(self._round):
            # A round ends here and the next begins: snapshot the keys, so
            # visits may add and remove items while we walk the list.
            self._round = list(self._items)
            self._cursor = 0
            if not self._round:
                self._credit = 0.0
                return 0
        rnd = self._round
        credit = self._credit + len(rnd) * (now - last) / self.period
        start = self._cursor
        stop = min(len(rnd), start + int(credit))
        # Whole visits owed beyond the end of this round are forgiven (the
        # next round starts on the next wake-up): after a stall, one catch-up
        # round is enough. So a round lasts from ``period`` to ``period + tick``.
        leftover = credit - (stop - start)
        self._credit = leftover if stop < len(rnd) else leftover % 1.0
        self._cursor = stop
        items = self._items
        visit = self._visit
        visited = 0
        for item in rnd[start:stop]:
            if item not in items:
                continue
            visited += 1
            try:
                visit(item, now)
            except Exception:
                log.exception("sweep: visit failed", extra={"item": repr(item)})
        if stop == len(rnd):
            # Do not hold on to items that may have gone until the next round.
            self._round = []
            self._cursor = 0
        return visited


def _report_death(task: asyncio.Task[None]) -> None:
    """The sweep loop never ends by itself; if it does, say so loudly."""
    if not task.cancelled() and task.exception() is not None:
        log.error("sweeper stopped", exc_info=task.exception())
