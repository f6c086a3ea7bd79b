"""Frames from the backend to charge points, and the one-CALL-at-a-time rule.

The bus hands each downlink over described (``ocppj.Downlink``): its kind
and message id come from whoever made the frame, or from the one reading
where only bytes arrive (an MQTT broker), never from a second parse here.
A backend CALL waits in its charger's ``CallQueue`` while an earlier one is
unanswered (OCPP: one outstanding CALL per direction); answers to the
charger's own CALLs go out at once. The periodic sweep calls ``expire``, the
uplink calls ``answered``, and a disconnect calls ``forget``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ocppj import Downlink, MessageType

from .callqueue import CallQueue, CallQueueConfig, QueueFull
from .config import GatewayConfig
from .connection import ChargePointConnection
from .connection_table import ConnectionTable
from .metrics import GatewayMetrics

__all__ = ["Downlinks"]

log = logging.getLogger(__name__)


class Downlinks:
    """Writes backend frames to the connections of ``table``.

    ``clock`` is the event loop's (``loop.time``), the time base of the
    command queues.
    """

    __slots__ = ("_calls", "_clock", "_max_write_buffer", "_metrics", "_table")

    def __init__(
        self,
        config: GatewayConfig,
        table: ConnectionTable[ChargePointConnection],
        metrics: GatewayMetrics,
        clock: Callable[[], float],
    ) -> None:
        self._table = table
        self._metrics = metrics
        self._clock = clock
        self._max_write_buffer = config.max_write_buffer
        self._calls = CallQueueConfig(
            call_timeout=config.call_timeout,
            queue_ttl=config.queue_ttl,
            max_queued=config.max_queued,
        )

    def deliver(self, charge_point_id: str, downlink: Downlink) -> bool:
        """Write a downlink to a connected charge point; False if it is not connected here."""
        connection = self._table.get(charge_point_id)
        if connection is None:
            self._metrics.errors["downlink for a charge point not here"] += 1
            return False
        if downlink.kind is not MessageType.CALL:
            self.send(connection, downlink.frame)
            return True
        calls = connection.calls
        if calls is None:
            calls = connection.calls = CallQueue(self._calls)
        try:
            frame = calls.send_or_queue(downlink.message_id, downlink.frame, self._clock())
        except QueueFull:
            self._metrics.errors["command line full"] += 1
            log.warning(
                "command dropped: too many waiting",
                extra={"chargePointId": charge_point_id, "messageId": downlink.message_id},
            )
            return True
        self._release(connection, frame)
        return True

    def answered(self, connection: ChargePointConnection, message_id: str, now: float) -> None:
        """The charger answered ``message_id``: the next command in line may go."""
        if connection.calls is not None:
            self._release(connection, connection.calls.answered(message_id, now))

    def expire(self, connection: ChargePointConnection, now: float) -> None:
        """The sweep's visit: drop commands that waited too long, release the next one."""
        calls = connection.calls
        if calls is None:
            return
        expired, frame = calls.tick(now)
        if expired:
            self._metrics.errors["command expired in line"] += len(expired)
            log.info(
                "commands expired before they could be sent",
                extra={"chargePointId": connection.charge_point_id, "messageIds": expired},
            )
        self._release(connection, frame)

    def forget(self, connection: ChargePointConnection) -> None:
        """The connection is gone: what waited for it is dropped, never sent to its successor."""
        if connection.calls is None:
            return
        dropped = connection.calls.drain()
        connection.calls = None
        if dropped:
            log.info(
                "commands dropped: charge point gone",
                extra={"chargePointId": connection.charge_point_id, "messageIds": dropped},
            )

    def send(self, connection: ChargePointConnection, frame: bytes) -> None:
        """Write one frame; a charger too slow to read it is disconnected."""
        self._metrics.frames_out += 1
        if not connection.send(frame, self._max_write_buffer):
            self._metrics.errors["slow reader"] += 1
            log.warning(
                "charge point too slow to read: disconnected",
                extra={"chargePointId": connection.charge_point_id},
            )

    def _release(self, connection: ChargePointConnection, frame: bytes | None) -> None:
        if frame is not None:
            self.send(connection, frame)
        if connection.calls is not None and connection.calls.is_idle:
            connection.calls = None
