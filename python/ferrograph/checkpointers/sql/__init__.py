"""Everything the SQL savers share: the SQL text for SQLite and Postgres, and every conversion
between rows and the saver protocol. The saver classes (checkpointers/sqlite.py, postgres.py,
aio.py) only do I/O.

- runner.py: operations, the sans-IO form every protocol method takes here (generators of
  `Query` steps), and the sync and async drivers that run them;
- dialect.py, sqlite.py, postgres.py: the SQL text, one dialect class per database family;
- deltas.py: append deltas, how growing lists are stored and rebuilt;
- reads.py: get_tuple and list; writes.py: put, put_writes, batches; admin.py: delete, copy,
  prune, thread summaries, setup; rekey.py: re-encryption with the newest key; rows.py: what
  they share of row conversion.

Storage (see migrations/versions): a checkpoint row holds the checkpoint without its values,
its small values (`channel_values`, at most `INLINE_MAX` bytes each, repeated in every row that
holds them), and which channels have theirs in `ferrograph_checkpoint_blobs` (`blob_channels`),
each value stored there once per (thread, namespace, channel, version), growing lists as append
deltas. Checkpoint and metadata
are JSON (metadata JSONB on Postgres, so that its filters run in the database). Values, checkpoints and
metadata are encoded with ferrograph's Rust codec.
"""

from ferrograph.checkpointers.sql.admin import (
    ThreadRow,
    copy_thread,
    database_bytes,
    delete_for_runs,
    delete_thread,
    prune,
    retention,
    setup,
    storage_stats,
    thread_summaries,
    vacuum,
)
from ferrograph.checkpointers.sql.deltas import SNAPSHOT_EVERY, DeltaCache, Learning, StagedDeltas
from ferrograph.checkpointers.sql.dialect import BLOBS, CHECKPOINTS, MIGRATION_LOCK_KEY, WRITES, Dialect
from ferrograph.checkpointers.sql.postgres import POSTGRES, PostgresDialect
from ferrograph.checkpointers.sql.reads import get_tuple, list_checkpoints
from ferrograph.checkpointers.sql.rekey import REKEY_BATCH, RekeyResult, rekey
from ferrograph.checkpointers.sql.rows import missing_tables, thread_deleted
from ferrograph.checkpointers.sql.runner import (
    Emit,
    Op,
    Query,
    Transactions,
    adrive,
    adrive_iter,
    adrive_transactions,
    drive,
    drive_iter,
    drive_transactions,
)
from ferrograph.checkpointers.sql.sqlite import SQLITE, SQLITE_BUSY_TIMEOUT, SqliteDialect, sqlite_path
from ferrograph.checkpointers.sql.writes import EXPECT_LATEST, INLINE_MAX, batch, put, put_writes, refused_put

__all__ = [
    "BLOBS",
    "CHECKPOINTS",
    "EXPECT_LATEST",
    "INLINE_MAX",
    "MIGRATION_LOCK_KEY",
    "POSTGRES",
    "REKEY_BATCH",
    "SNAPSHOT_EVERY",
    "SQLITE",
    "SQLITE_BUSY_TIMEOUT",
    "WRITES",
    "DeltaCache",
    "Dialect",
    "Emit",
    "Learning",
    "Op",
    "PostgresDialect",
    "Query",
    "RekeyResult",
    "SqliteDialect",
    "StagedDeltas",
    "ThreadRow",
    "Transactions",
    "adrive",
    "adrive_iter",
    "adrive_transactions",
    "batch",
    "copy_thread",
    "database_bytes",
    "delete_for_runs",
    "delete_thread",
    "drive",
    "drive_iter",
    "drive_transactions",
    "get_tuple",
    "list_checkpoints",
    "missing_tables",
    "prune",
    "put",
    "put_writes",
    "refused_put",
    "rekey",
    "retention",
    "setup",
    "sqlite_path",
    "storage_stats",
    "thread_deleted",
    "thread_summaries",
    "vacuum",
]
