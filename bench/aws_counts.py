"""The pipeline's billable counts over its load window, per charger-second.

``PipelineMeter`` watches a running pipeline (``bench.systems.pipeline``):
an MQTT observer on its broker (``bench.mqtt_observer``), its SQLite state
(``bench.store_counts``) and its processes' log files. ``open_window`` and
``close_window`` mark the load window; ``figures`` turns what happened in it
into the per charger-second rates that ``bench.cost`` prices, divided like
``messages_per_charger_second`` by the *equivalent* chargers (connected x
``rate_scale``) and the window's seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from .mqtt_observer import TopicCounts, observe
from .store_counts import StoreCounts, StoreSnapshot, count_changes, snapshot
from .systems import System

__all__ = ["PipelineMeter", "per_charger_second"]

_HOST = "127.0.0.1"


class PipelineMeter:
    """Counts for the bill of one pipeline run (see the module's docstring)."""

    def __init__(self, system: System, prefix: str) -> None:
        if system.broker_port is None or system.database is None:
            raise ValueError("PipelineMeter needs a pipeline system (a broker and a state file)")
        self._system = system
        self._database: Path = system.database
        self._prefix = prefix
        self._stack = contextlib.AsyncExitStack()
        self._counts = TopicCounts()
        self._first: tuple[TopicCounts, StoreSnapshot, dict[str, int]] | None = None
        self._last: tuple[TopicCounts, StoreSnapshot, dict[str, int]] | None = None

    async def __aenter__(self) -> PipelineMeter:
        port = self._system.broker_port
        assert port is not None  # checked in __init__
        self._counts = await self._stack.enter_async_context(observe(_HOST, port, self._prefix))
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _reading(self) -> tuple[TopicCounts, StoreSnapshot, dict[str, int]]:
        counts = self._counts.copy()
        state = await asyncio.to_thread(snapshot, self._database)
        return counts, state, _log_sizes(self._system.log_paths)

    async def open_window(self) -> None:
        self._first = await self._reading()

    async def close_window(self) -> None:
        self._last = await self._reading()

    async def figures(
        self, *, equivalent: float, seconds: float, commands_sent: int, commands_answered: int
    ) -> dict[str, Any]:
        """The window's counts and their rates per charger-second (empty if
        the window was not both opened and closed)."""
        if self._first is None or self._last is None or equivalent <= 0 or seconds <= 0:
            return {}
        counts = self._last[0].minus(self._first[0])
        presence = counts.total().presence
        store = await asyncio.to_thread(
            count_changes,
            self._database,
            self._first[1],
            self._last[1],
            commands_sent=commands_sent,
            commands_answered=commands_answered,
            presence=presence,
        )
        logs = {
            name: self._last[2].get(name, 0) - self._first[2].get(name, 0)
            for name in self._system.log_paths
        }
        return window_figures(counts, store, logs, equivalent=equivalent, seconds=seconds)


def window_figures(
    counts: TopicCounts,
    store: StoreCounts,
    log_bytes: Mapping[str, int],
    *,
    equivalent: float,
    seconds: float,
) -> dict[str, Any]:
    """The derived figures of one load window (``PipelineMeter.figures``)."""
    rate = per_charger_second(equivalent, seconds)
    uplinks = counts.total("uplink", "uplink_batch")
    downlinks = counts.total("downlink", "downlink_batch")
    alone = counts.by_class["presence"]
    everything = counts.total()
    frames = uplinks.frames + uplinks.presence + downlinks.frames + alone.presence
    publishes = uplinks.publishes + downlinks.publishes + alone.publishes
    return {
        "mqtt_uplink_publishes_per_charger_second": rate(uplinks.publishes),
        "mqtt_downlink_publishes_per_charger_second": rate(downlinks.publishes),
        "mqtt_presence_publishes_per_charger_second": rate(alone.publishes),
        # What the processor handles: uplink frames and presence, alone or batched.
        "mqtt_uplink_frames_per_charger_second": rate(
            uplinks.frames + uplinks.presence + alone.presence
        ),
        "mqtt_uplink_frames_per_publish": _ratio(
            uplinks.frames + uplinks.presence, uplinks.publishes
        ),
        "mqtt_downlink_frames_per_publish": _ratio(downlinks.frames, downlinks.publishes),
        "mqtt_frames_per_publish": _ratio(frames, publishes),
        "mqtt_payload_bytes_per_charger_second": rate(everything.payload_bytes),
        # Each publish once, as the broker took it in; the cost model counts
        # IoT Core's delivery out as well.
        "iot_message_units_per_charger_second": rate(everything.iot_units),
        "iot_rule_triggers_per_charger_second": rate(uplinks.publishes + alone.publishes),
        "shadow_updates_per_charger_second": rate(store.shadow_updates),
        "shadow_reads_per_charger_second": rate(store.shadow_reads),
        "shadow_units_per_charger_second": rate(store.shadow_units),
        "dynamodb_writes_per_charger_second": rate(store.dynamodb_writes),
        "dynamodb_write_units_per_charger_second": rate(store.dynamodb_write_units),
        "dynamodb_reads_per_charger_second": rate(store.dynamodb_reads),
        "dynamodb_read_units_per_charger_second": rate(store.dynamodb_read_units),
        "dynamodb_stored_bytes_per_charger_second": rate(store.dynamodb_stored_bytes),
        "log_bytes_per_charger_second": rate(sum(log_bytes.values())),
        "window_counts": {
            "mqtt": counts.as_dict(),
            "store": store.as_dict(),
            "log_bytes": dict(log_bytes),
        },
    }


def per_charger_second(equivalent: float, seconds: float) -> Callable[[float], float]:
    """``count -> count / equivalent / seconds``, to 9 significant digits."""

    def rate(count: float) -> float:
        return float(f"{count / equivalent / seconds:.9g}")

    return rate


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _log_sizes(paths: Mapping[str, Path]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for name, path in paths.items():
        with contextlib.suppress(OSError):
            sizes[name] = path.stat().st_size
    return sizes
