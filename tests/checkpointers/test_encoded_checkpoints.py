"""One crossing per step: a run hands ferrograph's own savers the step's checkpoint already
encoded by the Rust codec, with only the new versions' values (`_core.EncodedCheckpoint`); a
third-party saver still gets LangGraph's dict with every channel's live value."""

from __future__ import annotations

import contextlib
import json
import operator
from typing import Annotated, Any, TypedDict

import pytest

from dict_saver import DictSaver
from ferrograph import _core
from ferrograph.checkpointers import MemorySaver, SqliteSaver
from ferrograph.errors import SerializationError
from ferrograph.graph import END, START, StateGraph


class State(TypedDict):
    n: int
    log: Annotated[list, operator.add]
    note: Any


def _graph(saver: Any, graph_module: Any = None) -> Any:
    """Two nodes in a row, on ferrograph's StateGraph or on `graph_module`'s (LangGraph's)."""
    builder, start, end = (StateGraph, START, END) if graph_module is None else (graph_module.StateGraph, graph_module.START, graph_module.END)
    g = builder(State)
    g.add_node("a", lambda s: {"n": s["n"] + 1, "log": ["a"]})
    g.add_node("b", lambda s: {"n": s["n"] + 1})
    g.add_edge(start, "a")
    g.add_edge("a", "b")
    g.add_edge("b", end)
    return g.compile(checkpointer=saver)


def _record_puts(saver: Any) -> list[tuple[Any, dict]]:
    """What the saver's `put` (or `run_batch`'s puts) is handed from now on (checkpoint,
    new_versions)."""
    puts: list[tuple[Any, dict]] = []
    put = saver.put

    def recording(config: dict, checkpoint: Any, metadata: dict, new_versions: dict) -> dict:
        puts.append((checkpoint, dict(new_versions)))
        return put(config, checkpoint, metadata, new_versions)

    saver.put = recording
    run_batch = getattr(saver, "run_batch", None)
    if run_batch is not None:  # a background writer hands its puts over in batches

        def recording_batch(calls: Any) -> Any:
            calls = list(calls)
            puts.extend((args[1], dict(args[3])) for method, args in calls if method == "put")
            return run_batch(calls)

        saver.run_batch = recording_batch
    return puts


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_first_party_savers_get_the_step_encoded_with_only_new_values(kind, tmp_path) -> None:
    with contextlib.ExitStack() as stack:
        saver = MemorySaver() if kind == "memory" else stack.enter_context(SqliteSaver.from_conn_string(str(tmp_path / "x.db")))
        _check_a_run(saver)


def _check_a_run(saver: Any) -> None:
    puts = _record_puts(saver)
    app = _graph(saver)
    config = {"configurable": {"thread_id": "t"}}
    assert app.invoke({"n": 0, "log": [], "note": None}, config) == {"n": 2, "log": ["a"], "note": None}
    assert puts, "the run stored its checkpoints"
    for checkpoint, new_versions in puts:
        assert isinstance(checkpoint, _core.EncodedCheckpoint)
        stored = json.loads(checkpoint.json_without_values())
        assert "channel_values" not in stored and stored["id"] == checkpoint.id
        assert set(new_versions) <= set(stored["channel_versions"])
        for channel in stored["channel_versions"]:
            if channel not in new_versions:
                assert checkpoint.value(channel) is None, "only the new versions' values cross"
    last, new_versions = puts[-1]
    assert "n" in new_versions and _core.loads(last.value("n")) == 2
    assert app.get_state(config).values == {"n": 2, "log": ["a"], "note": None}
    assert [s.values.get("n") for s in app.get_state_history(config)] == [2, 1, 0, None]


def test_a_third_party_saver_gets_langgraphs_dict() -> None:
    saver = DictSaver()
    puts = _record_puts(saver)
    app = _graph(saver)
    config = {"configurable": {"thread_id": "t"}}
    app.invoke({"n": 0, "log": [], "note": None}, config)
    assert puts and all(isinstance(c, dict) for c, _ in puts)
    assert puts[-1][0]["channel_values"]["n"] == 2 and puts[-1][0]["channel_values"]["log"] == ["a"]
    assert app.get_state(config).values == {"n": 2, "log": ["a"], "note": None}


def test_a_value_the_codec_refuses_is_an_error_naming_its_channel() -> None:
    class Opaque:
        pass

    app = _graph(MemorySaver())
    with pytest.raises(SerializationError, match="note"):
        app.invoke({"n": 0, "log": [], "note": Opaque()}, {"configurable": {"thread_id": "t"}})


def test_the_protocols_dict_still_works_on_every_first_party_saver(tmp_path) -> None:
    """`put` keeps LangGraph's dict shape for callers of the protocol (LangGraph's engine
    through as_langgraph_saver, tools); an EncodedCheckpoint is only what a run hands over."""
    from ferrograph.checkpointers.base import empty_checkpoint

    with SqliteSaver.from_conn_string(str(tmp_path / "d.db")) as sql:
        for saver in (MemorySaver(), sql):
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"x": (1, 2)}
            checkpoint["channel_versions"] = {"x": saver.get_next_version(None, None)}
            stored = saver.put({"configurable": {"thread_id": "p", "checkpoint_ns": ""}}, checkpoint, {"source": "input", "step": -1}, dict(checkpoint["channel_versions"]))
            assert saver.get_tuple(stored).checkpoint["channel_values"] == {"x": (1, 2)}


def test_a_memory_run_stores_the_metadata_langgraphs_saver_does() -> None:
    """The native memory saver's run sink writes each checkpoint's metadata as text (source and
    step, then what the run adds): read back, the same keys, values and order as LangGraph's
    InMemorySaver holds for the same run; a sink whose shared metadata names source or step is
    refused (each checkpoint writes its own)."""
    import langgraph.graph
    from langgraph.checkpoint.memory import InMemorySaver

    config = {"configurable": {"thread_id": "t", "user": "ünï", "attempt": 2}, "metadata": {"tags": ["x", 1.5]}}
    thread = {"configurable": {"thread_id": "t"}}
    ours = MemorySaver()
    _graph(ours).invoke({"n": 0, "log": [], "note": None}, config)
    theirs = InMemorySaver()
    _graph(theirs, langgraph.graph).invoke({"n": 0, "log": [], "note": None}, config)
    expected = [list(t.metadata.items()) for t in theirs.list(thread)]
    assert [list(t.metadata.items()) for t in ours.list(thread)] == expected
    assert [m[:2] for m in expected] == [[("source", "loop"), ("step", s)] for s in (2, 1, 0)] + [[("source", "input"), ("step", -1)]]
    for key in ("source", "step"):
        with pytest.raises(ValueError, match=key):
            ours.run_sink("t", "", {key: 1}, ours.serializer)
