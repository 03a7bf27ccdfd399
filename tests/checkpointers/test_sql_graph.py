"""Graphs on the SQL savers: a run on every variant, and a SQLite thread that survives closing
and reopening its file with history, fork and replay intact."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from ferrograph.checkpointers import SqliteSaver
from ferrograph.graph import END, START, StateGraph


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


async def test_a_graph_runs_on_every_sql_saver(sql_saver):
    app = build().compile(checkpointer=sql_saver.saver)
    if sql_saver.is_async:
        assert await app.ainvoke({"topic": "x", "notes": []}, CONFIG) == FINAL
        history = [h async for h in app.aget_state_history(CONFIG)]
    else:
        assert app.invoke({"topic": "x", "notes": []}, CONFIG) == FINAL
        history = list(app.get_state_history(CONFIG))
    assert [(h.metadata["source"], h.metadata["step"]) for h in history] == [
        ("loop", 2), ("loop", 1), ("loop", 0), ("input", -1)
    ]
    assert history[0].values == FINAL


def test_a_thread_survives_closing_and_reopening_the_file(tmp_path):
    path = str(tmp_path / "graph.db")
    with SqliteSaver.from_conn_string(path) as saver:
        saver.setup()
        assert build().compile(checkpointer=saver).invoke({"topic": "x", "notes": []}, CONFIG) == FINAL

    with SqliteSaver.from_conn_string(path) as saver:
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

    with SqliteSaver.from_conn_string(path) as saver:
        app = build().compile(checkpointer=saver)
        history = list(app.get_state_history(CONFIG))
        sources = [h.metadata["source"] for h in history]
        assert sources.count("update") == 1 and sources.count("fork") == 1
        assert app.get_state(CONFIG).values == FINAL
