"""Issue 12, items 15 and 16: managed values (`RemainingSteps`, `IsLastStep`), a root state that
is not a dict (`StateGraph(Annotated[list, add_messages])`), and nodes returning a list of
Commands mixed with updates — differentially (see compat_harness).

Ported from LangGraph's test_pregel.py: test_root_mixed_return, test_dict_mixed_return,
test_multiple_updates_root, test_multiple_updates, test_concurrent_emit_sends, test_send_sequences;
from test_managed_values.py: test_managed_values_recognized (as behaviour: the values filled in).
"""

import operator
from typing import Annotated, Literal, TypedDict

import pytest
from typing_extensions import NotRequired, Required

pytest.register_assert_rewrite("timetravel_harness", "compat_harness")

from timetravel_savers import time_travel_saver  # noqa: E402,F401 - fixture


def _managed(tt):
    if tt.impl.name == "langgraph":
        from langgraph.managed import IsLastStep, RemainingSteps
    else:
        from ferrograph.managed import IsLastStep, RemainingSteps
    return RemainingSteps, IsLastStep


# --------------------------------------------------------------------------------------------
# Item 15: managed values


@pytest.mark.parametrize("wrap", ["plain", "NotRequired", "Required"])
def test_remaining_steps_and_is_last_step(run_both, time_travel_saver, wrap):  # noqa: F811
    def scenario(tt):
        RemainingSteps, IsLastStep = _managed(tt)
        around = {"plain": lambda t: t, "NotRequired": lambda t: NotRequired[t], "Required": lambda t: Required[t]}[wrap]

        class State(TypedDict):
            log: Annotated[list, operator.add]
            remaining_steps: around(RemainingSteps)
            is_last_step: around(IsLastStep)

        def loop(state):
            # A write to a managed key is ignored.
            return {"log": [[state["remaining_steps"], state["is_last_step"]]], "remaining_steps": 100}

        def build(tt):
            g = tt.impl.StateGraph(State)
            g.add_node("loop", loop)
            g.add_edge(tt.impl.START, "loop")
            g.add_conditional_edges("loop", lambda s: tt.impl.END if s["is_last_step"] else "loop")
            return g

        g = tt.build(build)
        cfg = {**tt.cfg, "recursion_limit": 5}
        tt.rec("invoke", tt.value(g.invoke({"log": []}, cfg)))
        tt.rec("values", tt.value(list(g.stream({"log": []}, {**cfg, "recursion_limit": 3}, stream_mode="values"))))
        tt.rec("state", tt.state())
        tt.rec("history", tt.outline())

    run_both(scenario, time_travel_saver)


def test_managed_values_across_a_resume(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        RemainingSteps, _ = _managed(tt)

        class State(TypedDict):
            log: Annotated[list, operator.add]
            remaining_steps: RemainingSteps

        def first(state):
            return {"log": [("first", state["remaining_steps"])]}

        def second(state):
            return {"log": [("second", state["remaining_steps"])]}

        def build(tt):
            g = tt.impl.StateGraph(State)
            g.add_node("first", first)
            g.add_node("second", second)
            g.add_edge(tt.impl.START, "first")
            g.add_edge("first", "second")
            return g

        g = tt.build(build, interrupt_before=["second"])
        cfg = {**tt.cfg, "recursion_limit": 10}
        tt.rec("first", tt.value(g.invoke({"log": []}, cfg)))
        tt.rec("resume", tt.value(g.invoke(None, cfg)))
        tt.rec("again", tt.value(g.invoke({"log": []}, cfg)))

    run_both(scenario, time_travel_saver)


def test_managed_values_in_async_nodes_and_pydantic_free_input_schema(run_both):
    async def scenario(tt):
        RemainingSteps, IsLastStep = _managed(tt)

        class State(TypedDict):
            n: int
            remaining_steps: RemainingSteps

        class NodeView(TypedDict):
            n: int
            is_last_step: IsLastStep

        async def count(state: NodeView):
            return {"n": state["n"] + 1} if not state["is_last_step"] else {"n": -state["n"]}

        g = tt.impl.StateGraph(State)
        g.add_node("count", count)
        g.add_edge(tt.impl.START, "count")
        g.add_conditional_edges("count", lambda s: tt.impl.END if s["n"] < 0 else "count")
        tt.rec("ainvoke", tt.value(await g.compile().ainvoke({"n": 0}, {"recursion_limit": 4})))

    run_both(scenario)


# --------------------------------------------------------------------------------------------
# Item 16: a root state that is one value; lists of Commands


def test_messages_root_state(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        from langchain_core.messages import AIMessage, HumanMessage

        def a(messages):
            return [AIMessage(content=f"a saw {len(messages)}", id="a1")]

        def b(messages):
            return tt.impl.Command(update=[AIMessage(content="b", id="b1")], goto="c")

        def c(messages):
            return None

        def build(tt):
            g = tt.impl.StateGraph(Annotated[list, tt.impl.add_messages])
            g.add_node("a", a)
            g.add_node("b", b)
            g.add_node("c", c)
            g.add_edge(tt.impl.START, "a")
            g.add_edge("a", "b")
            return g

        g = tt.build(build)
        tt.rec("invoke", tt.value(g.invoke([HumanMessage(content="hi", id="h1")], tt.cfg)))
        tt.rec("updates", tt.value(list(g.stream([HumanMessage(content="again", id="h2")], tt.cfg))))
        tt.rec("values", tt.value(list(g.stream([HumanMessage(content="third", id="h3")], tt.cfg, stream_mode="values"))))
        tt.rec("state", tt.state())
        tt.rec("history", tt.outline())

    run_both(scenario, time_travel_saver)


def test_root_state_with_sends(run_both):
    """Ported from LangGraph's test_concurrent_emit_sends."""

    def scenario(tt):
        class Node:
            def __init__(self, name):
                self.name = name
                setattr(self, "__name__", name)

            def __call__(self, state):
                return [self.name] if isinstance(state, list) else ["|".join((self.name, str(state)))]

        def send_for_fun(state):
            return [tt.impl.Send("2", 1), tt.impl.Send("2", 2), "3.1"]

        def send_for_profit(state):
            return [tt.impl.Send("2", 3), tt.impl.Send("2", 4)]

        def route_to_three(state) -> Literal["3"]:
            return "3"

        builder = tt.impl.StateGraph(Annotated[list, operator.add])
        for name in ("1", "1.1", "2", "3", "3.1"):
            builder.add_node(Node(name))
        builder.add_edge(tt.impl.START, "1")
        builder.add_edge(tt.impl.START, "1.1")
        builder.add_conditional_edges("1", send_for_fun)
        builder.add_conditional_edges("1.1", send_for_profit)
        builder.add_conditional_edges("2", route_to_three)
        graph = builder.compile()
        tt.rec("invoke", tt.value(graph.invoke(["0"])))

    run_both(scenario)


def test_send_sequences(run_both):
    """Ported from LangGraph's test_send_sequences: a Send whose argument is a Command, and a
    node returning [that Command, Command(update=...)] on a root state."""

    def scenario(tt):
        Command, Send = tt.impl.Command, tt.impl.Send

        class Node:
            def __init__(self, name):
                self.name = name
                setattr(self, "__name__", name)

            def __call__(self, state):
                update = [self.name] if isinstance(state, list) else [f"{self.name}|{type(state).__name__}"]
                if isinstance(state, Command):
                    return [state, Command(update=update)]
                return update

        def send_for_fun(state):
            return [Send("2", Command(goto=Send("2", 3))), Send("2", Command(goto=Send("2", 4))), "3.1"]

        def route_to_three(state) -> Literal["3"]:
            return "3"

        builder = tt.impl.StateGraph(Annotated[list, operator.add])
        for name in ("1", "2", "3", "3.1"):
            builder.add_node(Node(name))
        builder.add_edge(tt.impl.START, "1")
        builder.add_conditional_edges("1", send_for_fun)
        builder.add_conditional_edges("2", route_to_three)
        tt.rec("invoke", tt.value(builder.compile().invoke(["0"])))

    run_both(scenario)


def test_root_and_dict_mixed_returns(run_both):
    """Ported from LangGraph's test_root_mixed_return and test_dict_mixed_return."""

    def scenario(tt):
        Command = tt.impl.Command

        def root_node(state: list[str]):
            return [Command(update=["a"]), ["b"]]

        g = tt.impl.StateGraph(Annotated[list[str], operator.add])
        g.add_node(root_node)
        g.add_edge(tt.impl.START, "root_node")
        tt.rec("root", tt.value(g.compile().invoke([])))

        class State(TypedDict):
            foo: Annotated[str, operator.add]

        def dict_node(state: State):
            return [Command(update={"foo": "a"}), {"foo": "b"}]

        g = tt.impl.StateGraph(State)
        g.add_node(dict_node)
        g.add_edge(tt.impl.START, "dict_node")
        tt.rec("dict", tt.value(g.compile().invoke({"foo": ""})))

    run_both(scenario)


def test_multiple_updates(run_both):
    """Ported from LangGraph's test_multiple_updates_root and test_multiple_updates."""

    def scenario(tt):
        Command = tt.impl.Command

        def root_a(state):
            return [Command(update="a1"), Command(update="a2")]

        def root_b(state):
            return "b"

        root = tt.impl.StateGraph(Annotated[str, operator.add]).add_sequence([root_a, root_b]).add_edge(tt.impl.START, "root_a").compile()
        tt.rec("root-invoke", tt.value(root.invoke("")))
        tt.rec("root-updates", tt.value(list(root.stream("", stream_mode="updates"))))

        class State(TypedDict):
            foo: Annotated[str, operator.add]
            bar: str

        def node_a(state):
            return [Command(update={"foo": "a1"}), Command(update={"foo": "a2", "bar": "x"})]

        def node_b(state):
            return {"foo": "b"}

        graph = tt.impl.StateGraph(State).add_sequence([node_a, node_b]).add_edge(tt.impl.START, "node_a").compile()
        tt.rec("dict-invoke", tt.value(graph.invoke({"foo": ""})))
        tt.rec("dict-updates", tt.value(list(graph.stream({"foo": ""}, stream_mode="updates"))))
        tt.rec("dict-updates-key", tt.value(list(graph.stream({"foo": ""}, stream_mode="updates", output_keys="foo"))))

    run_both(scenario)


def test_list_of_commands_with_gotos_async(run_both):
    async def scenario(tt):
        Command = tt.impl.Command

        class State(TypedDict):
            log: Annotated[list, operator.add]

        async def fan(state):
            return [Command(update={"log": ["fan"]}, goto="left"), Command(goto=["right"]), {"log": ["plain"]}]

        def left(state):
            return {"log": ["left"]}

        def right(state):
            return {"log": ["right"]}

        g = tt.impl.StateGraph(State)
        g.add_node("fan", fan)
        g.add_node("left", left)
        g.add_node("right", right)
        g.add_edge(tt.impl.START, "fan")
        app = g.compile()
        tt.rec("ainvoke", tt.value(await app.ainvoke({"log": []})))
        chunks = [c async for c in app.astream({"log": []})]
        tt.rec("astream", tt.value(chunks[:1]) + sorted(tt.value(chunks[1:]), key=repr))

    run_both(scenario)
