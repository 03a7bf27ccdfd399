"""Admin operations (see runner.py): deleting and copying threads, deleting runs, pruning,
retention (`retention`: the policy's rules are in checkpointers/retention.py), per-thread
summaries, and bringing the schema to the latest revision."""

from __future__ import annotations

import datetime
import json
from typing import Any, Mapping, Optional, Sequence

from ferrograph import _core
from ferrograph.checkpointers.encryption import Encryption
from ferrograph.checkpointers.retention import (
    CheckpointHead,
    Retention,
    RetentionResult,
    emptied_threads,
    now_utc,
    plan,
)
from ferrograph.checkpointers.sql.deltas import DeltaCache
from ferrograph.checkpointers.sql.dialect import CHECKPOINTS, Dialect
from ferrograph.checkpointers.sql.rows import decode, decode_metadata
from ferrograph.checkpointers.sql.runner import Op, Query, Transactions
from ferrograph.checkpointers.stats import ChannelUsage, StorageStats, ThreadUsage
from ferrograph.errors import CheckpointNotFoundError

__all__ = [
    "RETENTION_BATCH",
    "ThreadRow",
    "copy_thread",
    "database_bytes",
    "delete_for_runs",
    "delete_thread",
    "prune",
    "retention",
    "setup",
    "storage_stats",
    "thread_summaries",
    "vacuum",
]

#: Threads whose checkpoints one retention transaction deletes: a big database is pruned in
#: many short transactions, never in one that holds its locks for minutes.
RETENTION_BATCH = 100

#: How long a deletion is remembered to refuse late writes (see migration 0004); retention
#: forgets older ones.
DELETIONS_REMEMBERED = datetime.timedelta(days=7)


def _deleting(d: Dialect, thread_ids: Sequence[str]) -> Op:
    """What every deletion does first, in its transaction: lock the threads against concurrent
    writes (Postgres) and remember the deletion, so that late writes are refused (migration
    0004). Only threads that have checkpoints are remembered."""
    listed = d.text_list(sorted({str(t) for t in thread_ids}))
    if d.lock_threads:
        yield Query(d.lock_threads, [listed], rows=False)
    deleted_through, deleted_at = _core.new_checkpoint_id()
    yield Query(d.remember_deleted, [deleted_through, deleted_at, listed], rows=False)


def delete_thread(d: Dialect, thread_id: str, deltas: Optional[DeltaCache] = None) -> Op:
    yield from _deleting(d, [thread_id])
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
    yield from _deleting(d, threads)
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
    yield from _deleting(d, thread_ids)
    if strategy == "delete":
        for sql in d.prune_delete:
            yield Query(sql, [listed], rows=False)
        return
    for sql in d.prune_keep_latest:
        yield Query(sql, [listed], rows=False)
    yield Query(d.collect_blobs, [listed, listed], rows=False)


def retention_threads(d: Dialect, policy: Retention, encryption: Optional[Encryption] = None) -> Op:
    """The threads `policy` applies to (its `threads`, and those with a checkpoint whose
    metadata matches its `filter`), sorted."""
    return (yield from threads_matching(d, policy.threads, policy.filter, encryption))


def threads_matching(d: Dialect, threads: Optional[Sequence[str]], filter: Optional[Mapping[str, Any]],
                     encryption: Optional[Encryption] = None) -> Op:
    """The threads among `threads` (default: all) with a checkpoint whose metadata holds every
    key of `filter` with that value, sorted; one statement that reads no channel value. With
    encrypted metadata, every checkpoint's metadata in scope is read and matched here (a scan)."""
    conditions: list[str] = []
    params: list[Any] = []
    if threads is not None:
        if not threads:
            return []
        conditions.append(f"thread_id {d.in_list}")
        params.append(d.text_list(threads))
    filter_conditions, filter_params, in_python = d.metadata_filter(filter, encryption)
    conditions.extend(filter_conditions)
    params.extend(filter_params)
    check_in_python = bool(in_python)
    where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
    columns = f"thread_id, checkpoint_ns, checkpoint_id, {d.metadata_text}" if check_in_python else "thread_id"
    rows = yield Query(d.q(f"SELECT DISTINCT {columns} FROM {CHECKPOINTS} AS c{where}"), params)
    if check_in_python:
        return sorted({row[0] for row in rows if d.metadata_matches(decode_metadata(row[3], encryption, *row[:3]), filter or {})})
    return sorted(row[0] for row in rows)


def retention_batch(
    d: Dialect,
    thread_ids: Sequence[str],
    policy: Retention,
    now: datetime.datetime,
    dry_run: bool,
    deltas: Optional[DeltaCache] = None,
    encryption: Optional[Encryption] = None,
) -> Op:
    """Applies `policy` to `thread_ids` in one transaction: reads their checkpoints without
    values, plans, measures what the deletion removes, and (unless `dry_run`) deletes it. A
    saver with encryption may hold encrypted metadata: each checkpoint's is then read whole,
    and decrypted where it is, for its `parents`."""
    listed = d.text_list(thread_ids)
    if d.lock_threads and not dry_run:
        yield Query(d.lock_threads, [listed], rows=False)
    heads = []
    sealed = encryption is not None
    for thread_id, ns, checkpoint_id, parent, ts, parents in (yield Query(d.select_heads_metadata if sealed else d.select_heads, [listed])):
        if sealed:
            parent_map = decode_metadata(parents, encryption, thread_id, ns, checkpoint_id).get("parents") or {}
        else:
            try:
                parent_map = json.loads(parents) if parents else {}
            except ValueError:
                parent_map = {}
        heads.append(
            CheckpointHead(thread_id, ns, checkpoint_id, parent, ts, parent_map if isinstance(parent_map, dict) else {})
        )
    doomed = plan(heads, policy, now)
    if not doomed:
        return RetentionResult(dry_run=dry_run)
    keys = d.keys_param(doomed, 3)
    touched = d.text_list(sorted({k[0] for k in doomed}))
    rows = yield Query(d.measure_doomed, [*keys, touched, touched])
    checkpoints, checkpoint_bytes, writes, write_bytes, _blobs, blob_bytes = (int(v) for v in rows[0])
    if not dry_run:
        deleted_through, deleted_at = _core.new_checkpoint_id()
        yield Query(d.remember_deleted, [deleted_through, deleted_at, touched], rows=False)
        for sql in d.delete_doomed:
            yield Query(sql, keys, rows=False)
        yield Query(d.collect_blobs, [touched, touched], rows=False)
        if deltas is not None:
            deltas.forget_threads(sorted({k[0] for k in doomed}))
    emptied = emptied_threads(heads, doomed)
    return RetentionResult(
        threads=len(emptied),
        checkpoints=checkpoints,
        writes=writes,
        bytes=checkpoint_bytes + write_bytes + blob_bytes,
        dry_run=dry_run,
        thread_ids=emptied,
    )


def retention(d: Dialect, policy: Retention, dry_run: bool, deltas: Optional[DeltaCache] = None,
              encryption: Optional[Encryption] = None) -> Transactions:
    """Applies `policy`: finds the threads it applies to, then deletes from them
    `RETENTION_BATCH` threads per transaction (read-only ones with `dry_run`)."""
    now = now_utc()
    threads = yield (lambda: retention_threads(d, policy, encryption)), False
    result = RetentionResult(dry_run=dry_run)
    for start in range(0, len(threads), RETENTION_BATCH):
        chunk = threads[start : start + RETENTION_BATCH]
        result.add((yield (lambda: retention_batch(d, chunk, policy, now, dry_run, deltas, encryption)), not dry_run))
    if not dry_run:
        # A deletion is remembered only while a run that began before it may still write.
        forget_before = (now - DELETIONS_REMEMBERED).isoformat()
        yield (lambda: _single(Query(d.forget_deleted_before, [forget_before], rows=False))), True
    return result


def _single(query: Query) -> Op:
    return (yield query)


def storage_stats(d: Dialect, thread_id: Optional[str] = None, largest: int = 10) -> Op:
    """The saver's storage (or one thread's) as `StorageStats`, in one statement that reads no
    value (`Dialect.select_storage_stats`); `largest` threads by bytes are listed."""
    if thread_id is None:
        rows = yield Query(d.select_storage_stats, [largest])
    else:
        rows = yield Query(d.select_thread_storage_stats, [str(thread_id)] * 3 + [largest])
    stats = StorageStats(thread_id=thread_id)
    channels: dict[str, ChannelUsage] = {}
    for kind, name, a, b, c, first, last in rows:
        if kind == "total":
            stats.threads, stats.checkpoints, stats.writes = int(a), int(b), int(c)
            stats.oldest_activity, stats.newest_activity = first, last
        elif kind == "bytes":
            stats.checkpoint_bytes, stats.value_bytes, stats.write_bytes = int(a), int(b), int(c)
            stats.bytes = stats.checkpoint_bytes + stats.value_bytes + stats.write_bytes
        elif kind == "database":
            stats.database_bytes = int(a)
        elif kind == "thread":
            stats.largest_threads.append(ThreadUsage(name, int(a), int(b), int(c), first, last))
        elif kind == "value":
            usage = channels.setdefault(name, ChannelUsage(name))
            usage.values, usage.value_bytes = int(a), int(b)
        elif kind == "write":
            usage = channels.setdefault(name, ChannelUsage(name))
            usage.writes, usage.write_bytes = int(a), int(b)
        else:
            stats.chains[int(a)] = int(b)
    stats.channels = sorted(channels.values(), key=lambda u: (-(u.value_bytes + u.write_bytes), u.channel))
    return stats


def database_bytes(d: Dialect) -> Op:
    return int((yield Query(d.database_bytes))[0][0])


def vacuum(d: Dialect, full: bool) -> Op:
    """Runs the dialect's VACUUM (outside any transaction); the bytes before and after."""
    before = yield from database_bytes(d)
    for statement in d.vacuum(full):
        yield Query(statement)
    return before, (yield from database_bytes(d))


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


def thread_summaries(
    d: Dialect, thread_id: Optional[str] = None, filter: Optional[Mapping[str, Any]] = None,
    encryption: Optional[Encryption] = None,
) -> Op:
    """Every thread (or just `thread_id`; with `filter`, only those with a checkpoint whose
    metadata matches it) as a `ThreadRow`, most recently active first (latest checkpoint id,
    then thread id, descending), in one statement (two with `filter`) that decodes neither the
    checkpoints nor their values: only each latest checkpoint's step and source. Encrypted
    metadata, which the database cannot read, takes one statement more, for the latest
    checkpoints' metadata, decrypted here."""
    matching = None
    if filter:
        matching = set((yield from threads_matching(d, None if thread_id is None else [str(thread_id)], filter, encryption)))
        if not matching:
            return []
    if thread_id is None:
        rows = yield Query(d.select_thread_summaries, [])
    else:
        rows = yield Query(d.select_thread_summary, [str(thread_id)])
    summaries: list[ThreadRow] = []
    unread: list[tuple[str, str, str]] = []
    for tid, checkpoints, namespaces, last_id, last_ns, ts, step_and_source in rows:
        if matching is not None and tid not in matching:
            continue
        step, source = decode(step_and_source, "the metadata", tid, last_ns, last_id)
        if step is None and source is None and encryption is not None:
            unread.append((tid, last_ns, last_id))
        summaries.append((tid, int(checkpoints), set(json.loads(namespaces)), last_id, ts or "", step, source))
    if unread:
        found = {}
        for tid, ns, cid, metadata in (yield Query(d.select_metadata_of, d.keys_param(unread, 3))):
            meta = decode_metadata(metadata, encryption, tid, ns, cid)
            found[tid] = (meta.get("step"), meta.get("source")) if isinstance(meta, dict) else (None, None)
        for i, (tid, checkpoints, namespaces, last_id, ts, step, source) in enumerate(summaries):
            step, source = found.get(tid, (step, source))
            summaries[i] = (tid, checkpoints, namespaces, last_id, ts, step, source)
    return summaries
