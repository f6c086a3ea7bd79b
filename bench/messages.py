"""The OCPP messages a simulated charger sends, in each version's own shape.

Every payload built here passes the official schema of its version (the
smoke test runs them through the real processor), so a benchmark measures
the system doing its real work, not rejecting malformed frames.
"""

from __future__ import annotations

import datetime
from typing import Any

__all__ = [
    "PROTOCOLS",
    "boot",
    "meter_reading",
    "now",
    "session_end",
    "session_start",
    "status",
]

PROTOCOLS = ("ocpp1.6", "ocpp2.0.1")
V16, V201 = PROTOCOLS

Call = tuple[str, dict[str, Any]]

_BOOT: dict[str, dict[str, Any]] = {
    V16: {"chargePointVendor": "BenchVendor", "chargePointModel": "BenchModel"},
    V201: {
        "reason": "PowerUp",
        "chargingStation": {"model": "BenchModel", "vendorName": "BenchVendor"},
    },
}


def now() -> str:
    """The current UTC time as OCPP writes it."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def boot(protocol: str) -> Call:
    return "BootNotification", _BOOT[protocol]


def status(protocol: str, charging: bool) -> Call:
    """The connector's StatusNotification at a session's start or end."""
    if protocol == V16:
        return "StatusNotification", {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Charging" if charging else "Available",
            "timestamp": now(),
        }
    return "StatusNotification", {
        "timestamp": now(),
        "connectorStatus": "Occupied" if charging else "Available",
        "evseId": 1,
        "connectorId": 1,
    }


def session_start(
    protocol: str, id_tag: str, meter_wh: int, transaction_id: str, remote_start_id: int | None
) -> Call:
    """StartTransaction (1.6) or TransactionEvent ``Started`` (2.0.1)."""
    if protocol == V16:
        return "StartTransaction", {
            "connectorId": 1,
            "idTag": id_tag,
            "meterStart": meter_wh,
            "timestamp": now(),
        }
    info: dict[str, Any] = {"transactionId": transaction_id, "chargingState": "Charging"}
    if remote_start_id is not None:
        info["remoteStartId"] = remote_start_id
    return "TransactionEvent", {
        "eventType": "Started",
        "timestamp": now(),
        "triggerReason": "RemoteStart" if remote_start_id is not None else "Authorized",
        "seqNo": 0,
        "transactionInfo": info,
        "idToken": {"idToken": id_tag, "type": "ISO14443"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [_reading_201(meter_wh, 0.0)],
    }


def meter_reading(
    protocol: str, transaction_id: str | int, meter_wh: int, power_w: float, seq_no: int
) -> Call:
    """A periodic reading during a session: MeterValues (1.6) or a TransactionEvent
    ``Updated`` (2.0.1, where sampled data of a transaction travels)."""
    if protocol == V16:
        return "MeterValues", {
            "connectorId": 1,
            "transactionId": transaction_id,
            "meterValue": [
                {
                    "timestamp": now(),
                    "sampledValue": [
                        {
                            "value": str(meter_wh),
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh",
                        },
                        {
                            "value": f"{power_w:.0f}",
                            "measurand": "Power.Active.Import",
                            "unit": "W",
                        },
                    ],
                }
            ],
        }
    return "TransactionEvent", {
        "eventType": "Updated",
        "timestamp": now(),
        "triggerReason": "MeterValuePeriodic",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": transaction_id, "chargingState": "Charging"},
        "meterValue": [_reading_201(meter_wh, power_w)],
    }


def session_end(
    protocol: str, transaction_id: str | int, meter_wh: int, seq_no: int, remote: bool
) -> Call:
    """StopTransaction (1.6) or TransactionEvent ``Ended`` (2.0.1)."""
    reason = "Remote" if remote else "Local"
    if protocol == V16:
        return "StopTransaction", {
            "transactionId": transaction_id,
            "meterStop": meter_wh,
            "timestamp": now(),
            "reason": reason,
        }
    return "TransactionEvent", {
        "eventType": "Ended",
        "timestamp": now(),
        "triggerReason": "RemoteStop" if remote else "StopAuthorized",
        "seqNo": seq_no,
        "transactionInfo": {
            "transactionId": transaction_id,
            "chargingState": "Idle",
            "stoppedReason": reason,
        },
        "meterValue": [_reading_201(meter_wh, 0.0)],
    }


def _reading_201(meter_wh: int, power_w: float) -> dict[str, Any]:
    return {
        "timestamp": now(),
        "sampledValue": [
            {
                "value": float(meter_wh),
                "measurand": "Energy.Active.Import.Register",
                "unitOfMeasure": {"unit": "Wh"},
            },
            {
                "value": power_w,
                "measurand": "Power.Active.Import",
                "unitOfMeasure": {"unit": "W"},
            },
        ],
    }
