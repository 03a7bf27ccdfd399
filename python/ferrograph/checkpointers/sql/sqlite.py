"""`SqliteDialect`: the SQL text of the SQLite savers. SQLite has no arrays: lists of keys,
chains and `IN` lists are bound as JSON text and read with `json_each`. A put is several
statements in the runner's write transaction (BEGIN IMMEDIATE, which also serializes writers)."""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Mapping, Optional, Sequence

from ferrograph.checkpointers.sql.dialect import BLOBS, CHECKPOINTS, WRITES, Dialect, check_filter_key
from ferrograph.checkpointers.sql.runner import Query

__all__ = ["SQLITE", "SQLITE_BUSY_TIMEOUT", "SqliteDialect", "sqlite_path"]

#: Seconds a SQLite connection opened by `from_conn_string` waits for another connection's write
#: transaction (BEGIN IMMEDIATE queues in SQLite's busy handler) before "database is locked".
#: Python's default is 5; many writers on one file under a loaded machine can exceed that.
SQLITE_BUSY_TIMEOUT = 30.0

#: Pending writes, and a batch's checkpoint rows, are stored by one statement up to this many
#: (8 or 9 parameters each, well under SQLite's limit of bound parameters); more are stored row
#: by row.
ROWS_PER_STATEMENT = 64

#: The placeholders of one checkpoint row.
CHECKPOINT_ROW = ", ".join(["?"] * 9)


def sqlite_path(conn_string: str) -> str:
    """The file behind what users pass to `SqliteSaver.from_conn_string`: a path, `:memory:`,
    or a `sqlite:///path` URL."""
    if conn_string.startswith("sqlite:///"):
        rest = conn_string[len("sqlite:///") :]
        return rest or ":memory:"
    if conn_string in ("sqlite://", "sqlite:"):
        return ":memory:"
    return conn_string


class SqliteDialect(Dialect):
    name = "sqlite"
    json_in = "?"
    blob_keys = (
        "(SELECT json_extract(value, '$[0]') AS thread_id, json_extract(value, '$[1]') AS checkpoint_ns,"
        " json_extract(value, '$[2]') AS channel, json_extract(value, '$[3]') AS version"
        " FROM json_each(?)) AS k"
    )
    chain_members = ", json_each(r.chain) AS m"
    chain_member = "m.value"
    in_list = "IN (SELECT value FROM json_each(?))"
    channel_versions = "json_each(c.checkpoint, '$.channel_versions') AS v"
    channel_version_text = "CAST(v.value AS TEXT)"
    namespaces_json = "json_group_array(DISTINCT checkpoint_ns)"
    by_code_point = ""
    checkpoint_ts = "json_extract(c.checkpoint, '$.ts')"
    step_and_source = "json_extract(c.metadata, '$.step', '$.source')"
    puts_in_one_statement = False
    drops_metadata_writes = False
    ranks_rows = False
    # The write lock BEGIN IMMEDIATE takes serializes both stepping puts and upgrades.
    lock_line = None
    lock_migrations = None
    version_table_exists = "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?"
    checkpoint_keys = (
        "(SELECT json_extract(value, '$[0]') AS thread_id, json_extract(value, '$[1]') AS checkpoint_ns,"
        " json_extract(value, '$[2]') AS checkpoint_id FROM json_each(?)) AS k"
    )
    # JSON columns are TEXT: length() would count characters.
    json_size = "length(CAST({} AS BLOB))"
    blob_size = "length({})"
    metadata_parents = "json_extract(c.metadata, '$.parents')"
    metadata_text = "c.metadata"
    checkpoint_text = "c.checkpoint"
    metadata_sealed = "json_type(metadata) = 'text'"
    database_bytes = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
    lock_threads = None
    chain_length = "json_array_length(chain)"
    # A column that is not JSON (a corrupt row) counts as holding nothing: statistics never fail
    # on a value.
    inline_entries = (
        "json_each(CASE WHEN json_valid(CAST(c.channel_values AS TEXT)) THEN CAST(c.channel_values AS TEXT) END) AS v"
    )
    # json_each gives a string unquoted and true/false as 1/0: the JSON text is rebuilt.
    inline_size = (
        "length(CAST(CASE WHEN v.type IN ('object', 'array') THEN v.value WHEN v.type IN ('true', 'false', 'null')"
        " THEN v.type ELSE json_quote(v.value) END AS BLOB))"
    )

    def vacuum(self, full: bool) -> tuple[str, ...]:
        # The file is rewritten whole either way; the WAL is folded in and truncated around it.
        return ("PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)")

    def __init__(self) -> None:
        super().__init__()
        # A put, statement by statement (`writes.put`); a batch's checkpoint rows in one
        # (`upsert_checkpoints`).
        self._upsert_into = (
            f"INSERT INTO {CHECKPOINTS} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint,"
            " metadata, run_id, channel_values, blob_channels) VALUES "
        )
        self.upsert_checkpoint = f"{self._upsert_into}({CHECKPOINT_ROW}){self.checkpoint_conflict}"
        self.insert_blob = (
            f"INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
        )
        # A delta is written only while the row it extends is still there as this process wrote
        # it (same chain, same length); RETURNING tells whether it was.
        self.insert_delta = (
            f"INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob, chain)"
            f" SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM {BLOBS} WHERE thread_id = ?"
            " AND checkpoint_ns = ? AND channel = ? AND version = ? AND chain IS ? AND length(blob) = ?)"
            " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING RETURNING 1"
        )
        # Concurrent writers (see `writes.put`): the latest checkpoint of a thread and namespace,
        # read under the write lock.
        self.latest_checkpoint_id = (
            f"SELECT MAX(checkpoint_id) FROM {CHECKPOINTS} WHERE thread_id = ? AND checkpoint_ns = ?"
        )
        self._tuples_sql: dict[tuple[tuple[str, ...], bool], str] = {}
        self._put_writes_sql: dict[int, str] = {}
        self._upserts_sql: dict[int, str] = {}

    def put_writes(self, rows: Sequence[tuple]) -> Query:
        """As `Dialect.put_writes`, as one statement (a row of values per write) when there are
        at most `ROWS_PER_STATEMENT`: atomic on its own, so an autocommit connection runs it
        without BEGIN and COMMIT."""
        if len(rows) > ROWS_PER_STATEMENT:
            return super().put_writes(rows)
        statement = self._put_writes_sql.get(len(rows))
        if statement is None:
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
            statement = self._put_writes_sql[len(rows)] = (
                f"INSERT INTO {WRITES} (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, blob)"
                f" VALUES {values}{self.write_conflict}"
            )
        return Query(statement, [value for row in rows for value in row], rows=False, alone=True)

    def upsert_checkpoints(self, rows: Sequence[Sequence[Any]]) -> Query:
        """`upsert_checkpoint` for several rows (a batch's puts), as one statement when there
        are at most `ROWS_PER_STATEMENT` (9 parameters each), applied in order."""
        if len(rows) > ROWS_PER_STATEMENT:
            return Query(self.upsert_checkpoint, list(rows), many=True, rows=False)
        statement = self._upserts_sql.get(len(rows))
        if statement is None:
            values = ", ".join([f"({CHECKPOINT_ROW})"] * len(rows))
            statement = self._upserts_sql[len(rows)] = f"{self._upsert_into}{values}{self.checkpoint_conflict}"
        return Query(statement, [value for row in rows for value in row], rows=False)

    def latest_row(self, latest_of_thread: str) -> str:
        # No LATERAL in SQLite; the join stays a lookup by key.
        return (
            f"JOIN {CHECKPOINTS} AS c ON c.thread_id = t.thread_id AND c.checkpoint_id = t.last_id"
            f" AND c.checkpoint_ns = (SELECT MAX(l.checkpoint_ns) {latest_of_thread})"
        )

    def chain_param(self, chain: Sequence[str]) -> Any:
        # json.dumps's text for a list of str, without its encoder's machinery (every put binds one).
        return "[" + ", ".join(map(encode_basestring_ascii, chain)) + "]"

    def chain_value(self, column: Any) -> Optional[list[str]]:
        return None if column is None else json.loads(column)

    def text_list(self, values: Sequence[str]) -> Any:
        return json.dumps([str(v) for v in values])

    def keys_param(self, keys: Sequence[tuple[str, ...]], width: int) -> list[Any]:
        return [json.dumps(keys)]

    def metadata_condition(self, key: str, value: Any) -> tuple[str, list[Any], bool]:
        # SQLite cannot compare JSON objects and arrays as values: rows whose value is one are
        # kept for Python to compare.
        check_filter_key(key)
        path = "$" + "".join(f'."{part}"' for part in key.split("."))
        if value is None or isinstance(value, (str, int, float)):
            return "json_extract(metadata, ?) IS ?", [path, int(value) if isinstance(value, bool) else value], False
        return "json_type(metadata, ?) IN ('object', 'array')", [path], True

    def metadata_matches(self, metadata: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
        """As LangGraph's SqliteSaver: each key's value equal (None where there is none), a
        dotted key being a path into nested objects (`{"user.tier": "pro"}` matches metadata
        `{"user": {"tier": "pro"}}`)."""
        return all(_at_path(metadata, key) == value for key, value in filter.items())

    def select_tuples(self, conditions: Sequence[str], several: bool) -> str:
        """As `Dialect.select_tuples`. row_number() made reading one checkpoint about a quarter
        slower, so the rows come unranked, and a blob row shared by several checkpoints or chains
        may come more than once (the reader keeps one): DISTINCT cost more than the duplicates.
        `k` is read twice; for a page of several checkpoints it is materialized, since SQLite keeps
        only a few parsed documents, so reading it twice parsed every checkpoint twice; for one
        checkpoint the temporary table cost more than the second (cached) parse.

        `c` is the page of checkpoints; `k` lists the versions each has in blob rows. For a row
        since migration 0005, its `blob_channels` names those channels and each version is read
        with json_extract (SQLite parses a document once per statement, however many paths are
        read from it); a name that JSON escapes (its `blob_channels` text then holds a '\\'),
        and every channel of a row written before 0005 (`blob_channels` NULL), are matched by
        walking its `channel_versions`. A checkpoint whose JSON is broken names none, so the
        statement still returns its row for the reader to report. The blob rows of `k`, then the
        rows their chains name, are each read by key: CROSS JOIN fixes the join order (left to
        right), so the planner cannot turn a lookup into a scan of the table.

        One statement rather than three (checkpoints, values by key, writes): each statement
        starts a read transaction, and three took about 1.5 times as long as one."""
        key = (tuple(conditions), several)
        sql = self._tuples_sql.get(key)
        if sql is not None:
            return sql
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        same_key = " AND ".join(f"{{b}}.{column} = {{k}}.{column}" for column in ("thread_id", "checkpoint_ns", "channel", "version"))
        document = "CASE WHEN json_valid(c.checkpoint) THEN c.checkpoint END"
        sql = self._tuples_sql[key] = (
            "WITH c AS MATERIALIZED (SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint,"
            f" metadata, channel_values, blob_channels FROM {CHECKPOINTS}{where}{self.order_newest_first} LIMIT ?),"
            f" k AS {'' if several else 'NOT '}MATERIALIZED (SELECT c.thread_id, c.checkpoint_ns, n.value AS channel,"
            f" CAST(json_extract({document}, '$.channel_versions.\"' || n.value || '\"') AS TEXT) AS version"
            " FROM c CROSS JOIN json_each(c.blob_channels) AS n WHERE instr(c.blob_channels, '\\') = 0"
            " UNION ALL SELECT c.thread_id, c.checkpoint_ns, v.key, CAST(v.value AS TEXT)"
            f" FROM c CROSS JOIN json_each({document}, '$.channel_versions') AS v"
            " WHERE (c.blob_channels IS NULL OR instr(c.blob_channels, '\\') > 0)"
            " AND (c.blob_channels IS NULL OR v.key IN (SELECT value FROM json_each(c.blob_channels))))"
            " SELECT 0, NULL, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata,"
            " channel_values, NULL FROM c"
            " UNION ALL SELECT 1, NULL, b.thread_id, b.checkpoint_ns, b.channel, b.version, NULL, NULL, b.blob, b.chain"
            f" FROM k CROSS JOIN {BLOBS} AS b ON {same_key.format(b='b', k='k')}"
            " UNION ALL SELECT 1, NULL, b.thread_id, b.checkpoint_ns, b.channel, b.version, NULL, NULL, b.blob, b.chain"
            f" FROM k CROSS JOIN {BLOBS} AS r ON {same_key.format(b='r', k='k')} CROSS JOIN json_each(r.chain) AS m"
            f" CROSS JOIN {BLOBS} AS b ON b.thread_id = r.thread_id AND b.checkpoint_ns = r.checkpoint_ns"
            " AND b.channel = r.channel AND b.version = m.value WHERE r.chain IS NOT NULL"
            " UNION ALL SELECT 2, NULL, w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.channel, w.task_path,"
            f" w.blob, w.idx FROM c CROSS JOIN {WRITES} AS w ON w.thread_id = c.thread_id"
            " AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id"
        )
        return sql


def _at_path(metadata: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted filter key's path in `metadata`, or None."""
    value: Any = metadata
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


SQLITE = SqliteDialect()
