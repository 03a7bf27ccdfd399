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
    merged = checkpoint_metadata(config, {"source": "loop", "step": 1, "writes": {"a": 1}, "note": "a\x00b"})
    assert merged == {"source": "loop", "step": 1, "note": "ab", "tag": "x", "user": "ann", "n": 2, "ratio": 0.5, "flag": True}
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
    saver = MemorySaver()
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": "", "user": "ann", "langgraph_node": "a"}}
    stored = saver.put(config, empty_checkpoint(), {"source": "input", "step": -1, "writes": None}, {})
    assert saver.get_tuple(stored).metadata == {"source": "input", "step": -1, "user": "ann"}


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
