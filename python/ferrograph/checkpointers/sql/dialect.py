"""What the two database families share of the SQL text: the table names, the statements whose
text differs only in small fragments, and the interface `SqliteDialect` (sqlite.py) and
`PostgresDialect` (postgres.py) fill in. Statements are written with '?' placeholders; a dialect
turns them into its driver's style (`q`)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, Optional, Sequence

__all__ = ["BLOBS", "CHECKPOINTS", "FILTER_KEY", "MIGRATION_LOCK_KEY", "WRITES", "Dialect"]

#: Key of the Postgres advisory lock that serializes schema upgrades ("ferrog" in ASCII).
MIGRATION_LOCK_KEY = 0x666572726F67

CHECKPOINTS = "ferrograph_checkpoints"
BLOBS = "ferrograph_checkpoint_blobs"
WRITES = "ferrograph_checkpoint_writes"

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
    #: Whether `select_tuples` ranks its checkpoint and write rows (else the reader orders them).
    ranks_rows: bool
    #: The statement that serializes the engine's stepping puts on one line until commit, or None
    #: when the write transaction already holds a lock that does (see `writes.put`).
    lock_line: Optional[str]
    #: The statement that serializes schema upgrades, or None when the write transaction does.
    lock_migrations: Optional[str]
    version_table_exists: str

    order_newest_first = " ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC"

    def q(self, sql: str) -> str:
        """`sql`, written with '?' placeholders, in the driver's placeholder style."""
        return sql

    def __init__(self) -> None:
        q = self.q
        write_columns = (
            f"INSERT INTO {WRITES} (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, blob)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)"
        )
        self.insert_write = q(write_columns + " DO NOTHING")
        self.upsert_write = q(
            write_columns
            + " DO UPDATE SET channel = excluded.channel, blob = excluded.blob, task_path = excluded.task_path"
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
        # Per thread: how many checkpoints, in which namespaces, and the latest one's id, with its
        # ts, step and source read out of the JSON in the database. The checkpoint columns are
        # read for one row per thread, the blobs not at all. Ids and thread ids compare by code
        # point as in Python; among checkpoints sharing the latest id, the one in the greatest
        # namespace counts, the one `list` returns first. That row is looked up per thread
        # (`latest_row`).
        self.select_thread_summaries = self._thread_summaries("")
        self.select_thread_summary = self._thread_summaries(" WHERE thread_id = ?")

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

    @abstractmethod
    def chain_param(self, chain: Sequence[str]) -> Any:
        """The parameter for a `chain` column."""

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
        """SQL matching metadata[key] == value, its parameters, and whether the rows it keeps
        still need checking in Python."""

    @abstractmethod
    def select_tuples(self, conditions: Sequence[str], several: bool) -> str:
        """One statement that reads checkpoints (`conditions` are written with '?'
        placeholders; newest first, at most the bound limit) with everything their tuples need,
        as rows whose first column says what they are (`reads.split`):

        - `(0, rank, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint,
          metadata, NULL, NULL)`: a checkpoint; `rank` orders them newest first;
        - `(1, NULL, thread_id, checkpoint_ns, channel, version, NULL, NULL, blob, chain)`: a blob
          row a checkpoint names in its `channel_versions`, or one their chains name;
        - `(2, rank, thread_id, checkpoint_ns, checkpoint_id, task_id, channel, task_path, blob,
          idx)`: a pending write; `rank` orders them as `task_path, task_id, idx`.

        Without `ranks_rows`, `rank` is NULL and the reader orders the rows itself, so the write
        rows carry `task_path` and `idx`; with it those two are NULL.

        The blob rows are found from the versions in the stored checkpoints, read as text in the
        database; `reads.tuples` reads any version this misses with `select_blobs`. With
        `several` (more than one checkpoint may match), a blob row shared by many checkpoints or
        chains is returned once; a single checkpoint names each row once anyway."""
