"""`ferrograph import-langgraph URL_FROM URL_TO`: a database written by LangGraph's own
SqliteSaver (or PostgresSaver) becomes ferrograph threads with the same values, order, parent
links, metadata and pending writes."""

from __future__ import annotations

import json
import operator
import sqlite3
import subprocess
import sys
from typing import Annotated, Any, TypedDict

import pytest
from cli_helpers import console_script, normalized, run

from ferrograph.checkpointers import open_saver

pytest.importorskip("langgraph.checkpoint.sqlite")
pytest.importorskip("langgraph.checkpoint.postgres")

from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Send  # noqa: E402


class S(TypedDict):
    items: list[str]
    out: Annotated[list[str], operator.add]
    n: int


def _plan(s: S) -> dict:
    return {"items": s["items"] or ["a", "b"], "n": 0}


def _fan(s: S) -> list:
    return [Send("work", {"i": i}) for i in s["items"]]


def _work(x: dict) -> dict:
    return {"out": [x["i"].upper()]}


def _count(s: S) -> dict:
    return {"n": s["n"] + 1}


def langgraph_app(checkpointer: Any) -> Any:
    g = StateGraph(S)
    g.add_node("plan", _plan)
    g.add_node("work", _work)
    g.add_node("count", _count)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", _fan, ["work"])
    g.add_edge("work", "count")
    g.add_edge("count", END)
    return g.compile(checkpointer=checkpointer)


def fill_langgraph(saver: Any) -> dict:
    """Three threads run by LangGraph; `t2` is forked (LangGraph's update_state) after its plan
    step and the fork is replayed."""
    app = langgraph_app(saver)
    for i, thread in enumerate(("t1", "t2", "t3")):
        app.invoke({"items": ["x"] * i}, {"configurable": {"thread_id": thread}})
    history = list(app.get_state_history({"configurable": {"thread_id": "t2"}}))
    after_plan = next(h for h in history if h.next and h.next[0] == "work")
    fork = app.update_state(after_plan.config, {"items": ["forked"]}, as_node="plan")
    final = app.invoke(None, fork)
    assert final["out"] == ["FORKED"]
    return {"fork": fork["configurable"]["checkpoint_id"], "fork_parent": after_plan.config["configurable"]["checkpoint_id"]}


@pytest.fixture
def langgraph_sqlite(tmp_path):
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = str(tmp_path / "langgraph.db")
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        facts = fill_langgraph(SqliteSaver(conn))
    finally:
        conn.close()
    return path, facts


def langgraph_contents(url: str) -> list:
    from ferrograph._transfer import open_langgraph_saver

    with open_langgraph_saver(url) as saver:
        return normalized(saver)


@pytest.fixture(params=["sqlite", "postgres"])
def destination(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("ferrograph_postgres_url")
    return str(tmp_path / "ferrograph.db")


def test_import_sqlite_reproduces_values_order_and_parents(langgraph_sqlite, destination, capsys):
    source, facts = langgraph_sqlite
    expected = langgraph_contents(source)
    assert {r["thread_id"] for r in expected} == {"t1", "t2", "t3"}

    code, out, err = run(capsys, "import-langgraph", source, destination, "--json")
    assert code == 0, err
    stats = json.loads(out)
    assert stats["threads"] == 3 and stats["checkpoints_copied"] == len(expected)
    assert stats["writes_copied"] == sum(len(r["pending_writes"]) for r in expected) > 0

    with open_saver(destination, create=False) as saver:
        imported = normalized(saver)
    # Same checkpoints in the same order, same parents, metadata, values, versions, writes.
    assert [(r["thread_id"], r["checkpoint_id"]) for r in imported] == [(r["thread_id"], r["checkpoint_id"]) for r in expected]
    for got, want in zip(imported, expected):
        assert got["parent"] == want["parent"]
        assert got["metadata"] == want["metadata"]
        assert got["checkpoint"]["channel_values"] == want["checkpoint"]["channel_values"]
        assert got["checkpoint"] == want["checkpoint"]
        assert got["pending_writes"] == want["pending_writes"]
    assert imported == expected

    fork = next(r for r in imported if r["checkpoint_id"] == facts["fork"])
    assert fork["parent"] == facts["fork_parent"] and fork["metadata"]["source"] == "update"
    # LangGraph's Send tasks came through its serializer as LangGraph's own Send.
    assert any(isinstance(w[2], Send) for r in imported for w in r["pending_writes"])

    # History shows the fork as a branch.
    code, out, _ = run(capsys, "history", destination, "t2", "--json")
    rows = json.loads(out)
    assert [r["checkpoint_id"] for r in rows if r["fork"]] == [facts["fork"]]

    # Twice: nothing copied twice.
    code, out, _ = run(capsys, "import-langgraph", source, destination, "--json")
    assert json.loads(out) == {
        "threads": 3,
        "checkpoints_copied": 0,
        "checkpoints_skipped": len(expected),
        "writes_copied": 0,
    }
    with open_saver(destination, create=False) as saver:
        assert normalized(saver) == expected


def test_import_one_thread(langgraph_sqlite, tmp_path, capsys):
    source, _ = langgraph_sqlite
    destination = str(tmp_path / "one.db")
    assert run(capsys, "import-langgraph", source, destination, "--thread", "t3")[0] == 0
    with open_saver(destination, create=False) as saver:
        assert normalized(saver) == [r for r in langgraph_contents(source) if r["thread_id"] == "t3"]


def test_import_from_langgraph_postgres(ferrograph_postgres_url, tmp_path, capsys):
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(ferrograph_postgres_url) as saver:
        saver.setup()
        facts = fill_langgraph(saver)
    expected = langgraph_contents(ferrograph_postgres_url)
    assert len({r["thread_id"] for r in expected}) == 3
    for destination in (str(tmp_path / "from-pg.db"), ferrograph_postgres_url):  # same database: other tables
        code, out, err = run(capsys, "import-langgraph", ferrograph_postgres_url, destination, "--json")
        assert code == 0, err
        assert json.loads(out)["checkpoints_copied"] == len(expected)
        with open_saver(destination, create=False) as saver:
            assert normalized(saver) == expected
            fork = next(r for r in normalized(saver, "t2") if r["checkpoint_id"] == facts["fork"])
            assert fork["parent"] == facts["fork_parent"]


def test_history_of_an_import_in_a_fresh_process(langgraph_sqlite, tmp_path):
    """Reading LangGraph's classes back needs them allowlisted: the command does it when needed."""
    source, facts = langgraph_sqlite
    destination = str(tmp_path / "ferrograph.db")
    exe = console_script()
    done = subprocess.run([*exe, "import-langgraph", source, destination], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "imported 3 threads" in done.stdout
    done = subprocess.run([*exe, "history", destination, "t2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"branch from {facts['fork_parent']}" in done.stdout


def test_errors(langgraph_sqlite, tmp_path, capsys, monkeypatch):
    source, _ = langgraph_sqlite
    code, _, err = run(capsys, "import-langgraph", str(tmp_path / "missing.db"), str(tmp_path / "to.db"))
    assert code == 1 and "no such SQLite database" in err

    ferrograph_db = str(tmp_path / "ferrograph.db")
    with open_saver(ferrograph_db):
        pass
    code, _, err = run(capsys, "import-langgraph", ferrograph_db, str(tmp_path / "to.db"))
    assert code == 1 and "is not a LangGraph SqliteSaver database" in err

    monkeypatch.setitem(sys.modules, "langgraph.checkpoint.sqlite", None)
    code, _, err = run(capsys, "import-langgraph", source, str(tmp_path / "to.db"))
    assert code == 1 and "langgraph-checkpoint-sqlite" in err and "pip install 'ferrograph[langgraph]'" in err
    monkeypatch.setitem(sys.modules, "langgraph.checkpoint.base", None)
    code, _, err = run(capsys, "import-langgraph", source, str(tmp_path / "to.db"))
    assert code == 1 and "needs LangGraph's checkpoint savers" in err
