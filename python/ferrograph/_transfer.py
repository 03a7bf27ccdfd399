"""Moving threads between savers (`ferrograph copy`, `ferrograph import-langgraph`), through
the saver protocol only, so any saver can be a source or a destination.

A thread is copied oldest checkpoint first. Each checkpoint is `put` with its original parent
config (so branches keep their parent links), its own id, metadata and channel versions, and as
`new_versions` the channels whose version moved since its parent (the others' values are
already stored with the parent). Its pending writes follow with `put_writes`, one call per task
(regular writes, then special ones), which is idempotent per (task, index).

Resumable and idempotent: checkpoints already at the destination (same thread, namespace and id)
are not put again, and their writes are only put again when the destination has fewer than the
source, so an interrupted copy finishes where it stopped and a second run copies nothing.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from ferrograph.checkpointers.base import WRITES_IDX_MAP, BaseCheckpointSaver, CheckpointTuple, get_checkpoint_id
from ferrograph.errors import FerrographError

__all__ = ["CopyStats", "copy_thread", "open_langgraph_saver"]


@dataclass
class CopyStats:
    threads: int = 0
    checkpoints: int = 0
    skipped: int = 0
    writes: int = 0

    def add(self, other: "CopyStats") -> None:
        self.threads += other.threads
        self.checkpoints += other.checkpoints
        self.skipped += other.skipped
        self.writes += other.writes

    def as_json(self) -> dict:
        return {
            "threads": self.threads,
            "checkpoints_copied": self.checkpoints,
            "checkpoints_skipped": self.skipped,
            "writes_copied": self.writes,
        }


def _key(t: CheckpointTuple) -> tuple[str, str]:
    c = t.config["configurable"]
    return (c.get("checkpoint_ns", "") or "", c["checkpoint_id"])


def _put_writes(dst: BaseCheckpointSaver, config: dict, pending: list) -> int:
    """Puts a checkpoint's pending writes, grouped by task in their listed order."""
    tasks: dict[str, tuple[list, list]] = {}
    for task_id, channel, value in pending:
        if isinstance(value, BaseException):  # LangGraph's `__error__` writes: kept as the repr, as LangGraph does
            value = repr(value)
        regular, special = tasks.setdefault(task_id, ([], []))
        (special if channel in WRITES_IDX_MAP else regular).append((channel, value))
    for task_id, (regular, special) in tasks.items():
        if regular:
            dst.put_writes(config, regular, task_id)
        if special:
            dst.put_writes(config, special, task_id)
    return len(pending)


def copy_thread(
    src: BaseCheckpointSaver,
    dst: BaseCheckpointSaver,
    thread_id: str,
    on_checkpoint: Optional[Callable[[], None]] = None,
) -> CopyStats:
    """Copies every checkpoint (all namespaces) and pending write of `thread_id` from `src` to
    `dst`, under the same thread id."""
    stats = CopyStats(threads=1)
    thread = {"configurable": {"thread_id": thread_id}}
    tuples = sorted(src.list(thread), key=_key)  # oldest first within each namespace
    existing = {_key(t): len(t.pending_writes or []) for t in dst.list(thread)}
    by_key = {_key(t): t for t in tuples}
    for t in tuples:
        ns, checkpoint_id = _key(t)
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}
        pending = list(t.pending_writes or [])
        present = existing.get((ns, checkpoint_id))
        if present is None:
            parent_id = get_checkpoint_id(t.parent_config) if t.parent_config else None
            parent = by_key.get((ns, parent_id)) if parent_id else None
            versions = dict(t.checkpoint.get("channel_versions") or {})
            if parent is not None:
                before = parent.checkpoint.get("channel_versions") or {}
                new_versions = {c: v for c, v in versions.items() if before.get(c) != v}
            else:
                new_versions = versions  # the parent is not stored (pruned): every value goes
            parent_config: dict = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
            if parent_id:
                parent_config["configurable"]["checkpoint_id"] = parent_id
            dst.put(parent_config, dict(t.checkpoint), dict(t.metadata or {}), new_versions)  # type: ignore[arg-type]
            stats.checkpoints += 1
            if pending:
                stats.writes += _put_writes(dst, config, pending)
        else:
            stats.skipped += 1
            if present < len(pending):  # an earlier run stopped between a put and its writes
                stats.writes += _put_writes(dst, config, pending)
        if on_checkpoint is not None:
            on_checkpoint()
    return stats


# ---- LangGraph's savers as a source

_INSTALL = "pip install 'ferrograph[langgraph]'"


@contextmanager
def open_langgraph_saver(url: str) -> Iterator[Any]:
    """LangGraph's own SqliteSaver or PostgresSaver on an existing LangGraph database, read
    only: no table is created or migrated. Values come back through LangGraph's serializer."""
    from ferrograph.checkpointers.url import display_url, url_kind

    try:
        import langgraph.checkpoint.base  # noqa: F401
    except ImportError as e:
        raise FerrographError(f"import-langgraph needs LangGraph's checkpoint savers ({e.name} is missing): {_INSTALL}") from e
    # LangGraph's own types (Send, Interrupt, ...) may sit in its values and writes.
    from ferrograph.integrations.langgraph import _allow_langgraph_types

    _allow_langgraph_types()
    kind = url_kind(url)
    shown = display_url(url)
    if kind == "sqlite":
        try:
            from langgraph.checkpoint.sqlite import SqliteSaver
        except ImportError as e:
            raise FerrographError(
                f"reading a LangGraph SQLite database needs langgraph-checkpoint-sqlite ({e.name} is missing): {_INSTALL}"
            ) from e
        from ferrograph.checkpointers.sql import sqlite_path

        path = sqlite_path(url)
        if path == ":memory:" or not os.path.exists(path):
            raise FerrographError(f"no such SQLite database: {path}")
        conn = sqlite3.connect(path, check_same_thread=False)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"checkpoints", "writes"} <= tables:
                raise FerrographError(f"{shown} is not a LangGraph SqliteSaver database (no checkpoints/writes tables)")
            saver = SqliteSaver(conn)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(writes)")}
            saver._has_task_path = "task_path" in columns
            saver.is_setup = True  # read only: never create or alter its tables
            yield saver
        finally:
            conn.close()
        return
    if kind == "postgres":
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
        except ImportError as e:
            raise FerrographError(
                f"reading a LangGraph Postgres database needs langgraph-checkpoint-postgres ({e.name} is missing): {_INSTALL}"
            ) from e
        with PostgresSaver.from_conn_string("postgresql://" + url.split("://", 1)[1]) as pg_saver:
            with pg_saver._cursor() as cur:
                cur.execute("SELECT to_regclass('checkpoints') IS NOT NULL AND to_regclass('checkpoint_writes') IS NOT NULL AS ok")
                row = cur.fetchone()
                assert row is not None, "a SELECT without FROM returns one row"
                ok = row["ok"] if isinstance(row, dict) else row[0]
            if not ok:
                raise FerrographError(f"{shown} is not a LangGraph PostgresSaver database (no checkpoints tables)")
            yield pg_saver
        return
    raise FerrographError(f"import-langgraph reads a LangGraph SQLite or Postgres database, not {shown}")
