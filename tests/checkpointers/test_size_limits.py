"""max_value_bytes and warn_value_bytes on every saver: a value or pending write past the limit is
a SerializationError naming the channel and the thread, and nothing of it is stored; the warning
is logged once per channel with the size."""

from __future__ import annotations

import logging
from typing import TypedDict

import pytest

from ferrograph.checkpointers import AsyncPostgresSaver, AsyncSqliteSaver, MemorySaver, PostgresSaver, SqliteSaver
from ferrograph.checkpointers.base import empty_checkpoint
from ferrograph.errors import SerializationError
from ferrograph.graph import END, START, StateGraph


class State(TypedDict):
    text: str


def graph():
    g = StateGraph(State)
    g.add_node("grow", lambda s: {"text": s["text"] * 4})
    g.add_edge(START, "grow")
    g.add_conditional_edges("grow", lambda s: END if len(s["text"]) > 5000 else "grow")
    return g


@pytest.mark.parametrize("kind", ["memory", "sqlite", "sqlite-async", "postgres", "postgres-async"])
async def test_limits_refuse_and_warn(kind, tmp_path, request, caplog):
    limits = {"max_value_bytes": 3000, "warn_value_bytes": 200}
    url = request.getfixturevalue("ferrograph_postgres_url") if kind.startswith("postgres") else str(tmp_path / "s.db")
    caplog.set_level(logging.WARNING, logger="ferrograph.checkpointers")
    thread = {"configurable": {"thread_id": "t"}}
    if kind == "memory":
        saver = MemorySaver(**limits)
        app = graph().compile(checkpointer=saver)
        with pytest.raises(SerializationError, match=r"channel 'text' \(thread 't'\) is \d+ bytes encoded, over max_value_bytes=3000"):
            app.invoke({"text": "ab"}, thread)
        state = app.get_state(thread)
    elif kind in ("sqlite", "postgres"):
        cls = SqliteSaver if kind == "sqlite" else PostgresSaver
        with cls.from_conn_string(url, **limits) as saver:
            saver.setup()
            app = graph().compile(checkpointer=saver)
            with pytest.raises(SerializationError, match=r"channel 'text' \(thread 't'\) is \d+ bytes encoded, over max_value_bytes=3000"):
                app.invoke({"text": "ab"}, thread)
            state = app.get_state(thread)
            c = empty_checkpoint()
            c["channel_values"] = {"big": "x" * 4000}
            c["channel_versions"] = {"big": "1"}
            with pytest.raises(SerializationError, match="channel 'big'"):
                saver.put({"configurable": {"thread_id": "u", "checkpoint_ns": ""}}, c, {}, {"big": "1"})
            assert saver.get_tuple({"configurable": {"thread_id": "u"}}) is None
    else:
        cls = AsyncSqliteSaver if kind == "sqlite-async" else AsyncPostgresSaver
        async with cls.from_conn_string(url, **limits) as saver:
            await saver.setup()
            app = graph().compile(checkpointer=saver)
            with pytest.raises(SerializationError, match=r"channel 'text' \(thread 't'\) is \d+ bytes encoded, over max_value_bytes=3000"):
                await app.ainvoke({"text": "ab"}, thread)
            state = await app.aget_state(thread)
    # The last stored state is the step before the value grew past the limit.
    assert 200 < len(state.values["text"]) <= 3000
    warnings = [r.getMessage() for r in caplog.records if "warn_value_bytes=200" in r.getMessage()]
    assert len(warnings) == 1 and "channel 'text'" in warnings[0] and "bytes encoded" in warnings[0]


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_value_bytes must be a positive int"):
        MemorySaver(max_value_bytes=0)
    with pytest.raises(ValueError, match="warn_value_bytes \\(10\\) is above max_value_bytes \\(5\\)"):
        MemorySaver(max_value_bytes=5, warn_value_bytes=10)
