"""Open a checkpoint saver of a given kind, set up and ready, and close it afterwards.

These are the functions behind the `saver` and `async_saver` fixtures; use them directly when a
test needs a saver the fixtures do not give (a second one, a pooled one, one on a given file):

```python
with open_saver("sqlite", tmp_path / "checkpoints.db") as saver: ...
async with open_async_saver("postgres", ferrograph_postgres_url, pool=True) as saver: ...
```
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, AsyncIterator, Iterator, Optional, Union

if TYPE_CHECKING:
    from ferrograph.checkpointers import BaseCheckpointSaver

__all__ = ["SAVER_KINDS", "open_async_saver", "open_saver"]

#: The kinds of saver the helpers open and the fixtures run on, in this order.
SAVER_KINDS: tuple[str, ...] = ("memory", "sqlite", "postgres")

ConnString = Union[str, "os.PathLike[str]"]


def _check(kind: str, conn_string: Optional[ConnString], pool: bool) -> str:
    """The conn string as a str ("" for memory), or a ValueError saying what is wrong."""
    if kind not in SAVER_KINDS:
        raise ValueError(f"unknown saver kind {kind!r}; expected one of {', '.join(SAVER_KINDS)}")
    if kind == "memory":
        if conn_string is not None or pool:
            raise ValueError("a memory saver takes no conn_string and no pool")
        return ""
    if conn_string is None:
        what = "a file path (or ':memory:')" if kind == "sqlite" else "a postgresql:// URL or DSN"
        raise ValueError(f"a {kind} saver needs conn_string: {what}")
    if pool and kind != "postgres":
        raise ValueError("pool=True is for postgres savers only")
    return os.fspath(conn_string)


@contextlib.contextmanager
def open_saver(
    kind: str, conn_string: Optional[ConnString] = None, *, pool: bool = False, setup: bool = True
) -> Iterator["BaseCheckpointSaver"]:
    """A sync saver of `kind` (`"memory"`, `"sqlite"` or `"postgres"`), closed when the block ends.

    `conn_string` is the SQLite file path or the Postgres URL (none for memory). With
    `pool=True` a Postgres saver runs on a `psycopg_pool.ConnectionPool` instead of one
    connection. With `setup=True` (the default) the SQL savers' tables are created first.
    """
    url = _check(kind, conn_string, pool)
    if kind == "memory":
        from ferrograph.checkpointers import MemorySaver

        yield MemorySaver()
        return
    if kind == "sqlite":
        from ferrograph.checkpointers import SqliteSaver

        with SqliteSaver.from_conn_string(url) as sqlite_saver:
            if setup:
                sqlite_saver.setup()
            yield sqlite_saver
        return
    from ferrograph.checkpointers import PostgresSaver

    if not pool:
        with PostgresSaver.from_conn_string(url) as postgres_saver:
            if setup:
                postgres_saver.setup()
            yield postgres_saver
        return
    from psycopg_pool import ConnectionPool

    with ConnectionPool(url, min_size=1, max_size=4, kwargs={"autocommit": True}) as conn_pool:
        saver = PostgresSaver(conn_pool)
        if setup:
            saver.setup()
        yield saver


@contextlib.asynccontextmanager
async def open_async_saver(
    kind: str, conn_string: Optional[ConnString] = None, *, pool: bool = False, setup: bool = True
) -> AsyncIterator["BaseCheckpointSaver"]:
    """The async twin of `open_saver`: a `MemorySaver` (whose async methods are native), an
    `AsyncSqliteSaver` or an `AsyncPostgresSaver` (on an `AsyncConnectionPool` with `pool=True`),
    bound to the running event loop and closed when the block ends."""
    url = _check(kind, conn_string, pool)
    if kind == "memory":
        from ferrograph.checkpointers import MemorySaver

        yield MemorySaver()
        return
    if kind == "sqlite":
        from ferrograph.checkpointers import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(url) as sqlite_saver:
            if setup:
                await sqlite_saver.setup()
            yield sqlite_saver
        return
    from ferrograph.checkpointers import AsyncPostgresSaver

    if not pool:
        async with AsyncPostgresSaver.from_conn_string(url) as postgres_saver:
            if setup:
                await postgres_saver.setup()
            yield postgres_saver
        return
    from psycopg_pool import AsyncConnectionPool

    async with AsyncConnectionPool(
        url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
    ) as conn_pool:
        saver = AsyncPostgresSaver(conn_pool)
        if setup:
            await saver.setup()
        yield saver
