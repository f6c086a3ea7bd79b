"""Stop reading from charge points while the bus is full, so that their
frames wait in the kernel and in the chargers, not in our memory.

Two reasons to pause a reader:

* The bus is saturated: then *every* charge point is held until the bus
  calls ``drained``, and so is each new one as its upgrade completes.
  Pausing only those that send is not enough when many send at once: in a
  reconnect storm every charger sends one BootNotification, and thousands of
  first frames would overflow the bus and be refused.
* One charger exceeds its rate (``slow_down``): it alone is paused for the
  delay the flood policy gives, with one timer while it is slowed.

A paused charger's pongs wait unread too, so the keepalive sweep asks
``is_paused`` before it judges a silence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

__all__ = ["Backpressure", "Gauge", "Reader"]


class Reader(Protocol):
    """A connection whose socket reads can be paused."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Gauge(Protocol):
    """The part of the bus that says whether it is full."""

    @property
    def saturated(self) -> bool: ...


R = TypeVar("R", bound=Reader)


class Backpressure(Generic[R]):
    """Who is paused, and why it ends: ``drained`` for the hold, a timer for a slow-down.

    ``readers`` is every live connection (the connection table), walked only
    when the hold begins.
    """

    __slots__ = ("_bus", "_holding", "_paused", "_readers")

    def __init__(self, readers: Iterable[R], bus: Gauge) -> None:
        self._readers = readers
        self._bus = bus
        self._paused: set[R] = set()
        #: Every charge point is paused until the bus drains.
        self._holding = False

    @property
    def holding(self) -> bool:
        """True from the moment the bus saturated until it drained."""
        return self._holding

    @property
    def paused(self) -> int:
        """Readers paused now (for any reason)."""
        return len(self._paused)

    def is_paused(self, reader: R) -> bool:
        return reader in self._paused

    def joined(self, reader: R) -> None:
        """A new connection: held at once if everyone is, and its arrival may
        be what fills the bus (presence messages in a reconnect storm)."""
        if self._holding:  # its first frame waits in the kernel like the others'
            self._pause(reader)
        elif self._bus.saturated:
            self.hold_everyone()

    def left(self, reader: R) -> None:
        self._paused.discard(reader)

    def check(self) -> None:
        """After a publish: hold everyone if that filled the bus."""
        if not self._holding and self._bus.saturated:
            self.hold_everyone()

    def hold_everyone(self) -> None:
        """Stop reading from every charge point until ``drained``."""
        self._holding = True
        for reader in self._readers:
            self._pause(reader)

    def slow_down(self, reader: R, delay: float) -> None:
        """Stop reading ``reader`` for ``delay`` seconds (unless it is paused already)."""
        if reader in self._paused:
            return
        self._pause(reader)
        asyncio.get_running_loop().call_later(delay, self._resume, reader)

    def drained(self) -> None:
        """The bus has room again: read from every paused charge point."""
        self._holding = False
        paused, self._paused = self._paused, set()
        for reader in paused:
            reader.resume_reading()

    def _pause(self, reader: R) -> None:
        if reader not in self._paused:
            reader.pause_reading()
            self._paused.add(reader)

    def _resume(self, reader: R) -> None:
        # A hold that began meanwhile keeps it paused until the bus drains.
        if reader in self._paused and not self._bus.saturated:
            self._paused.discard(reader)
            reader.resume_reading()
