"""The async twins of the SQL savers: `AsyncSqliteSaver` (aiosqlite) and `AsyncPostgresSaver`
(psycopg `AsyncConnection` or `psycopg_pool.AsyncConnectionPool`). They run the same operations
from the `sql` package as their sync twins, awaiting each step.

Their sync methods work from other threads by handing the call to the saver's event loop (as
LangGraph's async savers do); called on that loop itself they would deadlock, so they refuse.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime
import sqlite3
from contextlib import AsyncExitStack, asynccontextmanager, nullcontext
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping, Optional, Sequence, Union

from ferrograph.checkpointers import sql
from ferrograph.checkpointers.base import BaseCheckpointSaver, Checkpoint, CheckpointMetadata, CheckpointTuple
from ferrograph.checkpointers.encryption import Encryption, encryption_of as _encryption_of
from ferrograph.checkpointers.retention import Retention, RetentionResult, Sweeping, policy_of
from ferrograph.checkpointers.sqlite import PRAGMA_RETRY_DELAYS, connection_pragmas, file_locked
from ferrograph.checkpointers.stats import StorageStats
from ferrograph.errors import CheckpointStorageError

if TYPE_CHECKING:
    import aiosqlite
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

__all__ = ["AsyncPostgresSaver", "AsyncSqliteSaver"]


class _AsyncSQLSaver(Sweeping, BaseCheckpointSaver):
    """The protocol methods of both async savers; subclasses provide `_run` (the operation
    `make()` builds, in a transaction when it writes; `make` may be called again to retry on a
    lost connection; `one_sync` as `PostgresSaver._run`) and `_run_page` (one query of a
    listing)."""

    takes_encoded_checkpoints = True

    dialect: sql.Dialect
    loop: Optional[asyncio.AbstractEventLoop]
    #: Extra `_run` arguments for a batch.
    _batch_options: dict = {}
    _script_location: Optional[str] = None
    deltas: sql.DeltaCache

    async def _run(self, make: Callable[[], sql.Op], *, write: bool, one_sync: bool = False) -> Any:
        raise NotImplementedError

    async def _run_page(self, query: sql.Query) -> Any:
        raise NotImplementedError

    async def _learning(self, make: Callable[[Optional[sql.DeltaCache]], sql.Op], **options: Any) -> Any:
        """As `PostgresSaver._learning`."""
        op = sql.Learning(self.deltas, make)
        result = await self._run(op, write=True, **options)
        op.commit()
        return result

    def _bind_loop(self) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        if self._sweeper is None and self._sweep_every is not None and asyncio.get_running_loop() is self.loop:
            self._start_async_sweeping()

    async def setup(self) -> None:
        """Creates the tables, or upgrades them to this version's schema; a no-op when they are
        current. Refuses (SchemaVersionError) a database migrated by a newer ferrograph."""
        self._bind_loop()
        await self._run(lambda: sql.setup(self.dialect, self._script_location), write=True)

    async def aget_tuple(self, config: dict) -> Optional[CheckpointTuple]:
        self._bind_loop()
        return await self._run(lambda: sql.get_tuple(self.dialect, config, self.encryption), write=False)

    async def alist(
        self,
        config: Optional[dict],
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[dict] = None,
        limit: Optional[int] = None,
    ) -> AsyncIterator[CheckpointTuple]:
        self._bind_loop()
        op = sql.list_checkpoints(
            self.dialect, config, filter=filter, before=before, limit=limit, encryption=self.encryption
        )
        async for item in sql.adrive_iter(op, self._run_page):
            yield item

    async def aput(self, config: dict, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: dict) -> dict:
        self._bind_loop()
        return await self._learning(
            lambda deltas: sql.put(self.dialect, config, checkpoint, metadata, new_versions, deltas, self.limits, self.encryption),
            one_sync=True,
        )

    async def aput_writes(
        self, config: dict, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self._bind_loop()
        await self._run(
            lambda: sql.put_writes(self.dialect, config, writes, task_id, task_path, self.limits, self.encryption),
            write=True,
            one_sync=True,
        )

    async def arun_batch(self, calls: Sequence[tuple[str, tuple]]) -> builtins.list[Any]:
        """Runs `put`/`put_writes` calls in one transaction: all of them are stored, or none."""
        self._bind_loop()
        return await self._learning(
            lambda deltas: sql.batch(self.dialect, calls, deltas, self.limits, self.encryption), **self._batch_options
        )

    async def adelete_thread(self, thread_id: str) -> None:
        self._bind_loop()
        await self._run(lambda: sql.delete_thread(self.dialect, thread_id, self.deltas), write=True)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._bind_loop()
        await self._run(lambda: sql.delete_for_runs(self.dialect, run_ids, self.deltas), write=True)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._bind_loop()
        await self._run(lambda: sql.copy_thread(self.dialect, source_thread_id, target_thread_id), write=True)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._bind_loop()
        await self._run(lambda: sql.prune(self.dialect, thread_ids, strategy, self.deltas), write=True)

    def _sync(self, coro: Coroutine[Any, Any, Any]) -> Any:
        try:
            running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self.loop is None or running is self.loop or self.loop.is_closed():
            coro.close()
            raise RuntimeError(
                f"{type(self).__name__}'s sync methods must be called from a thread other than its event loop's, "
                "after the saver has been used on that loop; in async code use the a-prefixed methods "
                "(graph.ainvoke, graph.astream)"
            )
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def get_tuple(self, config: dict) -> Optional[CheckpointTuple]:
        return self._sync(self.aget_tuple(config))

    def list(
        self,
        config: Optional[dict],
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[dict] = None,
        limit: Optional[int] = None,
    ) -> Iterator[CheckpointTuple]:
        async def collect() -> list[CheckpointTuple]:
            return [item async for item in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._sync(collect())

    def put(self, config: dict, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: dict) -> dict:
        return self._sync(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(self, config: dict, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
        self._sync(self.aput_writes(config, writes, task_id, task_path))

    def run_batch(self, calls: Sequence[tuple[str, tuple]]) -> builtins.list[Any]:
        return self._sync(self.arun_batch(calls))

    def delete_thread(self, thread_id: str) -> None:
        self._sync(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._sync(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._sync(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._sync(self.aprune(thread_ids, strategy=strategy))

    async def aapply_retention(self, policy: Optional[Retention] = None, *, dry_run: bool = False) -> RetentionResult:
        """Deletes what `policy` (the saver's `retention` by default) does not keep, a batch of
        threads per transaction, and returns what was deleted; with `dry_run`, deletes nothing
        and returns what would be (see ferrograph.checkpointers.retention)."""
        self._bind_loop()
        work = sql.retention(self.dialect, policy_of(self, policy), dry_run, self.deltas, self.encryption)
        return await sql.adrive_transactions(work, lambda make, write: self._run(make, write=write))

    def apply_retention(self, policy: Optional[Retention] = None, *, dry_run: bool = False) -> RetentionResult:
        return self._sync(self.aapply_retention(policy, dry_run=dry_run))

    async def arekey(self, *, batch_size: int = sql.REKEY_BATCH) -> sql.RekeyResult:
        """As `SqliteSaver.rekey`."""
        self._bind_loop()
        work = sql.rekey(self.dialect, _encryption_of(self), batch_size)
        result = await sql.adrive_transactions(work, lambda make, write: self._run(make, write=write))
        self.deltas.forget_threads()
        return result

    def rekey(self, *, batch_size: int = sql.REKEY_BATCH) -> sql.RekeyResult:
        return self._sync(self.arekey(batch_size=batch_size))

    async def astorage_stats(self, thread_id: Optional[str] = None, *, largest: int = 10) -> StorageStats:
        """As `SqliteSaver.storage_stats`."""
        self._bind_loop()
        return await self._run(lambda: sql.storage_stats(self.dialect, thread_id, largest), write=False)

    def storage_stats(self, thread_id: Optional[str] = None, *, largest: int = 10) -> StorageStats:
        return self._sync(self.astorage_stats(thread_id, largest=largest))

    async def adatabase_bytes(self) -> int:
        """The bytes the database (SQLite) or the saver's tables (Postgres) take."""
        self._bind_loop()
        return int(await self._run(lambda: sql.database_bytes(self.dialect), write=False))

    def database_bytes(self) -> int:
        return self._sync(self.adatabase_bytes())

    async def athread_summaries(
        self, thread_id: Optional[str] = None, filter: Optional[Mapping[str, Any]] = None
    ) -> builtins.list[sql.ThreadRow]:
        """Every thread (or just `thread_id`; with `filter`, those with a checkpoint whose
        metadata matches it): checkpoint count, namespaces and latest checkpoint, most recently
        active first, from aggregate queries that read no channel values (`sql.thread_summaries`)."""
        self._bind_loop()
        return await self._run(lambda: sql.thread_summaries(self.dialect, thread_id, filter, self.encryption), write=False)

    def thread_summaries(
        self, thread_id: Optional[str] = None, filter: Optional[Mapping[str, Any]] = None
    ) -> builtins.list[sql.ThreadRow]:
        return self._sync(self.athread_summaries(thread_id, filter))


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _run_pragma(conn: "aiosqlite.Connection", pragma: str) -> None:
    """The async twin of `sqlite.run_pragma`: a locked file is tried again
    (`sqlite.PRAGMA_RETRY_DELAYS`)."""
    for delay in (*PRAGMA_RETRY_DELAYS, None):
        try:
            await conn.execute(pragma)
            return
        except sqlite3.OperationalError as e:
            if delay is None or not file_locked(e):
                raise
            await asyncio.sleep(delay)


async def _run_pragmas(conn: "aiosqlite.Connection", path: str) -> None:
    """The async twin of `sqlite.run_pragmas`."""
    for pragma in connection_pragmas(path):
        await _run_pragma(conn, pragma)


class AsyncSqliteSaver(_AsyncSQLSaver):
    """A checkpoint saver on an `aiosqlite.Connection`. The tables are created (or upgraded) on
    the saver's first use, as LangGraph's AsyncSqliteSaver does; `await setup()` does it up
    front."""

    dialect = sql.SQLITE

    def __init__(
        self,
        conn: "aiosqlite.Connection",
        *,
        retention: Optional[Retention] = None,
        sweep_every: Optional[Union[str, datetime.timedelta]] = None,
        max_value_bytes: Optional[int] = None,
        warn_value_bytes: Optional[int] = None,
        encryption: Optional[Encryption] = None,
    ) -> None:
        self.conn = conn
        #: Opens a connection in place of a lost one (a saver from `from_conn_string`).
        self._reopen: Optional[Callable[[], Awaitable["AsyncConnection"]]] = None
        self.lock = asyncio.Lock()
        self.loop = _running_loop()
        self._script_location = None
        #: Whether `setup()` has run on this saver (every operation runs it first otherwise).
        self._set_up = False
        self.deltas = sql.DeltaCache()
        self._init_health(retention, sweep_every, max_value_bytes, warn_value_bytes, encryption)
        if self.loop is not None:
            self._start_async_sweeping()

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        retention: Optional[Retention] = None,
        sweep_every: Optional[Union[str, datetime.timedelta]] = None,
        max_value_bytes: Optional[int] = None,
        warn_value_bytes: Optional[int] = None,
        encryption: Optional[Encryption] = None,
    ) -> AsyncIterator["AsyncSqliteSaver"]:
        """A saver on its own connection to `conn_string` (a file path, `:memory:` or
        `sqlite:///path`), closed when the block ends; WAL with `synchronous=NORMAL`, the log
        moved into the file by SQLite's automatic checkpoint, as `SqliteSaver.from_conn_string`."""
        import aiosqlite

        path = sql.sqlite_path(conn_string)
        async with aiosqlite.connect(path, isolation_level=None, timeout=sql.SQLITE_BUSY_TIMEOUT) as conn:
            await _run_pragmas(conn, path)
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
                await saver.astop_sweeping()

    async def _execute(self, query: sql.Query) -> Any:
        if query.many:
            await self.conn.executemany(query.sql, query.params)  # type: ignore[arg-type]
            return None
        # One trip to aiosqlite's thread (execute, fetchall, close would take three); a
        # statement without a result gives [].
        return await self.conn.execute_fetchall(query.sql, query.params)  # type: ignore[arg-type]

    async def _select(self, query: sql.Query) -> Any:
        """The rows of a read operation's statement (always a SELECT), in one trip to
        aiosqlite's thread where `_execute` takes three (execute, fetchall, close)."""
        return await self.conn.execute_fetchall(query.sql, query.params)

    async def _ensure_tables(self) -> None:
        if not self._set_up:
            await self.setup()

    async def _run_page(self, query: sql.Query) -> Any:
        await self._ensure_tables()
        async with self.lock:
            return await self._select(query)

    async def _run(self, make: Callable[[], sql.Op], *, write: bool, one_sync: bool = False) -> Any:
        await self._ensure_tables()
        return await self._transaction(make, write=write)

    async def _transaction(self, make: Callable[[], sql.Op], *, write: bool) -> Any:
        """As `SqliteSaver._transaction`: one statement (`Query.alone`) runs without BEGIN and
        COMMIT on an autocommit connection."""
        op = make()
        async with self.lock:
            if not write:
                return await sql.adrive(op, self._select)
            try:
                first = next(op)
            except StopIteration as stop:
                return stop.value
            nested = self.conn.in_transaction
            if isinstance(first, sql.Query) and first.alone and not nested and self.conn.isolation_level is None:
                try:
                    result = await sql.adrive(op, self._execute, first)
                except sqlite3.IntegrityError as e:
                    deleted = sql.thread_deleted(e)
                    if deleted is not None:
                        raise deleted from e
                    raise
                return result
            await self.conn.execute("SAVEPOINT ferrograph" if nested else "BEGIN IMMEDIATE")
            try:
                result = await sql.adrive(op, self._execute, first)
            except BaseException as e:
                if nested:
                    await self.conn.execute("ROLLBACK TO ferrograph")
                    await self.conn.execute("RELEASE ferrograph")
                else:
                    await self.conn.rollback()
                deleted = sql.thread_deleted(e) if isinstance(e, sqlite3.IntegrityError) else None
                if deleted is not None:
                    raise deleted from e
                raise
            if nested:
                await self.conn.execute("RELEASE ferrograph")
            else:
                await self.conn.commit()
            return result

    async def avacuum(self, *, full: bool = False) -> tuple[int, int]:
        """As `SqliteSaver.vacuum`: the bytes before and after."""
        self._bind_loop()
        await self._ensure_tables()
        async with self.lock:
            if self.conn.in_transaction:
                raise CheckpointStorageError("cannot VACUUM inside a transaction: commit it first")
            return await sql.adrive(sql.vacuum(self.dialect, full), self._select)

    def vacuum(self, *, full: bool = False) -> tuple[int, int]:
        return self._sync(self.avacuum(full=full))

    async def setup(self) -> None:
        """As `_AsyncSQLSaver.setup`; run by the saver's first operation when not called before."""
        self._bind_loop()
        async with self.lock:
            if not self.conn.in_transaction:
                async with self.conn.execute("PRAGMA journal_mode") as cursor:
                    mode = (await cursor.fetchone())[0]  # type: ignore[index]
                if mode not in ("wal", "memory"):
                    await _run_pragma(self.conn, "PRAGMA journal_mode=WAL")
        await self._transaction(lambda: sql.setup(self.dialect, self._script_location), write=True)
        self._set_up = True


async def _aexecute(cursor: Any, query: sql.Query, pipeline: Any = None, held: Any = None) -> Any:
    """The async twin of `postgres.execute`."""
    if held is not None:
        if held.hold(query):
            return None
        for earlier in held.take():
            await _aexecute(cursor, earlier, pipeline)
    if query.many:
        await cursor.executemany(query.sql, query.params)
        return None
    await cursor.execute(query.sql, query.params)
    if not query.rows:
        return None
    if pipeline is not None:
        await pipeline.sync()
    from ferrograph.checkpointers.postgres import has_rows

    return await cursor.fetchall() if has_rows(cursor) else None


class _AsyncOneSync:
    """The async twin of `postgres.OneSync`."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.pipeline = AsyncExitStack()
        self.pipelined = False
        self.waiting: Optional[sql.Query] = None

    async def __aenter__(self) -> "_AsyncOneSync":
        return self

    async def __aexit__(self, *exc: Any) -> Optional[bool]:
        waiting, self.waiting = self.waiting, None
        if waiting is not None and exc[0] is None:
            await self.cursor.execute(waiting.sql, waiting.params)
        return await self.pipeline.__aexit__(*exc)

    async def execute(self, query: sql.Query) -> Any:
        if query.many:
            raise AssertionError("an operation run with one sync per read has no executemany step")
        if not query.rows and not self.pipelined and self.waiting is None:
            self.waiting = query
            return None
        if self.waiting is not None:
            await self.pipeline.enter_async_context(self.cursor.connection.pipeline())
            self.pipelined = True
            await self.cursor.execute(self.waiting.sql, self.waiting.params)
            self.waiting = None
        await self.cursor.execute(query.sql, query.params)
        if not query.rows:
            return None
        await self.pipeline.aclose()
        self.pipelined = False
        from ferrograph.checkpointers.postgres import has_rows

        return await self.cursor.fetchall() if has_rows(self.cursor) else None


async def _ain_one_transaction(conn: Any, cursor: Any, op: sql.Op, held: Any) -> Any:
    """The async twin of `postgres.in_one_transaction`."""
    import psycopg

    from ferrograph.checkpointers.postgres import left_open

    try:
        async with conn.pipeline() as pipeline:
            await cursor.execute("BEGIN")
            result = await sql.adrive(op, lambda q: _aexecute(cursor, q, pipeline, held))
            for query in held.take() if held is not None else ():
                await _aexecute(cursor, query, pipeline)
            await cursor.execute("COMMIT")
        return result
    except BaseException:
        if left_open(conn):
            try:
                await conn.execute("ROLLBACK")
            except psycopg.Error:
                pass
        raise


class AsyncPostgresSaver(_AsyncSQLSaver):
    """A checkpoint saver on a psycopg `AsyncConnection` or `AsyncConnectionPool`. Call
    `await setup()` once to create or upgrade the tables."""

    dialect = sql.POSTGRES
    _batch_options = {"grouped": True}

    def __init__(
        self,
        conn: Union["AsyncConnection", "AsyncConnectionPool"],
        *,
        retention: Optional[Retention] = None,
        sweep_every: Optional[Union[str, datetime.timedelta]] = None,
        max_value_bytes: Optional[int] = None,
        warn_value_bytes: Optional[int] = None,
        encryption: Optional[Encryption] = None,
    ) -> None:
        self.conn = conn
        #: Opens a connection in place of a lost one (a saver from `from_conn_string`).
        self._reopen: Optional[Callable[[], Awaitable["AsyncConnection"]]] = None
        self.lock = asyncio.Lock()
        self.loop = _running_loop()
        self._script_location = None
        #: Whether `setup()` has run on this saver (every operation runs it first otherwise).
        self._set_up = False
        self.deltas = sql.DeltaCache()
        self._init_health(retention, sweep_every, max_value_bytes, warn_value_bytes, encryption)
        if self.loop is not None:
            self._start_async_sweeping()

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        prepare_threshold: Optional[int] = 5,
        retention: Optional[Retention] = None,
        sweep_every: Optional[Union[str, datetime.timedelta]] = None,
        max_value_bytes: Optional[int] = None,
        warn_value_bytes: Optional[int] = None,
        encryption: Optional[Encryption] = None,
    ) -> AsyncIterator["AsyncPostgresSaver"]:
        """As `PostgresSaver.from_conn_string`: a lost connection is replaced and the operation
        runs again once; `prepare_threshold=None` for PgBouncer in transaction pooling mode."""
        from psycopg import AsyncConnection

        async def connect() -> AsyncConnection:
            return await AsyncConnection.connect(conn_string, autocommit=True, prepare_threshold=prepare_threshold)

        saver = cls(
            await connect(),
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
            await saver.astop_sweeping()
            assert isinstance(saver.conn, AsyncConnection)
            await saver.conn.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator["AsyncConnection"]:
        from psycopg import AsyncConnection

        from ferrograph.checkpointers.postgres import connection_lost

        if isinstance(self.conn, AsyncConnection):
            async with self.lock:
                if self._reopen is not None and connection_lost(self.conn):
                    await self.conn.close()
                    self.conn = await self._reopen()
                yield self.conn
        else:
            async with self.conn.connection() as conn:
                yield conn

    async def _run(
        self, make: Callable[[], sql.Op], *, write: bool, grouped: bool = False, one_sync: bool = False
    ) -> Any:
        """As `PostgresSaver._run`: on a pool, an operation whose connection turns out to be
        dead runs again on another; a saver from `from_conn_string` reconnects and runs it
        again once; on a single connection given to it the error reaches the caller."""
        import psycopg
        from psycopg import AsyncConnection
        from psycopg.rows import tuple_row

        from ferrograph.checkpointers.postgres import Held, again_at_once, connection_lost, reconnect_attempts

        attempts = reconnect_attempts(self.conn, isinstance(self.conn, AsyncConnection), self._reopen is not None)
        retried: set[str] = set()
        attempt = 0
        while True:
            attempt += 1
            used: Optional[AsyncConnection] = None
            try:
                async with self._connection() as conn:
                    used = conn
                    if one_sync and conn.autocommit:
                        async with conn.cursor(row_factory=tuple_row) as cursor, _AsyncOneSync(cursor) as one:
                            return await sql.adrive(make(), one.execute)
                    if write and conn.autocommit:
                        async with conn.cursor(row_factory=tuple_row) as cursor:
                            return await _ain_one_transaction(conn, cursor, make(), Held() if grouped else None)
                    # As PostgresSaver's: in a savepoint of the caller's transaction, in pipeline mode.
                    transaction = conn.transaction() if write or not conn.autocommit else nullcontext()
                    async with conn.pipeline() if write else nullcontext() as pipeline, transaction:
                        async with conn.cursor(row_factory=tuple_row) as cursor:
                            held = Held() if grouped else None
                            result = await sql.adrive(make(), lambda q: _aexecute(cursor, q, pipeline, held))
                            for query in held.take() if held is not None else ():
                                await _aexecute(cursor, query, pipeline)
                            return result
            except psycopg.DatabaseError as e:
                if again_at_once(e, used, self.deltas, retried):
                    attempt -= 1
                    continue
                if not isinstance(e, psycopg.OperationalError) or attempt >= attempts or not connection_lost(used):
                    raise

    async def _run_page(self, query: sql.Query) -> Any:
        return await self._run(lambda: _single(query), write=False)

    async def avacuum(self, *, full: bool = False) -> tuple[int, int]:
        """As `PostgresSaver.vacuum`: the bytes before and after."""
        import psycopg
        from psycopg.rows import tuple_row

        self._bind_loop()
        async with self._connection() as conn:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                raise CheckpointStorageError("cannot VACUUM inside a transaction: commit it first")
            autocommit = conn.autocommit
            await conn.set_autocommit(True)
            try:
                async with conn.cursor(row_factory=tuple_row) as cursor:
                    return await sql.adrive(sql.vacuum(self.dialect, full), lambda q: _aexecute(cursor, q))
            finally:
                await conn.set_autocommit(autocommit)

    def vacuum(self, *, full: bool = False) -> tuple[int, int]:
        return self._sync(self.avacuum(full=full))


def _single(query: sql.Query) -> sql.Op:
    return (yield query)
