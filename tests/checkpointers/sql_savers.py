"""Builds each SQL saver variant on a fresh database, set up and ready, for the tests of
tests/checkpointers/: SQLite sync and async on a temporary file, Postgres sync, async, and each
with a connection pool, on the database the `ferrograph_postgres_url` fixture gives the test.

`SaverDriver` gives the tests one awaitable surface over sync and async savers: the sync saver's
own sync methods, the async saver's a-prefixed ones.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Optional

SQL_SAVERS = ["sqlite", "sqlite-async", "postgres", "postgres-pool", "postgres-async", "postgres-async-pool"]


@contextlib.asynccontextmanager
async def open_saver(kind: str, *, sqlite_path: str, postgres_url: Optional[str]) -> AsyncIterator[Any]:
    if kind == "sqlite":
        from ferrograph.checkpointers import SqliteSaver

        with SqliteSaver.from_conn_string(sqlite_path) as saver:
            saver.setup()
            yield saver
    elif kind == "sqlite-async":
        from ferrograph.checkpointers import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(sqlite_path) as saver:
            await saver.setup()
            yield saver
    elif kind == "postgres":
        from ferrograph.checkpointers import PostgresSaver

        with PostgresSaver.from_conn_string(postgres_url) as saver:
            saver.setup()
            yield saver
    elif kind == "postgres-pool":
        from psycopg_pool import ConnectionPool

        from ferrograph.checkpointers import PostgresSaver

        with ConnectionPool(postgres_url, min_size=1, max_size=4, kwargs={"autocommit": True}) as pool:
            saver = PostgresSaver(pool)
            saver.setup()
            yield saver
    elif kind == "postgres-async":
        from ferrograph.checkpointers import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(postgres_url) as saver:
            await saver.setup()
            yield saver
    elif kind == "postgres-async-pool":
        from psycopg_pool import AsyncConnectionPool

        from ferrograph.checkpointers import AsyncPostgresSaver

        async with AsyncConnectionPool(
            postgres_url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
        ) as pool:
            saver = AsyncPostgresSaver(pool)
            await saver.setup()
            yield saver
    else:
        raise ValueError(kind)


class SaverDriver:
    """Awaitable protocol calls on a sync or async saver."""

    def __init__(self, saver: Any, is_async: bool) -> None:
        self.saver = saver
        self.is_async = is_async

    def __getattr__(self, name: str) -> Any:
        if name == "list":
            return self._list
        if self.is_async:
            return getattr(self.saver, "a" + name)

        method = getattr(self.saver, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call

    async def _list(self, config: Any, **kwargs: Any) -> list:
        if self.is_async:
            return [t async for t in self.saver.alist(config, **kwargs)]
        return list(self.saver.list(config, **kwargs))
