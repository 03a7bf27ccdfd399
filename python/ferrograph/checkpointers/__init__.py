"""Checkpoint savers: where a graph's steps are persisted. Every saver speaks LangGraph's saver
protocol (`BaseCheckpointSaver`).

The SQL savers are imported on first use, so that their drivers (aiosqlite; psycopg and
psycopg_pool, from the `postgres` extra) are needed only by those who use them.
`open_saver(url)` opens the right one from a URL (a SQLite path or a postgresql:// URL).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ferrograph.checkpointers.base import BaseCheckpointSaver, Checkpoint, CheckpointMetadata, CheckpointTuple
from ferrograph.checkpointers.encryption import Encryption
from ferrograph.checkpointers.memory import InMemorySaver, MemorySaver
from ferrograph.checkpointers.retention import Retention, RetentionResult

if TYPE_CHECKING:
    from ferrograph.checkpointers.aio import AsyncPostgresSaver, AsyncSqliteSaver
    from ferrograph.checkpointers.postgres import PostgresSaver
    from ferrograph.checkpointers.sqlite import SqliteSaver
    from ferrograph.checkpointers.url import open_saver

__all__ = [
    "InMemorySaver",
    "MemorySaver",
    "AsyncPostgresSaver",
    "AsyncSqliteSaver",
    "BaseCheckpointSaver",
    "Checkpoint",
    "CheckpointMetadata",
    "CheckpointTuple",
    "Encryption",
    "PostgresSaver",
    "Retention",
    "RetentionResult",
    "SqliteSaver",
    "open_saver",
]

_LAZY = {
    "SqliteSaver": "ferrograph.checkpointers.sqlite",
    "PostgresSaver": "ferrograph.checkpointers.postgres",
    "AsyncSqliteSaver": "ferrograph.checkpointers.aio",
    "AsyncPostgresSaver": "ferrograph.checkpointers.aio",
    "open_saver": "ferrograph.checkpointers.url",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
