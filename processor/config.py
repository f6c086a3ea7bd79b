"""What the processor core needs to know, decided once by the deployable."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ProcessorConfig"]


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    #: Seconds between heartbeats, sent to charge points in BootNotification.
    heartbeat_interval: int = 300

    def __post_init__(self) -> None:
        if self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval: must be a positive number of seconds")
