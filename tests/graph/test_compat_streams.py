"""Issue 12, item 11 (all but "messages"): `stream_mode="custom"` (a `writer` parameter,
`get_stream_writer()`, `runtime.stream_writer`), "checkpoints" and "tasks", and several modes at
once as `(mode, chunk)` — differentially (see compat_harness).

Ported from LangGraph: test_get_stream_writer (test_pregel.py); the "custom", "checkpoints" and
"tasks" programs of LangGraph's streaming guide.
"""

import operator
import time
from typing import Annotated, Any, TypedDict

import pytest

pytest.register_assert_rewrite("timetravel_harness", "compat_harness")

from timetravel_savers import time_travel_saver  # noqa: E402,F401 - fixture


class Foo(TypedDict):
    foo: str


class Log(TypedDict):
    log: Annotated[list, operator.add]


def test_get_stream_writer(run_both):
    """Ported from LangGraph's test_get_stream_writer."""

    def scenario(tt):
        def my_node(state):
            writer = tt.impl.get_stream_writer()
            writer("custom!")
            return state

        graph = tt.impl.StateGraph(Foo).add_node(my_node).add_edge(tt.impl.START, "my_node").compile()
        tt.rec("custom", tt.value(list(graph.stream({"foo": "bar"}, stream_mode="custom"))))
        tt.rec("values", tt.value(list(graph.stream({"foo": "bar"}, stream_mode="values"))))
        tt.rec("custom+updates", tt.value(list(graph.stream({"foo": "bar"}, stream_mode=["custom", "updates"]))))
        tt.rec("invoke-custom", tt.value(graph.invoke({"foo": "bar"}, stream_mode="custom")))

    run_both(scenario)


def _writers(tt):
    def with_param(state, writer: tt.impl.StreamWriter):
        writer({"progress": "half"})
        writer({"progress": "done"})
        return {"log": ["param"]}

    def with_runtime(state, runtime: tt.impl.Runtime):
        runtime.stream_writer(("runtime", len(state["log"])))
        return {"log": ["runtime"]}

    def silent(state):
        return {"log": ["silent"]}

    g = tt.impl.StateGraph(Log)
    g.add_node("with_param", with_param)
    g.add_node("with_runtime", with_runtime)
    g.add_node("silent", silent)
    g.add_edge(tt.impl.START, "with_param")
    g.add_edge("with_param", "with_runtime")
    g.add_edge("with_runtime", "silent")
    return g


@pytest.mark.parametrize(
    "mode",
    ["custom", ["custom", "updates"], ["values", "custom", "updates"], ["updates", "values"], "updates"],
    ids=str,
)
def test_custom_stream_writer_parameter_and_runtime(run_both, mode):
    def scenario(tt):
        app = _writers(tt).compile()
        tt.rec("stream", tt.value(list(app.stream({"log": []}, stream_mode=mode))))
        tt.rec("subgraphs", tt.value(list(app.stream({"log": []}, stream_mode=mode, subgraphs=True))))

    run_both(scenario)


def test_custom_stream_async(run_both):
    async def scenario(tt):
        async def a(state, writer: tt.impl.StreamWriter):
            writer("a-1")
            tt.impl.get_stream_writer()("a-2")
            return {"log": ["a"]}

        def b(state, writer: tt.impl.StreamWriter):  # a sync node in an async run
            writer("b-1")
            return {"log": ["b"]}

        g = tt.impl.StateGraph(Log)
        g.add_node("a", a)
        g.add_node("b", b)
        g.add_edge(tt.impl.START, "a")
        g.add_edge("a", "b")
        app = g.compile()
        tt.rec("custom", tt.value([c async for c in app.astream({"log": []}, stream_mode="custom")]))
        tt.rec("modes", tt.value([c async for c in app.astream({"log": []}, stream_mode=["updates", "custom"])]))

    run_both(scenario)


def test_custom_stream_of_parallel_nodes(run_both):
    """Each node's custom chunks come before its update; parallel nodes finish apart."""

    def scenario(tt):
        def node(name, wait):
            def run(state, writer: tt.impl.StreamWriter):
                time.sleep(wait)
                writer(f"{name}-chunk")
                return {"log": [name]}

            return run

        g = tt.impl.StateGraph(Log)
        for name, wait in (("slow", 0.5), ("fast", 0.0)):
            g.add_node(name, node(name, wait))
            g.add_edge(tt.impl.START, name)
        app = g.compile()
        tt.rec("modes", tt.value(list(app.stream({"log": []}, stream_mode=["custom", "updates"]))))

    run_both(scenario)


def test_custom_chunks_before_an_interrupt_and_a_failure(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        def asks(state, writer: tt.impl.StreamWriter):
            writer("before the question")
            answer = tt.impl.interrupt("question")
            writer(f"got {answer}")
            return {"log": [answer]}

        def fails(state, writer: tt.impl.StreamWriter):
            writer("about to fail")
            raise ValueError("boom")

        def build(tt):
            g = tt.impl.StateGraph(Log)
            g.add_node("asks", asks)
            g.add_node("fails", fails)
            g.add_edge(tt.impl.START, "asks")
            g.add_edge("asks", "fails")
            return g

        g = tt.build(build)
        tt.rec("first", tt.value(list(g.stream({"log": []}, tt.cfg, stream_mode=["custom", "updates"]))))
        chunks = []
        try:
            for chunk in g.stream(tt.impl.Command(resume="yes"), tt.cfg, stream_mode=["custom", "updates"]):
                chunks.append(chunk)
        except ValueError as exc:
            chunks.append(("raised", str(exc)))
        tt.rec("resume", tt.value(chunks))

    run_both(scenario, time_travel_saver)


def _ids(tt, x: Any, pos: dict) -> Any:
    """Canonical checkpoint/task events: checkpoint ids as positions, task ids dropped."""
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if k in ("config", "parent_config"):
                out[k] = tt.config(v, pos)
            elif k == "id":
                out[k] = "<id>"
            else:
                out[k] = _ids(tt, v, pos)
        return out
    if isinstance(x, (list, tuple)):
        return [_ids(tt, v, pos) for v in x]
    return tt.value(x)


def _fan(tt):
    def plan(state):
        return {"log": ["plan"]}

    def left(state):
        return {"log": ["left"]}

    def right(state):
        return {"log": ["right"]}

    def join(state):
        return {"log": ["join"]}

    g = tt.impl.StateGraph(Log)
    g.add_node("plan", plan)
    g.add_node("left", left)
    g.add_node("right", right)
    g.add_node("join", join)
    g.add_edge(tt.impl.START, "plan")
    g.add_edge("plan", "left")
    g.add_edge("plan", "right")
    g.add_edge(["left", "right"], "join")
    return g


def _sorted_within_steps(chunks: list) -> list:
    """Events of parallel tasks come in finishing order: within a step (between two
    checkpoint events) they are compared sorted."""
    out, window = [], []
    for chunk in chunks:
        if chunk[0] == "checkpoints":
            out.extend(sorted(window, key=repr))
            out.append(chunk)
            window = []
        else:
            window.append(chunk)
    return out + sorted(window, key=repr)


@pytest.mark.parametrize("modes", [["checkpoints"], ["tasks"], ["checkpoints", "tasks"], ["checkpoints", "tasks", "updates", "values"]], ids=str)
def test_checkpoints_and_tasks_modes(run_both, time_travel_saver, modes):  # noqa: F811
    def scenario(tt):
        g = tt.build(_fan)
        chunks = list(g.stream({"log": []}, tt.cfg, stream_mode=modes))
        pos = tt.positions()
        tt.rec("stream", _sorted_within_steps([_ids(tt, c, pos) for c in chunks]))
        again = list(g.stream({"log": ["again"]}, tt.cfg, stream_mode=modes, interrupt_before=["join"]))
        pos = tt.positions()
        tt.rec("interrupted", _sorted_within_steps([_ids(tt, c, pos) for c in again]))

    run_both(scenario, time_travel_saver)


def test_tasks_mode_without_checkpointer_and_with_errors(run_both):
    def scenario(tt):
        def ok(state):
            return {"log": ["ok"]}

        def broken(state):
            raise KeyError("missing")

        g = tt.impl.StateGraph(Log)
        g.add_node("ok", ok)
        g.add_node("broken", broken)
        g.add_edge(tt.impl.START, "ok")
        g.add_edge("ok", "broken")
        app = g.compile()
        chunks = []
        try:
            for chunk in app.stream({"log": []}, stream_mode=["tasks", "checkpoints"]):
                chunks.append(chunk)
        except KeyError:
            chunks.append("raised")
        tt.rec("chunks", _ids(tt, chunks, {}))

    run_both(scenario)


def test_checkpoints_and_tasks_modes_async(run_both, time_travel_saver):  # noqa: F811
    async def scenario(tt):
        g = tt.build(_fan)
        chunks = [c async for c in g.astream({"log": []}, tt.cfg, stream_mode=["checkpoints", "tasks", "custom"])]
        pos = await tt.apositions()
        tt.rec("stream", _sorted_within_steps([_ids(tt, c, pos) for c in chunks]))

    run_both(scenario, time_travel_saver)
