"""Issue 12, item 6: input, output and private schemas, differentially (see compat_harness).

Ported from LangGraph: test_node_schemas_custom_output (test_pregel.py) and the "private
state" / "input and output schemas" programs of LangGraph's graph-API guide.
"""

import dataclasses
import operator
from typing import Annotated, TypedDict

import pytest

pytest.register_assert_rewrite("timetravel_harness", "compat_harness")

from compat_harness import attempt  # noqa: E402
from timetravel_savers import time_travel_saver  # noqa: E402,F401 - fixture


def _custom_output(tt, seen):
    """test_node_schemas_custom_output: each node reads only its own schema's keys; "now" is
    a channel only node b's schema declares."""

    class State(TypedDict):
        hello: str
        bye: str
        messages: Annotated[list[str], tt.impl.add_messages]

    class Output(TypedDict):
        messages: list[str]

    class StateForA(TypedDict):
        hello: str
        messages: Annotated[list[str], tt.impl.add_messages]

    class StateForB(TypedDict):
        bye: str
        now: int

    class StateForC(TypedDict):
        hello: str
        now: int

    def node_a(state: StateForA) -> State:
        seen.append(("a", tt.value(state)))

    def node_b(state: StateForB):
        seen.append(("b", tt.value(state)))
        return {"now": 123, "hello": "again"}

    def node_c(state: StateForC) -> StateForC:
        seen.append(("c", tt.value(state)))

    builder = tt.impl.StateGraph(State, output_schema=Output)
    builder.add_node("a", node_a)
    builder.add_node("b", node_b)
    builder.add_node("c", node_c)
    builder.add_edge(tt.impl.START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    return builder


def test_node_schemas_custom_output(run_both):
    def scenario(tt):
        seen = []
        graph = _custom_output(tt, seen).compile()
        inp = {"hello": "there", "bye": "world", "messages": "hello"}
        tt.rec("invoke", tt.value(graph.invoke(inp)))
        tt.rec("invoke-extra", tt.value(graph.invoke({**inp, "now": 345})))  # "now" is not an input key
        tt.rec("stream", tt.value(list(graph.stream({**inp, "now": 345}))))
        tt.rec("values", tt.value(list(graph.stream(inp, stream_mode="values"))))
        tt.rec("invoke-updates", tt.value(graph.invoke(inp, stream_mode="updates")))
        tt.rec("seen", seen)

    run_both(scenario)


def test_async_node_schemas_custom_output(run_both):
    async def scenario(tt):
        seen = []
        graph = _custom_output(tt, seen).compile()
        inp = {"hello": "there", "bye": "world", "messages": "hello"}
        tt.rec("ainvoke", tt.value(await graph.ainvoke({**inp, "now": 1})))
        tt.rec("astream", tt.value([c async for c in graph.astream(inp, stream_mode=["values", "updates"])]))
        tt.rec("seen", seen)

    run_both(scenario)


def _private(tt):
    """The graph-API guide's private state: node_2 writes "bar", a key only PrivateState
    (node_3's input, inferred from its annotation) declares."""

    class InputState(TypedDict):
        user_input: str

    class OutputState(TypedDict):
        graph_output: str

    class OverallState(TypedDict):
        foo: str
        user_input: str
        graph_output: str

    class PrivateState(TypedDict):
        bar: str

    def node_1(state: InputState) -> OverallState:
        return {"foo": state["user_input"] + " name"}

    def node_2(state: OverallState) -> PrivateState:
        return {"bar": state["foo"] + " is"}

    def node_3(state: PrivateState) -> OutputState:
        return {"graph_output": state["bar"] + " Lance"}

    builder = tt.impl.StateGraph(OverallState, input_schema=InputState, output_schema=OutputState)
    builder.add_node("node_1", node_1)
    builder.add_node("node_2", node_2)
    builder.add_node("node_3", node_3)
    builder.add_edge(tt.impl.START, "node_1")
    builder.add_edge("node_1", "node_2")
    builder.add_edge("node_2", "node_3")
    builder.add_edge("node_3", tt.impl.END)
    return builder


def test_private_state_and_graph_schemas(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        g = tt.build(_private)
        tt.rec("invoke", tt.value(g.invoke({"user_input": "My", "foo": "dropped"}, tt.cfg)))
        tt.rec("state", tt.state())
        tt.rec("values", tt.value(list(g.stream({"user_input": "Your"}, tt.thread("t2"), stream_mode="values"))))
        tt.rec("updates", tt.value(list(g.stream({"user_input": "His"}, tt.thread("t3")))))
        tt.rec("invoke-updates", tt.value(g.invoke({"user_input": "Her"}, tt.thread("t4"), stream_mode="updates")))
        tt.rec("history", tt.history())
        tt.rec("output_keys", tt.value(g.invoke({"user_input": "A"}, tt.thread("t5"), output_keys=["bar", "foo"])))

    run_both(scenario, time_travel_saver)


def test_explicit_node_input_schema_and_dataclass_state(run_both):
    """input_schema= on add_node narrows what the node reads, over a dataclass state."""

    @dataclasses.dataclass
    class State:
        a: int = 0
        b: int = 0
        log: Annotated[list, operator.add] = dataclasses.field(default_factory=list)

    class OnlyA(TypedDict):
        a: int
        extra: str

    def scenario(tt):
        seen = []

        def reader(state):
            seen.append(tt.value(state))
            return {"extra": "private", "log": ["reader"]}

        def after(state: State):
            seen.append(tt.value(state))
            return {"b": state.a + 1}

        g = tt.impl.StateGraph(State)
        g.add_node("reader", reader, input_schema=OnlyA)
        g.add_node("after", after)
        g.add_edge(tt.impl.START, "reader")
        g.add_edge("reader", "after")
        app = g.compile()
        tt.rec("invoke", tt.value(app.invoke({"a": 1, "b": 2})))
        tt.rec("values", tt.value(list(app.stream({"a": 5}, stream_mode="values"))))
        tt.rec("seen", seen)

    run_both(scenario)


def test_conflicting_reducers_for_one_key_are_refused(run_both):
    """A key declared again with another reducer is an error; lambdas count as the same
    reducer (LangGraph cannot tell them apart), a plain declaration keeps the first reducer."""

    class State(TypedDict):
        items: Annotated[list, operator.add]

    def keep_last(a, b):
        return b

    def scenario(tt):
        class WithLambda(TypedDict):
            items: Annotated[list, lambda a, b: b]

        class WithFunction(TypedDict):
            items: Annotated[list, keep_last]

        class Plain(TypedDict):
            items: list

        def lam(state: WithLambda):
            return {"items": ["lam"]}

        def fun(state: WithFunction):
            return {}

        def plain(state: Plain):
            return {"items": ["plain"]}

        g = tt.impl.StateGraph(State)
        tt.rec("lambda", attempt(tt, lambda: g.add_node("lam", lam) and None))
        tt.rec("function", attempt(tt, lambda: g.add_node("fun", fun) and None))
        tt.rec("plain", attempt(tt, lambda: g.add_node("plain", plain) and None))
        g.add_edge(tt.impl.START, "lam")
        g.add_edge("lam", "plain")
        tt.rec("run", tt.value(g.compile().invoke({"items": ["in"]})))

    run_both(scenario)
