"""Issue 12, bugs 1, 3, 4, 5, 7, 8, 9: the keywords of invoke/stream and their async twins, and
resuming with a Command — differentially, LangGraph vs ferrograph (see compat_harness).

Ported from LangGraph's tests: test_command_with_static_breakpoints and
test_command_goto_with_static_breakpoints (test_pregel.py), test_graph_with_multiple_retry_policies
(test_retry.py); the UUID thread id and the resume-with-update from LangGraph's docs.
"""

import asyncio
import operator
import time
import uuid
from typing import Annotated, TypedDict
from unittest.mock import patch

import pytest

pytest.register_assert_rewrite("timetravel_harness", "compat_harness")

from compat_harness import attempt, printed  # noqa: E402
from timetravel_savers import time_travel_saver  # noqa: E402,F401 - fixture


class Foo(TypedDict):
    foo: str


class Log(TypedDict):
    foo: Annotated[str, operator.add]


def _two_nodes(tt, schema=Foo, append=False):
    def node1(state):
        return {"foo": "|node-1" if append else state["foo"] + "|node-1"}

    def node2(state):
        return {"foo": "|node-2" if append else state["foo"] + "|node-2"}

    g = tt.impl.StateGraph(schema)
    g.add_node("node1", node1)
    g.add_node("node2", node2)
    g.add_edge(tt.impl.START, "node1")
    g.add_edge("node1", "node2")
    return g


# --------------------------------------------------------------------------------------------
# Bug 1: any thread_id LangGraph accepts, a uuid.UUID included


def test_uuid_thread_id(run_both, time_travel_saver):  # noqa: F811
    thread = uuid.UUID("12345678-1234-5678-1234-567812345678")

    def scenario(tt):
        tt.graph = _two_nodes(tt).compile(checkpointer=tt.saver)
        cfg = {"configurable": {"thread_id": thread}}
        tt.rec("invoke", tt.value(tt.graph.invoke({"foo": "a"}, cfg)))
        snap = tt.graph.get_state(cfg)
        tt.rec("state", (tt.value(snap.values), list(snap.next), str(snap.config["configurable"]["thread_id"])))
        tt.rec("history", [tt.value(s.values) for s in tt.graph.get_state_history(cfg)])
        # The same thread, named by its string form.
        tt.rec("by-str", tt.value(tt.graph.get_state({"configurable": {"thread_id": str(thread)}}).values))

    run_both(scenario, time_travel_saver)


# --------------------------------------------------------------------------------------------
# Bug 3: a compiled StateGraph streams "updates" by default


def test_stream_default_mode_is_updates(run_both):
    def scenario(tt):
        g = _two_nodes(tt).compile()
        tt.rec("stream", tt.value(list(g.stream({"foo": "a"}))))
        tt.rec("invoke", tt.value(g.invoke({"foo": "a"})))

    run_both(scenario)


def test_astream_default_mode_is_updates(run_both):
    async def scenario(tt):
        g = _two_nodes(tt).compile()
        tt.rec("astream", tt.value([c async for c in g.astream({"foo": "a"})]))
        tt.rec("ainvoke", tt.value(await g.ainvoke({"foo": "a"})))

    run_both(scenario)


# --------------------------------------------------------------------------------------------
# Bugs 4 and 5: Command(resume=..., update=...) applies both; a resume after interrupt_before
# goes on; Command(goto=...) as input


def _ask(tt):
    class State(TypedDict, total=False):
        log: Annotated[list, operator.add]
        note: str

    def ask(state):
        answer = tt.impl.interrupt("what?")
        return {"log": [f"ask:{answer}:{state.get('note')}"]}

    def after(state):
        return {"log": ["after"]}

    g = tt.impl.StateGraph(State)
    g.add_node("ask", ask)
    g.add_node("after", after)
    g.add_edge(tt.impl.START, "ask")
    g.add_edge("ask", "after")
    return g


def test_command_resume_with_update_applies_both(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        g = tt.build(_ask)
        tt.rec("first", tt.value(list(g.stream({"log": []}, tt.cfg))))
        tt.rec("resume", tt.value(list(g.stream(tt.impl.Command(resume="yes", update={"note": "N"}), tt.cfg))))
        tt.rec("state", tt.state())
        tt.rec("history", tt.history())

    run_both(scenario, time_travel_saver)


def test_command_update_while_paused_shows_in_state(run_both, time_travel_saver):  # noqa: F811
    """An update without resume at a paused node: applied, and the node asks again."""

    def scenario(tt):
        g = tt.build(_ask)
        tt.rec("first", tt.value(g.invoke({"log": []}, tt.cfg)))
        tt.rec("update", tt.value(g.invoke(tt.impl.Command(update={"note": "N"}), tt.cfg)))
        tt.rec("state", tt.state())
        tt.rec("resume", tt.value(g.invoke(tt.impl.Command(resume="ok"), tt.cfg)))
        tt.rec("history", tt.outline())

    run_both(scenario, time_travel_saver)


def test_command_with_static_breakpoints(run_both, time_travel_saver):  # noqa: F811
    """Ported from LangGraph's test_command_with_static_breakpoints."""

    def scenario(tt):
        g = tt.build(lambda tt: _two_nodes(tt), interrupt_before=["node1"])
        tt.rec("first", tt.value(g.invoke({"foo": "abc"}, tt.cfg)))
        tt.rec("resume", tt.value(g.invoke(tt.impl.Command(resume="node1"), tt.cfg)))
        tt.rec("history", tt.history())

    run_both(scenario, time_travel_saver)


def test_command_resume_after_interrupt_before_answers_next_interrupt(run_both, time_travel_saver):  # noqa: F811
    """The resume value no paused task took answers the next interrupt() called."""

    def scenario(tt):
        g = tt.build(_ask, interrupt_before=["ask"])
        tt.rec("first", tt.value(g.invoke({"log": []}, tt.cfg)))
        tt.rec("resume", tt.value(g.invoke(tt.impl.Command(resume="early"), tt.cfg)))
        tt.rec("state", tt.state())

    run_both(scenario, time_travel_saver)


def test_command_goto_with_static_breakpoints(run_both, time_travel_saver):  # noqa: F811
    """Ported from LangGraph's test_command_goto_with_static_breakpoints."""

    def scenario(tt):
        g = tt.build(lambda tt: _two_nodes(tt, Log, append=True), interrupt_before=["node1"])
        tt.rec("first", tt.value(g.invoke({"foo": "abc"}, tt.cfg)))
        tt.rec("goto", tt.value(g.invoke(tt.impl.Command(goto=["node2"]), tt.cfg)))
        tt.rec("history", tt.history())

    run_both(scenario, time_travel_saver)


def test_command_goto_and_update_while_paused(run_both, time_travel_saver):  # noqa: F811
    """LangGraph's snapshot of such a step leaves out the goto's task (and its writes)."""

    def scenario(tt):
        g = tt.build(_ask)
        tt.rec("first", tt.value(g.invoke({"log": []}, tt.cfg)))
        tt.rec("goto", tt.value(g.invoke(tt.impl.Command(goto="after", update={"note": "q"}), tt.cfg)))
        tt.rec("state", tt.state())
        tt.rec("resume", tt.value(g.invoke(tt.impl.Command(resume="r"), tt.cfg)))
        tt.rec("history", tt.outline())

    run_both(scenario, time_travel_saver)


def test_empty_command_input_is_refused(ferrograph_impl):
    """LangGraph 1.2.24 fails on `invoke(Command(), cfg)` with an UnboundLocalError of its own
    (it means to raise EmptyInputError("Received empty Command input")); ferrograph raises
    the EmptyInputError (docs/langgraph-behaviour.md)."""
    from ferrograph.checkpointers import MemorySaver
    from ferrograph.errors import EmptyInputError
    from ferrograph.graph import START, StateGraph
    from ferrograph.types import Command

    g = StateGraph(Foo)
    g.add_node("a", lambda s: {"foo": "x"})
    g.add_edge(START, "a")
    app = g.compile(checkpointer=MemorySaver(), interrupt_before=["a"])
    cfg = {"configurable": {"thread_id": "1"}}
    app.invoke({"foo": ""}, cfg)
    with pytest.raises(EmptyInputError, match="empty Command"):
        app.invoke(Command(), cfg)
    assert app.invoke(None, cfg) == {"foo": "x"}


def test_async_command_resume_with_update(run_both, time_travel_saver):  # noqa: F811
    async def scenario(tt):
        g = tt.build(_ask, interrupt_before=["after"])
        tt.rec("first", tt.value(await g.ainvoke({"log": []}, tt.cfg)))
        tt.rec("resume", tt.value([c async for c in g.astream(tt.impl.Command(resume="y", update={"note": "n"}), tt.cfg)]))
        tt.rec("past-before", tt.value(await g.ainvoke(tt.impl.Command(resume="unused"), tt.cfg)))
        tt.rec("state", await tt.astate())

    run_both(scenario, time_travel_saver)


# --------------------------------------------------------------------------------------------
# Bug 7: every keyword LangGraph's invoke/stream take


def test_print_mode_and_debug_print_what_langgraph_prints(run_both):
    def scenario(tt):
        g = _two_nodes(tt).compile()
        tt.rec("print-updates", printed(lambda: tt.value(g.invoke({"foo": "a"}, print_mode="updates"))))
        tt.rec("print-both", printed(lambda: tt.value(list(g.stream({"foo": "a"}, stream_mode="values", print_mode=["values", "updates"])))))
        tt.rec("debug", printed(lambda: tt.value(g.invoke({"foo": "a"}, debug=True))))
        debugging = _two_nodes(tt).compile(debug=True)
        tt.rec("compiled-debug", printed(lambda: tt.value(list(debugging.stream({"foo": "a"})))))

    run_both(scenario)


def test_output_keys(run_both):
    class State(TypedDict, total=False):
        foo: str
        bar: Annotated[list, operator.add]

    def scenario(tt):
        def one(state):
            return {"foo": "one", "bar": [1]}

        def two(state):
            return {"bar": [2]}

        g = tt.impl.StateGraph(State)
        g.add_node("one", one)
        g.add_node("two", two)
        g.add_edge(tt.impl.START, "one")
        g.add_edge("one", "two")
        app = g.compile()
        for keys in ("foo", ["bar"], ["foo", "bar"]):
            tt.rec(f"invoke-{keys}", tt.value(app.invoke({"foo": "x"}, output_keys=keys)))
            for mode in ("values", "updates"):
                tt.rec(f"{mode}-{keys}", tt.value(list(app.stream({"foo": "x"}, stream_mode=mode, output_keys=keys))))
        tt.rec("unknown", attempt(tt, lambda: app.invoke({"foo": "x"}, output_keys=["nope"])))

    run_both(scenario)


def test_subgraphs_flag_tags_chunks_with_the_root_namespace(run_both):
    def scenario(tt):
        g = _two_nodes(tt).compile()
        tt.rec("one-mode", tt.value(list(g.stream({"foo": "a"}, subgraphs=True))))
        tt.rec("modes", tt.value(list(g.stream({"foo": "a"}, stream_mode=["values", "updates"], subgraphs=True))))

    run_both(scenario)


def test_async_subgraphs_flag_and_output_keys(run_both):
    async def scenario(tt):
        g = _two_nodes(tt).compile()
        tt.rec("astream", tt.value([c async for c in g.astream({"foo": "a"}, subgraphs=True, output_keys="foo")]))
        tt.rec("ainvoke", tt.value(await g.ainvoke({"foo": "a"}, output_keys="foo")))
        tt.rec("ainvoke-updates", tt.value(await g.ainvoke({"foo": "a"}, stream_mode="updates")))

    run_both(scenario)


def test_interrupt_options_per_call(run_both, time_travel_saver):  # noqa: F811
    """Per-call interrupt_before (a name or "*") and interrupt_after; an empty list per call
    falls back to the compiled ones, as in LangGraph."""

    def scenario(tt):
        g = tt.build(lambda tt: _two_nodes(tt), interrupt_before=["node2"])
        tt.rec("empty-list", tt.value(list(g.stream({"foo": "a"}, tt.cfg, interrupt_before=[]))))
        tt.rec("star", tt.value(list(g.stream(None, tt.cfg, interrupt_before="*"))))
        tt.rec("after", tt.value(list(g.stream({"foo": "b"}, tt.thread("t2"), interrupt_after=["node1"]))))
        snap = g.get_state(tt.thread("t2"))
        tt.rec("state", (tt.value(snap.values), list(snap.next)))

    run_both(scenario, time_travel_saver)


def test_checkpoint_during_is_the_deprecated_durability(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        g = tt.build(lambda tt: _two_nodes(tt))
        with pytest.warns(DeprecationWarning):
            tt.rec("exit", tt.value(g.invoke({"foo": "a"}, tt.cfg, checkpoint_during=False)))
        tt.rec("history", tt.outline())
        with pytest.warns(DeprecationWarning):
            tt.rec("both", attempt(tt, lambda: g.invoke({"foo": "a"}, tt.cfg, checkpoint_during=True, durability="sync")))

    run_both(scenario, time_travel_saver)


def test_run_control_drains_between_steps_and_resumes(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        control = tt.impl.RunControl()

        def node1(state):
            control.request_drain("deploy")
            return {"foo": state["foo"] + "|node-1"}

        def node2(state):
            return {"foo": state["foo"] + "|node-2"}

        def build(tt):
            g = tt.impl.StateGraph(Foo)
            g.add_node("node1", node1)
            g.add_node("node2", node2)
            g.add_edge(tt.impl.START, "node1")
            g.add_edge("node1", "node2")
            return g

        g = tt.build(build)
        chunks = []
        try:
            for chunk in g.stream({"foo": "a"}, tt.cfg, control=control):
                chunks.append(chunk)
        except tt.impl.GraphDrained as exc:
            tt.rec("drained", (tt.value(chunks), str(exc)))
        tt.rec("state", tt.state())
        tt.rec("resume", tt.value(g.invoke(None, tt.cfg)))

    run_both(scenario, time_travel_saver)


def test_unknown_keyword_is_a_type_error_naming_it(ferrograph_impl):
    """LangGraph swallows unknown keywords (a typo such as `interupt_before=` does nothing);
    ferrograph refuses them (docs/langgraph-behaviour.md)."""
    from ferrograph.checkpointers import MemorySaver
    from ferrograph.graph import START, StateGraph

    g = StateGraph(Foo)
    g.add_node("a", lambda s: {"foo": "x"})
    g.add_edge(START, "a")
    app = g.compile(checkpointer=MemorySaver())
    cfg = {"configurable": {"thread_id": "1"}}
    for call in (app.invoke, app.stream):
        with pytest.raises(TypeError, match="interupt_before"):
            list(call({"foo": ""}, cfg, interupt_before=["a"]) or ())
    with pytest.raises(TypeError, match="interupt_before"):
        asyncio.run(app.ainvoke({"foo": ""}, cfg, interupt_before=["a"]))
    with pytest.raises(TypeError, match="stream_mod"):
        app.astream({"foo": ""}, cfg, stream_mod="values")
    with pytest.raises(TypeError, match="retry"):
        g.add_node("b", lambda s: s, retry=3)
    with pytest.raises(ValueError, match="version"):
        app.invoke({"foo": ""}, cfg, version="v3")


# --------------------------------------------------------------------------------------------
# Bug 8: the order of "updates" chunks of parallel tasks


def test_updates_of_parallel_tasks_come_in_finishing_order(run_both):
    """LangGraph streams a task's update when the task finishes (its runner commits each
    future as it completes), so "b" (no wait) comes before "c" before "a" on both; the
    reducer's merge order stays node-name order on both."""

    class State(TypedDict):
        log: Annotated[list, operator.add]

    def scenario(tt):
        def node(name, wait):
            def run(state):
                time.sleep(wait)
                return {"log": [name]}

            return run

        g = tt.impl.StateGraph(State)
        for name, wait in (("a", 0.6), ("b", 0.0), ("c", 0.3)):
            g.add_node(name, node(name, wait))
            g.add_edge(tt.impl.START, name)
        app = g.compile()
        tt.rec("updates", tt.value(list(app.stream({"log": []}, stream_mode="updates"))))
        tt.rec("final", tt.value(app.invoke({"log": []})))

    run_both(scenario)


# --------------------------------------------------------------------------------------------
# Bug 9: several retry policies on one node


def test_graph_with_multiple_retry_policies(run_both):
    """Ported from LangGraph's test_graph_with_multiple_retry_policies (test_retry.py)."""

    class State(TypedDict):
        foo: str
        error_type: str

    def scenario(tt):
        attempts = {"value_error": 0, "key_error": 0, "type_error": 0}

        def failing_node(state):
            kind = state["error_type"]
            attempts[kind] += 1
            if kind == "value_error" and attempts[kind] < 2:
                raise ValueError("Value error")
            if kind == "key_error" and attempts[kind] < 3:
                raise KeyError("Key error")
            if kind == "type_error":
                raise TypeError("never retried: no policy matches")
            return {"foo": f"recovered_from_{kind}"}

        value_policy = tt.impl.RetryPolicy(max_attempts=2, initial_interval=0.01, jitter=False, retry_on=ValueError)
        key_policy = tt.impl.RetryPolicy(max_attempts=3, initial_interval=0.02, jitter=False, retry_on=KeyError)
        for policies in ((value_policy, key_policy), [value_policy, key_policy]):
            g = tt.impl.StateGraph(State)
            g.add_node("failing_node", failing_node, retry_policy=policies)
            g.add_edge(tt.impl.START, "failing_node")
            app = g.compile()
            for kind in attempts:
                attempts.update(dict.fromkeys(attempts, 0))
                with patch("time.sleep") as sleep:
                    tt.rec(f"{kind}-{type(policies).__name__}", attempt(tt, lambda: app.invoke({"foo": "", "error_type": kind})))
                tt.rec(f"{kind}-attempts", (dict(attempts), [c.args for c in sleep.call_args_list]))

    run_both(scenario)


def test_async_multiple_retry_policies(run_both):
    class State(TypedDict):
        n: int

    def scenario_graph(tt, counter):
        async def flaky(state):
            counter["n"] += 1
            if counter["n"] < 3:
                raise KeyError("again")
            return {"n": counter["n"]}

        policies = [
            tt.impl.RetryPolicy(max_attempts=5, initial_interval=0.0, jitter=False, retry_on=ValueError),
            tt.impl.RetryPolicy(max_attempts=3, initial_interval=0.0, jitter=False, retry_on=KeyError),
        ]
        g = tt.impl.StateGraph(State)
        g.add_node("flaky", flaky, retry_policy=policies)
        g.add_edge(tt.impl.START, "flaky")
        return g.compile()

    async def scenario(tt):
        counter = {"n": 0}
        app = scenario_graph(tt, counter)
        tt.rec("result", tt.value(await app.ainvoke({"n": 0})))
        tt.rec("attempts", counter["n"])

    run_both(scenario)


def test_recursion_budget_after_a_resume(run_both, time_travel_saver):  # noqa: F811
    """A resumed run may take `recursion_limit` steps after the one it resumes, as in
    LangGraph (one more than a run with new input at the same checkpoint)."""

    class Count(TypedDict):
        n: Annotated[int, operator.add]

    def scenario(tt):
        runs = []

        def loop(state):
            runs.append(1)
            if len(runs) == 1:
                tt.impl.interrupt("pause")
            return {"n": 1}

        def build(tt):
            g = tt.impl.StateGraph(Count)
            g.add_node("loop", loop)
            g.add_edge(tt.impl.START, "loop")
            g.add_edge("loop", "loop")
            return g

        g = tt.build(build)
        cfg = {**tt.cfg, "recursion_limit": 5}
        g.invoke({"n": 0}, cfg)
        tt.rec("resume", attempt(tt, lambda: g.invoke(tt.impl.Command(resume=1), cfg)))
        tt.rec("runs", len(runs))
        tt.rec("state", tt.value(g.get_state(cfg).values))

    run_both(scenario, time_travel_saver)


# --------------------------------------------------------------------------------------------
# add_node(defer=True): the node runs once, when nothing else is left to run


def _deferred_fan_out(tt, use_waiting_edge):
    """LangGraph's test_in_one_fan_out_state_graph_defer_node."""

    def sorted_add(x, y):
        return sorted(operator.add(x, y))

    class State(TypedDict, total=False):
        query: str
        answer: str
        docs: Annotated[list, sorted_add]

    workflow = tt.impl.StateGraph(State)

    def rewrite_query(data):
        return {"query": f"query: {data['query']}"}

    def analyzer_one(data):
        return {"query": f"analyzed: {data['query']}"}

    def retriever_one(data):
        return {"docs": ["doc1", "doc2"]}

    def retriever_two(data):
        time.sleep(0.1)  # as in LangGraph's test: the stream order below depends on it
        return {"docs": ["doc3", "doc4"]}

    def qa(data):
        tt.probe["qa"] = tt.probe.get("qa", 0) + 1
        return {"answer": ",".join(data["docs"])}

    workflow.add_node("rewrite_query", rewrite_query)
    workflow.add_node("analyzer_one", analyzer_one)
    workflow.add_node("retriever_one", retriever_one)
    workflow.add_node("retriever_two", retriever_two)
    workflow.add_node("qa", qa, defer=True)
    workflow.set_entry_point("rewrite_query")
    workflow.add_edge("rewrite_query", "retriever_one")
    workflow.add_edge("retriever_one", "analyzer_one")
    workflow.add_edge("rewrite_query", "retriever_two")
    if use_waiting_edge:
        workflow.add_edge(["retriever_one", "retriever_two"], "qa")
    else:
        workflow.add_edge("retriever_one", "qa")
        workflow.add_edge("retriever_two", "qa")
    workflow.set_finish_point("qa")
    return workflow


@pytest.mark.parametrize("use_waiting_edge", [True, False], ids=["join", "edges"])
def test_deferred_node_runs_once_at_the_end(run_both, time_travel_saver, use_waiting_edge):  # noqa: F811
    def scenario(tt):
        app = _deferred_fan_out(tt, use_waiting_edge).compile()
        tt.rec("invoke", tt.value(app.invoke({"query": "what is weather in sf"})))
        tt.rec("updates", tt.value(list(app.stream({"query": "what is weather in sf"}))))
        tt.rec("qa-runs", tt.ran())
        g = tt.build(lambda tt: _deferred_fan_out(tt, use_waiting_edge), interrupt_before=["qa"])
        tt.rec("paused", tt.value(g.invoke({"query": "sf"}, tt.cfg)))
        tt.rec("state", tt.state())
        tt.rec("resumed", tt.value(g.invoke(None, tt.cfg)))
        tt.rec("history", tt.history())

    run_both(scenario, time_travel_saver)


def test_deferred_node_async(run_both):
    async def scenario(tt):
        app = _deferred_fan_out(tt, True).compile()
        tt.rec("ainvoke", tt.value(await app.ainvoke({"query": "q"})))
        tt.rec("astream", tt.value([c async for c in app.astream({"query": "q"}, stream_mode=["updates", "values"])]))

    run_both(scenario)
