"""What the processor core needs to know, decided once by the deployable."""

from __future__ import annotations

from dataclasses import dataclass

from .environment import Environment, flag, integer, number

__all__ = ["PROCESSOR_ENVIRONMENT", "ProcessorConfig", "processor_config"]

#: The variables ``processor_config`` reads, with their defaults: part of the
#: environment of every deployable that runs the processor.
PROCESSOR_ENVIRONMENT = {
    "OCPP_HEARTBEAT_INTERVAL": "300",
    "OCPP_CALL_TIMEOUT": "30",
    "OCPP_SHADOW_TRANSACTION_READINGS": "false",
}


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    #: Seconds between heartbeats, sent to charge points in BootNotification.
    heartbeat_interval: int = 300
    #: Seconds a backend command waits for the charger's answer; a later
    #: answer is logged and ignored, so a stale command never takes effect.
    call_timeout: float = 30.0
    #: Whether readings taken within a transaction also go to the shadow: the
    #: last one per connector (1.6 MeterValues) and every periodic 2.0.1
    #: event as ``lastTransactionEvent``. Off, they go to the transaction
    #: history only, and the shadow changes only when state does: a shadow
    #: update (and, for 2.0.1, a shadow read and a history write) less per
    #: reading, the most frequent CALL of a charging fleet.
    shadow_transaction_readings: bool = False

    def __post_init__(self) -> None:
        if self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval: must be a positive number of seconds")
        if self.call_timeout <= 0:
            raise ValueError("call_timeout: must be a positive number of seconds")


def processor_config(env: Environment) -> ProcessorConfig:
    """The processor's settings, read from ``PROCESSOR_ENVIRONMENT``'s variables."""
    return env.build(
        ProcessorConfig,
        heartbeat_interval=integer("OCPP_HEARTBEAT_INTERVAL"),
        call_timeout=number("OCPP_CALL_TIMEOUT"),
        shadow_transaction_readings=flag("OCPP_SHADOW_TRANSACTION_READINGS"),
    )
