"""Lost Postgres connections: a backend terminated mid-run (pg_terminate_backend from another
connection) never leaves a half-written checkpoint, and the thread resumes cleanly.

Decided behaviour (documented in PostgresSaver._run):
- On a single connection given to the saver, the call that meets the dead connection raises
  `psycopg.OperationalError` unchanged (as LangGraph's saver does); the saver's connection is
  gone, and a new saver resumes the thread with `invoke(None, config)`. (A saver from
  `from_conn_string` reconnects instead: test_connections_survive.py.)
- On a pool, the operation runs again on another connection (the pool discards dead ones): the
  run goes on as if nothing happened. Every saver operation is idempotent, so a retry after an
  ambiguous commit is safe.
- A transaction cut off in the middle (here: inside the checkpoint INSERT, held there by a
  trigger) is rolled back by the server: neither the checkpoint nor the blobs written before it
  in the same put are there.
"""

from __future__ import annotations

import operator
import threading
from contextlib import contextmanager
from typing import Annotated, Iterator, TypedDict

import psycopg
import pytest

from reliability_worker import wait_until
from ferrograph.checkpointers import PostgresSaver
from ferrograph.graph import END, START, StateGraph
from ferrograph.testing import open_async_saver, open_saver

KILL_OTHERS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
EXPECTED = {"log": ["a", "b", "c"]}


class State(TypedDict):
    log: Annotated[list, operator.add]


def build(during_b=None, runs=None):
    def node(name):
        def run(state: State) -> dict:
            if runs is not None:
                runs.append(name)
            if name == "b" and during_b is not None:
                during_b()
            return {"log": [name]}

        return run

    g = StateGraph(State)
    for name in "abc":
        g.add_node(name, node(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    return g


@contextmanager
def on_one_connection(url: str) -> Iterator[PostgresSaver]:
    """A saver given one connection of its own (it has no URL to reconnect with)."""
    with psycopg.Connection.connect(url, autocommit=True) as conn:
        yield PostgresSaver(conn)


def steps(saver, thread: str) -> list[int]:
    """The steps of the thread's checkpoints, oldest first; every one of them loads."""
    out = []
    for t in saver.list({"configurable": {"thread_id": thread}}):
        assert saver.get_tuple(t.config).checkpoint["id"] == t.checkpoint["id"]
        out.append(t.metadata["step"])
    return out[::-1]


def test_a_single_connection_lost_mid_run_is_a_clear_error_and_a_new_saver_resumes(ferrograph_postgres_url):
    url = ferrograph_postgres_url
    config = {"configurable": {"thread_id": "lost"}}
    with open_saver("postgres", url) as killer, on_one_connection(url) as saver:
        pid = saver.conn.info.backend_pid
        runs: list[str] = []
        graph = build(lambda: killer.conn.execute("SELECT pg_terminate_backend(%s)", [pid]), runs)
        # durability="sync": each step is stored before the next runs, so what is stored at
        # the loss is known exactly (with "async" it depends on how far the writer got).
        with pytest.raises(psycopg.OperationalError):
            graph.compile(checkpointer=saver).invoke({"log": []}, config, durability="sync")
    with open_saver("postgres", url) as fresh:
        # Input, START step and a's step were saved; b's writes never were.
        assert steps(fresh, "lost") == [-1, 0, 1]
        assert build(runs=runs).compile(checkpointer=fresh).invoke(None, config) == EXPECTED
        assert steps(fresh, "lost") == [-1, 0, 1, 2, 3]
    assert runs == ["a", "b", "b", "c"]


def test_a_single_connection_lost_mid_run_with_background_writes(ferrograph_postgres_url):
    """durability="async": the loss reaches the caller, what was stored is a line of whole
    checkpoints, and a new saver resumes from it to the same end."""
    url = ferrograph_postgres_url
    config = {"configurable": {"thread_id": "lost-async"}}
    with open_saver("postgres", url) as killer, on_one_connection(url) as saver:
        pid = saver.conn.info.backend_pid
        graph = build(lambda: killer.conn.execute("SELECT pg_terminate_backend(%s)", [pid]))
        with pytest.raises(psycopg.OperationalError):
            graph.compile(checkpointer=saver).invoke({"log": []}, config)
    with open_saver("postgres", url) as fresh:
        stored = steps(fresh, "lost-async")
        assert stored == list(range(-1, len(stored) - 1))
        if stored:
            assert build().compile(checkpointer=fresh).invoke(None, config) == EXPECTED
            assert steps(fresh, "lost-async") == [-1, 0, 1, 2, 3]


def test_lost_pool_connections_are_replaced_transparently(ferrograph_postgres_url):
    url = ferrograph_postgres_url
    config = {"configurable": {"thread_id": "pooled"}}
    with open_saver("postgres", url) as killer, open_saver("postgres", url, pool=True) as saver:
        killed: list[int] = []
        runs: list[str] = []
        graph = build(lambda: killed.extend(r[0] for r in killer.conn.execute(KILL_OTHERS).fetchall()), runs)
        assert graph.compile(checkpointer=saver).invoke({"log": []}, config) == EXPECTED
        assert killed and all(killed)  # the pool's connections were terminated while b ran
        assert runs == ["a", "b", "c"]
        assert steps(saver, "pooled") == [-1, 0, 1, 2, 3]


async def test_lost_async_pool_connections_are_replaced_transparently(ferrograph_postgres_url):
    url = ferrograph_postgres_url
    config = {"configurable": {"thread_id": "apooled"}}
    with open_saver("postgres", url) as killer:
        async with open_async_saver("postgres", url, pool=True) as saver:
            killed: list[int] = []
            graph = build(lambda: killed.extend(r[0] for r in killer.conn.execute(KILL_OTHERS).fetchall()))
            assert await graph.compile(checkpointer=saver).ainvoke({"log": []}, config) == EXPECTED
            assert killed and all(killed)
            tuples = [t async for t in saver.alist({"configurable": {"thread_id": "apooled"}})]
            assert [t.metadata["step"] for t in tuples][::-1] == [-1, 0, 1, 2, 3]


def test_a_put_cut_off_inside_its_transaction_leaves_nothing_behind(ferrograph_postgres_url):
    """The backend dies while the put of step 1 is inside its checkpoint INSERT (a trigger holds
    it there), after the same transaction inserted that step's blobs."""
    url = ferrograph_postgres_url
    config = {"configurable": {"thread_id": "cut"}}
    with open_saver("postgres", url) as killer, on_one_connection(url) as saver:
        db = killer.conn
        db.execute("CREATE TABLE cut_control (on_step text)")
        db.execute(
            "CREATE FUNCTION cut_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF EXISTS (SELECT 1 FROM cut_control WHERE on_step = NEW.metadata ->> 'step') THEN"
            " PERFORM pg_sleep(60); END IF; RETURN NEW; END $$"
        )
        db.execute(
            "CREATE TRIGGER cut_slow BEFORE INSERT ON ferrograph_checkpoints FOR EACH ROW EXECUTE FUNCTION cut_slow()"
        )
        db.execute("INSERT INTO cut_control VALUES ('1')")
        pid = saver.conn.info.backend_pid
        outcome: list[BaseException] = []

        def run() -> None:
            try:
                # durability="sync": the steps before 1 are stored before its put starts.
                build().compile(checkpointer=saver).invoke({"log": []}, config, durability="sync")
            except BaseException as e:  # noqa: BLE001 - checked below
                outcome.append(e)

        runner = threading.Thread(target=run)
        runner.start()
        try:
            wait_until(
                lambda: db.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event = 'PgSleep'", [pid]
                ).fetchone(),
                "the put of step 1 to reach its INSERT",
                timeout=60,
            )

            def counts() -> tuple[int, int]:
                return db.execute(
                    "SELECT (SELECT count(*) FROM ferrograph_checkpoints WHERE thread_id = 'cut'),"
                    " (SELECT count(*) FROM ferrograph_checkpoint_blobs WHERE thread_id = 'cut')"
                ).fetchone()

            committed = counts()
            db.execute("DELETE FROM cut_control")
            db.execute("SELECT pg_terminate_backend(%s)", [pid])
        finally:
            runner.join(timeout=90)
        assert not runner.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], psycopg.OperationalError), outcome
        assert counts() == committed  # neither the checkpoint nor its blobs
    with open_saver("postgres", url) as fresh:
        assert steps(fresh, "cut") == [-1, 0]
        assert build().compile(checkpointer=fresh).invoke(None, config) == EXPECTED
        assert steps(fresh, "cut") == [-1, 0, 1, 2, 3]
