"""When the SQL savers' tables come to be: the SQLite savers create them on first use, as
LangGraph's do (real code never calls `setup()` on them); the Postgres savers need `setup()` (or
`ferrograph db upgrade`), as LangGraph's do, and say so when it was not run."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from ferrograph.checkpointers import AsyncPostgresSaver, AsyncSqliteSaver, PostgresSaver, SqliteSaver
from ferrograph.checkpointers.base import empty_checkpoint
from ferrograph.errors import SchemaVersionError


def cfg(thread_id="t", checkpoint_id=None):
    configurable = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def a_checkpoint():
    c = empty_checkpoint()
    c["channel_values"] = {"x": [1, 2]}
    c["channel_versions"] = {"x": 1}
    return c


METADATA = {"source": "input", "step": -1, "parents": {}}
FIRST_CALLS = ["get_tuple", "list", "put", "put_writes", "delete_thread", "thread_summaries"]


def first_call(saver, name):
    """Calls `name` as a fresh saver's first operation; returns what put stored, if anything."""
    if name == "get_tuple":
        assert saver.get_tuple(cfg()) is None
    elif name == "list":
        assert list(saver.list(cfg())) == []
    elif name == "put":
        return saver.put(cfg(), a_checkpoint(), METADATA, {"x": 1})
    elif name == "put_writes":
        saver.put_writes(cfg(checkpoint_id="1"), [("x", 1)], "task")
    elif name == "delete_thread":
        saver.delete_thread("t")
    else:
        assert saver.thread_summaries() == []
    return None


@pytest.mark.parametrize("name", FIRST_CALLS)
def test_sqlite_saver_creates_its_tables_on_first_use(tmp_path, name):
    conn = sqlite3.connect(str(tmp_path / "first.db"), check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        stored = first_call(saver, name)
        stored = stored or saver.put(cfg(), a_checkpoint(), METADATA, {"x": 1})
        got = saver.get_tuple(cfg())
        assert got.config == stored and got.checkpoint["channel_values"] == {"x": [1, 2]}
    finally:
        conn.close()


def test_sqlite_from_conn_string_needs_no_setup(tmp_path):
    with SqliteSaver.from_conn_string(str(tmp_path / "first.db")) as saver:
        stored = saver.put(cfg(), a_checkpoint(), METADATA, {"x": 1})
    with SqliteSaver.from_conn_string(str(tmp_path / "first.db")) as saver:
        assert [t.config for t in saver.list(cfg())] == [stored]


@pytest.mark.parametrize("name", ["aget_tuple", "alist", "aput", "aput_writes"])
async def test_async_sqlite_saver_creates_its_tables_on_first_use(tmp_path, name):
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "first.db")) as saver:
        if name == "aget_tuple":
            assert await saver.aget_tuple(cfg()) is None
        elif name == "alist":
            assert [t async for t in saver.alist(cfg())] == []
        elif name == "aput_writes":
            await saver.aput_writes(cfg(checkpoint_id="1"), [("x", 1)], "task")
        stored = await saver.aput(cfg(), a_checkpoint(), METADATA, {"x": 1})
        got = await saver.aget_tuple(cfg())
        assert got.config == stored and got.checkpoint["channel_values"] == {"x": [1, 2]}


def assert_says_to_set_up(raised):
    error = raised.value
    message = str(error)
    assert "setup()" in message and "ferrograph db upgrade" in message, message
    assert "ferrograph_" in message  # the missing table, as the database named it
    assert not isinstance(error, psycopg.Error)
    assert isinstance(error.__cause__, psycopg.errors.UndefinedTable)


@pytest.mark.parametrize("name", ["get_tuple", "list", "put", "put_writes"])
def test_postgres_saver_without_setup_says_to_run_it(ferrograph_postgres_url, name):
    with PostgresSaver.from_conn_string(ferrograph_postgres_url) as saver:
        with pytest.raises(SchemaVersionError) as raised:
            first_call(saver, name)
        assert_says_to_set_up(raised)
        # Nothing was created behind the caller's back, and the saver works once set up.
        with pytest.raises(SchemaVersionError):
            saver.get_tuple(cfg())
        saver.setup()
        stored = saver.put(cfg(), a_checkpoint(), METADATA, {"x": 1})
        assert saver.get_tuple(cfg()).config == stored


async def test_async_postgres_saver_without_setup_says_to_run_it(ferrograph_postgres_url):
    async with AsyncPostgresSaver.from_conn_string(ferrograph_postgres_url) as saver:
        with pytest.raises(SchemaVersionError) as raised:
            await saver.aput(cfg(), a_checkpoint(), METADATA, {"x": 1})
        assert_says_to_set_up(raised)
        with pytest.raises(SchemaVersionError) as raised:
            [t async for t in saver.alist(cfg())]
        assert_says_to_set_up(raised)
        await saver.setup()
        assert await saver.aget_tuple(cfg()) is None
