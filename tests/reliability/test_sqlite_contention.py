"""Many writers on one SQLite file: none may fail with "database is locked".

Twenty asyncio tasks each run a graph on their own thread, all at once: through one
AsyncSqliteSaver (one connection, its lock serializes them) and through one AsyncSqliteSaver
each (twenty connections to the same file, serialized by SQLite's write lock: BEGIN IMMEDIATE
waits in the busy handler instead of failing). Every thread ends complete and correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import threading
from typing import Annotated, TypedDict

import pytest

from ferrograph.graph import END, START, StateGraph
from ferrograph.testing import open_async_saver, open_saver

TASKS = 20
STEPS = 10


class State(TypedDict):
    n: int
    seen: Annotated[list, operator.add]


def graph(saver):
    async def step(state: State) -> dict:
        await asyncio.sleep(0)
        return {"n": state["n"] + 1, "seen": [state["n"]]}

    g = StateGraph(State)
    g.add_node("step", step)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", lambda s: "step" if s["n"] < STEPS else END)
    return g.compile(checkpointer=saver)


async def check(saver, thread: str) -> None:
    latest = await saver.aget_tuple({"configurable": {"thread_id": thread}})
    assert latest.checkpoint["channel_values"] == {"n": STEPS, "seen": list(range(STEPS))}
    count = 0
    async for _ in saver.alist({"configurable": {"thread_id": thread}}):
        count += 1
    assert count == STEPS + 2  # input, START step, STEPS steps


@pytest.mark.parametrize("connections", ["shared", "one-each"])
async def test_twenty_async_writers_on_one_sqlite_file(tmp_path, connections):
    path = str(tmp_path / "busy.db")
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(open_async_saver("sqlite", path))
        if connections == "shared":
            savers = [first] * TASKS
        else:
            savers = [first] + [
                await stack.enter_async_context(open_async_saver("sqlite", path, setup=False)) for _ in range(TASKS - 1)
            ]

        async def run(i: int) -> dict:
            return await graph(savers[i]).ainvoke({"n": 0, "seen": []}, {"configurable": {"thread_id": f"t{i}"}})

        results = await asyncio.wait_for(asyncio.gather(*(run(i) for i in range(TASKS))), timeout=120)
        assert all(r == {"n": STEPS, "seen": list(range(STEPS))} for r in results)
        for i in range(TASKS):
            await check(first, f"t{i}")


def test_eight_sync_writers_in_threads_on_one_sqlite_file(tmp_path):
    """The sync saver too: one SqliteSaver per thread, same file, all writing at once."""
    path = str(tmp_path / "busy.db")
    errors: list[BaseException] = []
    with open_saver("sqlite", path):
        pass

    def run(i: int) -> None:
        try:
            with open_saver("sqlite", path, setup=False) as saver:
                g = StateGraph(State)
                g.add_node("step", lambda s: {"n": s["n"] + 1, "seen": [s["n"]]})
                g.add_edge(START, "step")
                g.add_conditional_edges("step", lambda s: "step" if s["n"] < STEPS else END)
                out = g.compile(checkpointer=saver).invoke({"n": 0, "seen": []}, {"configurable": {"thread_id": f"s{i}"}})
                assert out == {"n": STEPS, "seen": list(range(STEPS))}
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_a_write_waits_for_a_long_transaction_of_another_connection(tmp_path):
    """A saver's write queues behind another connection's write transaction that lasts longer
    than Python's default busy timeout (5 s) instead of failing with "database is locked"."""
    import sqlite3
    import time

    path = str(tmp_path / "held.db")
    with open_saver("sqlite", path) as saver:
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        released = threading.Event()

        def release() -> None:
            time.sleep(6)
            holder.execute("COMMIT")
            released.set()

        t = threading.Thread(target=release)
        t.start()
        try:
            g = StateGraph(State)
            g.add_node("step", lambda s: {"n": s["n"] + 1, "seen": [s["n"]]})
            g.add_edge(START, "step")
            g.add_edge("step", END)
            out = g.compile(checkpointer=saver).invoke({"n": 0, "seen": []}, {"configurable": {"thread_id": "held"}})
            assert out == {"n": 1, "seen": [0]}
            assert released.is_set()
        finally:
            t.join(timeout=30)
            holder.close()


class _LockedAtFirst:
    """A connection whose pragmas find the file locked `times` times (as when processes open a
    new file at once and deadlock on switching it to WAL), then run."""

    def __init__(self, times: int, message: str = "database is locked") -> None:
        self.left, self.message, self.ran = times, message, []

    def execute(self, pragma: str) -> None:
        import sqlite3

        if self.left:
            self.left -= 1
            raise sqlite3.OperationalError(self.message)
        self.ran.append(pragma)


class _AsyncLockedAtFirst(_LockedAtFirst):
    async def execute(self, pragma: str) -> None:  # type: ignore[override]
        super().execute(pragma)


def test_a_new_file_found_locked_by_another_opener_is_tried_again(tmp_path):
    from ferrograph.checkpointers.sqlite import FILE_PRAGMAS, PRAGMA_RETRY_DELAYS, run_pragmas

    conn = _LockedAtFirst(3)
    run_pragmas(conn, str(tmp_path / "new.db"))  # type: ignore[arg-type]
    assert conn.ran == list(FILE_PRAGMAS)
    # Only a locked file is tried again, and only for as long as the busy timeout.
    import sqlite3

    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        run_pragmas(_LockedAtFirst(1, "disk I/O error"), str(tmp_path / "other.db"))  # type: ignore[arg-type]
    delays = PRAGMA_RETRY_DELAYS
    assert delays[0] == 0.005 and max(delays) == 0.1 and 29 < sum(delays) <= 30


async def test_the_async_twin_tries_a_locked_new_file_again(tmp_path):
    from ferrograph.checkpointers.aio import _run_pragmas
    from ferrograph.checkpointers.sqlite import FILE_PRAGMAS

    conn = _AsyncLockedAtFirst(2)
    await _run_pragmas(conn, str(tmp_path / "new.db"))  # type: ignore[arg-type]
    assert conn.ran == list(FILE_PRAGMAS)


def _locking_connection(times: int):
    """A sqlite3.Connection class whose switch to WAL finds the file locked `times` times
    (another process opening the new file at once), then runs; it counts the tries."""
    import sqlite3

    class Connection(sqlite3.Connection):
        tries = 0

        def execute(self, sql, *args):  # type: ignore[override]
            if sql.strip().upper() == "PRAGMA JOURNAL_MODE=WAL":
                type(self).tries += 1
                if type(self).tries <= times:
                    raise sqlite3.OperationalError("database is locked")
            return super().execute(sql, *args)

    return Connection


def test_setup_on_a_user_s_connection_tries_a_locked_switch_to_wal_again(tmp_path):
    """`SqliteSaver(conn).setup()` switches the user's connection to WAL as from_conn_string
    does, and a file found locked is tried again, not a failed setup."""
    import sqlite3

    from ferrograph.checkpointers import SqliteSaver

    factory = _locking_connection(2)
    conn = sqlite3.connect(str(tmp_path / "user.db"), factory=factory, check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        assert factory.tries == 3
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert saver.get_tuple({"configurable": {"thread_id": "none"}}) is None
    finally:
        conn.close()


async def test_async_setup_on_a_user_s_connection_tries_a_locked_switch_to_wal_again(tmp_path):
    import aiosqlite

    from ferrograph.checkpointers import AsyncSqliteSaver

    factory = _locking_connection(2)
    async with aiosqlite.connect(str(tmp_path / "user.db"), factory=factory) as conn:
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        assert factory.tries == 3
        async with conn.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone())[0] == "wal"
        assert await saver.aget_tuple({"configurable": {"thread_id": "none"}}) is None
