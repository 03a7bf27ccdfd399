"""A Postgres put is refused by the server, so nothing of it needs reading before what follows.

A put checked against concurrent writers (a run's first put of a step) and a put that stores
append deltas (each only if the row it extends is as the saver wrote it) used to return a row
that the saver read before sending anything else: in a run's batch that is a round trip in the
middle of the transaction. The put statement now calls `ferrograph_put_refused` instead when
the check fails or a delta could not be written, which raises (SQLSTATE FG002): the statement and
its transaction are rolled back, and the saver turns the error into ConcurrentUpdateError, or
forgets the deltas it knew and runs the operation again with whole values. Its message is the
marker, then a JSON array: what was refused ("concurrent update" or "stale delta"), the thread,
the namespace, the put's parent and the line's latest checkpoint id.

Nothing to do on SQLite, whose savers read in the write transaction at no round trip's cost.

Revision ID: 0006
Revises: 0005
Create Date: 2025-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: The function, and the marker its error message starts with (see sql/writes.py).
MARKER = "ferrograph_put_refused"

POSTGRES_FUNCTION = f"""
CREATE FUNCTION {MARKER}(what text, thread_id text, checkpoint_ns text, parent text, latest text)
RETURNS boolean LANGUAGE plpgsql AS $body$
BEGIN
    -- Concatenated, not format()ed: a '%' would be doubled when Alembic renders the SQL.
    RAISE EXCEPTION USING ERRCODE = 'FG002', MESSAGE =
        '{MARKER}: ' || json_build_array(what, thread_id, checkpoint_ns, parent, latest)::text;
END
$body$
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {MARKER}(text, text, text, text, text)")
