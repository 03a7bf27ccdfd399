"""Graphs on the savers: a run on every saver through the testing plugin's `saver`,
`async_saver` and `graph_harness` fixtures (and on Postgres pools), and a SQLite thread that survives closing
and reopening its file with history, fork and replay intact."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest

from ferrograph.graph import END, START, StateGraph
from ferrograph.testing import open_async_saver, open_saver


class State(TypedDict):
    topic: str
    notes: Annotated[list, operator.add]


def build():
    g = StateGraph(State)
    g.add_node("a", lambda s: {"notes": ["a"]})
    g.add_node("b", lambda s: {"notes": [("b", len(s["notes"]))]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    return g


CONFIG = {"configurable": {"thread_id": "1"}}
FINAL = {"topic": "x", "notes": ["a", ("b", 1)]}


HISTORY = dict(sources=["input", "loop", "loop", "loop"], steps=[-1, 0, 1, 2], nexts=[("__start__",), ("a",), ("b",), ()])


def test_a_graph_runs_on_every_saver(saver, graph_harness):
    run = graph_harness.run(build(), {"topic": "x", "notes": []}, saver=saver)
    assert run.result == FINAL
    run.assert_history(**HISTORY).assert_values(FINAL).assert_next()


async def test_a_graph_runs_on_every_async_saver(async_saver, graph_harness):
    run = await graph_harness.arun(build(), {"topic": "x", "notes": []}, saver=async_saver)
    assert run.result == FINAL
    run.assert_history(**HISTORY).assert_values(FINAL).assert_next()


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_a_graph_runs_on_a_postgres_pool(ferrograph_postgres_url, graph_harness, is_async):
    if is_async:
        async with open_async_saver("postgres", ferrograph_postgres_url, pool=True) as saver:
            run = await graph_harness.arun(build(), {"topic": "x", "notes": []}, saver=saver)
    else:
        with open_saver("postgres", ferrograph_postgres_url, pool=True) as saver:
            run = graph_harness.run(build(), {"topic": "x", "notes": []}, saver=saver)
    run.assert_history(**HISTORY).assert_values(FINAL)


def test_a_thread_survives_closing_and_reopening_the_file(tmp_path):
    path = str(tmp_path / "graph.db")
    with open_saver("sqlite", path) as saver:
        assert build().compile(checkpointer=saver).invoke({"topic": "x", "notes": []}, CONFIG) == FINAL

    with open_saver("sqlite", path, setup=False) as saver:  # reopened: no setup again
        app = build().compile(checkpointer=saver)
        state = app.get_state(CONFIG)
        assert (state.values, state.next) == (FINAL, ())
        history = list(app.get_state_history(CONFIG))
        assert len(history) == 4
        start = history[2]  # before "a" ran
        assert (start.values, start.next) == ({"topic": "x", "notes": []}, ("a",))
        fork = app.update_state(start.config, {"topic": "forked"})
        assert app.invoke(None, fork) == {"topic": "forked", "notes": ["a", ("b", 1)]}
        assert app.invoke(None, start.config) == FINAL  # replay

    with open_saver("sqlite", path, setup=False) as saver:  # reopened: no setup again
        app = build().compile(checkpointer=saver)
        history = list(app.get_state_history(CONFIG))
        sources = [h.metadata["source"] for h in history]
        assert sources.count("update") == 1 and sources.count("fork") == 1
        assert app.get_state(CONFIG).values == FINAL
