"""Deleted stays deleted: threads remember their deletions, and late writes are refused.

A run may still be writing to a thread while another connection deletes or prunes it. Its next
checkpoint would name a parent that is gone (and values stored with the deleted checkpoints),
its pending writes a checkpoint that is gone: the thread would come back half-written. So every
deletion (delete_thread, prune, delete_for_runs, retention) records, per thread, a checkpoint id
made at that moment (`deleted_through`) and the time; a trigger on each of the checkpoint and
write tables refuses a row whose parent (for a checkpoint) or checkpoint (for a write) does not
exist and is older than that id. A new run on the thread starts without a parent, and its ids
are newer: it is not refused.

On Postgres the trigger first takes a shared advisory lock on the thread, which a deletion holds
exclusively until it commits; its checks then see what the deletion did (each statement of a
PL/pgSQL function reads a fresh snapshot). On SQLite writers are serialized by the write lock.

Revision ID: 0004
Revises: 0003
Create Date: 2025-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DELETED = "ferrograph_deleted_threads"
CHECKPOINTS = "ferrograph_checkpoints"
WRITES = "ferrograph_checkpoint_writes"

#: The error a refused row raises; the savers turn it into ThreadDeletedError.
MARKER = "ferrograph_thread_deleted"

#: The trigger of both tables on Postgres. A thread's advisory lock key,
#: hashtextextended(thread_id, 0), is the one deletions lock (sql/postgres.py).
POSTGRES_FUNCTION = f"""
CREATE FUNCTION {MARKER}() RETURNS trigger LANGUAGE plpgsql AS $body$
DECLARE
    target text;
BEGIN
    IF TG_TABLE_NAME = '{CHECKPOINTS}' THEN
        target := NEW.parent_checkpoint_id;
    ELSE
        target := NEW.checkpoint_id;
    END IF;
    IF target IS NULL THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(hashtextextended(NEW.thread_id, 0));
    IF EXISTS (SELECT 1 FROM {DELETED} AS d WHERE d.thread_id = NEW.thread_id AND d.deleted_through > target)
       AND NOT EXISTS (SELECT 1 FROM {CHECKPOINTS} AS c WHERE c.thread_id = NEW.thread_id
                       AND c.checkpoint_ns = NEW.checkpoint_ns AND c.checkpoint_id = target) THEN
        -- Concatenated, not format()ed: a '%' would be doubled when Alembic renders the SQL.
        RAISE EXCEPTION USING ERRCODE = 'FG001', MESSAGE =
            '{MARKER}: thread ' || to_json(NEW.thread_id)::text
            || ' was deleted or pruned while a run was writing to it: refused '
            || CASE WHEN TG_TABLE_NAME = '{CHECKPOINTS}' THEN 'a checkpoint whose parent is' ELSE 'pending writes for' END
            || ' checkpoint ' || to_json(target)::text || ', which no longer exists (start the thread again)';
    END IF;
    RETURN NEW;
END
$body$
"""


def _sqlite_trigger(table: str, target: str, what: str) -> str:
    return f"""
CREATE TRIGGER {MARKER}_{table} BEFORE INSERT ON {table}
WHEN NEW.{target} IS NOT NULL
 AND EXISTS (SELECT 1 FROM {DELETED} AS d WHERE d.thread_id = NEW.thread_id AND d.deleted_through > NEW.{target})
 AND NOT EXISTS (SELECT 1 FROM {CHECKPOINTS} AS c WHERE c.thread_id = NEW.thread_id
                 AND c.checkpoint_ns = NEW.checkpoint_ns AND c.checkpoint_id = NEW.{target})
BEGIN
    SELECT RAISE(ABORT, '{MARKER}: the thread was deleted or pruned while a run was writing to it: refused {what} a checkpoint which no longer exists (start the thread again)');
END
"""


def upgrade() -> None:
    op.create_table(
        DELETED,
        sa.Column("thread_id", sa.Text(), primary_key=True),
        sa.Column("deleted_through", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.Text(), nullable=False),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        for table in (CHECKPOINTS, WRITES):
            op.execute(
                f"CREATE TRIGGER {MARKER} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {MARKER}()"
            )
    else:
        op.execute(_sqlite_trigger(CHECKPOINTS, "parent_checkpoint_id", "a checkpoint whose parent is"))
        op.execute(_sqlite_trigger(WRITES, "checkpoint_id", "pending writes for"))


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in (CHECKPOINTS, WRITES):
            op.execute(f"DROP TRIGGER {MARKER} ON {table}")
        op.execute(f"DROP FUNCTION {MARKER}()")
    else:
        for table in (CHECKPOINTS, WRITES):
            op.execute(f"DROP TRIGGER {MARKER}_{table}")
    op.drop_table(DELETED)
