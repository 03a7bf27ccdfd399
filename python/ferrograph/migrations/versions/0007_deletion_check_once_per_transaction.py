"""Postgres checks a thread against deletions once per transaction, not once per row.

Migration 0004's trigger refuses a checkpoint whose parent, or a pending write whose checkpoint,
a deletion removed. On Postgres it called a PL/pgSQL function for every row inserted (a shared
advisory lock on the row's thread, then its lookups): about 25 us a row, most of the server's
time for a run's background batch, whose two inserts hold tens of rows of one thread.

Once the function has taken the thread's lock and found no deletion recorded for it, no
deletion of that thread can commit before this transaction ends (a deletion takes the lock
exclusively), so no later row of the thread in this transaction can be late. The function now
says so in a transaction-local setting, `ferrograph.clean_thread`, and the trigger's WHEN
condition, evaluated without calling the function, skips the rows of that thread. A thread with
a deletion on record is checked row by row, as before. A deletion in the same transaction (it
records itself in the deleted-threads table) clears the setting, by a statement trigger on that
table. A single-row statement (a put, a put_writes in autocommit) costs about 15-20 us more
(the lookup and the setting), against about 0.5 ms less for a 10-node run's batch.

Nothing changes on SQLite, whose trigger condition runs inside the insert without a function
call.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# 0004's names and row trigger function (the downgrade puts that function back).
_deleted_threads = importlib.import_module("ferrograph.migrations.versions.0004_deleted_threads")
MARKER = _deleted_threads.MARKER
CHECKPOINTS = _deleted_threads.CHECKPOINTS
WRITES = _deleted_threads.WRITES
DELETED = _deleted_threads.DELETED

#: The transaction-local setting naming the thread found clean; '=' before the id, since the
#: setting reads '' outside a transaction that set it, and '' is a valid thread id.
CLEAN = "ferrograph.clean_thread"
FORGET = f"{MARKER}_forget"

#: 0004's function, which now, once it holds the thread's lock and finds no deletion on record,
#: remembers the thread for the rest of the transaction and lets the row in.
#: (An assignment, not a PERFORM: PL/pgSQL evaluates it as a simple expression, without running
#: a query.)
_LOCK = "    PERFORM pg_advisory_xact_lock_shared(hashtextextended(NEW.thread_id, 0));\n"
_DECLARE = "    target text;\n"
assert _LOCK in _deleted_threads.POSTGRES_FUNCTION and _DECLARE in _deleted_threads.POSTGRES_FUNCTION
POSTGRES_FUNCTION = (
    _deleted_threads.POSTGRES_FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    .replace(_DECLARE, _DECLARE + "    remembered text;\n", 1)
    .replace(
        _LOCK,
        _LOCK
        + f"""    IF NOT EXISTS (SELECT 1 FROM {DELETED} AS d WHERE d.thread_id = NEW.thread_id) THEN
        remembered := set_config('{CLEAN}', '=' || NEW.thread_id, true);
        RETURN NEW;
    END IF;
""",
        1,
    )
)

FORGET_FUNCTION = f"""
CREATE FUNCTION {FORGET}() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    PERFORM set_config('{CLEAN}', '', true);
    RETURN NULL;
END
$body$
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(POSTGRES_FUNCTION)
    op.execute(FORGET_FUNCTION)
    for table in (CHECKPOINTS, WRITES):
        op.execute(f"DROP TRIGGER {MARKER} ON {table}")
        op.execute(
            f"CREATE TRIGGER {MARKER} BEFORE INSERT ON {table} FOR EACH ROW"
            f" WHEN (current_setting('{CLEAN}', true) IS DISTINCT FROM '=' || NEW.thread_id)"
            f" EXECUTE FUNCTION {MARKER}()"
        )
    op.execute(f"CREATE TRIGGER {FORGET} AFTER INSERT OR UPDATE ON {DELETED} FOR EACH STATEMENT EXECUTE FUNCTION {FORGET}()")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"DROP TRIGGER {FORGET} ON {DELETED}")
    op.execute(f"DROP FUNCTION {FORGET}()")
    for table in (CHECKPOINTS, WRITES):
        op.execute(f"DROP TRIGGER {MARKER} ON {table}")
        op.execute(f"CREATE TRIGGER {MARKER} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {MARKER}()")
    op.execute(_deleted_threads.POSTGRES_FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
