"""`SqliteSaver`: checkpoints in a SQLite file through the standard library's sqlite3. Safe to
share across threads (one lock around the connection); the database runs in WAL mode so readers
in other processes do not block it. The SQL and the row conversion live in the `sql` package; this class
only runs them. The async twin is `ferrograph.checkpointers.aio.AsyncSqliteSaver`."""

from __future__ import annotations

import builtins
import datetime
import sqlite3
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

from ferrograph.checkpointers import sql
from ferrograph.checkpointers.base import BaseCheckpointSaver, Checkpoint, CheckpointMetadata, CheckpointTuple
from ferrograph.checkpointers.encryption import Encryption, encryption_of as _encryption_of
from ferrograph.checkpointers.retention import Retention, RetentionResult, Sweeping, policy_of
from ferrograph.checkpointers.stats import StorageStats
from ferrograph.errors import CheckpointStorageError

__all__ = ["SqliteSaver"]

#: The log's size, in pages, past which a commit moves it into the file (SQLite's automatic
#: checkpoint; 1,000 is SQLite's default and what LangGraph's saver runs with), on the saver's
#: connections from `from_conn_string`. The log is then written again from its start, so it
#: stays about this size (4 MB). A thread of the saver's own checkpointing the log instead, with
#: the automatic checkpoint off, cost puts about 20 us more each: under a steady stream of
#: commits its checkpoints never caught up with the log, which therefore never started over and
#: had to be truncated by the committing thread every 16 MB (before that it grew past 200 MB).
WAL_CHECKPOINTS = 1000

#: What `from_conn_string` (sync and async) sets on a file's connection: WAL, so that readers in
#: other processes do not block writes, `synchronous=NORMAL` (a power cut may lose the last
#: commits, a crash of the process nothing), and the log's automatic checkpoint.
FILE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINTS}")


def connection_pragmas(path: str) -> tuple[str, ...]:
    """The pragmas `from_conn_string` runs on its connection to `path`: `FILE_PRAGMAS`, or none
    for an in-memory database (no file, no log)."""
    return () if path == ":memory:" else FILE_PRAGMAS


def _retry_delays() -> tuple[float, ...]:
    delays: list[float] = []
    delay = 0.005
    while sum(delays) + delay <= sql.SQLITE_BUSY_TIMEOUT:
        delays.append(delay)
        delay = min(delay * 2, 0.1)
    return tuple(delays)


#: The waits between tries of a connection's pragma that found the file locked: 5 ms, doubling
#: to at most 100 ms, for as long as the busy timeout. Switching a new file to WAL takes an
#: exclusive lock; when processes open the file at once, each may hold the shared lock another
#: waits for, a deadlock SQLite answers with "database is locked" at once instead of waiting out
#: its busy timeout (three processes setting up one new file hit it).
PRAGMA_RETRY_DELAYS = _retry_delays()


def file_locked(error: sqlite3.OperationalError) -> bool:
    """Whether `error` says the file is locked by another connection (worth trying again)."""
    return "locked" in str(error) or "busy" in str(error)


def run_pragma(conn: sqlite3.Connection, pragma: str) -> None:
    """Runs `pragma` on `conn`, trying a locked file again (`PRAGMA_RETRY_DELAYS`)."""
    for delay in (*PRAGMA_RETRY_DELAYS, None):
        try:
            conn.execute(pragma)
            return
        except sqlite3.OperationalError as e:
            if delay is None or not file_locked(e):
                raise
            time.sleep(delay)


def run_pragmas(conn: sqlite3.Connection, path: str) -> None:
    """Runs `connection_pragmas(path)` on `conn`, each as `run_pragma`."""
    for pragma in connection_pragmas(path):
        run_pragma(conn, pragma)


class SqliteSaver(Sweeping, BaseCheckpointSaver):
    """A checkpoint saver on a `sqlite3.Connection`.

    Pass a connection opened with `check_same_thread=False` if more than one thread uses the
    saver, or use `SqliteSaver.from_conn_string(path)`. The tables are created (or upgraded) on
    the saver's first use, as LangGraph's SqliteSaver does; `setup()` does it up front.
    `retention` is the policy `apply_retention()` applies by default; with
    `sweep_every` ("10m") a background thread applies it that often until `stop_sweeping()`.
    With `encryption` (`ferrograph.checkpointers.Encryption`), channel values and pending writes
    are stored AES-256-GCM encrypted; `rekey()` re-encrypts them with its newest key.
    """

    takes_encoded_checkpoints = True

    dialect = sql.SQLITE

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        retention: Optional[Retention] = None,
        sweep_every: Optional[Union[str, datetime.timedelta]] = None,
        max_value_bytes: Optional[int] = None,
        warn_value_bytes: Optional[int] = None,
        encryption: Optional[Encryption] = None,
    ) -> None:
        self.conn = conn
        self.lock = threading.RLock()
        self._script_location: Optional[str] = None
        #: Whether `setup()` has run on this saver (every operation runs it first otherwise).
        self._set_up = False
        self.deltas = sql.DeltaCache()
        self._init_health(retention, sweep_every, max_value_bytes, warn_value_bytes, encryption)
        self._start_sweeping()

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        retention: Optional[Retention] = None,
        sweep_every: Optional[Union[str, datetime.timedelta]] = None,
        max_value_bytes: Optional[int] = None,
        warn_value_bytes: Optional[int] = None,
        encryption: Optional[Encryption] = None,
    ) -> Iterator["SqliteSaver"]:
        """A saver on its own connection to `conn_string` (a file path, `:memory:` or
        `sqlite:///path`), closed when the block ends. The file runs in WAL mode with
        `synchronous=NORMAL`: a crash of the process loses nothing, a power cut may lose the
        last commits (never the file's consistency). A write waits up to
        `sql.SQLITE_BUSY_TIMEOUT` seconds for other connections' writes to the file (SQLite's
        busy handler) before failing with "database is locked". The log is moved into the file
        by SQLite's automatic checkpoint, in the commit that takes it past 1,000 pages, as with
        LangGraph's saver (see `WAL_CHECKPOINTS`)."""
        path = sql.sqlite_path(conn_string)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=sql.SQLITE_BUSY_TIMEOUT)
        try:
            run_pragmas(conn, path)
            saver = cls(
                conn,
                retention=retention,
                sweep_every=sweep_every,
                max_value_bytes=max_value_bytes,
                warn_value_bytes=warn_value_bytes,
                encryption=encryption,
            )
            try:
                yield saver
            finally:
                saver.stop_sweeping()
        finally:
            # The last connection to close moves what is left of the log into the file.
            conn.close()

    def _execute(self, cursor: sqlite3.Cursor, query: sql.Query) -> Any:
        if query.many:
            cursor.executemany(query.sql, query.params)  # type: ignore[arg-type]
            return None
        if query.params is None:
            cursor.execute(query.sql)
        else:
            cursor.execute(query.sql, query.params)
        return cursor.fetchall() if cursor.description is not None else None

    def _ensure_tables(self) -> None:
        if not self._set_up:
            self.setup()

    def _read(self, op: sql.Op) -> Any:
        self._ensure_tables()
        with self.lock:
            cursor = self.conn.cursor()
            try:
                return sql.drive(op, lambda q: _select(cursor, q))
            finally:
                cursor.close()

    def _write(self, op: sql.Op) -> Any:
        self._ensure_tables()
        return self._transaction(op)

    def _transaction(self, op: sql.Op) -> Any:
        """Runs `op` in one transaction: its own (BEGIN IMMEDIATE takes the write lock up front,
        so concurrent writers queue instead of deadlocking), or a savepoint inside the caller's.
        An operation that is one statement (`Query.alone`) runs without BEGIN and COMMIT on an
        autocommit connection: the statement is its own transaction. The operation's work up to
        its first statement (a put's encoding) is done before the write lock is taken."""
        with self.lock:
            try:
                first = next(op)
            except StopIteration as stop:
                return stop.value
            cursor = self.conn.cursor()
            nested = self.conn.in_transaction
            try:
                if isinstance(first, sql.Query) and first.alone and not nested and _autocommits(self.conn):
                    try:
                        result = sql.drive(op, lambda q: self._execute(cursor, q), first)
                    except sqlite3.IntegrityError as e:
                        _raise_thread_deleted(e)
                        raise
                    return result
                cursor.execute("SAVEPOINT ferrograph" if nested else "BEGIN IMMEDIATE")
                try:
                    result = sql.drive(op, lambda q: self._execute(cursor, q), first)
                except BaseException as e:
                    if nested:
                        cursor.execute("ROLLBACK TO ferrograph")
                        cursor.execute("RELEASE ferrograph")
                    else:
                        self.conn.rollback()
                    if isinstance(e, sqlite3.IntegrityError):
                        _raise_thread_deleted(e)
                    raise
                if nested:
                    cursor.execute("RELEASE ferrograph")
                else:
                    self.conn.commit()
                return result
            finally:
                cursor.close()

    def setup(self) -> None:
        """Creates the tables, or upgrades them to this version's schema; a no-op when they are
        current. Refuses (SchemaVersionError) a database migrated by a newer ferrograph. Run by
        the saver's first operation when not called before."""
        with self.lock:
            if not self.conn.in_transaction:
                mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
                if mode not in ("wal", "memory"):
                    run_pragma(self.conn, "PRAGMA journal_mode=WAL")
        self._transaction(sql.setup(self.dialect, self._script_location))
        self._set_up = True

    def get_tuple(self, config: dict) -> Optional[CheckpointTuple]:
        return self._read(sql.get_tuple(self.dialect, config, self.encryption))

    def list(
        self,
        config: Optional[dict],
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[dict] = None,
        limit: Optional[int] = None,
    ) -> Iterator[CheckpointTuple]:
        op = sql.list_checkpoints(
            self.dialect, config, filter=filter, before=before, limit=limit, encryption=self.encryption
        )
        self._ensure_tables()
        cursor_lock = self.lock

        def execute(query: sql.Query) -> Any:
            # The lock is held per page, not while the caller consumes the results.
            with cursor_lock:
                cursor = self.conn.cursor()
                try:
                    return _select(cursor, query)
                finally:
                    cursor.close()

        yield from sql.drive_iter(op, execute)

    def put(self, config: dict, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: dict) -> dict:
        return self._write(sql.put(self.dialect, config, checkpoint, metadata, new_versions, self.deltas, self.limits, self.encryption))

    def put_writes(self, config: dict, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        self._write(sql.put_writes(self.dialect, config, writes, task_id, task_path, self.limits, self.encryption))

    def run_batch(self, calls: Sequence[tuple[str, tuple]]) -> builtins.list[Any]:
        """Runs `put`/`put_writes` calls in one transaction: all of them are stored, or none.
        The delta cache learns what the batch stored once it is stored (`sql.Learning`: the
        batch's puts, a run's steps on one line, share their view of it)."""
        op = sql.Learning(self.deltas, lambda deltas: sql.batch(self.dialect, calls, deltas, self.limits, self.encryption))
        results = self._write(op())
        op.commit()
        return results

    def delete_thread(self, thread_id: str) -> None:
        self._write(sql.delete_thread(self.dialect, thread_id, self.deltas))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._write(sql.delete_for_runs(self.dialect, run_ids, self.deltas))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._write(sql.copy_thread(self.dialect, source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._write(sql.prune(self.dialect, thread_ids, strategy, self.deltas))

    def apply_retention(self, policy: Optional[Retention] = None, *, dry_run: bool = False) -> RetentionResult:
        """Deletes what `policy` (the saver's `retention` by default) does not keep, a batch of
        threads per transaction, and returns what was deleted; with `dry_run`, deletes nothing
        and returns what would be (see ferrograph.checkpointers.retention)."""
        work = sql.retention(self.dialect, policy_of(self, policy), dry_run, self.deltas, self.encryption)
        return sql.drive_transactions(work, lambda make, write: (self._write if write else self._read)(make()))

    def rekey(self, *, batch_size: int = sql.REKEY_BATCH) -> sql.RekeyResult:
        """Re-encrypts every stored value and pending write with the newest key of this saver's
        encryption (plain ones too), `batch_size` rows per transaction; an interrupted rekey is
        simply run again (see sql/rekey.py)."""
        work = sql.rekey(self.dialect, _encryption_of(self), batch_size)
        result = sql.drive_transactions(work, lambda make, write: (self._write if write else self._read)(make()))
        self.deltas.forget_threads()
        return result

    def storage_stats(self, thread_id: Optional[str] = None, *, largest: int = 10) -> StorageStats:
        """What the database (or one thread) holds, in one query that reads no value: threads,
        checkpoints, writes, bytes in all, per channel and of the `largest` threads, oldest and
        newest activity, append-delta chain lengths."""
        return self._read(sql.storage_stats(self.dialect, thread_id, largest))

    def database_bytes(self) -> int:
        """The bytes the database takes (its pages, the write-ahead log folded in)."""
        return int(self._read(sql.database_bytes(self.dialect)))

    def vacuum(self, *, full: bool = False) -> tuple[int, int]:
        """Gives the space of deleted rows back to the file system (VACUUM, which rewrites the
        file; `full` changes nothing on SQLite); returns the database's bytes before and after."""
        with self.lock:
            if self.conn.in_transaction:
                raise CheckpointStorageError("cannot VACUUM inside a transaction: commit it first")
            return self._read(sql.vacuum(self.dialect, full))

    def thread_summaries(
        self, thread_id: Optional[str] = None, filter: Optional[Mapping[str, Any]] = None
    ) -> builtins.list[sql.ThreadRow]:
        """Every thread (or just `thread_id`; with `filter`, those with a checkpoint whose
        metadata matches it): checkpoint count, namespaces and latest checkpoint, most recently
        active first, from aggregate queries that read no channel values (`sql.thread_summaries`)."""
        return self._read(sql.thread_summaries(self.dialect, thread_id, filter, self.encryption))


def _autocommits(conn: sqlite3.Connection) -> bool:
    """Whether a statement run outside a transaction commits on its own: no implicit BEGIN
    (isolation_level None, or Python 3.12's autocommit=True)."""
    mode = getattr(conn, "autocommit", -1)  # -1: sqlite3.LEGACY_TRANSACTION_CONTROL
    return mode is True or (mode == -1 and conn.isolation_level is None)


def _raise_thread_deleted(error: sqlite3.IntegrityError) -> None:
    """Raises the ThreadDeletedError a refused late write stands for (see sql.thread_deleted)."""
    deleted = sql.thread_deleted(error)
    if deleted is not None:
        raise deleted from error


def _select(cursor: sqlite3.Cursor, query: sql.Query) -> list:
    """The rows of a read operation's statement: always a SELECT, so `_execute`'s checks (and
    the `cursor.description` it builds) are not needed."""
    return cursor.execute(query.sql, query.params).fetchall()  # type: ignore[arg-type]
