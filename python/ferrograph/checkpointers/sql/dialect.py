"""What the two database families share of the SQL text: the table names, the statements whose
text differs only in small fragments, and the interface `SqliteDialect` (sqlite.py) and
`PostgresDialect` (postgres.py) fill in. Statements are written with '?' placeholders; a dialect
turns them into its driver's style (`q`)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, Mapping, Optional, Sequence

from ferrograph.checkpointers.encryption import Encryption
from ferrograph.checkpointers.sql.runner import Query

__all__ = ["BLOBS", "CHECKPOINTS", "DELETED", "FILTER_KEY", "MIGRATION_LOCK_KEY", "WRITES", "Dialect"]

#: Key of the Postgres advisory lock that serializes schema upgrades ("ferrog" in ASCII).
MIGRATION_LOCK_KEY = 0x666572726F67

CHECKPOINTS = "ferrograph_checkpoints"
BLOBS = "ferrograph_checkpoint_blobs"
WRITES = "ferrograph_checkpoint_writes"
#: Per thread, when it last lost checkpoints to a deletion (migration 0004: late writes refused).
DELETED = "ferrograph_deleted_threads"

#: Metadata filter keys must look like identifiers; anything else is refused before any SQL.
FILTER_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]{0,127}$")


def check_filter_key(key: Any) -> None:
    if not isinstance(key, str) or not FILTER_KEY.match(key):
        raise ValueError(
            f"invalid metadata filter key {key!r}: keys are letters, digits, '_', '-', '.', ':' (at most 128)"
        )


class Dialect(ABC):
    """The SQL text of one database family: statements as strings, and the shapes of their
    parameters. A subclass sets the fragments below and the methods that differ."""

    name: str
    #: A bound list of blob keys as a table `k(thread_id, checkpoint_ns, channel, version)`
    #: (parameters: `keys_param`).
    blob_keys: str
    #: The versions a chain column (`r.chain`) names, joined to the row `r`, as `chain_member`.
    chain_members: str
    chain_member: str
    #: `column IN` a list bound as one parameter (`text_list`).
    in_list: str
    #: The channel versions of checkpoint `c` as rows `v(key, value)`, `v.value` as text.
    channel_versions: str
    channel_version_text: str
    #: Per-thread summaries: the namespaces as a JSON array, the collation that orders ids and
    #: thread ids by code point, the ts and [step, source] of checkpoint `c`, and how the latest
    #: row of each summary `t` is joined (from `latest_of_thread`, its FROM and WHERE).
    namespaces_json: str
    by_code_point: str
    checkpoint_ts: str
    step_and_source: str
    #: Whether a put is one statement (`put_statement`), so an autocommit connection commits it
    #: in one round trip.
    puts_in_one_statement: bool
    #: Whether a put drops a "writes" key from the metadata it stores, as LangGraph's saver for
    #: the same database does (its Postgres saver drops it, its SQLite saver keeps it).
    drops_metadata_writes: bool
    #: Whether `select_tuples` ranks its checkpoint and write rows (else the reader orders them).
    ranks_rows: bool
    #: The statement that serializes the engine's stepping puts on one line until commit, or None
    #: when the write transaction already holds a lock that does (see `writes.put`).
    lock_line: Optional[str]
    #: The statement that serializes schema upgrades, or None when the write transaction does.
    lock_migrations: Optional[str]
    version_table_exists: str
    #: A bound list of checkpoint keys as a table `k(thread_id, checkpoint_ns, checkpoint_id)`
    #: (parameters: `keys_param(keys, 3)`).
    checkpoint_keys: str
    #: The stored bytes of a JSON column and of a blob column (`{}` is the column).
    json_size: str
    blob_size: str
    #: The metadata's `parents` as JSON text, of checkpoint `c`.
    metadata_parents: str
    #: The metadata and the checkpoint (without values) as JSON text, of checkpoint `c`.
    metadata_text: str
    checkpoint_text: str
    #: Whether a row's metadata is encrypted (a JSON string, see encryption.seal_metadata).
    metadata_sealed: str
    #: The bytes the database (SQLite) or the saver's tables (Postgres) take.
    database_bytes: str
    #: How many versions a blob row's `chain` names (NULL for a whole value).
    chain_length: str
    #: The small values held in checkpoint row `c` (its `channel_values`, migration 0005) as
    #: rows `v(key, ...)`, and the bytes of value `v`'s encoding.
    inline_entries: str
    inline_size: str
    #: The statement a deletion runs first, locking its threads (a bound `in_list`) against
    #: concurrent writes until it commits, or None where the write transaction already does.
    lock_threads: Optional[str]

    order_newest_first = " ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC"
    #: A pending write stored again keeps its first value, as LangGraph's savers keep it, except
    #: a write to a special channel (negative `idx`, WRITES_IDX_MAP), which replaces it.
    write_conflict = (
        " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET channel = excluded.channel,"
        " blob = excluded.blob, task_path = excluded.task_path WHERE excluded.idx < 0"
    )

    #: A checkpoint stored again replaces its row (a put is keyed by its checkpoint id).
    checkpoint_conflict = (
        " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET"
        " parent_checkpoint_id = excluded.parent_checkpoint_id, checkpoint = excluded.checkpoint,"
        " metadata = excluded.metadata, run_id = excluded.run_id, channel_values = excluded.channel_values,"
        " blob_channels = excluded.blob_channels"
    )

    def q(self, sql: str) -> str:
        """`sql`, written with '?' placeholders, in the driver's placeholder style."""
        return sql

    def __init__(self) -> None:
        q = self.q
        self.upsert_writes = q(
            f"INSERT INTO {WRITES} (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, blob)"
            f" VALUES (?, ?, ?, ?, ?, ?, ?, ?){self.write_conflict}"
        )
        # The rows asked for plus every row their chains name (see "Append deltas" in deltas.py),
        # in one statement; a row shared by many chains is read once. Keys are joined from a bound
        # list (`blob_keys`): the statement text never depends on how many keys there are.
        self.select_blobs = q(
            f"WITH k AS (SELECT * FROM {self.blob_keys}), need AS (SELECT thread_id, checkpoint_ns, channel, version FROM k"
            f" UNION SELECT r.thread_id, r.checkpoint_ns, r.channel, {self.chain_member} FROM k JOIN {BLOBS} AS r"
            " ON r.thread_id = k.thread_id AND r.checkpoint_ns = k.checkpoint_ns AND r.channel = k.channel"
            f" AND r.version = k.version {self.chain_members})"
            f" SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version, b.blob, b.chain FROM need JOIN {BLOBS} AS b"
            " ON b.thread_id = need.thread_id AND b.checkpoint_ns = need.checkpoint_ns AND b.channel = need.channel"
            " AND b.version = need.version"
        )
        self.delete_thread = tuple(
            q(f"DELETE FROM {table} WHERE thread_id = ?") for table in (WRITES, BLOBS, CHECKPOINTS)
        )
        self.thread_exists = q(f"SELECT 1 FROM {CHECKPOINTS} WHERE thread_id = ? LIMIT 1")
        self.select_channel_values = q(
            f"SELECT channel_values FROM {CHECKPOINTS} WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
        )
        self.copy_thread = (
            q(
                f"INSERT INTO {CHECKPOINTS} (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
                " checkpoint, metadata, run_id, channel_values, blob_channels) SELECT ?, checkpoint_ns, checkpoint_id,"
                f" parent_checkpoint_id, checkpoint, metadata, run_id, channel_values, blob_channels FROM {CHECKPOINTS}"
                " WHERE thread_id = ?"
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

        in_list = self.in_list
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
        self.collect_blobs = q(
            f"WITH live AS (SELECT c.thread_id, c.checkpoint_ns, v.key AS channel, {self.channel_version_text} AS version"
            f" FROM {CHECKPOINTS} AS c, {self.channel_versions} WHERE c.thread_id {in_list})"
            f" DELETE FROM {BLOBS} WHERE thread_id {in_list} AND (thread_id, checkpoint_ns, channel, version) NOT IN"
            " (SELECT thread_id, checkpoint_ns, channel, version FROM live UNION ALL"
            f" SELECT r.thread_id, r.checkpoint_ns, r.channel, {self.chain_member} FROM live JOIN {BLOBS} AS r"
            " ON r.thread_id = live.thread_id AND r.checkpoint_ns = live.checkpoint_ns AND r.channel = live.channel"
            f" AND r.version = live.version {self.chain_members})"
        )
        # Deletions remember, per thread that has checkpoints, a fresh checkpoint id and the time
        # (parameters: the id, the time, the threads), so that late writes are refused (0004).
        self.remember_deleted = q(
            f"INSERT INTO {DELETED} (thread_id, deleted_through, deleted_at) SELECT DISTINCT thread_id, ?, ?"
            f" FROM {CHECKPOINTS} WHERE thread_id {in_list} ON CONFLICT (thread_id) DO UPDATE SET"
            " deleted_through = excluded.deleted_through, deleted_at = excluded.deleted_at"
        )
        self.forget_deleted_before = q(f"DELETE FROM {DELETED} WHERE deleted_at < ?")
        # Retention (admin.apply_retention): every checkpoint of some threads without its values;
        # what deleting the checkpoints `k` would remove, measured before anything is deleted
        # (the checkpoint rows, their writes, and the blobs no other checkpoint of those threads
        # reads, directly or through a chain); then deleting them (`collect_blobs` after).
        self.select_heads = q(
            f"SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, {self.checkpoint_ts},"
            f" {self.metadata_parents} FROM {CHECKPOINTS} AS c WHERE c.thread_id {in_list}"
        )
        same_checkpoint = "{t}.thread_id = k.thread_id AND {t}.checkpoint_ns = k.checkpoint_ns AND {t}.checkpoint_id = k.checkpoint_id"
        # Encrypted metadata (encryption.seal_metadata) is read whole and decrypted in Python:
        # retention's heads with it, and the metadata of some checkpoints by key.
        self.select_heads_metadata = self.select_heads.replace(self.metadata_parents, self.metadata_text)
        self.select_metadata_of = q(
            f"SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, {self.metadata_text} FROM {self.checkpoint_keys}"
            f" JOIN {CHECKPOINTS} AS c ON {same_checkpoint.format(t='c')}"
        )
        self.measure_doomed = q(
            f"WITH k AS (SELECT * FROM {self.checkpoint_keys}),"
            f" doomed AS (SELECT c.checkpoint, c.metadata, c.channel_values FROM k JOIN {CHECKPOINTS} AS c"
            f" ON {same_checkpoint.format(t='c')}),"
            f" dw AS (SELECT w.blob FROM k JOIN {WRITES} AS w ON {same_checkpoint.format(t='w')}),"
            f" live AS (SELECT c.thread_id, c.checkpoint_ns, v.key AS channel, {self.channel_version_text} AS version"
            f" FROM {CHECKPOINTS} AS c, {self.channel_versions} WHERE c.thread_id {in_list}"
            f" AND NOT EXISTS (SELECT 1 FROM k WHERE {same_checkpoint.format(t='c')})),"
            " keep AS (SELECT thread_id, checkpoint_ns, channel, version FROM live UNION"
            f" SELECT r.thread_id, r.checkpoint_ns, r.channel, {self.chain_member} FROM live JOIN {BLOBS} AS r"
            " ON r.thread_id = live.thread_id AND r.checkpoint_ns = live.checkpoint_ns AND r.channel = live.channel"
            f" AND r.version = live.version {self.chain_members}),"
            f" garbage AS (SELECT b.blob FROM {BLOBS} AS b WHERE b.thread_id {in_list} AND NOT EXISTS (SELECT 1 FROM keep"
            " WHERE keep.thread_id = b.thread_id AND keep.checkpoint_ns = b.checkpoint_ns AND keep.channel = b.channel"
            " AND keep.version = b.version))"
            " SELECT (SELECT count(*) FROM doomed),"
            f" (SELECT COALESCE(SUM({self.json_size.format('checkpoint')} + {self.json_size.format('metadata')}"
            f" + COALESCE({self.blob_size.format('channel_values')}, 0)), 0) FROM doomed),"
            f" (SELECT count(*) FROM dw), (SELECT COALESCE(SUM({self.blob_size.format('blob')}), 0) FROM dw),"
            f" (SELECT count(*) FROM garbage), (SELECT COALESCE(SUM({self.blob_size.format('blob')}), 0) FROM garbage)"
        )
        self.delete_doomed = tuple(
            q(
                f"DELETE FROM {table} WHERE (thread_id, checkpoint_ns, checkpoint_id) IN"
                f" (SELECT thread_id, checkpoint_ns, checkpoint_id FROM {self.checkpoint_keys})"
            )
            for table in (WRITES, CHECKPOINTS)
        )
        self.select_storage_stats = self._storage_stats("")
        self.select_thread_storage_stats = self._storage_stats(" WHERE thread_id = ?")
        # Per thread: how many checkpoints, in which namespaces, and the latest one's id, with its
        # ts, step and source read out of the JSON in the database. The checkpoint columns are
        # read for one row per thread, the blobs not at all. Ids and thread ids compare by code
        # point as in Python; among checkpoints sharing the latest id, the one in the greatest
        # namespace counts, the one `list` returns first. That row is looked up per thread
        # (`latest_row`).
        self.select_thread_summaries = self._thread_summaries("")
        self.select_thread_summary = self._thread_summaries(" WHERE thread_id = ?")

    def _storage_stats(self, where: str) -> str:
        """What `ferrograph stats` shows, in one statement that reads sizes, never a value, as
        rows `(kind, name, a, b, c, first, last)` (see `admin.storage_stats`): `total` (threads,
        checkpoints, writes, oldest and newest ts), `bytes` (of checkpoints, values, writes; the
        small values held in checkpoint rows count as values, once per row),
        `database` (its bytes), `thread` (the largest threads: checkpoints, writes, bytes, first
        and last ts, at most the bound limit), `value` and `write` per channel (count, bytes),
        `chain` per append-delta chain length (rows). Parameters: with a thread, the thread id
        three times; the limit."""
        big = "CAST({} AS BIGINT)"
        total = "CAST(COALESCE(SUM({}), 0) AS BIGINT)"
        none = "CAST(NULL AS TEXT)"
        checkpoint_where = where.replace("thread_id", "c.thread_id")
        return self.q(
            f"WITH c AS (SELECT c.thread_id, {self.checkpoint_ts} AS ts,"
            f" {self.json_size.format('c.checkpoint')} + {self.json_size.format('c.metadata')} AS bytes,"
            f" c.channel_values FROM {CHECKPOINTS} AS c{checkpoint_where}),"
            f" b AS (SELECT thread_id, channel, COALESCE({self.blob_size.format('blob')}, 0) AS bytes,"
            f" {self.chain_length} AS chain FROM {BLOBS}{where}"
            f" UNION ALL SELECT c.thread_id, v.key, {self.inline_size}, NULL FROM c CROSS JOIN {self.inline_entries}),"
            f" w AS (SELECT thread_id, channel, {self.blob_size.format('blob')} AS bytes FROM {WRITES}{where}),"
            " x AS (SELECT thread_id, count(*) AS checkpoints, 0 AS writes, SUM(bytes) AS bytes, MIN(ts) AS first_ts,"
            f" MAX(ts) AS last_ts FROM c GROUP BY thread_id UNION ALL SELECT thread_id, 0, 0, SUM(bytes), {none}, {none}"
            f" FROM b GROUP BY thread_id UNION ALL SELECT thread_id, 0, count(*), SUM(bytes), {none}, {none} FROM w GROUP BY thread_id),"
            " t AS (SELECT thread_id, SUM(checkpoints) AS checkpoints, SUM(writes) AS writes, SUM(bytes) AS bytes,"
            " MIN(first_ts) AS first_ts, MAX(last_ts) AS last_ts FROM x GROUP BY thread_id)"
            f" SELECT 'total', {none}, {big.format('count(*)')}, {total.format('checkpoints')}, {total.format('writes')},"
            " MIN(first_ts), MAX(last_ts) FROM t"
            f" UNION ALL SELECT 'bytes', {none}, (SELECT {total.format('bytes')} FROM c), (SELECT {total.format('bytes')} FROM b),"
            f" (SELECT {total.format('bytes')} FROM w), {none}, {none}"
            f" UNION ALL SELECT 'database', {none}, {big.format('(' + self.database_bytes + ')')}, 0, 0, {none}, {none}"
            f" UNION ALL SELECT * FROM (SELECT 'thread', thread_id, {big.format('checkpoints')}, {big.format('writes')},"
            f" {big.format('bytes')}, first_ts, last_ts FROM t ORDER BY bytes DESC, thread_id LIMIT ?) AS top"
            f" UNION ALL SELECT 'value', channel, {big.format('count(*)')}, {total.format('bytes')}, 0, {none}, {none}"
            " FROM b GROUP BY channel"
            f" UNION ALL SELECT 'write', channel, {big.format('count(*)')}, {total.format('bytes')}, 0, {none}, {none}"
            " FROM w GROUP BY channel"
            f" UNION ALL SELECT 'chain', {none}, {big.format('chain')}, {big.format('count(*)')}, 0, {none}, {none}"
            " FROM b WHERE chain > 0 GROUP BY chain"
        )

    @abstractmethod
    def latest_row(self, latest_of_thread: str) -> str:
        """The join that finds the latest checkpoint row `c` of each thread summary `t`."""

    def _thread_summaries(self, where: str) -> str:
        by_code_point = self.by_code_point
        latest_of_thread = f"FROM {CHECKPOINTS} AS l WHERE l.thread_id = t.thread_id AND l.checkpoint_id = t.last_id"
        return self.q(
            f"WITH t AS (SELECT thread_id, count(*) AS checkpoints, {self.namespaces_json} AS namespaces,"
            f" MAX(checkpoint_id{by_code_point}) AS last_id FROM {CHECKPOINTS}{where} GROUP BY thread_id)"
            f" SELECT t.thread_id, t.checkpoints, t.namespaces, t.last_id, c.checkpoint_ns, {self.checkpoint_ts},"
            f" {self.step_and_source} FROM t {self.latest_row(latest_of_thread)}"
            f" ORDER BY t.last_id DESC, t.thread_id{by_code_point} DESC"
        )

    def put_writes(self, rows: Sequence[tuple]) -> Query:
        """The statement that stores pending writes, rows `(thread_id, checkpoint_ns,
        checkpoint_id, task_id, task_path, idx, channel, blob)` of one task, at most one per
        `idx`."""
        return Query(self.upsert_writes, rows, many=True, rows=False)

    def put_batch_writes(self, rows: Sequence[tuple]) -> Query:
        """The statement that stores the pending writes of a batch's tasks (the rows of each
        `put_writes`, in call order) as storing each task's in turn would."""
        return self.put_writes(rows)  # one statement applies its rows in order

    @abstractmethod
    def upsert_checkpoints(self, rows: Sequence[Sequence[Any]]) -> Query:
        """The statement that stores the checkpoint rows of a batch's puts (held back by
        `writes.put`, see `writes.batch`), as storing them in turn would."""

    @abstractmethod
    def vacuum(self, full: bool) -> tuple[str, ...]:
        """The statements that give the space of deleted rows back (run outside a transaction);
        `full` asks for the space back on disk even where that locks the tables."""

    @abstractmethod
    def chain_param(self, chain: Sequence[str]) -> Any:
        """The parameter for a list of names: a `chain` column, a `blob_channels` column."""

    @abstractmethod
    def chain_value(self, column: Any) -> Optional[list[str]]:
        """A `chain` column as read back."""

    @abstractmethod
    def text_list(self, values: Sequence[str]) -> Any:
        """The parameter for an `in_list` of strings."""

    @abstractmethod
    def keys_param(self, keys: Sequence[tuple[str, ...]], width: int) -> list[Any]:
        """The parameters for a batched key lookup (`select_blobs`)."""

    @abstractmethod
    def metadata_condition(self, key: str, value: Any) -> tuple[str, list[Any], bool]:
        """SQL matching what `metadata_matches` matches for `{key: value}`, its parameters, and
        whether the rows it keeps still need checking in Python."""

    @abstractmethod
    def metadata_matches(self, metadata: Mapping[str, Any], filter: Mapping[str, Any]) -> bool:
        """Whether `metadata` matches a metadata `filter` as LangGraph's saver for this database
        matches it, for rows matched in Python (encrypted metadata, values the SQL cannot
        compare)."""

    def metadata_filter(self, filter: Optional[Mapping[str, Any]], encryption: Optional[Encryption]) -> tuple[list[str], list[Any], dict[str, Any]]:
        """A metadata `filter` as SQL conditions, their parameters, and what of it the rows
        they keep still need checking against in Python. A saver with encryption may hold
        encrypted metadata, which SQL cannot read: those rows are kept and checked in Python
        once decrypted, all of them when the encryption covers metadata (a scan)."""
        if not filter:
            return [], [], {}
        if encryption is not None and encryption.encrypts_metadata:
            return [], [], dict(filter)
        conditions: list[str] = []
        params: list[Any] = []
        in_python: dict[str, Any] = {}
        for key, value in filter.items():
            condition, condition_params, check_in_python = self.metadata_condition(key, value)
            conditions.append(condition)
            params.extend(condition_params)
            if check_in_python:
                in_python[key] = value
        if encryption is not None:
            return [f"(({' AND '.join(conditions)}) OR {self.metadata_sealed})"], params, dict(filter)
        return conditions, params, in_python

    @abstractmethod
    def select_tuples(self, conditions: Sequence[str], several: bool) -> str:
        """One statement that reads checkpoints (`conditions` are written with '?'
        placeholders; newest first, at most the bound limit) with everything their tuples need,
        as rows whose first column says what they are (read by `_core.RowPage`):

        - `(0, rank, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint,
          metadata, channel_values, NULL)`: a checkpoint, with its small values (NULL for a row
          written before migration 0005); `rank` orders them newest first;
        - `(1, NULL, thread_id, checkpoint_ns, channel, version, NULL, NULL, blob, chain)`: a blob
          row of a channel in a checkpoint's `blob_channels` (before 0005, of any of its channels),
          or one their chains name;
        - `(2, rank, thread_id, checkpoint_ns, checkpoint_id, task_id, channel, task_path, blob,
          idx)`: a pending write; `rank` orders them as `task_path, task_id, idx`.

        Without `ranks_rows`, `rank` is NULL and the reader orders the rows itself, so the write
        rows carry `task_path` and `idx`; with it those two are NULL.

        The blob rows are found from the versions in the stored checkpoints, read as text in the
        database; for a row written before 0005, `reads._complete` reads any version this misses
        with `select_blobs`. With
        `several` (more than one checkpoint may match), a blob row shared by many checkpoints or
        chains is returned once; a single checkpoint names each row once anyway."""
