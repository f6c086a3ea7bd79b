"""The embedded default's bus: a bounded queue between gateway and processor.

Frames wait in one queue and a few worker tasks hand them to the processor,
so publishing costs an append, never a task per message. A charge point has
at most one CALL outstanding, so concurrent workers do not reorder its
conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ocppj import Downlink

from .bus import BusFull, Deliver

__all__ = ["FrameHandler", "InProcessBus"]

log = logging.getLogger(__name__)

#: ``handle(charge_point_id, subprotocol, frame) -> answer or None``; the
#: answer comes described (``Processor.reply``), so it reaches ``deliver`` unread.
FrameHandler = Callable[[str, str, bytes], Awaitable[Downlink | None]]


def _nothing() -> None:
    pass


class InProcessBus:
    """``handle`` may be given later with ``set_handler`` (before ``start``):
    the processor's outbound port needs the gateway, which needs this bus."""

    def __init__(
        self, handle: FrameHandler | None = None, *, workers: int = 4, capacity: int = 10_000
    ) -> None:
        self._handle = handle
        self._workers = workers
        self._queue: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue(capacity)
        self._tasks: set[asyncio.Task[None]] = set()
        # Saturated above 3/4 of the capacity, drained again below 1/4: the
        # gap keeps the gateway from pausing and resuming on every frame.
        self._high = max(1, capacity * 3 // 4)
        self._low = capacity // 4
        self._saturated = False
        self._on_drained: Callable[[], None] = _nothing

    def set_handler(self, handle: FrameHandler) -> None:
        self._handle = handle

    async def start(self, deliver: Deliver, on_drained: Callable[[], None] = _nothing) -> None:
        handle = self._handle
        if handle is None:
            raise RuntimeError("InProcessBus.start() before set_handler()")
        self._on_drained = on_drained
        for n in range(self._workers):
            task = asyncio.create_task(self._work(handle, deliver), name=f"inprocess-bus-{n}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def publish(self, charge_point_id: str, subprotocol: str, frame: bytes) -> None:
        try:
            self._queue.put_nowait((charge_point_id, subprotocol, frame))
        except asyncio.QueueFull:
            raise BusFull(f"{self._queue.maxsize} frames waiting for the processor") from None
        if self._queue.qsize() >= self._high:
            self._saturated = True

    def announce(self, charge_point_id: str, subprotocol: str, connected: bool) -> None:
        """Nothing to do: in one process the processor reaches the gateway directly."""

    @property
    def saturated(self) -> bool:
        return self._saturated

    @property
    def healthy(self) -> bool:
        """In-process: up while its workers run."""
        return bool(self._tasks)

    @property
    def pending(self) -> int:
        """Frames published and not yet processed."""
        return self._queue.qsize()

    async def close(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._queue.qsize():
            log.warning("bus closed with frames undelivered", extra={"frames": self._queue.qsize()})

    async def _work(self, handle: FrameHandler, deliver: Deliver) -> None:
        while True:
            charge_point_id, subprotocol, frame = await self._queue.get()
            try:
                answer = await handle(charge_point_id, subprotocol, frame)
                if answer is not None and not deliver(charge_point_id, answer):
                    log.info(
                        "answer dropped: charge point gone",
                        extra={"chargePointId": charge_point_id},
                    )
            except Exception:
                log.exception("processing failed", extra={"chargePointId": charge_point_id})
            finally:
                self._queue.task_done()
                if self._saturated and self._queue.qsize() <= self._low:
                    self._saturated = False
                    self._on_drained()
