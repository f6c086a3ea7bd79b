"""Flow control of what a charge point sends: a token bucket and a flood policy.

Both are pure: time comes in as ``now`` (the event loop's monotonic clock),
nothing schedules anything, and all of it runs on the loop's thread, so
there are no locks.

``TokenBucket`` is the textbook primitive, for whoever needs one.

``FloodPolicy`` is what the gateway applies to every incoming message. It is
shared by all connections (a frozen dataclass); what each connection carries
is a ``FloodState`` of four slots, and only while it matters: a state whose
bucket has refilled and whose strikes have expired can be dropped and made
again on the next message (``FloodPolicy.is_settled``), so an idle charge point
need hold none.

Why a message over budget is slowed rather than refused: a charger that gets
no answer to a CALL retries it, so dropping frames only adds traffic. The
message in hand was already read; the server relays it and then stops reading
this transport for ``Slow.delay`` seconds, so the kernel's receive buffer and
TCP push back on the charger. To keep the long-run rate at ``rate`` the bucket
is charged for that message too and goes into debt; the pause lasts until the
debt is repaid.

Why a strike is a message that arrives *during* a pause, not every message
over budget: a well-behaved charger has one CALL outstanding and waits for its
answer (OCPP-J), so while we pause it sends nothing more. Such a charger
replaying a long offline backlog is over budget on every message, and
disconnecting it would only make it reconnect and replay again; slowing it is
the whole cure. A message that arrives while the bucket is still in debt
(by more than half a token, which absorbs timer granularity) means the peer
pipelines frames without waiting: that is a flood, and ``strikes`` of them
within ``strike_window`` seconds disconnect it. (Frames read before the pause
began also arrive in debt; a compliant charger has at most one or two in
flight, far fewer than ``strikes``.)
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = [
    "ALLOW",
    "DISCONNECT",
    "FloodPolicy",
    "FloodState",
    "Slow",
    "TokenBucket",
    "Verdict",
    "Flow",
]


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; each message takes one.

    Starts full. ``take`` never goes into debt (compare ``FloodPolicy``). A
    clock that goes backwards (it should not: use ``loop.time()``) refills
    nothing and does not move ``stamp`` back.
    """

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if not rate > 0:
            raise ValueError(f"rate: must be positive, not {rate}")
        if not burst >= 1:
            raise ValueError(f"burst: must be at least 1, not {burst}")
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = self.burst
        self.stamp = now

    def take(self, now: float) -> bool:
        """Refill for the time since the last call, then take one token if there is one."""
        elapsed = now - self.stamp
        if elapsed > 0:
            tokens = self.tokens + elapsed * self.rate
            self.tokens = tokens if tokens < self.burst else self.burst
            self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait_time(self, now: float) -> float:
        """Seconds from ``now`` until ``take`` would succeed (0 if it would now)."""
        elapsed = now - self.stamp
        tokens = self.tokens + elapsed * self.rate if elapsed > 0 else self.tokens
        if tokens >= 1:
            return 0.0
        return (1 - tokens) / self.rate


class Flow(enum.Enum):
    """The verdicts that carry no number; a pause is a ``Slow``."""

    ALLOW = "allow"
    DISCONNECT = "disconnect"


#: Relay the message; nothing else to do.
ALLOW: Final = Flow.ALLOW
#: A flood: close the connection (1008 policy violation is the fitting code).
DISCONNECT: Final = Flow.DISCONNECT


# Not frozen: a frozen dataclass's __init__ takes twice as long, and a flood
# makes one of these per message.
@dataclass(slots=True)
class Slow:
    """Relay the message, then pause reading this transport for ``delay`` seconds."""

    delay: float


#: ``ALLOW``, ``DISCONNECT`` (test with ``is``), or a ``Slow``.
Verdict: TypeAlias = Literal[Flow.ALLOW, Flow.DISCONNECT] | Slow


#: Debt (in tokens) that does not yet count as "arrived during a pause". The
#: server resumes reading with a timer, and uvloop's clock and timers tick in
#: milliseconds: a compliant charger read a moment early must not strike.
_DEBT_SLACK: Final = 0.5


class FloodState:
    """One connection's standing with a ``FloodPolicy``; make it with ``policy.new_state``.

    Four slots, no container: ``tokens`` (negative while in debt), ``stamp``
    (when ``tokens`` was last brought up to date), ``strikes`` (in the current
    window) and ``window_start`` (time of the window's first strike).
    """

    __slots__ = ("tokens", "stamp", "strikes", "window_start")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        self.strikes = 0
        self.window_start = 0.0


@dataclass(frozen=True, slots=True)
class FloodPolicy:
    """How fast one charge point may send, and when slowing turns into disconnecting.

    The defaults leave room for what chargers really do: a boot sends a
    BootNotification and a StatusNotification per connector in a burst, and
    the steady state is a few messages a minute (heartbeat, meter values).
    """

    #: Messages per second, sustained.
    rate: float = 10.0
    #: Messages that may arrive at once after a quiet spell (at least 1).
    burst: float = 50.0
    #: Messages arriving during a pause, within ``strike_window``, that
    #: disconnect: the ``strikes``-th one gets ``DISCONNECT``.
    strikes: int = 20
    #: Seconds from a window's first strike; a strike after that opens a new window.
    strike_window: float = 60.0

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"rate: must be a positive number, not {self.rate}")
        if not (self.burst >= 1 and math.isfinite(self.burst)):
            raise ValueError(f"burst: must be at least 1, not {self.burst}")
        if self.strikes < 1:
            raise ValueError(f"strikes: must be at least 1, not {self.strikes}")
        if not self.strike_window > 0:
            raise ValueError(f"strike_window: must be positive, not {self.strike_window}")

    def new_state(self, now: float) -> FloodState:
        """A connection's state with a full bucket: what a new or settled connection gets."""
        return FloodState(self.burst, now)

    def judge(self, state: FloodState, now: float) -> Verdict:
        """The verdict on one incoming message, charging it to ``state``.

        Call it once per whole message, before relaying it. ``Slow`` and
        ``DISCONNECT`` are returned only for messages over budget.
        """
        burst = self.burst
        tokens = state.tokens
        elapsed = now - state.stamp
        if elapsed > 0:
            tokens += elapsed * self.rate
            # Not min(): on this path a call costs more than the comparison.
            tokens = tokens if tokens < burst else burst
            state.stamp = now
        if tokens >= 1:
            state.tokens = tokens - 1
            return ALLOW
        if tokens < -_DEBT_SLACK:
            # Still in debt: we asked for a pause and a message came anyway.
            if state.strikes and now - state.window_start < self.strike_window:
                state.strikes += 1
            else:
                state.strikes = 1
                state.window_start = now
            if state.strikes >= self.strikes:
                state.tokens = tokens
                return DISCONNECT
        tokens -= 1
        state.tokens = tokens
        return Slow(-tokens / self.rate)

    def is_settled(self, state: FloodState, now: float) -> bool:
        """True when ``state`` behaves like ``new_state(now)``: bucket full, no strike window.

        The server may then drop it (a connection slot set to None) and call
        ``new_state`` on the next message: an idle charge point holds nothing.
        A periodic sweep is the place to ask.
        """
        if state.strikes and now - state.window_start < self.strike_window:
            return False
        return state.tokens + (now - state.stamp) * self.rate >= self.burst
