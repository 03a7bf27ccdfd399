"""Everything the SQL savers share: the SQL text for SQLite and Postgres, and every conversion
between rows and the saver protocol. The saver classes (sqlite.py, postgres.py, aio.py) only do
I/O.

Each protocol method is an *operation*: a generator that yields `Query` steps, receives each
step's rows (None for statements without a result), and returns the method's result. `list`
operations also yield `Emit` steps carrying finished tuples, so a caller can stream them page by
page. `drive` and `drive_iter` run an operation against a synchronous `execute(query)`; aio.py
has the asynchronous twins.

Storage (see migrations/versions): a channel value is stored once per (thread, namespace,
channel, version) in `ferrograph_checkpoint_blobs`; a checkpoint row holds the checkpoint
without its values, and its `channel_versions` say which blobs it needs. Checkpoint and metadata
are JSON (JSONB on Postgres), so metadata filters run in the database. Values, checkpoints and
metadata are encoded with ferrograph's Rust codec.

Append deltas. A list that grows by a few items a step (a chat's messages) would otherwise be
stored whole at every version, so a thread's storage would grow with the square of its length.
When a channel's new value extends the value stored at the channel's previous version (its
encoding is that value's encoding with more items before the closing ']'), the blob row holds
only the appended items, as a JSON array, and its `chain` names the versions the value is built
from: a full snapshot first, then the earlier deltas. Every `SNAPSHOT_EVERY` deltas a full value
is stored again, so a value never needs more than `SNAPSHOT_EVERY + 1` rows, and since each row
names its whole chain, one statement fetches the rows of every value a page of checkpoints needs.
The value is rebuilt byte for byte ('[' + each row's items joined with ',' + ']') and decoded
once, so it is exactly what a whole-value row would have given: deltas compare encodings, never
Python values (where 1 == True).

Knowing the previous value at put time: `put` receives only the new checkpoint, so each saver
keeps a `DeltaCache`, per (thread, namespace, channel), of the last value it stored: its version,
its encoding, and how its row was stored. This costs no query and no decoding, and memory bounded
by `DeltaCache.max_bytes`. Reading the parent's blob back instead would cost a round trip and a
chain's worth of bytes on every put. The cache may be stale (another process pruned or deleted
the thread, a transaction rolled back): a delta is therefore inserted only if the row it extends
still exists with the chain and length this process wrote, in the same statement, and otherwise
the whole value is stored. So a cache miss, a cold start or a second writer costs a full value,
never a wrong one. What the check cannot see is a version reused for a different value after a
deletion, which the blob table already rules out (a version names one value of its channel).
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable, Generator, Iterable, Iterator, Mapping, Optional, Sequence, TypeVar, Union

from ferrograph import _core
from ferrograph.checkpointers.base import WRITES_IDX_MAP, CheckpointTuple
from ferrograph.errors import (
    CheckpointNotFoundError,
    ConcurrentUpdateError,
    CorruptCheckpointError,
    InvalidConfigError,
)

__all__ = [
    "MIGRATION_LOCK_KEY",
    "SNAPSHOT_EVERY",
    "DeltaCache",
    "POSTGRES",
    "SQLITE",
    "Dialect",
    "Emit",
    "Query",
    "drive",
    "drive_iter",
    "sqlite_path",
]

#: Key of the Postgres advisory lock that serializes schema upgrades ("ferrog" in ASCII).
MIGRATION_LOCK_KEY = 0x666572726F67

CHECKPOINTS = "ferrograph_checkpoints"
BLOBS = "ferrograph_checkpoint_blobs"
WRITES = "ferrograph_checkpoint_writes"

#: Metadata filter keys must look like identifiers; anything else is refused before any SQL.
FILTER_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,127}$")
#: Rows fetched per round trip when listing, and keys per batched lookup.
PAGE = 100
BATCH = 500
#: Seconds a SQLite connection opened by `from_conn_string` waits for another connection's write
#: transaction (BEGIN IMMEDIATE queues in SQLite's busy handler) before "database is locked".
#: Python's default is 5; many writers on one file under a loaded machine can exceed that.
SQLITE_BUSY_TIMEOUT = 30.0
#: A channel value is stored whole at least once every this many append deltas.
SNAPSHOT_EVERY = 16
#: Metadata keys LangGraph never copies from the config into a checkpoint's metadata.
EXCLUDED_METADATA_KEYS = frozenset(
    {
        "thread_id",
        "checkpoint_id",
        "checkpoint_ns",
        "checkpoint_map",
        "langgraph_step",
        "langgraph_node",
        "langgraph_triggers",
        "langgraph_path",
        "langgraph_checkpoint_ns",
    }
)


@dataclass(frozen=True)
class Query:
    """One statement. `params` is a sequence, a sequence of sequences when `many`, or None for a
    statement run without parameter parsing (migration DDL). `rows` False: the operation does not
    read the statement's result, so a driver may queue it without waiting (Postgres pipeline)."""

    sql: str
    params: Optional[Sequence[Any]] = ()
    many: bool = False
    rows: bool = True


@dataclass(frozen=True)
class Emit:
    """Results of a streaming operation, built as they are iterated (before the operation's
    next step)."""

    items: Iterable[Any]


Step = Union[Query, Emit]
Op = Generator[Step, Any, Any]
T = TypeVar("T")


def drive(op: Op, execute: Callable[[Query], Any]) -> Any:
    """Runs an operation to its result with a synchronous `execute`."""
    try:
        step = next(op)
        while True:
            if isinstance(step, Emit):
                raise TypeError("a streaming operation must be run with drive_iter")
            step = op.send(execute(step))
    except StopIteration as stop:
        return stop.value


def drive_iter(op: Op, execute: Callable[[Query], Any]) -> Iterator[Any]:
    """Runs a streaming operation, yielding the items it emits."""
    try:
        step = next(op)
        while True:
            if isinstance(step, Emit):
                yield from step.items
                step = op.send(None)
            else:
                step = op.send(execute(step))
    except StopIteration:
        return


def sqlite_path(conn_string: str) -> str:
    """The file behind what users pass to `SqliteSaver.from_conn_string`: a path, `:memory:`,
    or a `sqlite:///path` URL."""
    if conn_string.startswith("sqlite:///"):
        rest = conn_string[len("sqlite:///") :]
        return rest or ":memory:"
    if conn_string in ("sqlite://", "sqlite:"):
        return ":memory:"
    return conn_string


def _placeholders(sql: str, style: str) -> str:
    # Statements are written with '?'; psycopg wants '%s'. No statement uses a literal '?' or '%'.
    assert "%" not in sql, sql
    return sql.replace("?", style)


class Dialect:
    """The SQL text of one database family. Only `name` differs in behaviour; everything else is
    strings and parameter shapes."""

    def __init__(self, name: str) -> None:
        assert name in ("sqlite", "postgresql")
        self.name = name
        pg = name == "postgresql"
        q = (lambda s: _placeholders(s, "%s")) if pg else (lambda s: s)
        json_in = "?::jsonb" if pg else "?"

        self.order_newest_first = " ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC"
        self.upsert_checkpoint = q(
            f"INSERT INTO {CHECKPOINTS} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint,"
            f" metadata, run_id) VALUES (?, ?, ?, ?, {json_in}, {json_in}, ?)"
            " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET"
            " parent_checkpoint_id = excluded.parent_checkpoint_id, checkpoint = excluded.checkpoint,"
            " metadata = excluded.metadata, run_id = excluded.run_id"
        )
        self.insert_blob = q(
            f"INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
        )
        write_columns = (
            f"INSERT INTO {WRITES} (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, blob)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)"
        )
        self.insert_write = q(write_columns + " DO NOTHING")
        self.upsert_write = q(
            write_columns
            + " DO UPDATE SET channel = excluded.channel, blob = excluded.blob, task_path = excluded.task_path"
        )
        # Batched lookups join a bound list of keys: a JSON array on SQLite, parallel arrays on
        # Postgres. The statement text never depends on how many keys there are.
        if pg:
            blob_keys = "unnest(?::text[], ?::text[], ?::text[], ?::text[]) AS k(thread_id, checkpoint_ns, channel, version)"
        else:
            blob_keys = (
                "(SELECT json_extract(value, '$[0]') AS thread_id, json_extract(value, '$[1]') AS checkpoint_ns,"
                " json_extract(value, '$[2]') AS channel, json_extract(value, '$[3]') AS version"
                " FROM json_each(?)) AS k"
            )
        # The rows asked for plus every row their chains name (see "Append deltas" above), in one
        # statement; a row shared by many chains is read once.
        chain_members = "CROSS JOIN LATERAL unnest(r.chain) AS m(version)" if pg else ", json_each(r.chain) AS m"
        member_version = "m.version" if pg else "m.value"
        self.select_blobs = q(
            f"WITH k AS (SELECT * FROM {blob_keys}), need AS (SELECT thread_id, checkpoint_ns, channel, version FROM k"
            f" UNION SELECT r.thread_id, r.checkpoint_ns, r.channel, {member_version} FROM k JOIN {BLOBS} AS r"
            " ON r.thread_id = k.thread_id AND r.checkpoint_ns = k.checkpoint_ns AND r.channel = k.channel"
            f" AND r.version = k.version {chain_members})"
            f" SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version, b.blob, b.chain FROM need JOIN {BLOBS} AS b"
            " ON b.thread_id = need.thread_id AND b.checkpoint_ns = need.checkpoint_ns AND b.channel = need.channel"
            " AND b.version = need.version"
        )
        # A delta is written only while the row it extends is still there as this process wrote
        # it (same chain, same length); RETURNING tells whether it was.
        chain_in = "?::text[]" if pg else "?"
        same_chain = f"chain IS NOT DISTINCT FROM {chain_in}" if pg else "chain IS ?"
        length = "octet_length" if pg else "length"
        self.insert_delta = q(
            f"INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob, chain)"
            f" SELECT ?, ?, ?, ?, ?, {chain_in} WHERE EXISTS (SELECT 1 FROM {BLOBS} WHERE thread_id = ?"
            f" AND checkpoint_ns = ? AND channel = ? AND version = ? AND {same_chain} AND {length}(blob) = ?)"
            " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING RETURNING 1"
        )
        # Postgres stores a put in one statement (data-modifying CTEs), atomic on its own, so an
        # autocommit connection commits it in one round trip; see `put_statement`.
        self.puts_in_one_statement = pg
        self._put_sql: dict[tuple[bool, bool], str] = {}
        # Both read a page of checkpoints with their values and writes in one statement
        # (`select_tuples`). On SQLite too: each statement starts a read transaction, and three
        # (checkpoints, values by key, writes) took about 1.5 times as long as one that also
        # parses each checkpoint's JSON again to find its values' keys.

        self.delete_thread = tuple(
            q(f"DELETE FROM {table} WHERE thread_id = ?") for table in (WRITES, BLOBS, CHECKPOINTS)
        )
        self.thread_exists = q(f"SELECT 1 FROM {CHECKPOINTS} WHERE thread_id = ? LIMIT 1")
        # Concurrent writers (see `put`): the latest checkpoint of a thread and namespace, read
        # under a lock that serializes the engine's stepping puts on that line until commit. On
        # Postgres a transaction-scoped advisory lock keyed by hashes of (thread, namespace), in
        # the two-int4 key space (the migration lock uses the bigint one); on SQLite the write
        # lock BEGIN IMMEDIATE already holds.
        self.lock_line: Optional[str] = (
            q("SELECT pg_advisory_xact_lock(hashtext(?), hashtext(?))") if pg else None
        )
        self.latest_checkpoint_id = q(
            f"SELECT MAX(checkpoint_id) FROM {CHECKPOINTS} WHERE thread_id = ? AND checkpoint_ns = ?"
        )
        self.copy_thread = (
            q(
                f"INSERT INTO {CHECKPOINTS} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
                " checkpoint, metadata, run_id) SELECT ?, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
                f" checkpoint, metadata, run_id FROM {CHECKPOINTS} WHERE thread_id = ?"
                " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING"
            ),
            q(
                f"INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob, chain)"
                f" SELECT ?, checkpoint_ns, channel, version, blob, chain FROM {BLOBS} WHERE thread_id = ?"
                " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
            ),
            q(
                f"INSERT INTO {WRITES} (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel,"
                " blob) SELECT ?, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, blob"
                f" FROM {WRITES} WHERE thread_id = ?"
                " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING"
            ),
        )

        in_list = "= ANY(?::text[])" if pg else "IN (SELECT value FROM json_each(?))"
        self.threads_of_runs = q(f"SELECT DISTINCT thread_id FROM {CHECKPOINTS} WHERE run_id {in_list}")
        self.delete_runs = (
            q(
                f"DELETE FROM {WRITES} AS w WHERE EXISTS (SELECT 1 FROM {CHECKPOINTS} AS c"
                " WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns"
                f" AND c.checkpoint_id = w.checkpoint_id AND c.run_id {in_list})"
            ),
            q(f"DELETE FROM {CHECKPOINTS} WHERE run_id {in_list}"),
        )
        self.prune_keep_latest = (
            q(
                f"DELETE FROM {CHECKPOINTS} AS c WHERE c.thread_id {in_list} AND c.checkpoint_id <"
                f" (SELECT MAX(l.checkpoint_id) FROM {CHECKPOINTS} AS l"
                " WHERE l.thread_id = c.thread_id AND l.checkpoint_ns = c.checkpoint_ns)"
            ),
            q(
                f"DELETE FROM {WRITES} AS w WHERE w.thread_id {in_list} AND NOT EXISTS (SELECT 1 FROM {CHECKPOINTS}"
                " AS c WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns"
                " AND c.checkpoint_id = w.checkpoint_id)"
            ),
        )
        self.prune_delete = tuple(
            q(f"DELETE FROM {table} WHERE thread_id {in_list}") for table in (WRITES, BLOBS, CHECKPOINTS)
        )
        # A blob is garbage once no checkpoint of its thread and namespace names its version, nor
        # the chain of a blob that one names.
        versions = (
            "jsonb_each_text(c.checkpoint -> 'channel_versions') AS v"
            if pg
            else "json_each(c.checkpoint, '$.channel_versions') AS v"
        )
        version_text = "v.value" if pg else "CAST(v.value AS TEXT)"
        self.collect_blobs = q(
            f"WITH live AS (SELECT c.thread_id, c.checkpoint_ns, v.key AS channel, {version_text} AS version"
            f" FROM {CHECKPOINTS} AS c, {versions} WHERE c.thread_id {in_list})"
            f" DELETE FROM {BLOBS} WHERE thread_id {in_list} AND (thread_id, checkpoint_ns, channel, version) NOT IN"
            " (SELECT thread_id, checkpoint_ns, channel, version FROM live UNION ALL"
            f" SELECT r.thread_id, r.checkpoint_ns, r.channel, {member_version} FROM live JOIN {BLOBS} AS r"
            " ON r.thread_id = live.thread_id AND r.checkpoint_ns = live.checkpoint_ns AND r.channel = live.channel"
            f" AND r.version = live.version {chain_members})"
        )
        # Per thread: how many checkpoints, in which namespaces, and the latest one's id, with its
        # ts, step and source read out of the JSON in the database. The checkpoint columns are
        # read for one row per thread, the blobs not at all. Ids and thread ids compare by code
        # point as in Python (COLLATE "C"); among checkpoints sharing the latest id, the one in
        # the greatest namespace counts, the one `list` returns first. That row is looked up per
        # thread: on Postgres by a LATERAL lookup, since a join lets the planner hash the whole
        # table, reading every checkpoint row a second time; SQLite has no LATERAL and keeps
        # the join a lookup by key.
        namespaces = "json_agg(DISTINCT checkpoint_ns)::text" if pg else "json_group_array(DISTINCT checkpoint_ns)"
        by_code_point = ' COLLATE "C"' if pg else ""
        ts = "c.checkpoint ->> 'ts'" if pg else "json_extract(c.checkpoint, '$.ts')"
        step_and_source = (
            "jsonb_build_array(c.metadata -> 'step', c.metadata -> 'source')::text"
            if pg
            else "json_extract(c.metadata, '$.step', '$.source')"
        )
        latest_of_thread = f"FROM {CHECKPOINTS} AS l WHERE l.thread_id = t.thread_id AND l.checkpoint_id = t.last_id"
        latest_row = (
            f"CROSS JOIN LATERAL (SELECT l.checkpoint_ns, l.checkpoint, l.metadata {latest_of_thread}"
            " ORDER BY l.checkpoint_ns DESC LIMIT 1) AS c"
            if pg
            else f"JOIN {CHECKPOINTS} AS c ON c.thread_id = t.thread_id AND c.checkpoint_id = t.last_id"
            f" AND c.checkpoint_ns = (SELECT MAX(l.checkpoint_ns) {latest_of_thread})"
        )

        def thread_summaries(where: str) -> str:
            return q(
                f"WITH t AS (SELECT thread_id, count(*) AS checkpoints, {namespaces} AS namespaces,"
                f" MAX(checkpoint_id{by_code_point}) AS last_id FROM {CHECKPOINTS}{where} GROUP BY thread_id)"
                f" SELECT t.thread_id, t.checkpoints, t.namespaces, t.last_id, c.checkpoint_ns, {ts},"
                f" {step_and_source} FROM t {latest_row} ORDER BY t.last_id DESC, t.thread_id{by_code_point} DESC"
            )

        self.select_thread_summaries = thread_summaries("")
        self.select_thread_summary = thread_summaries(" WHERE thread_id = ?")

        if pg:
            self.lock_migrations: Optional[str] = f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            self.version_table_exists = q("SELECT to_regclass(?) IS NOT NULL")
        else:
            # SQLite serializes upgrades with the write lock its runner takes (BEGIN IMMEDIATE).
            self.lock_migrations = None
            self.version_table_exists = q("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?")
        self._q = q
        self._pg = pg
        self._tuples_sql: dict[tuple[tuple[str, ...], bool], str] = {}

    def chain_param(self, chain: Sequence[str]) -> Any:
        """The parameter for a `chain` column: a text[] on Postgres, a JSON array on SQLite."""
        return list(chain) if self._pg else json.dumps(list(chain))

    def chain_value(self, column: Any) -> Optional[list[str]]:
        """A `chain` column as read back."""
        if column is None or self._pg:
            return column
        return json.loads(column)

    def text_list(self, values: Sequence[str]) -> Any:
        """The parameter for an `IN` list of strings."""
        return [str(v) for v in values] if self._pg else json.dumps([str(v) for v in values])

    def keys_param(self, keys: Sequence[tuple[str, ...]], width: int) -> list[Any]:
        """The parameters for a batched key lookup (`select_blobs`)."""
        if self._pg:
            return [[k[i] for k in keys] for i in range(width)]
        return [json.dumps(keys)]

    def metadata_condition(self, key: str, value: Any) -> tuple[str, list[Any], bool]:
        """SQL matching metadata[key] == value, its parameters, and whether the rows it keeps
        still need checking in Python (SQLite cannot compare JSON objects and arrays as values)."""
        if not isinstance(key, str) or not FILTER_KEY.match(key):
            raise ValueError(
                f"invalid metadata filter key {key!r}: keys are letters, digits, '_', '-', '.', ':' (at most 128)"
            )
        if self._pg:
            encoded = _core.dumps(value, context=f"metadata filter {key!r}").decode()
            return "COALESCE(metadata -> ?, 'null'::jsonb) = ?::jsonb", [key, encoded], False
        path = f'$."{key}"'
        if value is None or isinstance(value, (str, int, float)):
            return "json_extract(metadata, ?) IS ?", [path, int(value) if isinstance(value, bool) else value], False
        return "json_type(metadata, ?) IN ('object', 'array')", [path], True

    def select_tuples(self, conditions: Sequence[str], several: bool) -> str:
        """One statement that reads checkpoints (`conditions` are written with '?'
        placeholders; newest first, at most the bound limit) with everything their tuples need,
        as rows whose first column says what they are (`_split`):

        - `(0, rank, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint,
          metadata, NULL, NULL)`: a checkpoint; `rank` orders them newest first;
        - `(1, NULL, thread_id, checkpoint_ns, channel, version, NULL, NULL, blob, chain)`: a blob
          row a checkpoint names in its `channel_versions`, or one their chains name;
        - `(2, rank, thread_id, checkpoint_ns, checkpoint_id, task_id, channel, task_path, blob,
          idx)`: a pending write; `rank` orders them as `task_path, task_id, idx`.

        On SQLite `rank` is NULL and `_split` orders the rows itself (row_number() made reading
        one checkpoint about a quarter slower), so the write rows carry `task_path` and `idx`;
        on Postgres those two are NULL.

        The blob rows are found from the versions in the stored checkpoints, read as text in the
        database; `_tuples` reads any version this misses with `select_blobs`. With `several`
        (more than one checkpoint may match), a blob row shared by many checkpoints or chains is
        returned once; a single checkpoint names each row once anyway. Every blob row is read
        by its key: on Postgres a LATERAL lookup of at most one row, which the planner keeps as
        an index lookup rather than a join it could turn into a scan of the table; on SQLite
        CROSS JOIN, which fixes the join order (left to right) so the planner cannot do the
        same."""
        key = (tuple(conditions), several)
        sql = self._tuples_sql.get(key)
        if sql is not None:
            return sql
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        if not self._pg:
            sql = self._tuples_sql[key] = _sqlite_tuples(where, self.order_newest_first, several)
            return sql
        by_key = (
            "CROSS JOIN LATERAL (SELECT {columns} FROM " + BLOBS + " AS b WHERE b.thread_id = {k}.thread_id"
            " AND b.checkpoint_ns = {k}.checkpoint_ns AND b.channel = {k}.channel AND b.version = {k}.version LIMIT 1) AS b"
        )
        distinct = "DISTINCT " if several else ""
        union = "UNION" if several else "UNION ALL"
        sql = self._q(
            f"WITH c AS (SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata"
            f" FROM {CHECKPOINTS}{where}{self.order_newest_first} LIMIT ?),"
            f" k AS (SELECT {distinct}c.thread_id, c.checkpoint_ns, v.key AS channel, v.value AS version FROM c"
            " CROSS JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') AS v),"
            f" need AS (SELECT thread_id, checkpoint_ns, channel, version FROM k {union}"
            f" SELECT k.thread_id, k.checkpoint_ns, k.channel, m.version FROM k {by_key.format(columns='b.chain', k='k')}"
            " CROSS JOIN LATERAL unnest(b.chain) AS m(version))"
            f" SELECT 0, row_number() OVER ({self.order_newest_first.strip()}), c.thread_id, c.checkpoint_ns,"
            " c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint::text, c.metadata::text, NULL::bytea, NULL::text[] FROM c"
            " UNION ALL SELECT 1, NULL, need.thread_id, need.checkpoint_ns, need.channel, need.version, NULL, NULL,"
            f" b.blob, b.chain FROM need {by_key.format(columns='b.blob, b.chain', k='need')}"
            " UNION ALL SELECT 2, row_number() OVER (ORDER BY w.task_path, w.task_id, w.idx), w.thread_id,"
            f" w.checkpoint_ns, w.checkpoint_id, w.task_id, w.channel, NULL, w.blob, NULL FROM c JOIN {WRITES} AS w"
            " ON w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id"
        )
        self._tuples_sql[key] = sql
        return sql

    def put_statement(self, check: bool, deltas: bool) -> str:
        """Postgres only (`puts_in_one_statement`): a put as one statement of data-modifying
        CTEs: the append deltas (each written only when the row it extends is as this process
        wrote it, as `insert_delta`), the whole values, then the checkpoint. Only the parts a put
        needs are in the text, since the planner's time grows with it (the full statement takes
        ten times as long to plan as the plain one, about the time of executing it):

        - `check`, the concurrent-writer check of a marked put (see `put`): `latest` is the
          line's latest checkpoint id and `ok` holds when it is the put's parent or the put's
          own checkpoint (a retried put); nothing is written unless it holds.
        - `deltas`: `go` holds when `ok` does and every delta was written; otherwise neither the
          values nor the checkpoint are, and `put` runs it again with whole values (a stale
          delta cache costs a second round trip, never the bytes of whole values on every put).

        With either, it returns one row: the latest checkpoint id of the line, whether the check
        held, whether the put was stored, and the channels stored as deltas. With neither it
        returns nothing (it always stores everything). Parameters, in order: with `check`,
        thread_id, checkpoint_ns, parent_id, checkpoint_id; with `deltas`, thread_id,
        checkpoint_ns, the seven delta columns, thread_id, checkpoint_ns, the delta count;
        always thread_id, checkpoint_ns, the whole values' channels, versions and blobs, and the
        checkpoint row."""
        assert self._pg
        key = (check, deltas)
        sql = self._put_sql.get(key)
        if sql is not None:
            return sql
        ctes = []
        if check:
            ctes.append(
                f"latest AS (SELECT MAX(checkpoint_id) AS id FROM {CHECKPOINTS} WHERE thread_id = ? AND checkpoint_ns = ?)"
            )
            ctes.append("ok AS (SELECT 1 FROM latest WHERE id IS NOT DISTINCT FROM ?::text OR id = ?::text)")
        if deltas:
            as_chain = "ARRAY(SELECT jsonb_array_elements_text({}::jsonb))"
            checked = "EXISTS (SELECT 1 FROM ok) AND " if check else ""
            ctes.append(
                f"d AS (INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob, chain)"
                f" SELECT ?, ?, k.channel, k.version, k.blob, {as_chain.format('k.chain')}"
                " FROM unnest(?::text[], ?::text[], ?::bytea[], ?::text[], ?::text[], ?::text[], ?::int[])"
                " AS k(channel, version, blob, chain, prev_version, prev_chain, prev_length)"
                f" WHERE {checked}EXISTS (SELECT 1 FROM {BLOBS} AS p WHERE p.thread_id = ?"
                " AND p.checkpoint_ns = ? AND p.channel = k.channel AND p.version = k.prev_version"
                " AND p.chain IS NOT DISTINCT FROM"
                f" (CASE WHEN k.prev_chain IS NULL THEN NULL ELSE {as_chain.format('k.prev_chain')} END)"
                " AND octet_length(p.blob) = k.prev_length)"
                " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING RETURNING channel)"
            )
            ctes.append(f"go AS (SELECT 1 {'FROM ok ' if check else ''}WHERE (SELECT count(*) FROM d) = ?::int)")
        gate = " WHERE EXISTS (SELECT 1 FROM go)" if deltas else " WHERE EXISTS (SELECT 1 FROM ok)" if check else ""
        ctes.append(
            f"b AS (INSERT INTO {BLOBS} (thread_id, checkpoint_ns, channel, version, blob)"
            " SELECT ?, ?, k.channel, k.version, k.blob FROM unnest(?::text[], ?::text[], ?::bytea[])"
            f" AS k(channel, version, blob){gate}"
            " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING)"
        )
        insert_checkpoint = (
            f"INSERT INTO {CHECKPOINTS} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
            f" checkpoint, metadata, run_id) SELECT ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?{gate}"
            " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET"
            " parent_checkpoint_id = excluded.parent_checkpoint_id, checkpoint = excluded.checkpoint,"
            " metadata = excluded.metadata, run_id = excluded.run_id"
        )
        if check or deltas:
            ctes.append(f"c AS ({insert_checkpoint})")
            body = (
                "SELECT "
                + ("(SELECT id FROM latest), EXISTS (SELECT 1 FROM ok), " if check else "NULL::text, true, ")
                + ("EXISTS (SELECT 1 FROM go), ARRAY(SELECT channel FROM d)" if deltas else "EXISTS (SELECT 1 FROM ok), '{}'::text[]" if check else "")
            )
        else:
            body = insert_checkpoint
        # bytea arrays go as is (%b), where the text format would escape every byte.
        sql = self._q("WITH " + ", ".join(ctes) + " " + body).replace("%s::bytea[]", "%b::bytea[]")
        self._put_sql[key] = sql
        return sql


def _sqlite_tuples(where: str, order: str, several: bool) -> str:
    """`Dialect.select_tuples` on SQLite. `c` and `r` are materialized: each is read twice.
    `k` lists the versions each checkpoint names (a checkpoint whose JSON is broken names none,
    so the statement still returns its row for `_record` to report); `r` their blob rows; `m`
    the versions those rows' chains name. A chain member a checkpoint also names directly comes
    back twice, the same row both times."""
    distinct = "DISTINCT " if several else ""
    same_key = " AND ".join(f"b.{column} = {{k}}.{column}" for column in ("thread_id", "checkpoint_ns", "channel", "version"))
    return (
        "WITH c AS MATERIALIZED (SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint,"
        f" metadata FROM {CHECKPOINTS}{where}{order} LIMIT ?),"
        f" k AS (SELECT {distinct}c.thread_id, c.checkpoint_ns, v.key AS channel, CAST(v.value AS TEXT) AS version"
        " FROM c CROSS JOIN json_each(CASE WHEN json_valid(c.checkpoint) THEN c.checkpoint END, '$.channel_versions') AS v),"
        " r AS MATERIALIZED (SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version, b.blob, b.chain"
        f" FROM k CROSS JOIN {BLOBS} AS b ON {same_key.format(k='k')}),"
        f" m AS (SELECT {distinct}r.thread_id, r.checkpoint_ns, r.channel, j.value AS version"
        " FROM r CROSS JOIN json_each(r.chain) AS j WHERE r.chain IS NOT NULL)"
        " SELECT 0, NULL, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata, NULL, NULL"
        " FROM c UNION ALL SELECT 1, NULL, thread_id, checkpoint_ns, channel, version, NULL, NULL, blob, chain FROM r"
        " UNION ALL SELECT 1, NULL, b.thread_id, b.checkpoint_ns, b.channel, b.version, NULL, NULL, b.blob, b.chain"
        f" FROM m CROSS JOIN {BLOBS} AS b ON {same_key.format(k='m')}"
        " UNION ALL SELECT 2, NULL, w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.channel, w.task_path,"
        f" w.blob, w.idx FROM c CROSS JOIN {WRITES} AS w ON w.thread_id = c.thread_id"
        " AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id"
    )


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgresql")


@dataclass(frozen=True)
class _Stored:
    """The last value a saver stored for one channel of a thread: its version, its encoding,
    and its row as written (the chain, None for a whole value, and the blob's length)."""

    version: str
    encoded: bytes
    chain: Optional[list[str]]
    row_length: int


class DeltaCache:
    """What each saver remembers of the values it stored last, per (thread, namespace, channel),
    to write the next version of a growing list as a delta (see "Append deltas" above). Least
    recently used entries go first once their encodings pass `max_bytes`. Thread-safe."""

    def __init__(self, max_bytes: int = 64 << 20) -> None:
        self.max_bytes = max_bytes
        self._entries: "OrderedDict[tuple[str, str, str], _Stored]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> Optional[_Stored]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def set(self, key: tuple[str, str, str], entry: Optional[_Stored]) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.encoded)
            if entry is None or len(entry.encoded) > self.max_bytes:
                return
            self._entries[key] = entry
            self._bytes += len(entry.encoded)
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.encoded)

    def forget_threads(self, thread_ids: Optional[Sequence[str]] = None) -> None:
        """Drops the entries of `thread_ids`, or every entry."""
        with self._lock:
            if thread_ids is None:
                self._entries.clear()
                self._bytes = 0
                return
            threads = {str(t) for t in thread_ids}
            for key in [k for k in self._entries if k[0] in threads]:
                self._bytes -= len(self._entries.pop(key).encoded)


def _appended(previous: bytes, new: bytes) -> Optional[bytes]:
    """The encodings of the items `new` appends to `previous`, joined with ',' (empty when the
    two are equal), when both encode JSON arrays and `new` extends `previous`; otherwise None.

    Byte equality of the prefix is item equality: JSON values are self-delimiting, and the ','
    right after the old last item shows that item ended in `new` where it ended in `previous`.
    """
    if not (new[:1] == b"[" and new[-1:] == b"]" and previous[:1] == b"[" and previous[-1:] == b"]"):
        return None
    if previous == b"[]":
        return new[1:-1]
    if new == previous:
        return b""
    head = len(previous) - 1
    if len(new) > head + 2 and new[head] == 0x2C and new.startswith(previous[:head]):
        return new[head + 1 : -1]
    return None


def _delta(stored: Optional[_Stored], version: str, encoded: bytes) -> Optional[tuple[bytes, list[str]]]:
    """The blob and chain of `encoded` stored as a delta over `stored`, when that is possible
    and smaller than the whole value."""
    if stored is None or stored.version == version:
        return None
    chain = (stored.chain or []) + [stored.version]
    if len(chain) > SNAPSHOT_EVERY:
        return None
    items = _appended(stored.encoded, encoded)
    if items is None:
        return None
    blob = b"[" + items + b"]"
    if len(blob) + sum(len(v) + 3 for v in chain) >= len(encoded):
        return None
    return blob, chain


def _whole(parts: Sequence[bytes]) -> bytes:
    """The encoding of a list from the JSON arrays of its snapshot and deltas."""
    return b"[" + b",".join(p[1:-1] for p in parts if len(p) > 2) + b"]"


@dataclass
class _Record:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: Optional[str]
    checkpoint: dict
    metadata: dict


def _where(config: Optional[Mapping[str, Any]]) -> tuple[str, str, Optional[str]]:
    configurable = (config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None:
        raise InvalidConfigError("config['configurable'] must name a thread_id")
    return str(thread_id), configurable.get("checkpoint_ns", "") or "", configurable.get("checkpoint_id")


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns, "checkpoint_id": checkpoint_id}}


def _text(data: Any) -> Union[str, bytes]:
    return bytes(data) if type(data) is memoryview else data


def _tags_first(data: Union[str, bytes]) -> Union[str, bytes]:
    """Postgres JSONB keeps object keys sorted by length, not as written, so a typed value's
    tag key (which the codec reads first) may come after its body. Put it back in front; JSON
    without a tag (the usual checkpoint and metadata document) is returned untouched."""
    if (b'"__fg__"' not in data) if isinstance(data, bytes) else ('"__fg__"' not in data):
        return data

    def tag_first(pairs: list[tuple[str, Any]]) -> dict:
        return dict(sorted(pairs, key=lambda kv: kv[0] != "__fg__"))

    try:
        return json.dumps(json.loads(data, object_pairs_hook=tag_first))
    except ValueError:
        return data  # not JSON at all: the codec reports it


def _corrupt(what: str, thread_id: str, checkpoint_ns: str, checkpoint_id: str, problem: Any) -> CorruptCheckpointError:
    ns = f", namespace {checkpoint_ns!r}" if checkpoint_ns else ""
    return CorruptCheckpointError(f"cannot read {what} of checkpoint {checkpoint_id!r} (thread {thread_id!r}{ns}): {problem}")


def _decode(data: Any, what: str, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> Any:
    """A checkpoint's or its metadata's JSON column, decoded."""
    try:
        return _core.loads(_tags_first(_text(data)))
    except Exception as e:  # the codec's own errors and anything a corrupt row provokes
        raise _corrupt(what, thread_id, checkpoint_ns, checkpoint_id, e) from e


def _load(data: Any, channel: str, what: str, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> Any:
    """A value or pending write, decoded. Its description (`what` with the channel's repr) is
    written only when it is reported: reads decode thousands of values."""
    try:
        return _core.loads(bytes(data) if type(data) is memoryview else data)
    except Exception as e:  # the codec's own errors and anything a corrupt row provokes
        raise _corrupt(what.format(repr(channel)), thread_id, checkpoint_ns, checkpoint_id, e) from e


def _record(row: Sequence[Any]) -> _Record:
    thread_id, checkpoint_ns, checkpoint_id, parent, checkpoint, metadata = row
    decoded = _decode(checkpoint, "the checkpoint", thread_id, checkpoint_ns, checkpoint_id)
    if not isinstance(decoded, dict):
        raise CorruptCheckpointError(
            f"checkpoint {checkpoint_id!r} (thread {thread_id!r}) is not a JSON object"
        )
    return _Record(
        thread_id,
        checkpoint_ns,
        checkpoint_id,
        parent,
        decoded,
        _decode(metadata, "the metadata", thread_id, checkpoint_ns, checkpoint_id),
    )


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


BlobRows = dict[tuple[str, str, str, str], tuple[Any, Optional[list[str]]]]
WriteRows = dict[tuple[str, str, str], list]


def _resolve(rows: BlobRows, key: tuple[str, str, str, str], record: _Record) -> Any:
    """The encoded value of one channel version: its row's blob, or the whole list rebuilt from
    the rows of its chain. None when the channel has no value at that version."""
    row = rows.get(key)
    if row is None:
        return None
    blob, chain = row
    if chain is None:
        return blob
    thread_id, checkpoint_ns, channel, version = key
    parts = []
    for position, member in enumerate(chain + [version]):
        member_row = rows.get((thread_id, checkpoint_ns, channel, member))
        problem = None
        if member_row is None:
            problem = f"version {member!r}, on which its stored value is built, is missing"
        elif member_row[0] is None or (member_row[1] is None) != (position == 0):
            problem = f"version {member!r}, on which its stored value is built, is not a list snapshot or delta"
        if problem is not None:
            raise _corrupt(f"channel {channel!r}", thread_id, checkpoint_ns, record.checkpoint_id, problem)
        assert member_row is not None  # a missing row is reported above
        text = _text(member_row[0])
        part = text.encode() if isinstance(text, str) else bytes(text)
        if not (part[:1] == b"[" and part[-1:] == b"]"):
            raise _corrupt(f"channel {channel!r}", thread_id, checkpoint_ns, record.checkpoint_id,
                           f"the stored part at version {member!r} is not a JSON array")
        parts.append(part)
    return _whole(parts)


def _split(d: Dialect, rows: Sequence[Sequence[Any]]) -> tuple[list[_Record], BlobRows, WriteRows]:
    """A `select_tuples` result as its checkpoints (newest first), its blob rows by key, and
    the decoded pending writes of each checkpoint, in order."""
    checkpoints = []
    blobs: BlobRows = {}
    write_rows = []
    for row in rows:
        kind = row[0]
        if kind == 1:
            chain = row[9]
            blobs[(row[2], row[3], row[4], row[5])] = (row[8], None if chain is None else d.chain_value(chain))
        elif kind == 0:
            checkpoints.append(row)
        else:
            write_rows.append(row)
    # Postgres ranks the rows; SQLite's come with what to order them by (see `select_tuples`).
    if len(checkpoints) > 1:
        if d._pg:
            checkpoints.sort(key=_rank)
        else:
            checkpoints.sort(key=_newest_first, reverse=True)
    writes: WriteRows = {}
    if write_rows:
        write_rows.sort(key=_rank if d._pg else _write_order)
        for _, _, thread_id, checkpoint_ns, checkpoint_id, task_id, channel, _, blob, _ in write_rows:
            value = _load(blob, channel, "the pending write to {}", thread_id, checkpoint_ns, checkpoint_id)
            writes.setdefault((thread_id, checkpoint_ns, checkpoint_id), []).append((task_id, channel, value))
    return [_record(row[2:8]) for row in checkpoints], blobs, writes


_rank = itemgetter(1)
#: A checkpoint row's (checkpoint_id, thread_id, checkpoint_ns), `order_newest_first` reversed:
#: Python orders str by code point, as SQLite's BINARY collation orders their UTF-8 bytes.
_newest_first = itemgetter(4, 2, 3)
#: A SQLite write row's (task_path, task_id, idx).
_write_order = itemgetter(7, 5, 9)


def _read_page(d: Dialect, conditions: Sequence[str], params: Sequence[Any], limit: int, several: bool) -> Generator[Step, Any, tuple[list[_Record], BlobRows, WriteRows]]:
    """Up to `limit` checkpoints matching `conditions`, newest first, with the blob rows and
    decoded pending writes they need (the blob rows `select_tuples` found; `_tuples` reads the
    rest)."""
    return _split(d, (yield Query(d.select_tuples(conditions, several), [*params, limit])))


#: Decoded values of these types cannot change, so the tuples of one read may share them.
_IMMUTABLE = frozenset({str, int, float, bool, type(None)})


def _values(r: _Record, blobs: BlobRows, whole: dict, shared: dict) -> dict[str, Any]:
    """The channel values of `r` from `blobs` (a version without a row is a channel without a
    value). `whole` keeps the encodings rebuilt from chains and `shared` the immutable values
    decoded so far, by key, for the other checkpoints of the read."""
    thread_id, checkpoint_ns = r.thread_id, r.checkpoint_ns
    values = {}
    for channel, version in (r.checkpoint.get("channel_versions") or {}).items():
        key = (thread_id, checkpoint_ns, str(channel), str(version))
        if key in shared:
            values[channel] = shared[key]
            continue
        row = blobs.get(key)
        if row is None:
            continue
        blob = row[0]
        if row[1] is not None:
            blob = whole.get(key)
            if blob is None:
                blob = whole[key] = _resolve(blobs, key, r)
        if blob is None:
            continue
        value = values[channel] = _load(blob, channel, "channel {}", thread_id, checkpoint_ns, r.checkpoint_id)
        if type(value) in _IMMUTABLE:
            shared[key] = value
    return values


def _tuples(
    d: Dialect, records: Sequence[_Record], blobs: BlobRows, writes: WriteRows
) -> Generator[Step, Any, Iterator[CheckpointTuple]]:
    """The tuples of `records` from the rows `select_tuples` returned with them. A version it
    missed (versions are matched as text in the database, where a number may print otherwise
    than in Python, or the row is absent) is looked up once more by its Python key, with the
    rows of its chain; a version with no row at all is a channel without a value.

    The tuples' values are decoded as the tuples are iterated. Decoded at once, a page's values
    are all alive together even for a caller that handles one tuple at a time: Python's cyclic
    collector then ran about six times as often while listing a thread, with full collections
    of the whole heap among them."""
    missing = sorted(
        {
            key
            for r in records
            for channel, version in (r.checkpoint.get("channel_versions") or {}).items()
            if (key := (r.thread_id, r.checkpoint_ns, str(channel), str(version))) not in blobs
        }
    )
    for chunk in _chunks(missing, BATCH):
        for thread_id, checkpoint_ns, channel, version, blob, chain in (
            yield Query(d.select_blobs, d.keys_param(chunk, 4))
        ):
            blobs[(thread_id, checkpoint_ns, channel, version)] = (blob, d.chain_value(chain))
    return _build(records, blobs, writes)


def _build(records: Sequence[_Record], blobs: BlobRows, writes: WriteRows) -> Iterator[CheckpointTuple]:
    whole: dict[tuple[str, str, str, str], Any] = {}
    shared: dict[tuple[str, str, str, str], Any] = {}
    for r in records:
        thread_id, checkpoint_ns, checkpoint_id = r.thread_id, r.checkpoint_ns, r.checkpoint_id
        # A copy: the record, alive until its page is done, must not keep the values alive.
        checkpoint = dict(r.checkpoint)
        checkpoint["channel_values"] = _values(r, blobs, whole, shared)
        parent = r.parent_checkpoint_id
        yield CheckpointTuple(
            config=_config(thread_id, checkpoint_ns, checkpoint_id),
            checkpoint=checkpoint,  # type: ignore[arg-type]
            metadata=r.metadata,  # type: ignore[arg-type]
            parent_config=_config(thread_id, checkpoint_ns, parent) if parent else None,
            pending_writes=writes.get((thread_id, checkpoint_ns, checkpoint_id), []),
        )


def get_tuple(d: Dialect, config: Mapping[str, Any]) -> Op:
    thread_id, checkpoint_ns, checkpoint_id = _where(config)
    if checkpoint_id:
        conditions, params = ["thread_id = ?", "checkpoint_ns = ?", "checkpoint_id = ?"], [thread_id, checkpoint_ns, checkpoint_id]
    else:
        conditions, params = ["thread_id = ?", "checkpoint_ns = ?"], [thread_id, checkpoint_ns]
    records, blobs, writes = yield from _read_page(d, conditions, params, 1, False)
    if not records:
        return None
    return next((yield from _tuples(d, records, blobs, writes)))


def list_checkpoints(
    d: Dialect,
    config: Optional[Mapping[str, Any]],
    *,
    filter: Optional[Mapping[str, Any]] = None,
    before: Optional[Mapping[str, Any]] = None,
    limit: Optional[int] = None,
) -> Op:
    """Newest first, a page at a time; emits tuples."""
    conditions: list[str] = []
    params: list[Any] = []
    configurable = (config or {}).get("configurable") or {}
    if configurable and configurable.get("thread_id") is None:
        # No config (or an empty one) lists every thread; a config naming no thread is a mistake.
        raise InvalidConfigError("config['configurable'] must name a thread_id (pass config=None to list every thread)")
    if configurable.get("thread_id") is not None:
        conditions.append("thread_id = ?")
        params.append(str(configurable["thread_id"]))
    if configurable.get("checkpoint_ns") is not None:
        conditions.append("checkpoint_ns = ?")
        params.append(configurable["checkpoint_ns"])
    if configurable.get("checkpoint_id"):
        conditions.append("checkpoint_id = ?")
        params.append(configurable["checkpoint_id"])
    before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
    if before_id:
        conditions.append("checkpoint_id < ?")
        params.append(before_id)
    in_python: dict[str, Any] = {}
    for key, value in (filter or {}).items():
        condition, condition_params, check_in_python = d.metadata_condition(key, value)
        conditions.append(condition)
        params.extend(condition_params)
        if check_in_python:
            in_python[key] = value
    if limit is not None and limit <= 0:
        return

    remaining = limit
    after: Optional[list[Any]] = None
    while True:
        page = PAGE if (in_python or remaining is None) else min(PAGE, remaining)
        page_conditions = conditions + (["(checkpoint_id, thread_id, checkpoint_ns) < (?, ?, ?)"] if after else [])
        records, blobs, writes = yield from _read_page(d, page_conditions, params + (after or []), page, True)
        fetched = len(records)
        last_record = records[-1] if records else None
        if in_python:
            records = [r for r in records if all(r.metadata.get(k) == v for k, v in in_python.items())]
        if remaining is not None:
            records = records[:remaining]
            remaining -= len(records)
        if records:
            yield Emit((yield from _tuples(d, records, blobs, writes)))
        if fetched < page or remaining == 0 or last_record is None:
            return
        after = [last_record.checkpoint_id, last_record.thread_id, last_record.checkpoint_ns]


#: Per thread: thread_id, number of checkpoints, namespaces, latest checkpoint id, and that
#: checkpoint's ts ("" without one), metadata step and source (None when absent).
ThreadRow = tuple[str, int, set[str], str, str, Any, Any]


def thread_summaries(d: Dialect, thread_id: Optional[str] = None) -> Op:
    """Every thread (or just `thread_id`) as a `ThreadRow`, most recently active first (latest
    checkpoint id, then thread id, descending), in one statement that decodes neither the
    checkpoints nor their values: only each latest checkpoint's step and source."""
    if thread_id is None:
        rows = yield Query(d.select_thread_summaries, [])
    else:
        rows = yield Query(d.select_thread_summary, [str(thread_id)])
    summaries: list[ThreadRow] = []
    for tid, checkpoints, namespaces, last_id, last_ns, ts, step_and_source in rows:
        step, source = _decode(step_and_source, "the metadata", tid, last_ns, last_id)
        summaries.append((tid, int(checkpoints), set(json.loads(namespaces)), last_id, ts or "", step, source))
    return summaries


def checkpoint_metadata(config: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict:
    """The metadata stored with a checkpoint: the given metadata plus the caller's
    `config["metadata"]` and its scalar `configurable` keys, as LangGraph's savers store it."""
    merged = {k: v.replace("\x00", "") if isinstance(v, str) else v for k, v in metadata.items()}
    merged.pop("writes", None)
    for source in (config.get("metadata"), config.get("configurable")):
        for key, value in (source or {}).items():
            if key in merged or key in EXCLUDED_METADATA_KEYS or key.startswith("__"):
                continue
            if isinstance(value, str):
                merged[key] = value.replace("\x00", "")
            elif isinstance(value, (int, float, bool)):
                merged[key] = value
    return merged


@dataclass
class _Planned:
    """One new channel value of a put: its encoding (None when the channel has no value at its
    new version) and, when it can be stored as an append delta, the delta and what it extends."""

    channel: str
    version: str
    encoded: Optional[bytes]
    delta: Optional[tuple[bytes, list[str]]] = None
    previous: Optional[_Stored] = None

    def remembered(self, as_delta: bool) -> Optional[_Stored]:
        """What the delta cache keeps of this value once stored (as a delta or whole)."""
        if self.encoded is None:
            return None
        if as_delta:
            assert self.delta is not None
            return _Stored(self.version, self.encoded, self.delta[1], len(self.delta[0]))
        return _Stored(self.version, self.encoded, None, len(self.encoded)) if self.encoded[:1] == b"[" else None


def put(d: Dialect, config: Mapping[str, Any], checkpoint: Mapping[str, Any], metadata: Mapping[str, Any],
        new_versions: Mapping[str, Any], deltas: Optional[DeltaCache] = None) -> Op:
    """Stores the checkpoint and its new channel values; with `deltas`, a list that extends the
    value this saver stored last for the channel is stored as a delta (see "Append deltas").

    On Postgres this is at most two statements, neither read before the last: the line's lock
    (a marked put only) and `Dialect.put_statement`. A runner may therefore send them together and
    commit them with one round trip (`PostgresSaver` does on an autocommit connection). Only a
    stale delta cache makes it run them once more."""
    thread_id, checkpoint_ns, parent_id = _where(config)
    values = checkpoint.get("channel_values") or {}
    stored = {k: v for k, v in checkpoint.items() if k != "channel_values"}
    checkpoint_id = stored["id"]
    check = bool((config.get("configurable") or {}).get(EXPECT_LATEST))
    planned = []
    for channel, version in new_versions.items():
        version = str(version)
        if channel not in values:
            planned.append(_Planned(channel, version, None))
            continue
        encoded = _core.dumps(values[channel], context=channel)
        previous = deltas.get((thread_id, checkpoint_ns, channel)) if deltas is not None else None
        delta = _delta(previous, version, encoded)
        planned.append(_Planned(channel, version, encoded, delta, previous if delta is not None else None))
    merged = checkpoint_metadata(config, metadata)
    run_id = merged.get("run_id")
    row = [
        thread_id,
        checkpoint_ns,
        checkpoint_id,
        parent_id,
        _core.dumps(stored, context="checkpoint").decode(),
        _core.dumps(merged, context="metadata").decode(),
        str(run_id) if run_id is not None else None,
    ]
    if d.puts_in_one_statement:
        as_deltas = yield from _put_one_statement(d, planned, row, check)
    else:
        as_deltas = yield from _put_statements(d, planned, row, check)
    if deltas is not None:
        for p in planned:
            deltas.set((thread_id, checkpoint_ns, p.channel), p.remembered(p.channel in as_deltas))
    return _config(thread_id, checkpoint_ns, checkpoint_id)


def _put_one_statement(d: Dialect, planned: Sequence[_Planned], row: list, check: bool) -> Generator[Step, Any, set]:
    """`put` on Postgres; returns the channels stored as deltas. A delta that cannot be written
    (the cache is stale) stores nothing, and the put runs again with whole values."""
    thread_id, checkpoint_ns, checkpoint_id, parent_id = row[:4]
    as_deltas: set = set()
    for use_deltas in (True, False):
        if check:
            assert d.lock_line is not None
            yield Query(d.lock_line, [thread_id, checkpoint_ns], rows=False)
        with_delta = [p for p in planned if use_deltas and p.delta is not None]
        whole = [p for p in planned if not (use_deltas and p.delta is not None)]
        params: list[Any] = []
        if check:
            params += [thread_id, checkpoint_ns, parent_id or None, checkpoint_id]
        if with_delta:
            delta_columns: list[list[Any]] = [[], [], [], [], [], [], []]
            for p in with_delta:
                assert p.delta is not None and p.previous is not None
                blob, chain = p.delta
                previous = p.previous
                for column, value in zip(
                    delta_columns,
                    (p.channel, p.version, blob, json.dumps(chain), previous.version,
                     None if previous.chain is None else json.dumps(previous.chain), previous.row_length),
                ):
                    column.append(value)
            params += [thread_id, checkpoint_ns, *delta_columns, thread_id, checkpoint_ns, len(with_delta)]
        params += [thread_id, checkpoint_ns, [p.channel for p in whole], [p.version for p in whole],
                   [p.encoded for p in whole], *row]
        # Without the writer check and without deltas the statement always stores everything:
        # nothing to read back, so a runner may send it along with others (a batch groups them).
        answer = check or bool(with_delta)
        rows = yield Query(d.put_statement(check, bool(with_delta)), params, rows=answer)
        if not answer:
            return as_deltas
        latest, ok, stored, written = rows[0]
        if not ok:
            _refuse(thread_id, checkpoint_ns, parent_id, latest)
        # Deltas written by a run that stored nothing else stay: they are their versions' rows.
        as_deltas.update(written)
        if stored:
            return as_deltas
    raise AssertionError("a put without deltas is stored or refused")


def _put_statements(d: Dialect, planned: Sequence[_Planned], row: list, check: bool) -> Generator[Step, Any, set]:
    """`put` on SQLite, in the runner's transaction; returns the channels stored as deltas."""
    thread_id, checkpoint_ns, checkpoint_id, parent_id = row[:4]
    if check:
        yield from _check_latest(d, thread_id, checkpoint_ns, parent_id, checkpoint_id)
    as_deltas = set()
    blobs = []
    for p in planned:
        if p.delta is not None:
            assert p.previous is not None
            blob, chain = p.delta
            previous = p.previous
            inserted = yield Query(
                d.insert_delta,
                [
                    thread_id, checkpoint_ns, p.channel, p.version, blob, d.chain_param(chain),
                    thread_id, checkpoint_ns, p.channel, previous.version,
                    None if previous.chain is None else d.chain_param(previous.chain), previous.row_length,
                ],
            )
            if inserted:
                as_deltas.add(p.channel)
                continue
        blobs.append((thread_id, checkpoint_ns, p.channel, p.version, p.encoded))
    if blobs:
        yield Query(d.insert_blob, blobs, many=True, rows=False)
    yield Query(d.upsert_checkpoint, row, rows=False)
    return as_deltas


#: The `configurable` key by which the engine marks a put whose parent must still be the latest
#: checkpoint of its thread and namespace (RunLoop._save; forks and updates are not marked).
EXPECT_LATEST = "__ferrograph_expect_latest__"


def _check_latest(d: Dialect, thread_id: str, checkpoint_ns: str, parent_id: Optional[str], checkpoint_id: str) -> Op:
    """Refuses (ConcurrentUpdateError) a marked put whose parent is no longer the latest
    checkpoint of its line, before anything is written; runs in the put's transaction, after
    taking the line's lock, so two writers cannot both pass it. Storing the same checkpoint
    again (a retried put) passes."""
    if d.lock_line is not None:
        yield Query(d.lock_line, [thread_id, checkpoint_ns], rows=False)
    rows = yield Query(d.latest_checkpoint_id, [thread_id, checkpoint_ns])
    latest = rows[0][0] if rows else None
    if latest is not None and latest == checkpoint_id:
        return
    if latest != (parent_id or None):
        _refuse(thread_id, checkpoint_ns, parent_id, latest)


def _refuse(thread_id: str, checkpoint_ns: str, parent_id: Optional[str], latest: Optional[str]) -> None:
    ns = f", namespace {json.dumps(checkpoint_ns)}" if checkpoint_ns else ""
    parent = f"checkpoint {json.dumps(parent_id)}" if parent_id else "no checkpoint"
    raise ConcurrentUpdateError(
        f"concurrent update of thread {json.dumps(thread_id)}{ns}: this run continues from {parent}, but another"
        f" writer has advanced the thread since (its latest checkpoint is {json.dumps(latest) if latest else 'none'});"
        " reload the thread's state and run again"
    )


def put_writes(d: Dialect, config: Mapping[str, Any], writes: Sequence[tuple[str, Any]], task_id: str,
               task_path: str = "") -> Op:
    thread_id, checkpoint_ns, checkpoint_id = _where(config)
    if not checkpoint_id:
        raise InvalidConfigError("put_writes needs config['configurable']['checkpoint_id']")
    special: list[tuple] = []
    regular: list[tuple] = []
    for index, (channel, value) in enumerate(writes):
        row = (
            thread_id,
            checkpoint_ns,
            checkpoint_id,
            task_id,
            task_path,
            WRITES_IDX_MAP.get(channel, index),
            channel,
            _core.dumps(value, context=channel),
        )
        (special if channel in WRITES_IDX_MAP else regular).append(row)
    if regular:
        yield Query(d.insert_write, regular, many=True, rows=False)
    if special:
        yield Query(d.upsert_write, special, many=True, rows=False)


def delete_thread(d: Dialect, thread_id: str, deltas: Optional[DeltaCache] = None) -> Op:
    for sql in d.delete_thread:
        yield Query(sql, [str(thread_id)], rows=False)
    if deltas is not None:
        deltas.forget_threads([thread_id])


def copy_thread(d: Dialect, source_thread_id: str, target_thread_id: str) -> Op:
    if not (yield Query(d.thread_exists, [str(source_thread_id)])):
        raise CheckpointNotFoundError(f"thread {source_thread_id!r} has no checkpoints to copy")
    for sql in d.copy_thread:
        yield Query(sql, [str(target_thread_id), str(source_thread_id)], rows=False)


def delete_for_runs(d: Dialect, run_ids: Sequence[str], deltas: Optional[DeltaCache] = None) -> Op:
    if not run_ids:
        return
    runs = d.text_list(run_ids)
    threads = [row[0] for row in (yield Query(d.threads_of_runs, [runs]))]
    if not threads:
        return
    for sql in d.delete_runs:
        yield Query(sql, [runs], rows=False)
    listed = d.text_list(threads)
    yield Query(d.collect_blobs, [listed, listed], rows=False)
    if deltas is not None:
        deltas.forget_threads(threads)


def prune(
    d: Dialect, thread_ids: Sequence[str], strategy: str = "keep_latest", deltas: Optional[DeltaCache] = None
) -> Op:
    if strategy not in ("keep_latest", "delete"):
        raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
    if not thread_ids:
        return
    listed = d.text_list(thread_ids)
    if deltas is not None:
        deltas.forget_threads(thread_ids)
    if strategy == "delete":
        for sql in d.prune_delete:
            yield Query(sql, [listed], rows=False)
        return
    for sql in d.prune_keep_latest:
        yield Query(sql, [listed], rows=False)
    yield Query(d.collect_blobs, [listed, listed], rows=False)


def setup(d: Dialect, script_location: Optional[str] = None) -> Op:
    """Brings the schema to the latest revision; runs inside the runner's write transaction,
    which (with the advisory lock on Postgres) keeps two processes from upgrading at once."""
    from ferrograph.migrations import VERSION_TABLE, upgrade_statements

    if d.lock_migrations:
        yield Query(d.lock_migrations)
    current = None
    if (yield Query(d.version_table_exists, [VERSION_TABLE]))[0][0]:
        rows = yield Query(f"SELECT version_num FROM {VERSION_TABLE}")
        current = rows[0][0] if rows else None
    for statement in upgrade_statements(d.name, current, script_location):
        yield Query(statement, None)



def batch(d: Dialect, calls: Sequence[tuple[str, tuple]], deltas: Optional[DeltaCache] = None) -> Op:
    """Runs saver calls (`("put", args)` or `("put_writes", args)`, the protocol methods'
    positional arguments) one after another, for the runner to put in one transaction; returns
    their results. If one fails, the runner rolls them all back: what the delta cache learnt
    from the earlier puts is forgotten, since those rows will not exist.

    A put marked to continue the latest checkpoint (`EXPECT_LATEST`) whose parent an earlier
    put of the batch stored is not checked again: that put passed the check and holds the
    line's lock until the transaction ends, so its checkpoint is the latest. This saves a
    round trip per checkpoint."""
    results = []
    stored: set[tuple[str, str, Optional[str]]] = set()
    try:
        for method, args in calls:
            if method == "put":
                config, checkpoint, metadata, new_versions = args
                configurable = config.get("configurable") or {}
                if configurable.get(EXPECT_LATEST) and _where(config) in stored:
                    configurable = {k: v for k, v in configurable.items() if k != EXPECT_LATEST}
                    config = {**config, "configurable": configurable}
                result = yield from put(d, config, checkpoint, metadata, new_versions, deltas)
                stored.add(_where(result))
                results.append(result)
            elif method == "put_writes":
                results.append((yield from put_writes(d, *args)))
            else:
                raise ValueError(f"a batch runs put and put_writes, not {method!r}")
    except BaseException:
        if deltas is not None:
            deltas.forget_threads([_where(args[0])[0] for _method, args in calls])
        raise
    return results
