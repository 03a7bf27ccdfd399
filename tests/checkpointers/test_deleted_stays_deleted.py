"""A thread deleted or pruned while a run is still writing to it does not come back
half-written: the run's late checkpoints and pending writes are refused (ThreadDeletedError, or
ConcurrentUpdateError for the engine's own checkpoints, whose parent must still be the latest)
and nothing of them is stored, on every saver; the run writes on a second connection."""

from __future__ import annotations

import contextlib
import sqlite3
import threading

import pytest

from ferrograph.checkpointers import MemorySaver, PostgresSaver, Retention, SqliteSaver
from ferrograph.checkpointers.base import empty_checkpoint
from ferrograph.errors import ConcurrentUpdateError, ThreadDeletedError
from ferrograph.graph import END, START, StateGraph

KINDS = ["memory", "sqlite", "postgres"]


@contextlib.contextmanager
def two_connections(kind, tmp_path, request):
    """Two savers on one database (one saver twice for memory), set up."""
    if kind == "memory":
        saver = MemorySaver()
        yield saver, saver
        return
    if kind == "sqlite":
        url, cls = str(tmp_path / "c.db"), SqliteSaver
    else:
        url, cls = request.getfixturevalue("ferrograph_postgres_url"), PostgresSaver
    with cls.from_conn_string(url) as first, cls.from_conn_string(url) as second:
        first.setup()
        yield first, second


def rows_of(kind, saver, thread_id):
    """Rows of each table for `thread_id`, read straight from the database."""
    if kind == "memory":
        return {"threads": len(saver.usage(thread_id))}
    tables = ["ferrograph_checkpoints", "ferrograph_checkpoint_blobs", "ferrograph_checkpoint_writes"]
    if kind == "sqlite":
        with saver.lock:
            return {t: saver.conn.execute(f"SELECT count(*) FROM {t} WHERE thread_id = ?", (thread_id,)).fetchone()[0] for t in tables}
    with saver._connection() as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t} WHERE thread_id = %s", (thread_id,)).fetchone()[0] for t in tables}


def put(saver, thread_id, parent, n):
    c = empty_checkpoint()
    c["channel_values"] = {"n": n}
    c["channel_versions"] = {"n": f"{n:032}.0"}
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    if parent:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    return saver.put(config, c, {"source": "loop", "step": n, "parents": {}}, {"n": c["channel_versions"]["n"]})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", ["delete_thread", "prune", "retention"])
def test_late_writes_of_a_run_on_a_deleted_thread_are_refused(kind, how, tmp_path, request):
    with two_connections(kind, tmp_path, request) as (runner, admin):
        first = put(runner, "t", None, 1)
        second = put(runner, "t", first, 2)
        if how == "delete_thread":
            admin.delete_thread("t")
        elif how == "prune":
            admin.prune(["t"], strategy="delete")
        else:
            assert admin.apply_retention(Retention(keep_last=0)).threads == 1
        with pytest.raises(ThreadDeletedError, match="was deleted or pruned while a run was writing to it"):
            runner.put_writes(second, [("n", 3)], "task")
        with pytest.raises(ThreadDeletedError, match="refused a checkpoint whose parent is"):
            put(runner, "t", second, 3)
        assert runner.get_tuple({"configurable": {"thread_id": "t"}}) is None
        assert set(rows_of(kind, admin, "t").values()) == {0}, "no orphan rows"
        # A new run on the same thread starts afresh.
        again = put(runner, "t", None, 1)
        put(runner, "t", again, 2)
        runner.put_writes(again, [("n", 9)], "task")
        assert runner.get_tuple({"configurable": {"thread_id": "t"}}).checkpoint["channel_values"] == {"n": 2}


@pytest.mark.parametrize("kind", KINDS)
def test_pruning_the_parent_of_a_running_step_refuses_its_checkpoint(kind, tmp_path, request):
    """keep_last=1 keeps the latest; a run that continues from an older checkpoint (a fork made
    before the prune) cannot store a child of the deleted one."""
    with two_connections(kind, tmp_path, request) as (runner, admin):
        first = put(runner, "t", None, 1)
        put(runner, "t", first, 2)
        admin.apply_retention(Retention(keep_last=1))
        with pytest.raises(ThreadDeletedError):
            put(runner, "t", first, 3)
        assert runner.get_tuple({"configurable": {"thread_id": "t"}}).checkpoint["channel_values"] == {"n": 2}


@pytest.mark.parametrize("kind", KINDS)
def test_a_graph_run_whose_thread_is_deleted_midway_stops_and_leaves_nothing(kind, tmp_path, request):
    entered, release = threading.Event(), threading.Event()

    def slow(state):
        entered.set()
        assert release.wait(30)
        return {"n": state["n"] + 1}

    graph = StateGraph(dict)
    graph.add_node("first", lambda s: {"n": 1})
    graph.add_node("slow", slow)
    graph.add_node("last", lambda s: {"n": s["n"] + 1})
    graph.add_edge(START, "first")
    graph.add_edge("first", "slow")
    graph.add_edge("slow", "last")
    graph.add_edge("last", END)
    with two_connections(kind, tmp_path, request) as (runner, admin):
        app = graph.compile(checkpointer=runner)
        errors = []

        def run():
            try:
                app.invoke({"n": 0}, {"configurable": {"thread_id": "t"}}, durability="sync")
            except Exception as e:  # the run's own failure is what the test checks
                errors.append(e)

        worker = threading.Thread(target=run)
        worker.start()
        assert entered.wait(30)
        admin.delete_thread("t")
        release.set()
        worker.join(60)
        assert len(errors) == 1 and isinstance(errors[0], ConcurrentUpdateError), errors
        assert runner.get_tuple({"configurable": {"thread_id": "t"}}) is None
        assert set(rows_of(kind, admin, "t").values()) == {0}, "no orphan rows"


def test_the_sqlite_triggers_refuse_rows_of_any_writer(tmp_path):
    """The refusal lives in the database: a row written by other code is refused too."""
    path = str(tmp_path / "c.db")
    with SqliteSaver.from_conn_string(path) as saver:
        saver.setup()
        first = put(saver, "t", None, 1)
        saver.delete_thread("t")
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="ferrograph_thread_deleted"):
        conn.execute(
            "INSERT INTO ferrograph_checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, blob,"
            " task_path) VALUES ('t', '', ?, 'x', 0, 'n', X'31', '')",
            (first["configurable"]["checkpoint_id"],),
        )
    conn.close()


def test_postgres_checks_a_thread_once_per_transaction_until_a_deletion_in_it(request):
    """Migration 0007: once a transaction's first row of a thread found no deletion on record
    (holding the thread's lock, so none can commit before the transaction ends), its later rows
    skip the check; a deletion inside the same transaction puts the check back, so a late row
    after it is still refused."""
    import psycopg

    url = request.getfixturevalue("ferrograph_postgres_url")
    with PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
        first = put(saver, "t", None, 1)
        second = put(saver, "t", first, 2)
    checkpoint_id = second["configurable"]["checkpoint_id"]
    write = (
        "INSERT INTO ferrograph_checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel,"
        " blob) VALUES ('t', '', %s, %s, 0, 'n', '\\x31')"
    )
    clean = "SELECT current_setting('ferrograph.clean_thread', true)"
    with psycopg.connect(url) as conn:
        conn.execute(write, [checkpoint_id, "task-1"])
        assert conn.execute(clean).fetchone()[0] == "=t"
        conn.execute(write, [checkpoint_id, "task-2"])
        conn.commit()
        assert conn.execute(clean).fetchone()[0] in ("", None), "the setting lasts one transaction"
        conn.commit()
        conn.execute(write, [checkpoint_id, "task-3"])
        conn.execute(
            "INSERT INTO ferrograph_deleted_threads (thread_id, deleted_through, deleted_at) VALUES ('t', %s, 'now')",
            [checkpoint_id + "~"],
        )
        assert conn.execute(clean).fetchone()[0] == ""
        conn.execute("DELETE FROM ferrograph_checkpoints WHERE thread_id = 't'")
        with pytest.raises(psycopg.Error, match=f'refused pending writes for checkpoint "{checkpoint_id}"'):
            conn.execute(write, [checkpoint_id, "task-4"])
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM ferrograph_checkpoint_writes WHERE thread_id = 't'").fetchone()[0] == 2


ASYNC_KINDS = ["sqlite-async", "postgres-async"]


@contextlib.asynccontextmanager
async def two_async_connections(kind, tmp_path, request):
    """Two async savers on one database, each on its own connection, set up."""
    from ferrograph.checkpointers import AsyncPostgresSaver, AsyncSqliteSaver

    if kind == "sqlite-async":
        url, cls = str(tmp_path / "c.db"), AsyncSqliteSaver
    else:
        url, cls = request.getfixturevalue("ferrograph_postgres_url"), AsyncPostgresSaver
    async with cls.from_conn_string(url) as first, cls.from_conn_string(url) as second:
        await first.setup()
        yield first, second


def async_rows_of(kind, url_or_path, thread_id):
    """Rows of each table for `thread_id`, read on a connection of the test's own."""
    tables = ["ferrograph_checkpoints", "ferrograph_checkpoint_blobs", "ferrograph_checkpoint_writes"]
    if kind == "sqlite-async":
        conn = sqlite3.connect(url_or_path)
        try:
            return {t: conn.execute(f"SELECT count(*) FROM {t} WHERE thread_id = ?", (thread_id,)).fetchone()[0] for t in tables}
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url_or_path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t} WHERE thread_id = %s", (thread_id,)).fetchone()[0] for t in tables}


async def aput(saver, thread_id, parent, n):
    c = empty_checkpoint()
    c["channel_values"] = {"n": n}
    c["channel_versions"] = {"n": f"{n:032}.0"}
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    if parent:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    return await saver.aput(config, c, {"source": "loop", "step": n, "parents": {}}, {"n": c["channel_versions"]["n"]})


def _database(kind, tmp_path, request):
    return str(tmp_path / "c.db") if kind == "sqlite-async" else request.getfixturevalue("ferrograph_postgres_url")


@pytest.mark.parametrize("kind", ASYNC_KINDS)
@pytest.mark.parametrize("how", ["delete_thread", "prune", "retention"])
async def test_async_late_writes_of_a_run_on_a_deleted_thread_are_refused(kind, how, tmp_path, request):
    async with two_async_connections(kind, tmp_path, request) as (runner, admin):
        first = await aput(runner, "t", None, 1)
        second = await aput(runner, "t", first, 2)
        if how == "delete_thread":
            await admin.adelete_thread("t")
        elif how == "prune":
            await admin.aprune(["t"], strategy="delete")
        else:
            assert (await admin.aapply_retention(Retention(keep_last=0))).threads == 1
        with pytest.raises(ThreadDeletedError, match="was deleted or pruned while a run was writing to it"):
            await runner.aput_writes(second, [("n", 3)], "task")
        with pytest.raises(ThreadDeletedError, match="refused a checkpoint whose parent is"):
            await aput(runner, "t", second, 3)
        assert await runner.aget_tuple({"configurable": {"thread_id": "t"}}) is None
        assert set(async_rows_of(kind, _database(kind, tmp_path, request), "t").values()) == {0}, "no orphan rows"
        again = await aput(runner, "t", None, 1)
        await aput(runner, "t", again, 2)
        await runner.aput_writes(again, [("n", 9)], "task")
        assert (await runner.aget_tuple({"configurable": {"thread_id": "t"}})).checkpoint["channel_values"] == {"n": 2}


@pytest.mark.parametrize("kind", ASYNC_KINDS)
async def test_an_async_graph_run_whose_thread_is_deleted_midway_stops_and_leaves_nothing(kind, tmp_path, request):
    import asyncio

    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(state):
        entered.set()
        await asyncio.wait_for(release.wait(), 30)
        return {"n": state["n"] + 1}

    graph = StateGraph(dict)
    graph.add_node("first", lambda s: {"n": 1})
    graph.add_node("slow", slow)
    graph.add_node("last", lambda s: {"n": s["n"] + 1})
    graph.add_edge(START, "first")
    graph.add_edge("first", "slow")
    graph.add_edge("slow", "last")
    graph.add_edge("last", END)
    async with two_async_connections(kind, tmp_path, request) as (runner, admin):
        app = graph.compile(checkpointer=runner)
        run = asyncio.ensure_future(app.ainvoke({"n": 0}, {"configurable": {"thread_id": "t"}}, durability="sync"))
        await asyncio.wait_for(entered.wait(), 30)
        await admin.adelete_thread("t")
        release.set()
        with pytest.raises(ConcurrentUpdateError):
            await asyncio.wait_for(run, 60)
        assert await runner.aget_tuple({"configurable": {"thread_id": "t"}}) is None
        assert set(async_rows_of(kind, _database(kind, tmp_path, request), "t").values()) == {0}, "no orphan rows"
