"""Adapters of the processor's ports. SQLite backs the embedded default."""

from __future__ import annotations

from ._sqlite import DATABASE_FILE, Database
from .sqlite_registry import SqliteRegistry
from .sqlite_shadow import SqliteShadowStore

__all__ = ["DATABASE_FILE", "Database", "SqliteRegistry", "SqliteShadowStore"]
