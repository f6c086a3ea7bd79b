"""The ``ocppgw`` command and the embedded default that runs the whole system.

``EmbeddedSystem`` and ``run_embedded`` load the embedded system on first
use: ``ocppgw gateway`` imports this package and must not load the
processor's handlers and schemas with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import DevSettings, SettingsError

if TYPE_CHECKING:
    from .embedded import EmbeddedSystem, run_embedded

__all__ = ["DevSettings", "EmbeddedSystem", "SettingsError", "run_embedded"]


def __getattr__(name: str) -> Any:
    if name not in ("EmbeddedSystem", "run_embedded"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import embedded  # noqa: PLC0415 - the point of this function

    value = getattr(embedded, name)
    globals()[name] = value  # later look-ups find it without this function
    return value
