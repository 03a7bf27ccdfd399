"""Admin operations (see runner.py): deleting and copying threads, deleting runs, pruning,
per-thread summaries, and bringing the schema to the latest revision."""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence

from ferrograph.checkpointers.sql.deltas import DeltaCache
from ferrograph.checkpointers.sql.dialect import Dialect
from ferrograph.checkpointers.sql.rows import decode
from ferrograph.checkpointers.sql.runner import Op, Query
from ferrograph.errors import CheckpointNotFoundError

__all__ = ["ThreadRow", "copy_thread", "delete_for_runs", "delete_thread", "prune", "setup", "thread_summaries"]


def delete_thread(d: Dialect, thread_id: str, deltas: Optional[DeltaCache] = None) -> Op:
    for sql in d.delete_thread:
        yield Query(sql, [str(thread_id)], rows=False)
    if deltas is not None:
        deltas.forget_threads([thread_id])


def copy_thread(d: Dialect, source_thread_id: str, target_thread_id: str) -> Op:
    if not (yield Query(d.thread_exists, [str(source_thread_id)])):
        raise CheckpointNotFoundError(f"thread {source_thread_id!r} has no checkpoints to copy")
    for sql in d.copy_thread:
        yield Query(sql, [str(target_thread_id), str(source_thread_id)], rows=False)


def delete_for_runs(d: Dialect, run_ids: Sequence[str], deltas: Optional[DeltaCache] = None) -> Op:
    if not run_ids:
        return
    runs = d.text_list(run_ids)
    threads = [row[0] for row in (yield Query(d.threads_of_runs, [runs]))]
    if not threads:
        return
    for sql in d.delete_runs:
        yield Query(sql, [runs], rows=False)
    listed = d.text_list(threads)
    yield Query(d.collect_blobs, [listed, listed], rows=False)
    if deltas is not None:
        deltas.forget_threads(threads)


def prune(
    d: Dialect, thread_ids: Sequence[str], strategy: str = "keep_latest", deltas: Optional[DeltaCache] = None
) -> Op:
    if strategy not in ("keep_latest", "delete"):
        raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
    if not thread_ids:
        return
    listed = d.text_list(thread_ids)
    if deltas is not None:
        deltas.forget_threads(thread_ids)
    if strategy == "delete":
        for sql in d.prune_delete:
            yield Query(sql, [listed], rows=False)
        return
    for sql in d.prune_keep_latest:
        yield Query(sql, [listed], rows=False)
    yield Query(d.collect_blobs, [listed, listed], rows=False)


def setup(d: Dialect, script_location: Optional[str] = None) -> Op:
    """Brings the schema to the latest revision; runs inside the runner's write transaction,
    which (with the advisory lock on Postgres) keeps two processes from upgrading at once."""
    from ferrograph.migrations import VERSION_TABLE, upgrade_statements

    if d.lock_migrations:
        yield Query(d.lock_migrations)
    current = None
    if (yield Query(d.version_table_exists, [VERSION_TABLE]))[0][0]:
        rows = yield Query(f"SELECT version_num FROM {VERSION_TABLE}")
        current = rows[0][0] if rows else None
    for statement in upgrade_statements(d.name, current, script_location):
        yield Query(statement, None)


#: Per thread: thread_id, number of checkpoints, namespaces, latest checkpoint id, and that
#: checkpoint's ts ("" without one), metadata step and source (None when absent).
ThreadRow = tuple[str, int, set[str], str, str, Any, Any]


def thread_summaries(d: Dialect, thread_id: Optional[str] = None) -> Op:
    """Every thread (or just `thread_id`) as a `ThreadRow`, most recently active first (latest
    checkpoint id, then thread id, descending), in one statement that decodes neither the
    checkpoints nor their values: only each latest checkpoint's step and source."""
    if thread_id is None:
        rows = yield Query(d.select_thread_summaries, [])
    else:
        rows = yield Query(d.select_thread_summary, [str(thread_id)])
    summaries: list[ThreadRow] = []
    for tid, checkpoints, namespaces, last_id, last_ns, ts, step_and_source in rows:
        step, source = decode(step_and_source, "the metadata", tid, last_ns, last_id)
        summaries.append((tid, int(checkpoints), set(json.loads(namespaces)), last_id, ts or "", step, source))
    return summaries
