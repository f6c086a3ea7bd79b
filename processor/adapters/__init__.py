"""Adapters of the processor's ports. SQLite backs the embedded default."""

from __future__ import annotations

from ._sqlite import DATABASE_FILE, Database
from .sqlite_pending_calls import SqlitePendingCalls
from .sqlite_registry import SqliteRegistry
from .sqlite_shadow import SqliteShadowStore
from .sqlite_transactions import SqliteTransactions
from .static_id_tokens import StaticIdTokens, load_id_tokens

__all__ = [
    "DATABASE_FILE",
    "Database",
    "SqlitePendingCalls",
    "SqliteRegistry",
    "SqliteShadowStore",
    "SqliteTransactions",
    "StaticIdTokens",
    "load_id_tokens",
]
