"""The saver protocol's vocabulary has one home (ferrograph_checkpoint, through `_core`): the
special channels, the expect-latest mark, the metadata taken from a config and the channel
version format mean the same to the run and to every saver."""

from __future__ import annotations

import re

import pytest

from ferrograph import _core
from ferrograph.checkpointers import MemorySaver
from ferrograph.checkpointers.base import (
    ERROR,
    EXPECT_LATEST,
    INTERRUPT,
    RESUME,
    SCHEDULED,
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    checkpoint_metadata,
    empty_checkpoint,
)
from ferrograph.checkpointers.sql import EXPECT_LATEST as SQL_EXPECT_LATEST
from ferrograph.errors import InvalidCheckpointError

VERSION = re.compile(r"^\d{32}\.0\.\d{16}$")


def test_special_channels_and_their_indexes() -> None:
    assert (ERROR, SCHEDULED, INTERRUPT, RESUME) == ("__error__", "__scheduled__", "__interrupt__", "__resume__")
    assert WRITES_IDX_MAP == {ERROR: -1, SCHEDULED: -2, INTERRUPT: -3, RESUME: -4}
    assert EXPECT_LATEST == SQL_EXPECT_LATEST == "__ferrograph_expect_latest__"


def test_checkpoint_metadata_is_langgraphs_merge_without_writes() -> None:
    config = {
        "configurable": {
            "thread_id": "t",
            "checkpoint_ns": "",
            "checkpoint_id": "c",
            "checkpoint_map": {},
            "langgraph_step": 3,
            "__private": 1,
            "user": "ann\x00",
            "n": 2,
            "ratio": 0.5,
            "flag": True,
            "obj": object(),
        },
        "metadata": {"source": "from config", "tag": "x"},
    }
    metadata = {"source": "loop", "step": 1, "writes": {"a": 1}, "note": "a\x00b"}
    merged = checkpoint_metadata(config, metadata)
    expected = {"source": "loop", "step": 1, "writes": {"a": 1}, "note": "ab", "tag": "x", "user": "ann", "n": 2, "ratio": 0.5, "flag": True}
    assert merged == expected
    # As LangGraph's get_checkpoint_metadata, and its get_serializable_checkpoint_metadata
    # (its Postgres saver's), which also drops "writes".
    from langgraph.checkpoint.base import get_checkpoint_metadata, get_serializable_checkpoint_metadata

    assert merged == get_checkpoint_metadata(config, metadata)
    dropped = {k: v for k, v in expected.items() if k != "writes"}
    assert checkpoint_metadata(config, metadata, drop_writes=True) == dropped == get_serializable_checkpoint_metadata(config, metadata)
    assert checkpoint_metadata({"configurable": {"thread_id": "t"}}, None) == {}
    with pytest.raises(InvalidCheckpointError, match="metadata must be a dict"):
        checkpoint_metadata({}, [1])


@pytest.mark.parametrize("saver", [MemorySaver(), BaseCheckpointSaver()], ids=["memory", "base"])
def test_one_version_format(saver) -> None:
    first = saver.get_next_version(None, None)
    assert VERSION.match(first), first
    assert int(saver.get_next_version(first, None).split(".")[0]) == 2
    assert int(saver.get_next_version(41, None).split(".")[0]) == 42
    assert VERSION.match(_core.next_version("00000000000000000000000000000007.0.6487516251786376"))


def test_the_memory_saver_stores_the_merged_metadata() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    config = {"configurable": {"thread_id": "t", "checkpoint_ns": "", "user": "ann", "langgraph_node": "a"}}
    metadata = {"source": "input", "step": -1, "writes": None}
    got = {}
    for name, saver in (("ours", MemorySaver()), ("langgraph", InMemorySaver())):
        stored = saver.put(config, empty_checkpoint(), metadata, {})
        got[name] = saver.get_tuple(stored).metadata
    # LangGraph's memory saver keeps the legacy "writes" key; so does ours.
    assert got["ours"] == got["langgraph"] == {"source": "input", "step": -1, "writes": None, "user": "ann"}


def test_the_postgres_saver_drops_writes_from_the_metadata_as_langgraph_s(ferrograph_postgres_url) -> None:
    from langgraph.checkpoint.postgres import PostgresSaver as LangGraphPostgresSaver

    from ferrograph.checkpointers import PostgresSaver

    config = {"configurable": {"thread_id": "t", "checkpoint_ns": "", "user": "ann"}, "metadata": {"run_id": "r"}}
    metadata = {"source": "loop", "step": 1, "writes": {"foo": "bar"}, "score": None}
    got = {}
    for name, kind in (("ours", PostgresSaver), ("langgraph", LangGraphPostgresSaver)):
        with kind.from_conn_string(ferrograph_postgres_url) as saver:
            saver.setup()
            stored = saver.put({**config, "configurable": {**config["configurable"], "thread_id": name}}, empty_checkpoint(), metadata, {})
            got[name] = saver.get_tuple(stored).metadata
    assert got["ours"] == got["langgraph"] == {"source": "loop", "step": 1, "score": None, "user": "ann", "run_id": "r"}


def test_a_runs_checkpoints_carry_the_same_metadata() -> None:
    from typing import TypedDict

    from ferrograph.graph import END, START, StateGraph

    class State(TypedDict):
        n: int

    graph = StateGraph(State)
    graph.add_node("inc", lambda s: {"n": s["n"] + 1})
    graph.add_edge(START, "inc")
    graph.add_edge("inc", END)
    saver = MemorySaver()
    app = graph.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t", "user": "ann", "langgraph_node": "x"}, "metadata": {"tag": 1}}
    app.invoke({"n": 0}, config)
    for t in saver.list({"configurable": {"thread_id": "t"}}):
        assert {k: v for k, v in t.metadata.items() if k not in ("source", "step", "parents")} == {"user": "ann", "tag": 1}
