"""The Postgres savers' statements have plans that are safe whatever the parameters: psycopg
prepares a statement run five times, and the server may then plan it once for all parameters (a
generic plan). So every statement is checked here as prepared, under
`plan_cache_mode = force_generic_plan`, with EXPLAIN ANALYZE on a database big enough that a
scan of a table would cost more than the lookups: each read uses the tables' indexes and reads
only the rows it returns (no sequential scan, no row read and then filtered out), and a put
reads a bounded number of rows whatever the length of its thread and of its chains."""

from __future__ import annotations

import re
from typing import Any, Iterator

import psycopg
import pytest
from psycopg import ClientCursor

from ferrograph.checkpointers import PostgresSaver, sql
from ferrograph.checkpointers.base import empty_checkpoint

TABLES = {sql.CHECKPOINTS, sql.BLOBS, sql.WRITES}
STEPS = 600


def cfg(thread_id: str, checkpoint_id: Any = None) -> dict:
    configurable = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def message(i: int) -> dict:
    return {"role": "user" if i % 2 else "assistant", "content": f"message {i} " + "lorem ipsum " * 12, "id": f"m{i}"}


def steps(saver: PostgresSaver, thread_id: str, n: int) -> Iterator[tuple]:
    """An agent-like thread: messages growing by one every other step (rewritten unchanged in
    between), a few scalars, a task's writes before each checkpoint."""
    versions: dict[str, Any] = {}
    messages: list = []
    for step in range(n):
        if step % 2 == 0:
            messages = messages + [message(step)]
        new = {}
        for channel in ("messages", "step", "node"):
            versions[channel] = new[channel] = saver.get_next_version(versions.get(channel), None)
        c = empty_checkpoint()
        c["channel_values"] = {"messages": messages, "step": step, "node": "agent" if step % 2 else "tools"}
        c["channel_versions"] = dict(versions)
        yield c, {"source": "loop", "step": step, "parents": {}}, new


@pytest.fixture(scope="module")
def planned(ferrograph_postgres_server: str) -> Iterator[tuple[str, dict]]:
    """A database holding a long thread among many short ones, analysed."""
    dbname = "ferrograph_test_plans_saver_sql"
    with psycopg.connect(ferrograph_postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {dbname}")
    from ferrograph.testing.plugin import with_database

    url = with_database(ferrograph_postgres_server, dbname)
    try:
        ids = {}
        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            for thread_id, n in [("long", STEPS)] + [(f"short-{i}", 30) for i in range(40)]:
                calls = []
                config = cfg(thread_id)
                for i, (c, md, new) in enumerate(steps(saver, thread_id, n)):
                    calls.append(("put", (config, c, md, new)))
                    config = cfg(thread_id, c["id"])
                    calls.append(("put_writes", (config, [("messages", [message(i)]), ("step", i)], f"task-{i}")))
                saver.run_batch(calls)
                ids[thread_id] = [args[1]["id"] for method, args in calls if method == "put"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ANALYZE {sql.CHECKPOINTS}, {sql.BLOBS}, {sql.WRITES}")
        yield url, ids
    finally:
        with psycopg.connect(ferrograph_postgres_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")


def numbered(text: str) -> tuple[str, int]:
    """A statement with psycopg's placeholders as $1, $2, ... for PREPARE."""
    count = 0

    def number(_: Any) -> str:
        nonlocal count
        count += 1
        return f"${count}"

    return re.sub(r"%[sb]", number, text), count


def explain(conn: psycopg.Connection, query: sql.Query, name: str) -> dict:
    """EXPLAIN ANALYZE of `query` prepared, with a generic plan."""
    text, count = numbered(query.sql)
    conn.execute(f"PREPARE {name} AS {text}")
    with ClientCursor(conn) as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {name}({', '.join(['%s'] * count)})", list(query.params))
        return cursor.fetchone()[0][0]


def nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def table_scans(plan: dict) -> list[dict]:
    return [n for n in nodes(plan["Plan"]) if n.get("Relation Name") in TABLES and "Scan" in n["Node Type"]]


def assert_reads_only_what_it_returns(plan: dict, checkpoints: int) -> None:
    scans = table_scans(plan)
    assert scans
    for scan in scans:
        where = f"{scan['Node Type']} on {scan['Relation Name']}"
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), where
        assert scan.get("Rows Removed by Filter", 0) == 0, where
        assert scan.get("Rows Removed by Index Recheck", 0) == 0, where
        if scan["Relation Name"] == sql.CHECKPOINTS:
            assert scan["Actual Rows"] * scan["Actual Loops"] <= checkpoints, where


def read_statement(op: sql.Op) -> sql.Query:
    query = next(op)
    assert isinstance(query, sql.Query)
    return query


@pytest.fixture
def generic(planned: tuple[str, dict]) -> Iterator[tuple[psycopg.Connection, dict]]:
    url, ids = planned
    with psycopg.connect(url) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        yield conn, ids
        conn.rollback()


def test_get_tuple_plans_use_the_index_and_read_what_they_return(generic):
    conn, ids = generic
    d = sql.POSTGRES
    for i, config in enumerate([cfg("long"), cfg("long", ids["long"][STEPS // 2]), cfg("short-3")]):
        plan = explain(conn, read_statement(sql.get_tuple(d, config)), f"get_{i}")
        assert_reads_only_what_it_returns(plan, 1)


@pytest.mark.parametrize(
    "config, options, checkpoints",
    [
        (cfg("long"), {"limit": 10}, 10),
        (cfg("long"), {}, 100),  # one page of the whole thread
        (cfg("long"), {"limit": 10, "before": "middle"}, 10),
        (cfg("long"), {"limit": 5, "filter": {"source": "loop", "step": 7}}, 1),
    ],
)
def test_list_plans_use_the_index_and_read_what_they_return(generic, config, options, checkpoints):
    conn, ids = generic
    if options.get("before") == "middle":
        options = {**options, "before": cfg("long", ids["long"][STEPS // 2])}
    query = read_statement(sql.list_checkpoints(sql.POSTGRES, config, **options))
    plan = explain(conn, query, "list_page")
    if "filter" in options:
        # A metadata filter is not indexed: the thread's rows are read to find the match, but
        # only the thread's.
        for scan in table_scans(plan):
            assert scan["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"), scan["Node Type"]
            if scan["Relation Name"] == sql.CHECKPOINTS:
                assert scan["Actual Rows"] == checkpoints
                assert scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0) <= STEPS
        return
    assert_reads_only_what_it_returns(plan, checkpoints)


def test_a_put_reads_a_bounded_number_of_rows_on_a_long_thread(generic, planned):
    """A marked put with a delta on the long thread (600 checkpoints, chains of deltas): the
    statement looks up the line's latest checkpoint and the row the delta extends, nothing
    else."""
    conn, ids = generic
    url, _ = planned
    with PostgresSaver.from_conn_string(url) as saver:
        config = cfg("plans-put")
        made = list(steps(saver, "plans-put", STEPS + 2))
        for c, md, new in made[:STEPS]:
            config = saver.put(config, c, md, new)
        c, md, new = made[STEPS]  # messages grow: a delta
        marked = {"configurable": {**config["configurable"], sql.EXPECT_LATEST: True}}
        op = sql.put(sql.POSTGRES, marked, c, md, new, saver.deltas)
        lock = next(op)
        assert lock.sql == sql.POSTGRES.lock_line
        statement = op.send(None)
        assert "%b::bytea" in statement.sql and "extended" in statement.sql  # the delta is checked
    plan = explain(conn, statement, "put_delta")
    for scan in table_scans(plan):
        where = f"{scan['Node Type']} on {scan['Relation Name']}"
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), where
        assert scan["Actual Rows"] * scan["Actual Loops"] <= 1, where
        assert scan.get("Rows Removed by Filter", 0) == 0, where


def test_the_checkpoints_of_runs_are_found_by_the_run_id_index(generic):
    """`delete_for_runs` looks its checkpoints up by the run_id index, which holds only
    checkpoints with a run id (migration 0008; none of this database's have one)."""
    conn, _ = generic
    d = sql.POSTGRES
    for i, statement in enumerate((d.threads_of_runs, d.delete_runs[-1])):
        plan = explain(conn, sql.Query(statement, [d.text_list(["run-1", "run-2"])]), f"runs_{i}")
        scans = [n for n in nodes(plan["Plan"]) if n.get("Relation Name") == sql.CHECKPOINTS or "Index Name" in n]
        assert scans and {n.get("Index Name") for n in scans} <= {"ferrograph_checkpoints_run_id_idx", None}, scans
        assert "Seq Scan" not in {n["Node Type"] for n in scans}, scans
