"""Small channel values live in the checkpoint row; big ones stay in blob rows.

Reading a checkpoint used to mean looking up one blob row per channel, most of them a few bytes
(a step counter, a node name, a trigger's None), and decoding each on its own. A checkpoint row
now gets two nullable columns:

- `channel_values`: the codec's encoding of a JSON object holding the checkpoint's small values
  (see `INLINE_MAX` in ferrograph/checkpointers/sql/writes.py), channel by channel, whatever
  version they were written at; such a value has no blob row.
- `blob_channels`: the channels whose values are in blob rows (a text[] on Postgres, a JSON
  array on SQLite), so a read looks up only those, at the versions `channel_versions` gives.

Rows written before this revision have neither (NULL): every value of theirs is in a blob row,
found from `channel_versions` as before, so the upgrade only adds the columns.

The downgrade writes every inline value into a blob row at its channel's version (a row that
exists already stays), then drops the columns.

Revision ID: 0005
Revises: 0004
Create Date: 2025-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CHECKPOINTS = "ferrograph_checkpoints"
BLOBS = "ferrograph_checkpoint_blobs"
# A Postgres text[]; a JSON array of strings on SQLite (as the blob rows' `chain`, 0003).
NAMES = sa.Text().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")

# `json` (not `jsonb`) keeps each value's text exactly as the codec wrote it.
POSTGRES_WRITE_BACK = f"""
INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob)
SELECT c.thread_id, c.checkpoint_ns, v.key, cv.value, convert_to(v.value::text, 'UTF8')
FROM {CHECKPOINTS} AS c
CROSS JOIN LATERAL json_each(convert_from(c.channel_values, 'UTF8')::json) AS v
JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') AS cv ON cv.key = v.key
WHERE c.channel_values IS NOT NULL
ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
"""

# json_each gives a string's text unquoted and true/false as 1/0: each value's JSON is rebuilt
# from its type.
SQLITE_WRITE_BACK = f"""
INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob)
SELECT c.thread_id, c.checkpoint_ns, v.key, CAST(cv.value AS TEXT),
    CAST(CASE v.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN 'null'
         WHEN 'object' THEN v.value WHEN 'array' THEN v.value ELSE json_quote(v.value) END AS BLOB)
FROM {CHECKPOINTS} AS c
CROSS JOIN json_each(CAST(c.channel_values AS TEXT)) AS v
JOIN json_each(c.checkpoint, '$.channel_versions') AS cv ON cv.key = v.key
WHERE c.channel_values IS NOT NULL
ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
"""


def upgrade() -> None:
    op.add_column(CHECKPOINTS, sa.Column("channel_values", sa.LargeBinary(), nullable=True))
    op.add_column(CHECKPOINTS, sa.Column("blob_channels", NAMES, nullable=True))


def downgrade() -> None:
    postgres = op.get_context().dialect.name == "postgresql"
    op.execute(POSTGRES_WRITE_BACK if postgres else SQLITE_WRITE_BACK)
    op.drop_column(CHECKPOINTS, "blob_channels")
    op.drop_column(CHECKPOINTS, "channel_values")
