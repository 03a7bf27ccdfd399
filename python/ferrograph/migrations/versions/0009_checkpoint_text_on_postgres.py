"""Postgres keeps a checkpoint's JSON as text, not JSONB.

Since migration 0005 a checkpoint row holds the checkpoint less its values: its id, time stamp
and version maps (`channel_versions`, `versions_seen`), about 1-2 KB of version strings. Nothing
filters on it in SQL; reads parse only its `channel_versions` (to find the blob rows a page of
checkpoints needs) and `ts` (thread summaries, retention). Yet storing it as JSONB parsed and
re-encoded every document on insert: for a 10-node run's batch of 11 checkpoint rows the insert
took about 300 us of the server's time, about 190 us with text (measured on the run's own
statement). The few reads that look inside parse it as `json` when they do, through
`ferrograph_json`, which reads a document that is not JSON (a row damaged by hand: text can hold
one, JSONB could not) as NULL, so that the statement still returns the row for the reader to
report as corrupt, as on SQLite. Metadata stays JSONB: filters (`metadata @> ...`) run on it.

Nothing changes on SQLite, where the column was always text.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLE = "ferrograph_checkpoints"
JSON_OR_NULL = "ferrograph_json"

JSON_OR_NULL_FUNCTION = f"""
CREATE FUNCTION {JSON_OR_NULL}(document text) RETURNS json LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $body$
BEGIN
    RETURN document::json;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END
$body$
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {TABLE} ALTER COLUMN checkpoint TYPE text USING checkpoint::text")
    op.execute(JSON_OR_NULL_FUNCTION)


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {JSON_OR_NULL}(text)")
    op.execute(f"ALTER TABLE {TABLE} ALTER COLUMN checkpoint TYPE jsonb USING checkpoint::jsonb")
