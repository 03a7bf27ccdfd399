"""Helpers of the migration tests: a sync saver on a URL, the database's revision and shape,
and the worker the concurrent-setup test starts in other processes."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Iterator, Optional

from sqlalchemy import create_engine, inspect, pool

from ferrograph.migrations import sqlalchemy_url
from ferrograph.testing import open_async_saver, open_saver


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def kind_of(url: str) -> str:
    return "postgres" if is_postgres(url) else "sqlite"


@contextlib.contextmanager
def saver_for(url: str) -> Iterator[Any]:
    """A sync saver on `url`, not set up (the tests call setup() themselves)."""
    with open_saver(kind_of(url), url, setup=False) as saver:
        yield saver


@contextlib.asynccontextmanager
async def async_saver_for(url: str) -> AsyncIterator[Any]:
    """An async saver on `url`, not set up."""
    async with open_async_saver(kind_of(url), url, setup=False) as saver:
        yield saver


@contextlib.contextmanager
def engine_for(url: str) -> Iterator[Any]:
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def revision(url: str) -> Optional[str]:
    with engine_for(url) as engine, engine.connect() as conn:
        if not inspect(conn).has_table("ferrograph_alembic_version"):
            return None
        rows = conn.exec_driver_sql("SELECT version_num FROM ferrograph_alembic_version").fetchall()
        assert len(rows) <= 1, rows
        return rows[0][0] if rows else None


def shape(url: str) -> dict:
    """Tables, their columns (name, nullability) and index names."""
    with engine_for(url) as engine, engine.connect() as conn:
        insp = inspect(conn)
        return {
            table: (
                sorted((c["name"], c["nullable"]) for c in insp.get_columns(table)),
                sorted(i["name"] for i in insp.get_indexes(table)),
                sorted(insp.get_pk_constraint(table)["constrained_columns"]),
            )
            for table in sorted(insp.get_table_names())
            if table.startswith("ferrograph_")
        }


def execute(url: str, sql: str) -> None:
    with engine_for(url) as engine, engine.begin() as conn:
        conn.exec_driver_sql(sql)


def setup_worker(url: str, barrier: Any) -> None:
    """Runs in another process: wait for the others, then set the database up."""
    with saver_for(url) as saver:
        barrier.wait(timeout=60)
        saver.setup()
