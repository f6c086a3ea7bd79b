"""How long to wait before connecting again: one policy for every MQTT client here."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter, capped.

    Attempt ``n`` (1, 2, ...) waits between half and all of
    ``min(maximum, initial * 2 ** (n - 1))``: after a broker outage the
    connections of every gateway task and worker come back spread out rather
    than in one CONNECT storm (AWS IoT Core allows 500 CONNECTs a second per
    account, and one per second per client id), and never sooner than half
    the nominal delay. A session that lasted ``stable`` seconds starts the
    count again.

    Tests that exercise reconnecting use ``Backoff.immediate()`` (or small
    numbers) instead of sleeping through real delays.
    """

    initial: float = 1.0
    maximum: float = 30.0
    #: A session that lived this long (seconds) resets the attempt count.
    stable: float = 10.0
    #: Uniform in [0, 1): the source of jitter (a test seam).
    rand: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "stable"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name}: must be a number of seconds")
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: must be a finite, non-negative number of seconds")
        if self.maximum < self.initial:
            raise ValueError("maximum: must be at least initial")

    @classmethod
    def immediate(cls) -> Backoff:
        """Reconnect at once, every time (tests)."""
        return cls(0.0, 0.0, 0.0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (1, 2, ...)."""
        ceiling: float = min(self.maximum, self.initial * 2.0 ** min(max(attempt, 1) - 1, 32))
        return ceiling / 2 + self.rand() * ceiling / 2
