"""The ``ocppgw`` command and the embedded default that runs the whole system."""

from __future__ import annotations

from .embedded import EmbeddedSystem, run_embedded
from .settings import DevSettings, SettingsError

__all__ = ["DevSettings", "EmbeddedSystem", "SettingsError", "run_embedded"]
