"""Structured logs: one JSON object per line, on standard error.

Code logs an event as the message and the facts as ``extra`` fields
(``log.info("charge point connected", extra={"chargePointId": cp})``);
the formatter writes them as keys of the same object. Passwords and id
tokens are never passed to a logger in the first place.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["JsonFormatter", "configure_logging"]

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # picows logs every accept and disconnect at INFO; ours say who it was.
    logging.getLogger("picows").setLevel(max(logging.WARNING, root.level))
    # gmqtt logs every packet at INFO; the bus logs what matters itself.
    for name in ("gmqtt", "mqttio.gmqtt"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
