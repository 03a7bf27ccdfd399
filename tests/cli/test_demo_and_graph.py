"""`ferrograph demo` end to end (the console script, twice on one file), `ferrograph history` on
its database, `ferrograph graph MODULE:ATTR`, and `open_saver`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from cli_helpers import console_script, run

from ferrograph.checkpointers import open_saver
from ferrograph.checkpointers.url import display_url, url_kind
from ferrograph.demo import FORK_QUESTIONS, build
from ferrograph.errors import FerrographError


def test_demo_console_script_twice_then_history(tmp_path):
    db = str(tmp_path / "demo.db")
    exe = console_script()
    started = time.monotonic()
    first = subprocess.run([*exe, "demo", "--db", db], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert time.monotonic() - started < 30  # seconds, not minutes
    out = first.stdout
    for heading in ("1. Run", "2. History", "3. Fork", "4. Replay", "5. Both branches", "6. The thread as a tree"):
        assert heading in out
    assert "report (original branch)" in out
    assert "What is checkpoint?" in out and "What is pregel?" in out  # both branches' findings
    assert "branch from" in out

    second = subprocess.run([*exe, "demo", "--db", db], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert second.returncode == 0, second.stderr

    done = subprocess.run([*exe, "threads", db, "--json"], capture_output=True, text=True, timeout=60)
    threads = json.loads(done.stdout)
    assert len(threads) == 2 and all(t["thread_id"].startswith("demo-") for t in threads)
    assert all(t["checkpoints"] == 14 for t in threads)

    thread = threads[0]["thread_id"]
    done = subprocess.run([*exe, "history", db, thread], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    branch = next(i for i, line in enumerate(lines) if "branch from" in line)
    fork_parent = lines[branch].split("branch from ")[1].strip()
    assert fork_parent in lines[branch - 1]
    assert " update " in lines[branch + 1]
    assert "14 checkpoints, 1 fork" in done.stdout


def test_demo_json_and_reset(tmp_path, capsys):
    db = str(tmp_path / "demo.db")
    code, out, err = run(capsys, "demo", "--db", db, "--json")
    assert code == 0, err
    result = json.loads(out)
    original, fork = result["branches"]["original"], result["branches"]["fork"]
    assert original["values"]["questions"] == ["What is pregel?", "What is reducer?", "What is send?", "What is rust?"]
    assert fork["values"]["questions"] == FORK_QUESTIONS
    assert original["values"]["report"] != fork["values"]["report"]
    assert fork["values"]["findings"][0].startswith("What is checkpoint?")
    rows = {r["checkpoint_id"]: r for r in result["history"]}
    forks = [r for r in rows.values() if r["fork"]]
    assert [r["checkpoint_id"] for r in forks] == [result["fork"]]
    assert forks[0]["parent_checkpoint_id"] == result["fork_from"]
    # Both branches end in their own leaf; both lines lead back to the fork point.
    for leaf in (original["checkpoint_id"], fork["checkpoint_id"]):
        assert rows[leaf]["children"] == []
        node, seen = rows[leaf], set()
        while node["parent_checkpoint_id"]:
            seen.add(node["parent_checkpoint_id"])
            node = rows[node["parent_checkpoint_id"]]
        assert result["fork_from"] in seen
    # The fork was replayed from the fork point: the steps before it were not run again.
    before_fork = [r for r in rows.values() if r["step"] is not None and r["step"] <= 1]
    assert len(before_fork) == 3

    run(capsys, "demo", "--db", db, "--json")
    with open_saver(db, create=False) as saver:
        assert len({t.config["configurable"]["thread_id"] for t in saver.list(None)}) == 2
    code, out, _ = run(capsys, "demo", "--db", db, "--reset", "--json")
    with open_saver(db, create=False) as saver:
        assert {t.config["configurable"]["thread_id"] for t in saver.list(None)} == {json.loads(out)["thread_id"]}


def test_example_script_runs_the_demo(tmp_path):
    import pathlib

    script = pathlib.Path(__file__).parents[2] / "examples" / "research_agent.py"
    done = subprocess.run(
        [sys.executable, str(script), "--db", str(tmp_path / "x.db"), "--json"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["branches"]["fork"]["values"]["questions"] == FORK_QUESTIONS


# ---- graph


GRAPHS = textwrap.dedent(
    """
    from typing import TypedDict
    from ferrograph.graph import StateGraph, START, END

    class S(TypedDict):
        x: int

    def builder():
        g = StateGraph(S)
        g.add_node("a", lambda s: {"x": 1})
        g.add_node("b c", lambda s: {"x": 2})
        g.add_edge(START, "a")
        g.add_conditional_edges("a", lambda s: END if s["x"] else "b c", ["b c", END])
        g.add_edge("b c", END)
        return g

    BUILDER = builder()
    COMPILED = BUILDER.compile()

    class Holder:
        graph = COMPILED

    NOT_A_GRAPH = 3
    """
)


@pytest.fixture
def graphs_module(tmp_path, monkeypatch):
    (tmp_path / "my_graphs.py").write_text(GRAPHS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_graphs"
    sys.modules.pop("my_graphs", None)


def test_graph_prints_mermaid(graphs_module, capsys):
    expected = build().get_graph().draw_mermaid()
    code, out, _ = run(capsys, "graph", "ferrograph.demo:build")
    assert (code, out) == (0, expected)
    assert "plan -.-> research;" in out and "review -.-> deepen;" in out
    code, out, _ = run(capsys, "graph", "ferrograph.demo:builder", "--json")
    assert json.loads(out) == {"mermaid": expected}

    outputs = set()
    for attr in ("COMPILED", "BUILDER", "builder", "Holder.graph"):
        code, out, err = run(capsys, "graph", f"{graphs_module}:{attr}")
        assert code == 0, err
        outputs.add(out)
    assert len(outputs) == 1
    (mermaid,) = outputs
    assert mermaid.startswith("---\nconfig:\n") and "\tb\\20c(b c)" in mermaid and "a -.-> b\\20c;" in mermaid

    code, out, _ = run(capsys, "graph", "my_graphs.py:COMPILED")  # a file path works too
    assert (code, out) == (0, mermaid)


def test_graph_errors(graphs_module, capsys):
    for target, message in (
        ("my_graphs", "expected MODULE:ATTR"),
        ("no_such_module:x", "cannot import module 'no_such_module'"),
        ("my_graphs:nope", "has no attribute 'nope'"),
        ("my_graphs:NOT_A_GRAPH", "not a compiled graph"),
        ("missing.py:x", "no such file"),
    ):
        code, _, err = run(capsys, "graph", target)
        assert code == 1 and message in err, (target, err)


# ---- open_saver


def test_open_saver_urls(tmp_path, ferrograph_postgres_url):
    assert url_kind("x.db") == url_kind("sqlite:///x.db") == "sqlite"
    assert url_kind("postgresql://u@h/d") == url_kind("postgres://u@h/d") == "postgres"
    assert url_kind("memory://") == "memory"
    with pytest.raises(FerrographError, match="unsupported saver URL"):
        url_kind("mysql://u:secret@h/d")
    assert display_url("postgresql://u:secret@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert display_url("x.db") == "x.db"

    from ferrograph.checkpointers import MemorySaver, PostgresSaver, SqliteSaver

    with open_saver("memory://") as saver:
        assert isinstance(saver, MemorySaver)
    path = str(tmp_path / "a.db")
    with pytest.raises(FerrographError, match="no such SQLite database"):
        with open_saver(path, create=False):
            pass
    for url in (path, f"sqlite:///{path}"):
        with open_saver(url) as saver:
            assert isinstance(saver, SqliteSaver)
            app = build(checkpointer=saver)
            app.invoke({"topic": "rust"}, {"configurable": {"thread_id": url}})
    with open_saver(path, create=False) as saver:
        assert len({t.config["configurable"]["thread_id"] for t in saver.list(None)}) == 2
    with pytest.raises(FerrographError, match="no ferrograph checkpoint tables"):
        with open_saver(ferrograph_postgres_url, create=False):
            pass
    with open_saver(ferrograph_postgres_url) as saver:
        assert isinstance(saver, PostgresSaver)
    with open_saver(ferrograph_postgres_url, create=False) as saver:
        assert list(saver.list(None)) == []
