"""`PostgresDialect`: the SQL text of the Postgres savers. Lists of keys, chains and `IN` lists
are bound as arrays; metadata is JSONB, checkpoints are JSON text (migration 0009), parsed as
`json` where a statement looks inside (by `ferrograph_json`, NULL for a damaged row). A put is
one statement of data-modifying CTEs (`put_statement`), atomic on its own, so an autocommit
connection commits it in one round trip."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ferrograph import _core
from ferrograph.checkpointers.sql.dialect import (
    BLOBS,
    CHECKPOINTS,
    MIGRATION_LOCK_KEY,
    WRITES,
    Dialect,
    check_filter_key,
)
from ferrograph.checkpointers.sql.runner import Query

__all__ = ["POSTGRES", "PUT_REFUSED", "PostgresDialect"]

#: The function a refused put calls, and the marker its error's message starts with (0006).
PUT_REFUSED = "ferrograph_put_refused"


class PostgresDialect(Dialect):
    name = "postgresql"
    blob_keys = "unnest(?::text[], ?::text[], ?::text[], ?::text[]) AS k(thread_id, checkpoint_ns, channel, version)"
    chain_members = "CROSS JOIN LATERAL unnest(r.chain) AS m(version)"
    chain_member = "m.version"
    in_list = "= ANY(?::text[])"
    channel_versions = "json_each_text(ferrograph_json(c.checkpoint) -> 'channel_versions') AS v"
    channel_version_text = "v.value"
    namespaces_json = "json_agg(DISTINCT checkpoint_ns)::text"
    by_code_point = ' COLLATE "C"'
    checkpoint_ts = "(ferrograph_json(c.checkpoint) ->> 'ts')"
    step_and_source = "jsonb_build_array(c.metadata -> 'step', c.metadata -> 'source')::text"
    puts_in_one_statement = True
    drops_metadata_writes = True
    ranks_rows = True
    # Concurrent writers (see `writes.put`): a transaction-scoped advisory lock keyed by hashes of
    # (thread, namespace), in the two-int4 key space (the migration lock uses the bigint one).
    lock_line = "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))"
    lock_migrations = f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
    version_table_exists = "SELECT to_regclass(%s) IS NOT NULL"
    checkpoint_keys = "unnest(?::text[], ?::text[], ?::text[]) AS k(thread_id, checkpoint_ns, checkpoint_id)"
    # The bytes as stored (after compression), read without decompressing the value.
    json_size = "pg_column_size({})"
    blob_size = "octet_length({})"
    metadata_parents = "(c.metadata -> 'parents')::text"
    metadata_text = "c.metadata::text"
    checkpoint_text = "c.checkpoint"
    metadata_sealed = "jsonb_typeof(metadata) = 'string'"
    database_bytes = (
        "SELECT COALESCE(sum(pg_total_relation_size(to_regclass(t))), 0)::bigint"
        f" FROM unnest(ARRAY['{CHECKPOINTS}', '{BLOBS}', '{WRITES}']) AS t"
    )

    chain_length = "cardinality(chain)"
    # json, not jsonb: each value's text stays as the codec wrote it.
    inline_entries = "json_each(convert_from(c.channel_values, 'UTF8')::json) AS v"
    inline_size = "octet_length(v.value::text)"
    # Exclusive per thread, in a fixed order (two deletions never wait on each other in a
    # cycle); the insert trigger of migration 0004 takes the same keys shared.
    lock_threads = (
        "SELECT pg_advisory_xact_lock(hashtextextended(t, 0))"
        " FROM (SELECT t FROM unnest(%s::text[]) AS t ORDER BY t) AS s"
    )

    def vacuum(self, full: bool) -> tuple[str, ...]:
        # Plain VACUUM makes the space of deleted rows reusable without locking anyone out (and
        # returns empty pages at a table's end); FULL rewrites the tables, giving the space back
        # to the system, but locks them while it runs.
        return (f"VACUUM ({'FULL, ' if full else ''}ANALYZE) {CHECKPOINTS}, {BLOBS}, {WRITES}",)

    def q(self, sql: str) -> str:
        # psycopg wants '%s'. No statement uses a literal '?' or '%'.
        assert "%" not in sql, sql
        return sql.replace("?", "%s")

    def _q_binary(self, sql: str) -> str:
        """`q`, with the parameters cast `::bytea` sent as they are (%b), where the text format
        would escape every byte."""
        return self.q(sql).replace("%s::bytea", "%b::bytea")

    def __init__(self) -> None:
        super().__init__()
        self._put_sql: dict[tuple[bool, int, int], str] = {}
        self._put_writes_sql: dict[int, str] = {}
        self._batch_writes_sql = self.q(
            f"INSERT INTO {WRITES} (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, blob)"
            " SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::int[], ?::text[], ?::bytea[])"
            f"{self.write_conflict}"
        )
        # A row's blob_channels is an array literal (`chain_param`), so the column is bound as
        # an array of texts and each cast on its own.
        self._upsert_checkpoints_sql = self.q(
            f"INSERT INTO {CHECKPOINTS} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint,"
            " metadata, run_id, channel_values, blob_channels) SELECT k.thread_id, k.checkpoint_ns, k.checkpoint_id,"
            " k.parent_checkpoint_id, k.checkpoint, k.metadata::jsonb, k.run_id, k.channel_values,"
            " k.blob_channels::text[] FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],"
            " ?::text[], ?::bytea[], ?::text[]) AS k(thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
            f" checkpoint, metadata, run_id, channel_values, blob_channels){self.checkpoint_conflict}"
        )
        self._tuples_sql: dict[tuple[tuple[str, ...], bool], str] = {}

    def latest_row(self, latest_of_thread: str) -> str:
        # A LATERAL lookup per thread: a join lets the planner hash the whole table, reading
        # every checkpoint row a second time.
        return (
            f"CROSS JOIN LATERAL (SELECT l.checkpoint_ns, l.checkpoint, l.metadata {latest_of_thread}"
            " ORDER BY l.checkpoint_ns DESC LIMIT 1) AS c"
        )

    def chain_param(self, chain: Sequence[str]) -> Any:
        return _core.pg_array(chain, "t")  # a text[] literal

    def chain_value(self, column: Any) -> Optional[list[str]]:
        return column

    def text_list(self, values: Sequence[str]) -> Any:
        return [str(v) for v in values]

    def keys_param(self, keys: Sequence[tuple[str, ...]], width: int) -> list[Any]:
        return [[k[i] for k in keys] for i in range(width)]

    def metadata_condition(self, key: str, value: Any) -> tuple[str, list[Any], bool]:
        check_filter_key(key)
        encoded = _core.dumps({key: value}, context=f"metadata filter {key!r}").decode()
        return "metadata @> ?::jsonb", [encoded], False

    def metadata_matches(self, metadata: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
        """As LangGraph's PostgresSaver (`metadata @> filter`): jsonb containment. A nested
        object matches an object holding at least its keys, each matching; a list matches a list
        holding a match of each of its items, in any order; None matches a key present with
        null (not a missing key)."""
        return _contains(metadata, filter)

    def select_tuples(self, conditions: Sequence[str], several: bool) -> str:
        """As `Dialect.select_tuples`. Every blob row is read by its key, by a LATERAL lookup of
        at most one row, which the planner keeps as an index lookup rather than a join it could
        turn into a scan of the table."""
        key = (tuple(conditions), several)
        sql = self._tuples_sql.get(key)
        if sql is not None:
            return sql
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        by_key = (
            "CROSS JOIN LATERAL (SELECT {columns} FROM " + BLOBS + " AS b WHERE b.thread_id = {k}.thread_id"
            " AND b.checkpoint_ns = {k}.checkpoint_ns AND b.channel = {k}.channel AND b.version = {k}.version LIMIT 1) AS b"
        )
        distinct = "DISTINCT " if several else ""
        union = "UNION" if several else "UNION ALL"
        sql = self.q(
            f"WITH c AS (SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata,"
            f" channel_values, blob_channels FROM {CHECKPOINTS}{where}{self.order_newest_first} LIMIT ?),"
            f" k AS (SELECT {distinct}c.thread_id, c.checkpoint_ns, v.key AS channel, v.value AS version FROM c"
            " CROSS JOIN LATERAL json_each_text(ferrograph_json(c.checkpoint) -> 'channel_versions') AS v"
            " WHERE c.blob_channels IS NULL OR v.key = ANY(c.blob_channels)),"
            f" need AS (SELECT thread_id, checkpoint_ns, channel, version FROM k {union}"
            f" SELECT k.thread_id, k.checkpoint_ns, k.channel, m.version FROM k {by_key.format(columns='b.chain', k='k')}"
            " CROSS JOIN LATERAL unnest(b.chain) AS m(version))"
            f" SELECT 0, row_number() OVER ({self.order_newest_first.strip()}), c.thread_id, c.checkpoint_ns,"
            " c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint, c.metadata::text, c.channel_values, NULL::text[] FROM c"
            " UNION ALL SELECT 1, NULL, need.thread_id, need.checkpoint_ns, need.channel, need.version, NULL, NULL,"
            f" b.blob, b.chain FROM need {by_key.format(columns='b.blob, b.chain', k='need')}"
            " UNION ALL SELECT 2, row_number() OVER (ORDER BY w.task_path, w.task_id, w.idx), w.thread_id,"
            f" w.checkpoint_ns, w.checkpoint_id, w.task_id, w.channel, NULL, w.blob, NULL FROM c JOIN {WRITES} AS w"
            " ON w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id"
        )
        self._tuples_sql[key] = sql
        return sql

    def put_writes(self, rows: Sequence[tuple]) -> Query:
        """As `Dialect.put_writes`, in one statement: atomic on its own, so an autocommit
        connection commits it in one round trip. Rows of scalar parameters, one text per count
        of writes (see `put_statement`)."""
        sql = self._put_writes_sql.get(len(rows))
        if sql is None:
            sql = self._put_writes_sql[len(rows)] = self._q_binary(
                f"INSERT INTO {WRITES} (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, blob)"
                f" SELECT ?, ?, ?, ?, ?, k.idx, k.channel, k.blob FROM (VALUES {', '.join(['(?::int, ?, ?::bytea)'] * len(rows))})"
                f" AS k(idx, channel, blob){self.write_conflict}"
            )
        params = list(rows[0][:5])
        for row in rows:
            params += row[5:8]
        return Query(sql, params, rows=False)

    def put_batch_writes(self, rows: Sequence[tuple]) -> Query:
        """As `Dialect.put_batch_writes`, in one statement whose columns are bound as arrays
        (see `upsert_checkpoints`). Postgres refuses a statement that would upsert a row twice,
        so a key written twice keeps what storing the tasks in turn would: the first ordinary
        write (a repeat is ignored), the last special one (negative idx, replaced)."""
        kept: dict[tuple, tuple] = {}
        for row in rows:
            key = row[:4] + (row[5],)
            if row[5] < 0 or key not in kept:
                kept[key] = row
        return Query(self._batch_writes_sql, _core.pg_array_columns(kept.values(), "tttttitb"), rows=False)

    def upsert_checkpoints(self, rows: Sequence[Sequence[Any]]) -> Query:
        """As `Dialect.upsert_checkpoints`, in one statement whose columns are bound as arrays
        (literals: psycopg adapts a str much faster than a list). Its text is the same for any
        number of rows, so psycopg converts it once and the server plans it once, where a VALUES
        list of scalars would be a new text (more than psycopg caches) for each count. A
        checkpoint stored twice keeps its last row: Postgres refuses a statement that upserts a
        row twice."""
        latest = {(row[0], row[1], row[2]): row for row in rows}
        return Query(self._upsert_checkpoints_sql, _core.pg_array_columns(latest.values(), "tttttttbt"), rows=False)

    def put_statement(self, check: bool, deltas: int, whole: int) -> str:
        """A put as one statement of data-modifying CTEs: the append deltas (each written only
        when the row it extends is as this process wrote it), the whole values, then the
        checkpoint. It returns nothing a saver reads: a refused put raises (`PUT_REFUSED`,
        migration 0006), so a runner sends what follows without waiting for it. The rows are
        VALUES lists of scalar parameters, one text per count of deltas and of whole values: a
        generic plan then knows how many rows each part has, costs what a custom one does and
        is kept (with bound arrays the planner guessed their length, found the generic plan
        dearer and planned every put again, as long as executing it), and the driver sends
        scalars, which it adapts far faster than lists. Only the parts a put needs are in the
        text:

        - `check`, the concurrent-writer check of a marked put (see `writes.put`): `latest` is
          the line's latest checkpoint id and `ok` holds when it is the put's parent or the
          put's own checkpoint (a retried put); otherwise the put is refused as a concurrent
          update.
        - `deltas`, how many values go as deltas: unless every delta was written, the put is
          refused as a stale delta (the saver forgets its cache and runs it again with whole
          values: a stale cache costs a second round trip, never the bytes of whole values on
          every put).

        Parameters, in order: with `check`, thread_id, checkpoint_ns, parent_id, checkpoint_id;
        with `deltas`, thread_id, checkpoint_ns, each delta's channel, version, blob, chain, and
        the version, chain and length of the row it extends, then thread_id, checkpoint_ns; with
        `whole`, thread_id, checkpoint_ns and each value's channel, version and blob; the
        checkpoint row; then, for each refusal the text has (check, deltas), thread_id,
        checkpoint_ns, parent_id. Chains and the row's `blob_channels` are array literals
        (`chain_param`)."""
        key = (check, deltas, whole)
        sql = self._put_sql.get(key)
        if sql is not None:
            return sql
        ctes = []
        refusals = []
        if check:
            ctes.append(
                f"latest AS (SELECT MAX(checkpoint_id) AS id FROM {CHECKPOINTS} WHERE thread_id = ? AND checkpoint_ns = ?)"
            )
            ctes.append("ok AS (SELECT 1 FROM latest WHERE id IS NOT DISTINCT FROM ?::text OR id = ?::text)")
            refusals.append(
                f" WHEN NOT EXISTS (SELECT 1 FROM ok) THEN {PUT_REFUSED}('concurrent update', ?, ?, ?, (SELECT id FROM latest))"
            )
        if deltas:
            ctes.append(
                "d AS ("
                + _insert_blob_rows("?, ?::bytea, ?::text[], ?, ?::text[], ?::int", deltas, ", prev_version, prev_chain, prev_length")
                # A LATERAL lookup of at most one row by key: as an EXISTS, the planner may hash
                # every blob row of the thread, making a put cost more as the thread grows.
                + f" CROSS JOIN LATERAL (SELECT 1 FROM {BLOBS} AS p WHERE p.thread_id = ?"
                " AND p.checkpoint_ns = ? AND p.channel = k.channel AND p.version = k.prev_version"
                " AND p.chain IS NOT DISTINCT FROM k.prev_chain AND octet_length(p.blob) = k.prev_length LIMIT 1)"
                " AS extended ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING RETURNING channel)"
            )
            refusals.append(f" WHEN (SELECT count(*) FROM d) <> {deltas} THEN {PUT_REFUSED}('stale delta', ?, ?, ?, NULL)")
        if whole:
            ctes.append(
                f"b AS ({_insert_blob_rows('?, ?::bytea', whole)}"
                " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING)"
            )
        insert_checkpoint = (
            f"INSERT INTO {CHECKPOINTS} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
            " checkpoint, metadata, run_id, channel_values, blob_channels)"
            f" VALUES (?, ?, ?, ?, ?, ?::jsonb, ?, ?::bytea, ?::text[]){self.checkpoint_conflict}"
        )
        if refusals:
            # The refusal aborts the statement, and with it everything its CTEs wrote.
            ctes.append(f"c AS ({insert_checkpoint})")
            body = "SELECT CASE" + "".join(refusals) + " ELSE true END"
        else:
            body = insert_checkpoint
        sql = self._q_binary(("WITH " + ", ".join(ctes) + " " if ctes else "") + body)
        self._put_sql[key] = sql
        return sql


def _insert_blob_rows(row: str, count: int, extra: str = "") -> str:
    """An INSERT of `count` blob rows from a VALUES list: thread_id and checkpoint_ns bound once,
    then each row's channel, version and `row`'s further columns (a chain as well when `extra`
    names more columns after it, which the statement reads as `k.<name>`)."""
    chain = ", chain" if extra else ""
    columns = f"channel, version, blob{chain}{extra}"
    return (
        f"INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob{chain})"
        f" SELECT ?, ?, k.channel, k.version, k.blob{', k.chain' if extra else ''}"
        f" FROM (VALUES {', '.join([f'(?, {row})'] * count)}) AS k({columns})"
    )


def _contains(value: Any, pattern: Any) -> bool:
    """jsonb's `value @> pattern`, on decoded JSON (a bool is not a number)."""
    if isinstance(pattern, Mapping):
        return isinstance(value, Mapping) and all(k in value and _contains(value[k], v) for k, v in pattern.items())
    if isinstance(pattern, (list, tuple)):
        return isinstance(value, (list, tuple)) and all(any(_contains(item, wanted) for item in value) for wanted in pattern)
    if isinstance(pattern, bool) or isinstance(value, bool):
        return type(pattern) is type(value) and pattern == value
    return value == pattern


POSTGRES = PostgresDialect()
