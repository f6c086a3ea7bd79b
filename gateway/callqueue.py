"""One outstanding backend-to-charger CALL per charge point, the rest wait in line.

OCPP 2.0.1 says a CSMS SHALL NOT send a CALL before the previous one is
answered or timed out (1.6: SHOULD NOT), so the gateway, which sees every
frame of a connection, holds commands back here. Pure and synchronous: time
comes in as ``now`` (the loop's monotonic clock) and frames go out as return
values for the caller (``gateway.downlink.Downlinks``) to write.

Only CALLs the backend sends (downlinks of kind CALL) come here. CALLRESULTs
and CALLERRORs the backend sends answer the *charger's* CALLs; they never wait
behind ours (CALLs of the two sides may cross), so they are written at
once and must not route them through a ``CallQueue``. Conversely, every
CALLRESULT or CALLERROR the *charger* sends is passed to ``answered``, which
ignores ids it does not know.

How the gateway holds it: one slot per connection, None while no command is in
flight. The first command creates the queue (``send_or_queue`` returns the
frame at once); the line itself (a list) is made only when a second command
waits. When ``is_idle`` turns true the slot goes back to None.
The queue belongs to the connection, so a command never outlives the session
it was meant for: when a charge point reconnects it starts with nothing
queued (a stale command delivered to a new session is a known bug class);
``drain`` lists what is discarded.

Time-to-live and the processor: the processor starts its own answer timer
(``OCPP_CALL_TIMEOUT``) when it sends a command, not when we write it. A
command that waits here longer than that is answered after the processor
gave up, and the charger acts on a command the caller was told timed out.
So keep ``queue_ttl`` plus a typical answer time well below the processor's
timeout; the default waits 10 s at most.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CallQueue", "CallQueueConfig", "QueueFull"]


class QueueFull(Exception):
    """``max_queued`` commands already wait for this charge point."""


@dataclass(frozen=True, slots=True)
class CallQueueConfig:
    """Shared by every ``CallQueue`` of a gateway, so each queue holds one reference."""

    #: Seconds the outstanding CALL may wait for its answer before the next
    #: one goes (peers use 10 to 60 s).
    call_timeout: float = 30.0
    #: Seconds a command may wait in line; once that old it is dropped unsent.
    queue_ttl: float = 10.0
    #: Commands that may wait behind the outstanding one (0: none may).
    max_queued: int = 16

    def __post_init__(self) -> None:
        if not (self.call_timeout > 0 and math.isfinite(self.call_timeout)):
            raise ValueError(f"call_timeout: must be a positive number, not {self.call_timeout}")
        if not (self.queue_ttl > 0 and math.isfinite(self.queue_ttl)):
            raise ValueError(f"queue_ttl: must be a positive number, not {self.queue_ttl}")
        if self.max_queued < 0:
            raise ValueError(f"max_queued: must be 0 or more, not {self.max_queued}")


class CallQueue:
    """The CALLs the backend has for one charge point: one in flight, the rest in line.

    Invariant: something waits in line only while a CALL is outstanding, so
    ``outstanding is None`` means the charger is free. Message ids are unique
    per sender (the processor makes them); a repeated id is not detected.
    Time must not go backwards (``loop.time()``): commands wait in arrival
    order, so the oldest is always first in line.
    """

    __slots__ = ("_config", "_outstanding", "_deadline", "_waiting", "_dropped")

    def __init__(self, config: CallQueueConfig) -> None:
        self._config = config
        self._outstanding: str | None = None
        self._deadline = 0.0
        # (message id, frame, moment it expires), oldest first. A list rather
        # than a deque: an empty deque costs 600 bytes and the line is short.
        self._waiting: list[tuple[str, bytes, float]] | None = None
        # Ids that ``answered`` skipped as expired, until ``tick`` reports them.
        self._dropped: list[str] | None = None

    @property
    def outstanding(self) -> str | None:
        """The message id of the CALL the charger has not answered yet, or None."""
        return self._outstanding

    @property
    def queued(self) -> int:
        """Commands waiting in line (not counting the outstanding one)."""
        return len(self._waiting) if self._waiting else 0

    @property
    def is_idle(self) -> bool:
        """Nothing in flight, nothing in line, nothing left to report: drop this object."""
        return self._outstanding is None and not self._waiting and not self._dropped

    def send_or_queue(self, message_id: str, frame: bytes, now: float) -> bytes | None:
        """``frame`` if it may be written now (it becomes the outstanding CALL), else None.

        None means it waits in line; ``answered`` or ``tick`` returns it when
        its turn comes. Raises ``QueueFull`` when ``max_queued`` already wait.
        """
        if self._outstanding is None:
            self._outstanding = message_id
            self._deadline = now + self._config.call_timeout
            return frame
        waiting = self._waiting
        if waiting is None:
            waiting = self._waiting = []
        if len(waiting) >= self._config.max_queued:
            raise QueueFull(
                f"{len(waiting)} commands already wait for an answer to {self._outstanding}"
            )
        waiting.append((message_id, frame, now + self._config.queue_ttl))
        return None

    def answered(self, message_id: str, now: float) -> bytes | None:
        """The charger answered ``message_id``; the next frame to write, or None.

        An id that is not the outstanding CALL (an answer after its time-out,
        or to nothing we sent) changes nothing. Commands that expired in line
        are skipped, and the next ``tick`` reports their ids.
        """
        if message_id != self._outstanding:
            return None
        self._outstanding = None
        self._expire(now)
        return self._next(now)

    def tick(self, now: float) -> tuple[list[str], bytes | None]:
        """Time passes: the ids of commands dropped unsent, and the next frame to write.

        An outstanding CALL unanswered for ``call_timeout`` seconds is
        released (its id is not in the list: it was written; the processor
        times it out itself); commands ``queue_ttl`` old are dropped; then, if
        the charger is free, the next command in line becomes outstanding and
        its frame is returned. Call it from the periodic sweep.
        """
        if self._outstanding is not None and now >= self._deadline:
            self._outstanding = None
        self._expire(now)
        dropped, self._dropped = self._dropped, None
        frame = self._next(now) if self._outstanding is None else None
        return (dropped or []), frame

    def drain(self) -> list[str]:
        """Forget everything (the connection is gone); the ids dropped unsent."""
        dropped = self._dropped or []
        if self._waiting:
            dropped.extend(message_id for message_id, _, _ in self._waiting)
        self._outstanding = None
        self._waiting = None
        self._dropped = None
        return dropped

    def _expire(self, now: float) -> None:
        """Move the commands whose time-to-live has run out from the line to ``_dropped``."""
        waiting = self._waiting
        if not waiting:
            return
        expired = 0
        for _, _, expires in waiting:
            if now < expires:
                break
            expired += 1
        if expired:
            if self._dropped is None:
                self._dropped = []
            self._dropped.extend(message_id for message_id, _, _ in waiting[:expired])
            del waiting[:expired]

    def _next(self, now: float) -> bytes | None:
        """Make the first command in line outstanding; its frame, or None if none waits."""
        waiting = self._waiting
        if not waiting:
            self._waiting = None
            return None
        message_id, frame, _ = waiting.pop(0)
        if not waiting:
            self._waiting = None
        self._outstanding = message_id
        self._deadline = now + self._config.call_timeout
        return frame
