"""Channel values that grow by appending are stored as deltas.

A blob row gets a nullable `chain` column. NULL: `blob` is the channel's whole value, as before.
Otherwise `blob` encodes only the items appended to the list at the version before, and `chain`
names every version the value is built from, oldest first: a full snapshot, then the earlier
deltas (see ferrograph/checkpointers/sql.py). Rows written before this revision are all whole
values, so the upgrade only adds the column.

The downgrade writes every delta back as its whole value (the snapshot's items followed by each
delta's, byte for byte), then drops the column. On a live database it first refuses, naming the
row, when a delta's chain lost a version (a corrupt database), or when a channel with deltas has
encrypted rows (`encryption=`): SQL cannot decrypt them to join them.

Revision ID: 0003
Revises: 0002
Create Date: 2025-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BLOBS = "ferrograph_checkpoint_blobs"
# A Postgres text[]; a JSON array of strings on SQLite.
CHAIN = sa.Text().with_variant(postgresql.ARRAY(sa.Text()), "postgresql")

SAME_CHANNEL = "p.thread_id = d.thread_id AND p.checkpoint_ns = d.checkpoint_ns AND p.channel = d.channel"

# The whole value of delta row d: '[' + the items of every row of its chain and of d itself,
# each row's blob being a JSON array, joined with ',' + ']'.
POSTGRES_MATERIALIZE = f"""
UPDATE {BLOBS} AS d SET chain = NULL, blob = (
    SELECT convert_to('[', 'UTF8')
        || COALESCE(string_agg(substring(p.blob FROM 2 FOR octet_length(p.blob) - 2), convert_to(',', 'UTF8')
                               ORDER BY o.n), ''::bytea)
        || convert_to(']', 'UTF8')
    FROM unnest(d.chain || d.version) WITH ORDINALITY AS o(version, n)
    JOIN {BLOBS} AS p ON {SAME_CHANNEL} AND p.version = o.version
    WHERE octet_length(p.blob) > 2
)
WHERE d.chain IS NOT NULL
"""

# SQLite's UPDATE may read rows it has already rewritten, so the whole values are computed into
# a temporary table first.
SQLITE_MATERIALIZE = (
    f"""
CREATE TEMP TABLE ferrograph_materialized AS
SELECT d.thread_id, d.checkpoint_ns, d.channel, d.version, (
    SELECT CAST('[' || COALESCE(group_concat(part, ','), '') || ']' AS BLOB) FROM (
        SELECT CAST(substr(p.blob, 2, length(p.blob) - 2) AS TEXT) AS part
        FROM json_each(json_insert(d.chain, '$[#]', d.version)) AS o
        JOIN {BLOBS} AS p ON {SAME_CHANNEL} AND p.version = o.value
        WHERE length(p.blob) > 2
        ORDER BY o.key
    )
) AS blob
FROM {BLOBS} AS d WHERE d.chain IS NOT NULL
""",
    f"""
UPDATE {BLOBS} SET chain = NULL, blob = (
    SELECT m.blob FROM ferrograph_materialized AS m
    WHERE m.thread_id = {BLOBS}.thread_id AND m.checkpoint_ns = {BLOBS}.checkpoint_ns
    AND m.channel = {BLOBS}.channel AND m.version = {BLOBS}.version
)
WHERE chain IS NOT NULL
""",
    "DROP TABLE ferrograph_materialized",
)

POSTGRES_BROKEN = f"""
SELECT d.thread_id, d.checkpoint_ns, d.channel, d.version FROM {BLOBS} AS d
WHERE d.chain IS NOT NULL AND cardinality(d.chain) > (
    SELECT count(*) FROM unnest(d.chain) AS o(version) JOIN {BLOBS} AS p ON {SAME_CHANNEL} AND p.version = o.version
)
LIMIT 1
"""

SQLITE_BROKEN = f"""
SELECT d.thread_id, d.checkpoint_ns, d.channel, d.version FROM {BLOBS} AS d
WHERE d.chain IS NOT NULL AND json_array_length(d.chain) > (
    SELECT count(*) FROM json_each(d.chain) AS o JOIN {BLOBS} AS p ON {SAME_CHANNEL} AND p.version = o.value
)
LIMIT 1
"""


# A channel with deltas and an encrypted row (sealed values start with a zero byte).
POSTGRES_SEALED = f"""
SELECT d.thread_id, d.checkpoint_ns, d.channel, d.version FROM {BLOBS} AS d
WHERE d.chain IS NOT NULL AND EXISTS (
    SELECT 1 FROM {BLOBS} AS p WHERE {SAME_CHANNEL} AND substring(p.blob FROM 1 FOR 1) = '\\x00'::bytea
)
LIMIT 1
"""

SQLITE_SEALED = f"""
SELECT d.thread_id, d.checkpoint_ns, d.channel, d.version FROM {BLOBS} AS d
WHERE d.chain IS NOT NULL AND EXISTS (
    SELECT 1 FROM {BLOBS} AS p WHERE {SAME_CHANNEL} AND substr(p.blob, 1, 1) = X'00'
)
LIMIT 1
"""


def upgrade() -> None:
    op.add_column(BLOBS, sa.Column("chain", CHAIN, nullable=True))


def downgrade() -> None:
    context = op.get_context()
    postgres = context.dialect.name == "postgresql"
    if not context.as_sql:
        # What this downgrade cannot write back as whole values: a row's name, and why.
        refusals = (
            (POSTGRES_BROKEN if postgres else SQLITE_BROKEN,
             "the stored delta of channel {channel!r} at version {version!r} (thread {thread_id!r}, namespace "
             "{checkpoint_ns!r}) misses a version it is built on, so its whole value cannot be written back; "
             "delete that thread (or repair the row) first"),
            (POSTGRES_SEALED if postgres else SQLITE_SEALED,
             "channel {channel!r} (thread {thread_id!r}, namespace {checkpoint_ns!r}) is stored as append deltas "
             "that are encrypted, and this downgrade joins deltas in SQL, and a migration has no keys to decrypt "
             "them: delete those threads, or keep the database at revision 0003 or later"),
        )
        for query, problem in refusals:
            row = op.get_bind().exec_driver_sql(query).fetchone()
            if row is not None:
                thread_id, checkpoint_ns, channel, version = row
                raise RuntimeError("cannot downgrade below revision 0003: " + problem.format(
                    channel=channel, version=version, thread_id=thread_id, checkpoint_ns=checkpoint_ns))
    for statement in (POSTGRES_MATERIALIZE,) if postgres else SQLITE_MATERIALIZE:
        op.execute(statement)
    op.drop_column(BLOBS, "chain")
