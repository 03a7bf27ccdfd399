"""ferrograph savers as LangGraph's checkpointer (`as_langgraph_saver`), checked by running the
same real LangGraph graphs on LangGraph's own InMemorySaver and on ours, and comparing."""

from __future__ import annotations

import operator
import threading
import time
from typing import Annotated, Any, Callable, TypedDict

import pytest

pytest.importorskip("langgraph")

from langgraph.checkpoint.base import BaseCheckpointSaver as LangGraphBase  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver as LangGraphMemory  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Command, Interrupt, Send, interrupt  # noqa: E402

from ferrograph.checkpointers import MemorySaver  # noqa: E402
from ferrograph.integrations.langgraph import as_langgraph_saver  # noqa: E402

from dict_saver import DictSaver  # noqa: E402

SAVERS: dict[str, Callable[[], Any]] = {
    "langgraph": LangGraphMemory,
    "ferrograph-memory": lambda: as_langgraph_saver(MemorySaver()),
    "ferrograph-dict": lambda: as_langgraph_saver(DictSaver()),
}
OURS = [k for k in SAVERS if k != "langgraph"]


class State(TypedDict, total=False):
    items: Annotated[list, operator.add]
    tag: tuple
    answer: str


def counter_graph(checkpointer: Any) -> Any:
    def a(state: State) -> dict:
        return {"items": [f"a{len(state.get('items', []))}"], "tag": ("a", len(state.get("items", [])))}

    def b(state: State) -> dict:
        return {"items": ["b"]}

    g = StateGraph(State)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    return g.compile(checkpointer=checkpointer)


def fanout_graph(checkpointer: Any) -> Any:
    def worker(arg: dict) -> dict:
        return {"items": [arg["n"] * 10]}

    g = StateGraph(State)
    g.add_node("worker", worker)
    g.add_conditional_edges(START, lambda s: [Send("worker", {"n": n}) for n in (1, 2, 3)])
    g.add_edge("worker", END)
    return g.compile(checkpointer=checkpointer)


def interrupt_graph(checkpointer: Any) -> Any:
    def ask(state: State) -> dict:
        first = interrupt({"question": "name?"})
        second = interrupt({"question": "colour?"})
        return {"answer": f"{first}/{second}"}

    g = StateGraph(State)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    return g.compile(checkpointer=checkpointer)


def history(graph: Any, config: dict) -> list[tuple]:
    """The comparable part of a thread's history: values, next, source and step, newest first."""
    return [
        (s.values, s.next, s.metadata["source"], s.metadata["step"], len(s.tasks))
        for s in graph.get_state_history(config)
    ]


def as_langgraph_sees_it(x: Any) -> Any:
    """LangGraph's serializer returns tuples as lists; ferrograph keeps them (a deliberate
    difference), so results are compared with every plain tuple read as a list. Interrupt ids
    hash the (random) checkpoint and task ids, so interrupts are compared by value."""
    if isinstance(x, Interrupt):
        return ("Interrupt", as_langgraph_sees_it(x.value))
    if type(x) in (tuple, list):
        return [as_langgraph_sees_it(v) for v in x]
    if type(x) is dict:
        return {k: as_langgraph_sees_it(v) for k, v in x.items()}
    return x


def run_everywhere(scenario: Callable[[Any], Any]) -> dict[str, Any]:
    return {name: as_langgraph_sees_it(scenario(make())) for name, make in SAVERS.items()}


def test_wrapper_is_a_langgraph_saver() -> None:
    wrapped = as_langgraph_saver(MemorySaver())
    assert isinstance(wrapped, LangGraphBase)
    assert as_langgraph_saver(wrapped) is wrapped
    assert isinstance(wrapped.get_next_version(None, None), str)


def test_invoke_twice_and_history_match_langgraph() -> None:
    def scenario(saver: Any) -> Any:
        graph = counter_graph(saver)
        config = {"configurable": {"thread_id": "t"}}
        first = graph.invoke({"items": ["start"]}, config)
        second = graph.invoke({"items": ["again"]}, config)
        state = graph.get_state(config)
        return first, second, (state.values, state.next), history(graph, config)

    results = run_everywhere(scenario)
    for name in OURS:
        assert results[name] == results["langgraph"], name
    first, second, _, hist = results["ferrograph-memory"]
    assert second["items"] == ["start", "a1", "b", "again", "a4", "b"]
    assert [h[2] for h in hist].count("input") == 2


def test_history_filter_limit_before_match_langgraph() -> None:
    def scenario(saver: Any) -> Any:
        graph = counter_graph(saver)
        config = {"configurable": {"thread_id": "t"}}
        graph.invoke({"items": ["x"]}, config)
        graph.invoke({"items": ["y"]}, config)
        snaps = list(graph.get_state_history(config))
        loops = [s.values for s in graph.get_state_history(config, filter={"source": "loop"}, limit=3)]
        before = [s.values for s in graph.get_state_history(config, before=snaps[2].config)]
        return loops, before

    results = run_everywhere(scenario)
    for name in OURS:
        assert results[name] == results["langgraph"], name


def test_tuples_come_back_as_tuples() -> None:
    graph = counter_graph(as_langgraph_saver(MemorySaver()))
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"items": []}, config)
    assert graph.invoke({"items": []}, config)["tag"] == ("a", 2)
    assert graph.get_state(config).values["tag"] == ("a", 2)


def test_update_state_fork_matches_langgraph() -> None:
    def scenario(saver: Any) -> Any:
        graph = counter_graph(saver)
        config = {"configurable": {"thread_id": "t"}}
        graph.invoke({"items": ["x"]}, config)
        after_a = next(s for s in graph.get_state_history(config) if s.next == ("b",))
        forked = graph.update_state(after_a.config, {"items": ["forked"]})
        fork_state = graph.get_state(forked)
        resumed = graph.invoke(None, forked)
        return fork_state.values, fork_state.next, resumed, history(graph, config)

    results = run_everywhere(scenario)
    for name in OURS:
        assert results[name] == results["langgraph"], name
    assert results["ferrograph-memory"][2]["items"] == ["x", "a1", "forked", "b"]


def test_interrupt_and_resume_match_langgraph() -> None:
    def scenario(saver: Any) -> Any:
        graph = interrupt_graph(saver)
        config = {"configurable": {"thread_id": "t"}}
        out = [graph.invoke({"items": []}, config)]
        pending = graph.get_state(config)
        out.append(graph.invoke(Command(resume="ada"), config))
        out.append(graph.invoke(Command(resume="blue"), config))
        return out, pending.next, [i.value for i in pending.interrupts], history(graph, config)

    results = run_everywhere(scenario)
    for name in OURS:
        assert results[name][1:] == results["langgraph"][1:], name
        # Interrupt objects compare by value and id.
        assert results[name][0] == results["langgraph"][0], name
    outputs = results["ferrograph-memory"][0]
    assert outputs[0]["__interrupt__"] == [("Interrupt", {"question": "name?"})]
    assert outputs[2]["answer"] == "ada/blue"


def test_send_fanout_matches_langgraph() -> None:
    def scenario(saver: Any) -> Any:
        graph = fanout_graph(saver)
        config = {"configurable": {"thread_id": "t"}}
        return graph.invoke({"items": []}, config), history(graph, config)

    results = run_everywhere(scenario)
    for name in OURS:
        assert results[name] == results["langgraph"], name
    assert results["ferrograph-memory"][0]["items"] == [10, 20, 30]


def test_failed_step_resumes_like_langgraph() -> None:
    def scenario(saver: Any) -> Any:
        calls = {"ok": 0, "flaky": 0}
        ok_done = threading.Event()

        def ok(state: State) -> dict:
            calls["ok"] += 1
            ok_done.set()
            return {"items": ["ok"]}

        def flaky(state: State) -> dict:
            calls["flaky"] += 1
            if calls["flaky"] == 1:
                # Fail only once the parallel node has finished, so its writes are saved.
                ok_done.wait(5)
                time.sleep(0.05)
                raise RuntimeError("first try fails")
            return {"items": ["flaky"]}

        g = StateGraph(State)
        g.add_node("ok", ok)
        g.add_node("flaky", flaky)
        g.add_edge(START, "ok")
        g.add_edge(START, "flaky")
        graph = g.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "t"}}
        with pytest.raises(RuntimeError, match="first try fails"):
            graph.invoke({"items": []}, config)
        state = graph.get_state(config)
        errors = sorted((t.name, t.error is not None) for t in state.tasks)
        result = graph.invoke(None, config)
        return state.next, errors, result, dict(calls)

    results = run_everywhere(scenario)
    for name in OURS:
        assert results[name] == results["langgraph"], name
    assert results["ferrograph-memory"][3] == {"ok": 1, "flaky": 2}


async def test_async_invoke_and_history_match_langgraph() -> None:
    async def scenario(saver: Any) -> Any:
        graph = counter_graph(saver)
        config = {"configurable": {"thread_id": "t"}}
        await graph.ainvoke({"items": ["x"]}, config)
        out = await graph.ainvoke({"items": ["y"]}, config)
        snaps = [(s.values, s.next) async for s in graph.aget_state_history(config)]
        return out, snaps

    results = {name: as_langgraph_sees_it(await scenario(make())) for name, make in SAVERS.items()}
    for name in OURS:
        assert results[name] == results["langgraph"], name


def test_unserializable_state_is_a_clear_error() -> None:
    from ferrograph.errors import SerializationError

    class Opaque:
        pass

    graph = counter_graph(as_langgraph_saver(MemorySaver()))
    with pytest.raises(SerializationError, match="tag"):
        graph.invoke({"items": [], "tag": (Opaque(),)}, {"configurable": {"thread_id": "t"}})
