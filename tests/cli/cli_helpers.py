"""Helpers and fixtures for the `ferrograph` command's tests (in a module with a name of its
own, not conftest, so that its classes' annotations resolve in the full suite): databases on
SQLite and Postgres filled with threads that have forks, pending writes (regular and special),
namespaces and non-JSON values, and helpers that compare two savers' contents value by value."""

from __future__ import annotations

import datetime
import decimal
import operator
import os
import sys
import uuid
from typing import Annotated, Any, Optional, TypedDict

import pytest

from ferrograph.checkpointers import open_saver
from ferrograph.checkpointers.base import empty_checkpoint
from ferrograph.cli import main
from ferrograph.demo import TOPIC, build
from ferrograph.graph import END, START, StateGraph
from ferrograph.types import interrupt


def _url(request: Any, tmp_path: Any, kind: str, name: str) -> str:
    if kind == "postgres":
        return request.getfixturevalue("ferrograph_postgres_url")
    if kind == "sqlite-url":
        return f"sqlite:///{tmp_path / name}"
    return str(tmp_path / name)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    """An empty database (no schema yet) on SQLite or Postgres."""
    return _url(request, tmp_path, request.param, "source.db")


def console_script() -> list[str]:
    """The installed `ferrograph` console script (beside this Python), or `python -m
    ferrograph.cli` when it is not installed as one."""
    exe = os.path.join(os.path.dirname(sys.executable), "ferrograph")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "ferrograph.cli"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """`ferrograph ARGV...` in process: exit code, stdout, stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- filling a database


class Pair(TypedDict):
    log: Annotated[list[str], operator.add]
    answer: str


def _ok(state: Pair) -> dict:
    return {"log": ["ok"]}


def _boom(state: Pair) -> dict:
    raise RuntimeError("boom")


def _ask(state: Pair) -> dict:
    return {"answer": interrupt("what now?")}


def failing_graph(checkpointer: Any) -> Any:
    """Two parallel nodes, one of which fails: the other's writes stay as pending writes."""
    g = StateGraph(Pair)
    g.add_node("ok", _ok)
    g.add_node("boom", _boom)
    g.add_edge(START, "ok")
    g.add_edge(START, "boom")
    g.add_edge("ok", END)
    g.add_edge("boom", END)
    return g.compile(checkpointer=checkpointer)


def interrupting_graph(checkpointer: Any) -> Any:
    g = StateGraph(Pair)
    g.add_node("ok", _ok)
    g.add_node("ask", _ask)
    g.add_edge(START, "ok")
    g.add_edge(START, "ask")
    g.add_edge("ok", END)
    g.add_edge("ask", END)
    return g.compile(checkpointer=checkpointer)


def fill(url: str) -> dict[str, Any]:
    """Threads: `agent-1` (the demo's agent, with a fork and its replay), `agent-2` (plain run),
    `failed` (a failed step: pending writes of the task that succeeded), `paused` (an interrupt:
    a special write), `raw` (written through the protocol: two namespaces, non-JSON values).
    Returns facts the tests check against."""
    with open_saver(url) as saver:
        return fill_saver(saver)


def fill_saver(saver: Any) -> dict[str, Any]:
    """`fill` on an open saver (a `MemorySaver` too)."""
    facts: dict[str, Any] = {}
    app = build(checkpointer=saver)
    c1 = {"configurable": {"thread_id": "agent-1"}}
    app.invoke({"topic": TOPIC}, c1)
    after_plan = next(s for s in app.get_state_history(c1) if s.next and s.next[0] == "research")
    fork = app.update_state(after_plan.config, {"questions": ["What is rust?"]}, as_node="plan")
    app.invoke(None, fork)
    facts["fork_parent"] = after_plan.config["configurable"]["checkpoint_id"]
    facts["fork"] = fork["configurable"]["checkpoint_id"]
    app.invoke({"topic": "pregel"}, {"configurable": {"thread_id": "agent-2"}})

    with pytest.raises(RuntimeError, match="boom"):
        failing_graph(saver).invoke({"log": []}, {"configurable": {"thread_id": "failed"}})
    interrupting_graph(saver).invoke({"log": []}, {"configurable": {"thread_id": "paused"}})

    # Written through the protocol: a root namespace and a child one, with non-JSON values.
    parent = None
    for step, ns in enumerate(["", "", "child:1"]):
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {
            "when": datetime.datetime(2024, 5, 1, 12, 0, step),
            "tags": {"a", "b"},
            "pair": (step, "x"),
            "blob": b"\x00\xff",
            "amount": decimal.Decimal("1.50"),
            "id": uuid.UUID(int=step),
        }
        versions = {k: f"{step + 1:032}.0" for k in checkpoint["channel_values"]}
        checkpoint["channel_versions"] = versions
        config: dict = {"configurable": {"thread_id": "raw", "checkpoint_ns": ns}}
        if parent and ns == "":
            config["configurable"]["checkpoint_id"] = parent
        stored = saver.put(config, checkpoint, {"source": "loop", "step": step, "parents": {}}, versions)
        saver.put_writes(stored, [("tags", {"c"}), ("pair", (9, "y"))], f"task-{step}")
        if ns == "":
            parent = stored["configurable"]["checkpoint_id"]
    return facts


THREADS = {"agent-1", "agent-2", "failed", "paused", "raw"}


@pytest.fixture
def filled(url):
    """`url` with the threads of `fill`; yields (url, facts)."""
    return url, fill(url)


# ---- comparing


def normalized(saver: Any, thread_id: Optional[str] = None) -> list:
    """Everything a saver holds for one thread (or all), in `list` order (newest first): configs,
    parent links, checkpoints (values, versions, ids, timestamps), metadata and pending writes
    (grouped by task, each task's writes in order)."""
    config = {"configurable": {"thread_id": thread_id}} if thread_id else None
    result = []
    for t in saver.list(config):
        c = t.config["configurable"]
        parent = t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None
        result.append(
            {
                "thread_id": c["thread_id"],
                "checkpoint_ns": c.get("checkpoint_ns", ""),
                "checkpoint_id": c["checkpoint_id"],
                "parent": parent,
                "checkpoint": dict(t.checkpoint),
                "metadata": dict(t.metadata),
                "pending_writes": sorted(t.pending_writes or [], key=lambda w: w[0]),
            }
        )
    return result
