"""The run_id index holds only the checkpoints that have a run id.

Migration 0002's index on `ferrograph_checkpoints.run_id` exists for `delete_for_runs`, which
looks up checkpoints by run id, never the ones without. But a checkpoint gets a run id only when
its run's config carries one (LangGraph's engine and ferrograph's run put it in the metadata
then), so most checkpoints have none, and each of them still added an entry to the index: on
SQLite one more page written to the log by every put (7.3 pages a put on the saver benchmark's
agent thread, 6.3 without it), on Postgres one more index insert. A partial index
(`WHERE run_id IS NOT NULL`) leaves them out; a lookup by run id (`run_id IN (...)`, `run_id =
ANY(...)`) implies the condition, so both databases use it as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "ferrograph_checkpoints_run_id_idx"
TABLE = "ferrograph_checkpoints"


def upgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    has_run_id = sa.text("run_id IS NOT NULL")
    op.create_index(INDEX, TABLE, ["run_id"], postgresql_where=has_run_id, sqlite_where=has_run_id)


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
    op.create_index(INDEX, TABLE, ["run_id"])
