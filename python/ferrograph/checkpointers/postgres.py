"""`PostgresSaver`: checkpoints in Postgres through psycopg 3, on one `Connection` (guarded by a
lock) or a `psycopg_pool.ConnectionPool`. The SQL and the row conversion live in the `sql` package; this
class only runs them. The async twin is `ferrograph.checkpointers.aio.AsyncPostgresSaver`."""

from __future__ import annotations

import builtins
import datetime
import threading
from contextlib import ExitStack, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import psycopg
from psycopg import Connection
from psycopg.rows import tuple_row

from ferrograph.checkpointers import sql
from ferrograph.checkpointers.base import BaseCheckpointSaver, Checkpoint, CheckpointMetadata, CheckpointTuple
from ferrograph.checkpointers.encryption import Encryption, encryption_of as _encryption_of
from ferrograph.checkpointers.retention import Retention, RetentionResult, Sweeping, policy_of
from ferrograph.checkpointers.stats import StorageStats
from ferrograph.errors import CheckpointStorageError

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

__all__ = ["PostgresSaver"]


class Held:
    """A batch's statements whose results nobody reads, held back and sent grouped by statement
    text (one `executemany` each) before the next statement whose rows are read, and at the end:
    far fewer calls into the driver for a batch of many small puts. Statements of one text keep
    their order; statements of different texts commute (they write different tables or keys,
    and every read comes after everything before it), except one that reads what earlier ones
    write (`Query.depends`), which goes after every group held before it."""

    def __init__(self) -> None:
        self.pending: dict[str, list] = {}
        self.ready: list[sql.Query] = []

    def hold(self, query: sql.Query) -> bool:
        if query.rows or query.params is None:
            return False
        if query.depends and self.pending:
            self.ready += self._groups()
        self.pending.setdefault(query.sql, []).extend(query.params if query.many else [query.params])
        return True

    def take(self) -> list[sql.Query]:
        queries = self.ready + self._groups()
        self.ready = []
        return queries

    def _groups(self) -> list[sql.Query]:
        queries = [sql.Query(text, params, many=True, rows=False) for text, params in self.pending.items()]
        self.pending = {}
        return queries


def execute(cursor: Any, query: sql.Query, pipeline: Any = None, held: Optional[Held] = None) -> Any:
    """Runs one step of an operation on a psycopg cursor. In `pipeline` mode a statement whose
    rows the operation does not read is only queued; one whose rows it reads waits for them.
    With `held`, statements whose rows are not read wait there (see `Held`)."""
    if held is not None:
        if held.hold(query):
            return None
        for earlier in held.take():
            execute(cursor, earlier, pipeline)
    if query.many:
        cursor.executemany(query.sql, query.params)
        return None
    cursor.execute(query.sql, query.params)
    if not query.rows:
        return None
    if pipeline is not None:
        pipeline.sync()
    return cursor.fetchall() if has_rows(cursor) else None


def has_rows(cursor: Any) -> bool:
    """Whether the statement a psycopg cursor (sync or async) ran last returned rows: asks its
    result, where `cursor.description` builds a Column object per column on every call."""
    result = cursor.pgresult
    return result is not None and bool(result.nfields)


class OneSync:
    """Runs the steps of an operation committed with one round trip per read (see
    `PostgresSaver._run`): the statements before one whose rows the operation reads go out with
    it in a pipeline, whose sync commits them all; a read with nothing before it runs without a
    pipeline. A statement whose rows are not read waits until the next one comes, so that one
    sent alone (a put, a put_writes) also runs without a pipeline, whose bookkeeping costs
    psycopg more than the statement's own. Used as a context manager, it sends what waits when
    the operation ends and ends a pipeline left open; after an error nothing waiting is sent."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.pipeline = ExitStack()
        self.pipelined = False
        self.waiting: Optional[sql.Query] = None

    def __enter__(self) -> "OneSync":
        return self

    def __exit__(self, *exc: Any) -> Optional[bool]:
        waiting, self.waiting = self.waiting, None
        if waiting is not None and exc[0] is None:
            self.cursor.execute(waiting.sql, waiting.params)
        return self.pipeline.__exit__(*exc)

    def execute(self, query: sql.Query) -> Any:
        if query.many:
            raise AssertionError("an operation run with one sync per read has no executemany step")
        if not query.rows and not self.pipelined and self.waiting is None:
            self.waiting = query
            return None
        if self.waiting is not None:
            self.pipeline.enter_context(self.cursor.connection.pipeline())
            self.pipelined = True
            self.cursor.execute(self.waiting.sql, self.waiting.params)
            self.waiting = None
        self.cursor.execute(query.sql, query.params)
        if not query.rows:
            return None
        self.pipeline.close()
        self.pipelined = False
        return self.cursor.fetchall() if has_rows(self.cursor) else None


def in_one_transaction(conn: Connection, cursor: Any, op: sql.Op, held: Optional[Held]) -> Any:
    """Runs a write `op` in one transaction on an autocommit connection, in one pipeline: BEGIN,
    its statements and COMMIT go out together, so the transaction costs one round trip plus
    one per statement whose rows it reads. psycopg's `conn.transaction()` inside a pipeline
    syncs after the block and again after COMMIT, two or three round trips where one does.
    A failure anywhere (a statement refused by the server, an error raised in Python between
    statements) leaves the transaction open or aborted; it is rolled back before the error
    goes on, so nothing of it is stored and the connection is usable again."""
    try:
        with conn.pipeline() as pipeline:
            cursor.execute("BEGIN")
            result = sql.drive(op, lambda q: execute(cursor, q, pipeline, held))
            for query in held.take() if held is not None else ():
                execute(cursor, query, pipeline)
            cursor.execute("COMMIT")
        return result
    except BaseException:
        rollback_open_transaction(conn)
        raise


def left_open(conn: Any) -> bool:
    """Whether a failed `in_one_transaction` left its transaction open (or aborted) on a live
    connection, to be rolled back."""
    return not connection_lost(conn) and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


def rollback_open_transaction(conn: Any) -> None:
    """Rolls back what `in_one_transaction` left open after a failure; an error doing so (the
    connection is gone) must not hide the failure itself."""
    if left_open(conn):
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            pass


def _single(query: sql.Query) -> sql.Op:
    return (yield query)


def connection_lost(conn: Any) -> bool:
    """Whether a psycopg connection is dead (closed, or broken by a lost server)."""
    return conn is not None and bool(conn.closed or getattr(conn, "broken", False))


def reconnect_attempts(conn: Any, single: bool, reopens: bool = False) -> int:
    """How often an operation runs before a lost connection is reported: on a single
    connection, once, or twice when the saver opens a new one in its place (`reopens`: a saver
    from a URL); on a pool, once more than it can hold connections (each dead one it hands
    out is discarded when returned, so a fresh one comes at the latest then)."""
    if single:
        return 2 if reopens else 1
    return int(getattr(conn, "max_size", 1) or 1) + 1


#: What psycopg's server-side prepared statements meet behind a pooler in transaction mode
#: (PgBouncer before 1.21, or with max_prepared_statements = 0): the next transaction runs on
#: another server connection, which lacks the statement or has one of that name already.
_PREPARED_STATEMENT_ERRORS = (psycopg.errors.InvalidSqlStatementName, psycopg.errors.DuplicatePreparedStatement)


def prepared_statement_lost(error: BaseException, conn: Any) -> bool:
    """Whether `error` is a pooler losing psycopg's prepared statements on `conn`; if so,
    `conn` stops preparing statements (the operation can then run again on it)."""
    if conn is None or not isinstance(error, _PREPARED_STATEMENT_ERRORS) or conn.prepare_threshold is None:
        return False
    conn.prepare_threshold = None
    return True


def again_at_once(error: BaseException, conn: Any, deltas: sql.DeltaCache, retried: set[str]) -> bool:
    """After an operation failed with database error `error` on `conn`: raises the error
    ferrograph reports for it (ThreadDeletedError, SchemaVersionError, ConcurrentUpdateError),
    or says whether the operation runs again at once, not counted as an attempt: once after a
    put refused for a stale delta (its row is not as this saver wrote it: another process
    pruned or rewrote it; nothing was stored, and without the cache the values go whole), once
    after a pooler lost a prepared statement. `retried` keeps what was retried."""
    # A pipeline reports a refused late write as an OperationalError.
    refused = sql.refused_put(error)
    translated = sql.thread_deleted(error) or sql.missing_tables(error) or (refused if isinstance(refused, Exception) else None)
    if translated is not None:
        raise translated from error
    if refused and "stale delta" not in retried:
        retried.add("stale delta")
        deltas.forget_threads()
        return True
    if "prepared statement" not in retried and prepared_statement_lost(error, conn):
        retried.add("prepared statement")
        return True
    return False


class PostgresSaver(Sweeping, BaseCheckpointSaver):
    """A checkpoint saver on a psycopg `Connection` or `ConnectionPool`.

    The connection may be in autocommit mode or not; every write runs in a transaction (a
    savepoint when the caller's transaction is open). Call `setup()` once to create or upgrade
    the tables. `retention` and `sweep_every` as `SqliteSaver`'s.
    """

    takes_encoded_checkpoints = True

    dialect = sql.POSTGRES

    def __init__(
        self,
        conn: Union[Connection, "ConnectionPool"],
        *,
        retention: Optional[Retention] = None,
        sweep_every: Optional[Union[str, datetime.timedelta]] = None,
        max_value_bytes: Optional[int] = None,
        warn_value_bytes: Optional[int] = None,
        encryption: Optional[Encryption] = None,
    ) -> None:
        self.conn = conn
        #: Opens a connection in place of a lost one (a saver from `from_conn_string`).
        self._reopen: Optional[Callable[[], Connection]] = None
        self.lock = threading.Lock()
        self._script_location: Optional[str] = None
        self.deltas = sql.DeltaCache()
        self._init_health(retention, sweep_every, max_value_bytes, warn_value_bytes, encryption)
        self._start_sweeping()

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        prepare_threshold: Optional[int] = 5,
        retention: Optional[Retention] = None,
        sweep_every: Optional[Union[str, datetime.timedelta]] = None,
        max_value_bytes: Optional[int] = None,
        warn_value_bytes: Optional[int] = None,
        encryption: Optional[Encryption] = None,
    ) -> Iterator["PostgresSaver"]:
        """A saver on its own autocommit connection to `conn_string`, closed when the block ends.

        A connection the server ends (restarted, `idle_session_timeout`, `pg_terminate_backend`)
        is replaced by a new one to `conn_string`, and the operation that met the loss runs
        again once (see `_run`). `prepare_threshold` is psycopg's: after how many executions a
        statement is prepared on the server; None never prepares, which PgBouncer in
        transaction pooling mode needs (a saver that meets a lost prepared statement turns
        preparing off by itself and runs the operation again)."""

        def connect() -> Connection:
            return Connection.connect(conn_string, autocommit=True, prepare_threshold=prepare_threshold)

        saver = cls(
            connect(),
            retention=retention,
            sweep_every=sweep_every,
            max_value_bytes=max_value_bytes,
            warn_value_bytes=warn_value_bytes,
            encryption=encryption,
        )
        saver._reopen = connect
        try:
            yield saver
        finally:
            saver.stop_sweeping()
            assert isinstance(saver.conn, Connection)
            saver.conn.close()

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        if isinstance(self.conn, Connection):
            with self.lock:
                if self._reopen is not None and connection_lost(self.conn):
                    self.conn.close()
                    self.conn = self._reopen()
                yield self.conn
        else:
            with self.conn.connection() as conn:
                yield conn

    def _run(
        self, make: Callable[[], sql.Op], *, write: bool, grouped: bool = False, one_sync: bool = False
    ) -> Any:
        """Runs the operation `make()` builds, in one transaction when it writes.

        `one_sync`: the operation (`sql.put`, `sql.put_writes`) is one or more groups of
        statements, each ending with the one statement of the group whose rows it reads (or with
        the operation's end); each group is atomic as one
        implicit transaction, and the operation is correct if it stops after any group. On an
        autocommit connection each group is then sent without BEGIN and COMMIT, in one pipeline
        when it has several statements (`OneSync`): the server runs the statements before a
        sync as one transaction and commits it at the sync, so a group costs one round trip. In
        a caller's transaction the operation runs in a savepoint, as any write.

        Lost connections: on a pool, an operation whose connection turns out to be dead (the
        server restarted, an idle connection was terminated) is run again on another one,
        until the pool has no dead connection left to hand out; a saver from
        `from_conn_string` opens a new connection in place of its dead one and runs the
        operation again once. This is safe for every operation, reads and writes alike,
        because each is idempotent (upserts and ON CONFLICT DO NOTHING inserts, a put keyed by
        its checkpoint id, and a put that finds its own checkpoint already stored passes the
        concurrent-writer check) and a transaction cut off mid-way is rolled back by the
        server, never half-applied. A saver given a single `Connection` has nothing to retry
        with: `psycopg.OperationalError` reaches the caller unchanged (as with LangGraph's
        saver), and the thread stays as it was before the failed call, so a new saver resumes
        it. An operation that meets a pooler's lost prepared statement (see
        `from_conn_string`) runs again once with preparing turned off, one whose put was refused
        for a stale delta once with whole values (`again_at_once`).

        `grouped`: statements whose rows are not read go out grouped (see `Held`)."""
        attempts = reconnect_attempts(self.conn, isinstance(self.conn, Connection), self._reopen is not None)
        retried: set[str] = set()
        attempt = 0
        while True:
            attempt += 1
            used: Optional[Connection] = None
            try:
                with self._connection() as conn:
                    used = conn
                    if one_sync and conn.autocommit:
                        with conn.cursor(row_factory=tuple_row) as cursor, OneSync(cursor) as one:
                            return sql.drive(make(), one.execute)
                    if write and conn.autocommit:
                        with conn.cursor(row_factory=tuple_row) as cursor:
                            return in_one_transaction(conn, cursor, make(), Held() if grouped else None)
                    # A connection that is not in autocommit mode: a write runs in a savepoint of
                    # the caller's transaction (or in psycopg's own), in pipeline mode, so its
                    # statements go out together.
                    transaction = conn.transaction() if write or not conn.autocommit else nullcontext()
                    with conn.pipeline() if write else nullcontext() as pipeline, transaction:
                        with conn.cursor(row_factory=tuple_row) as cursor:
                            held = Held() if grouped else None
                            result = sql.drive(make(), lambda q: execute(cursor, q, pipeline, held))
                            for query in held.take() if held is not None else ():
                                execute(cursor, query, pipeline)
                            return result
            except psycopg.DatabaseError as e:
                if again_at_once(e, used, self.deltas, retried):
                    attempt -= 1
                    continue
                if not isinstance(e, psycopg.OperationalError) or attempt >= attempts or not connection_lost(used):
                    raise

    def setup(self) -> None:
        """Creates the tables, or upgrades them to this version's schema; a no-op when they are
        current; two processes may run it at once (an advisory lock serializes them). Refuses
        (SchemaVersionError) a database migrated by a newer ferrograph."""
        self._run(lambda: sql.setup(self.dialect, self._script_location), write=True)

    def get_tuple(self, config: dict) -> Optional[CheckpointTuple]:
        return self._run(lambda: sql.get_tuple(self.dialect, config, self.encryption), write=False)

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

        def run_page(query: sql.Query) -> Any:
            # A connection is held per page, not while the caller consumes the results.
            return self._run(lambda: _single(query), write=False)

        yield from sql.drive_iter(op, run_page)

    def _learning(self, make: Callable[[Optional[sql.DeltaCache]], sql.Op], **options: Any) -> Any:
        """Runs a write operation that learns values for the delta cache (`make(cache)` builds
        it), which learns them only once the write is stored (see `sql.Learning`)."""
        op = sql.Learning(self.deltas, make)
        result = self._run(op, write=True, **options)
        op.commit()
        return result

    def put(self, config: dict, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: dict) -> dict:
        return self._learning(
            lambda deltas: sql.put(self.dialect, config, checkpoint, metadata, new_versions, deltas, self.limits, self.encryption),
            one_sync=True,
        )

    def put_writes(self, config: dict, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        self._run(
            lambda: sql.put_writes(self.dialect, config, writes, task_id, task_path, self.limits, self.encryption),
            write=True,
            one_sync=True,
        )

    def run_batch(self, calls: Sequence[tuple[str, tuple]]) -> builtins.list[Any]:
        """Runs `put`/`put_writes` calls in one transaction: all of them are stored, or none."""
        return self._learning(lambda deltas: sql.batch(self.dialect, calls, deltas, self.limits, self.encryption), grouped=True)

    def delete_thread(self, thread_id: str) -> None:
        self._run(lambda: sql.delete_thread(self.dialect, thread_id, self.deltas), write=True)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._run(lambda: sql.delete_for_runs(self.dialect, run_ids, self.deltas), write=True)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._run(lambda: sql.copy_thread(self.dialect, source_thread_id, target_thread_id), write=True)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._run(lambda: sql.prune(self.dialect, thread_ids, strategy, self.deltas), write=True)

    def apply_retention(self, policy: Optional[Retention] = None, *, dry_run: bool = False) -> RetentionResult:
        """As `SqliteSaver.apply_retention`."""
        work = sql.retention(self.dialect, policy_of(self, policy), dry_run, self.deltas, self.encryption)
        return sql.drive_transactions(work, lambda make, write: self._run(make, write=write))

    def rekey(self, *, batch_size: int = sql.REKEY_BATCH) -> sql.RekeyResult:
        """As `SqliteSaver.rekey`."""
        work = sql.rekey(self.dialect, _encryption_of(self), batch_size)
        result = sql.drive_transactions(work, lambda make, write: self._run(make, write=write))
        self.deltas.forget_threads()
        return result

    def storage_stats(self, thread_id: Optional[str] = None, *, largest: int = 10) -> StorageStats:
        """As `SqliteSaver.storage_stats`."""
        return self._run(lambda: sql.storage_stats(self.dialect, thread_id, largest), write=False)

    def database_bytes(self) -> int:
        """The bytes the saver's tables take, with their indexes and TOAST."""
        return int(self._run(lambda: sql.database_bytes(self.dialect), write=False))

    def vacuum(self, *, full: bool = False) -> tuple[int, int]:
        """VACUUM (ANALYZE) of the saver's tables: the space of deleted rows becomes reusable
        without locking anyone out; `full` rewrites the tables to give it back to the system,
        locking them meanwhile. Returns the tables' bytes before and after."""
        with self._connection() as conn:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                raise CheckpointStorageError("cannot VACUUM inside a transaction: commit it first")
            autocommit = conn.autocommit
            conn.autocommit = True
            try:
                with conn.cursor(row_factory=tuple_row) as cursor:
                    return sql.drive(sql.vacuum(self.dialect, full), lambda q: execute(cursor, q))
            finally:
                conn.autocommit = autocommit

    def thread_summaries(
        self, thread_id: Optional[str] = None, filter: Optional[Mapping[str, Any]] = None
    ) -> builtins.list[sql.ThreadRow]:
        """Every thread (or just `thread_id`; with `filter`, those with a checkpoint whose
        metadata matches it): checkpoint count, namespaces and latest checkpoint, most recently
        active first, from aggregate queries that read no channel values (`sql.thread_summaries`)."""
        return self._run(lambda: sql.thread_summaries(self.dialect, thread_id, filter, self.encryption), write=False)
