"""Checkpoints get an indexed run_id column.

So that delete_for_runs does not scan every checkpoint's metadata; filled from the metadata of
the checkpoints written before it existed. The downgrade refuses, naming a checkpoint, while
encrypted metadata (`Encryption(metadata=True)`) holds run ids: an upgrade could not fill the
column from it again.

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


# A checkpoint whose metadata is encrypted (a JSON string) and whose run id is in the column.
POSTGRES_SEALED = (
    "SELECT thread_id, checkpoint_ns, checkpoint_id FROM ferrograph_checkpoints"
    " WHERE jsonb_typeof(metadata) = 'string' AND run_id IS NOT NULL LIMIT 1"
)
SQLITE_SEALED = (
    "SELECT thread_id, checkpoint_ns, checkpoint_id FROM ferrograph_checkpoints"
    " WHERE json_type(metadata) = 'text' AND run_id IS NOT NULL LIMIT 1"
)


def downgrade() -> None:
    # The run ids an upgrade would read back from the metadata: encrypted metadata
    # (`Encryption(metadata=True)`) cannot be read in SQL, so they would be lost.
    context = op.get_context()
    if not context.as_sql:
        postgres = context.dialect.name == "postgresql"
        sealed = op.get_bind().exec_driver_sql(POSTGRES_SEALED if postgres else SQLITE_SEALED).fetchone()
        if sealed is not None:
            thread_id, checkpoint_ns, checkpoint_id = sealed
            raise RuntimeError(
                f"cannot downgrade below revision 0002: the metadata of checkpoint {checkpoint_id!r} (thread "
                f"{thread_id!r}, namespace {checkpoint_ns!r}) is encrypted, so the run id this downgrade drops "
                "could not be read back from it by an upgrade; keep the database at revision 0002 or later"
            )
    op.drop_index("ferrograph_checkpoints_run_id_idx", table_name="ferrograph_checkpoints")
    op.drop_column("ferrograph_checkpoints", "run_id")
