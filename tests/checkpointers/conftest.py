from __future__ import annotations

import pytest

from sql_savers import SQL_SAVERS, SaverDriver, open_saver, postgres_url_for


@pytest.fixture(params=SQL_SAVERS)
async def sql_saver(request, tmp_path):
    """Each SQL saver on a fresh database, wrapped in a `SaverDriver`."""
    kind = request.param
    url = postgres_url_for(request, kind)
    async with open_saver(kind, sqlite_path=str(tmp_path / "checkpoints.db"), postgres_url=url) as saver:
        yield SaverDriver(saver, is_async="async" in kind)


@pytest.fixture(params=["memory"] + SQL_SAVERS)
async def every_saver(request, tmp_path):
    """The memory saver and each SQL saver on a fresh database, wrapped in a `SaverDriver`."""
    kind = request.param
    if kind == "memory":
        from ferrograph.checkpointers import MemorySaver

        yield SaverDriver(MemorySaver(), is_async=False)
        return
    url = postgres_url_for(request, kind)
    async with open_saver(kind, sqlite_path=str(tmp_path / "checkpoints.db"), postgres_url=url) as saver:
        yield SaverDriver(saver, is_async="async" in kind)
