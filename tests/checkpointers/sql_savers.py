"""Builds each SQL saver variant on a fresh database, set up and ready, for the tests of
tests/checkpointers/: SQLite sync and async on a temporary file, Postgres sync, async, and each
with a connection pool, on the database the `ferrograph_postgres_url` fixture gives the test.
The savers are opened by the public helpers of `ferrograph.testing` (the ones behind the plugin's
`saver` and `async_saver` fixtures), so there is one way to open a saver in tests.

`SaverDriver` gives the tests one awaitable surface over sync and async savers: the sync saver's
own sync methods, the async saver's a-prefixed ones.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Optional

from ferrograph.testing import open_async_saver
from ferrograph.testing import open_saver as open_sync_saver

SQL_SAVERS = ["sqlite", "sqlite-async", "postgres", "postgres-pool", "postgres-async", "postgres-async-pool"]


def postgres_url_for(request: Any, kind: str) -> Optional[str]:
    """The test's fresh database (the plugin's `ferrograph_postgres_url`) for a Postgres kind."""
    return request.getfixturevalue("ferrograph_postgres_url") if kind.startswith("postgres") else None


@contextlib.asynccontextmanager
async def open_saver(kind: str, *, sqlite_path: str, postgres_url: Optional[str]) -> AsyncIterator[Any]:
    """The SQL saver variant `kind` of SQL_SAVERS, through ferrograph.testing's helpers."""
    backend = kind.split("-")[0]
    conn_string = sqlite_path if backend == "sqlite" else postgres_url
    pool = kind.endswith("-pool")
    if "-async" in kind:
        async with open_async_saver(backend, conn_string, pool=pool) as saver:
            yield saver
    else:
        with open_sync_saver(backend, conn_string, pool=pool) as saver:
            yield saver


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
