"""Checkpoints get an indexed run_id column.

So that delete_for_runs does not scan every checkpoint's metadata; filled from the metadata of
the checkpoints written before it existed.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ferrograph_checkpoints", sa.Column("run_id", sa.Text(), nullable=True))
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "UPDATE ferrograph_checkpoints SET run_id = metadata ->> 'run_id' "
            "WHERE jsonb_typeof(metadata -> 'run_id') = 'string'"
        )
    else:
        op.execute(
            "UPDATE ferrograph_checkpoints SET run_id = json_extract(metadata, '$.run_id') "
            "WHERE json_type(metadata, '$.run_id') = 'text'"
        )
    op.create_index("ferrograph_checkpoints_run_id_idx", "ferrograph_checkpoints", ["run_id"])


def downgrade() -> None:
    op.drop_index("ferrograph_checkpoints_run_id_idx", table_name="ferrograph_checkpoints")
    op.drop_column("ferrograph_checkpoints", "run_id")
