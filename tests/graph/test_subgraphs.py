"""Issue 12, item 10: subgraphs, differentially (LangGraph vs ferrograph, see compat_harness).

A compiled graph used as a node and a graph invoked from inside a node; with the parent's
checkpointer (the child's checkpoints under `node:task_id` in the parent's thread, `parents`
metadata), `compile(checkpointer=True/False/None)`, and `stream(..., subgraphs=True)`.

Ported from LangGraph's tests: test_subgraph_persistence.py (stateless, stateful and
checkpointer=False children), test_pregel.py's test_nested_graph / test_stream_subgraphs
scenarios, and the subgraphs how-to (a child with its own keys, a child sharing keys).
Task ids differ between the two implementations: namespaces are compared with each task id
replaced by `<task>`, and checkpoint ids by their position in the thread.
"""

import operator
from typing import Annotated, TypedDict

import pytest

pytest.register_assert_rewrite("timetravel_harness", "compat_harness")

from timetravel_harness import namespaces as ns  # noqa: E402
from timetravel_savers import time_travel_saver  # noqa: E402,F401 - fixture


class Parent(TypedDict):
    foo: str
    log: Annotated[list, operator.add]


class Child(TypedDict):
    foo: str
    bar: str
    log: Annotated[list, operator.add]


class Log(TypedDict):
    log: Annotated[list, operator.add]


def _chain(tt, state, *nodes, extra=()):
    """A builder on `state` whose `nodes` ((name, action) pairs) run one after the other from
    START; the `extra` ones are added without edges (reached by a Command)."""
    g = tt.impl.StateGraph(state)
    for name, action in (*nodes, *extra):
        g.add_node(name, action)
    g.add_edge(tt.impl.START, nodes[0][0])
    for (a, _), (b, _) in zip(nodes, nodes[1:]):
        g.add_edge(a, b)
    return g


def _logs(tt, name, *, hit=False):
    """A node that appends its name to `log` (and, with `hit`, counts its runs in tt.hit)."""

    def node(state):
        if hit:
            tt.hit(name)
        return {"log": [name]}

    return node


def _child(tt, *, async_first=False):
    def c1(state):
        return {"bar": "b", "log": ["c1"]}

    async def ac1(state):
        return c1(state)

    def c2(state):
        return {"foo": state["foo"] + state["bar"], "log": ["c2"]}

    return _chain(tt, Child, ("c1", ac1 if async_first else c1), ("c2", c2)).compile()


def _parent(tt, child):
    def p1(state):
        return {"foo": "x", "log": ["p1"]}

    return _chain(tt, Parent, ("p1", p1), ("child", child), ("p2", _logs(tt, "p2")))


def _checkpoints(tt, thread: str = "t1") -> list:
    """Every checkpoint of the thread, in every namespace: (namespace, source, step, parents),
    ids as positions in their namespace's history, grouped by namespace (sorted), oldest first."""
    tuples = tt.saver_list({"configurable": {"thread_id": thread}})
    ids = sorted(t.config["configurable"]["checkpoint_id"] for t in tuples)
    pos = {cid: i for i, cid in enumerate(ids)}
    rows = []
    for t in sorted(tuples, key=lambda t: (ns(t.config["configurable"]["checkpoint_ns"]), t.config["configurable"]["checkpoint_id"])):
        md = t.metadata or {}
        parents = {ns(k): "<known>" if v in pos else "<unknown>" for k, v in (md.get("parents") or {}).items()}
        rows.append((ns(t.config["configurable"]["checkpoint_ns"]), md.get("source"), md.get("step"), parents))
    return rows


# --------------------------------------------------------------------------------------------
# A compiled graph as a node


def test_subgraph_node_without_checkpointer(run_both):
    def scenario(tt):
        g = _parent(tt, _child(tt)).compile()
        tt.rec("invoke", tt.value(g.invoke({"foo": "a", "log": []})))
        tt.rec("updates", ns(tt.value(list(g.stream({"foo": "a", "log": []}, subgraphs=True)))))
        tt.rec(
            "values+updates",
            ns(tt.value(list(g.stream({"foo": "a", "log": []}, stream_mode=["values", "updates"], subgraphs=True)))),
        )
        tt.rec("values", ns(tt.value(list(g.stream({"foo": "a", "log": []}, stream_mode="values", subgraphs=True)))))
        # Without subgraphs=True only the parent's own chunks.
        tt.rec("plain", tt.value(list(g.stream({"foo": "a", "log": []}, stream_mode=["values", "updates"]))))

    run_both(scenario)


def test_subgraph_node_with_checkpointer(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        tt.graph = _parent(tt, _child(tt)).compile(checkpointer=tt.saver)
        chunks = list(tt.graph.stream({"foo": "a", "log": []}, tt.cfg, stream_mode=["values", "updates"], subgraphs=True))
        tt.rec("stream", ns(tt.value(chunks)))
        tt.rec("state", tt.state())
        tt.rec("history", tt.history())
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)


def test_subgraph_node_async(run_both, time_travel_saver):  # noqa: F811
    async def scenario(tt):
        tt.graph = _parent(tt, _child(tt, async_first=True)).compile(checkpointer=tt.saver)
        chunks = [c async for c in tt.graph.astream({"foo": "a", "log": []}, tt.cfg, stream_mode=["values", "updates"], subgraphs=True)]
        tt.rec("astream", ns(tt.value(chunks)))
        tt.rec("ainvoke", tt.value(await tt.graph.ainvoke({"foo": "b", "log": []}, tt.thread("t2"))))
        tt.rec("state", await tt.astate())
        tt.rec("history", await tt.ahistory())

    run_both(scenario, time_travel_saver)


def test_nested_subgraphs_two_levels(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        def leaf(state):
            return {"log": ["leaf"]}

        inner = tt.impl.StateGraph(Log)
        inner.add_node("leaf", leaf)
        inner.add_edge(tt.impl.START, "leaf")
        mid = tt.impl.StateGraph(Log)
        mid.add_node("inner", inner.compile())
        mid.add_edge(tt.impl.START, "inner")
        top = tt.impl.StateGraph(Log)
        top.add_node("mid", mid.compile())
        top.add_edge(tt.impl.START, "mid")
        tt.graph = top.compile(checkpointer=tt.saver)
        tt.rec("stream", ns(tt.value(list(tt.graph.stream({"log": []}, tt.cfg, stream_mode=["updates", "values"], subgraphs=True)))))
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)


# --------------------------------------------------------------------------------------------
# A graph invoked inside a node, and compile(checkpointer=None/True/False)


@pytest.mark.parametrize("persistence", [None, True, False], ids=["inherit", "stateful", "none"])
def test_invoked_inside_node(run_both, time_travel_saver, persistence):  # noqa: F811
    def scenario(tt):
        def leaf(state):
            return {"log": ["in"]}

        g = tt.impl.StateGraph(Log)
        g.add_node("in", leaf)
        g.add_edge(tt.impl.START, "in")
        inner = g.compile(checkpointer=persistence)

        def call(state):
            # Two calls from one task: the second is numbered ("|1") in the namespace.
            first = inner.invoke({"log": ["x"]})
            second = inner.invoke({"log": ["y"]})
            return {"log": first["log"] + second["log"]}

        p = tt.impl.StateGraph(Log)
        p.add_node("call", call)
        p.add_edge(tt.impl.START, "call")
        tt.graph = p.compile(checkpointer=tt.saver)
        for run in range(2):
            tt.rec(f"run {run}", ns(tt.value(list(tt.graph.stream({"log": []}, tt.cfg, subgraphs=True)))))
        tt.rec("state", tt.state())
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)


def test_invoked_inside_async_node(run_both, time_travel_saver):  # noqa: F811
    async def scenario(tt):
        def leaf(state):
            return {"log": ["in"]}

        g = tt.impl.StateGraph(Log)
        g.add_node("in", leaf)
        g.add_edge(tt.impl.START, "in")
        inner = g.compile()

        async def call(state):
            out = await inner.ainvoke({"log": ["x"]})
            return {"log": out["log"]}

        p = tt.impl.StateGraph(Log)
        p.add_node("call", call)
        p.add_edge(tt.impl.START, "call")
        tt.graph = p.compile(checkpointer=tt.saver)
        tt.rec("astream", ns(tt.value([c async for c in tt.graph.astream({"log": []}, tt.cfg, subgraphs=True)])))
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)


def test_stateful_child_accumulates(run_both, time_travel_saver):  # noqa: F811
    """test_stateful_state_accumulates: a child wrapped in a graph compiled with
    checkpointer=True keeps its history across the parent's runs on one thread."""

    def scenario(tt):
        def echo(state):
            return {"log": [f"echo:{state['log'][-1]}"]}

        inner = tt.impl.StateGraph(Log)
        inner.add_node("echo", echo)
        inner.add_edge(tt.impl.START, "echo")
        wrapper = tt.impl.StateGraph(Log)
        wrapper.add_node("agent", inner.compile())
        wrapper.add_edge(tt.impl.START, "agent")
        stateful = wrapper.compile(checkpointer=True)
        seen = []

        def call(state):
            out = stateful.invoke({"log": [f"topic{len(seen)}"]})
            seen.append(out["log"])
            return {"log": [out["log"][-1]]}

        p = tt.impl.StateGraph(Log)
        p.add_node("call", call)
        p.add_edge(tt.impl.START, "call")
        tt.graph = p.compile(checkpointer=tt.saver)
        tt.rec("first", tt.value(tt.graph.invoke({"log": []}, tt.cfg)))
        tt.rec("second", tt.value(tt.graph.invoke({"log": []}, tt.cfg)))
        tt.rec("seen", tt.value(seen))
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)


def test_parent_without_checkpointer_ignores_childs_own(run_both):
    """A child's own saver is not used under a parent (the parent's, here none, is)."""

    def scenario(tt):
        from timetravel_savers import langgraph_saver

        def leaf(state):
            return {"log": ["own"]}

        own = langgraph_saver() if tt.impl.name == "langgraph" else __import__("ferrograph.checkpointers", fromlist=["MemorySaver"]).MemorySaver()
        g = tt.impl.StateGraph(Log)
        g.add_node("own", leaf)
        g.add_edge(tt.impl.START, "own")
        child = g.compile(checkpointer=own)
        p = tt.impl.StateGraph(Log)
        p.add_node("p", child)
        p.add_edge(tt.impl.START, "p")
        tt.rec("invoke", tt.value(p.compile().invoke({"log": []})))
        tt.rec("child's saver", len(list(own.list(None))))

    run_both(scenario)


def test_stateful_graph_at_root_is_an_error(run_both):
    def scenario(tt):
        g = tt.impl.StateGraph(Log)
        g.add_node("n", lambda s: {"log": ["n"]})
        g.add_edge(tt.impl.START, "n")
        graph = g.compile(checkpointer=True)
        for call in (lambda: graph.invoke({"log": []}), lambda: list(graph.stream({"log": []}))):
            try:
                call()
                tt.rec("error", None)
            except RuntimeError as exc:
                tt.rec("error", str(exc))

    run_both(scenario)


# --------------------------------------------------------------------------------------------
# Slice 2: interrupts inside a subgraph, resumed from the parent; the child's state


def _asking_child(tt, questions=1):
    def ask(state):
        answers = [tt.impl.interrupt(f"q{i}?") for i in range(questions)]
        return {"log": [f"ask:{','.join(answers)}"]}

    return _chain(tt, Log, ("ask", ask), ("after", _logs(tt, "after")))


def _asking_parent(tt, child):
    return _chain(tt, Log, ("p1", _logs(tt, "p1")), ("child", child))


def test_interrupt_in_subgraph_node_resumed_from_parent(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        tt.flags["subgraphs"] = True
        tt.graph = _asking_parent(tt, _asking_child(tt).compile()).compile(checkpointer=tt.saver)
        tt.rec("first", ns(tt.value(list(tt.graph.stream({"log": []}, tt.cfg, subgraphs=True)))))
        tt.rec("state", tt.state())
        pos = tt.positions()
        paused = tt.graph.get_state(tt.cfg, subgraphs=True)
        tt.rec("state+subgraphs", tt.snap(paused, pos))
        child_config = paused.tasks[0].state.config
        tt.rec("child state", tt.snap(tt.graph.get_state(child_config), pos))
        tt.rec("child state by namespace", tt.snap(tt.graph.get_state(paused.tasks[0].state.config | {"configurable": {k: v for k, v in child_config["configurable"].items() if k in ("thread_id", "checkpoint_ns")}}), pos))
        tt.rec("child history", tt.history(child_config))
        ns_only = {"configurable": {"thread_id": "t1", "checkpoint_ns": child_config["configurable"]["checkpoint_ns"]}}
        tt.rec("child whole history", tt.history(ns_only))
        tt.rec("resume", ns(tt.value(list(tt.graph.stream(tt.impl.Command(resume="yes"), tt.cfg, subgraphs=True)))))
        tt.rec("final", tt.state())
        tt.rec("final+subgraphs", tt.snap(tt.graph.get_state(tt.cfg, subgraphs=True), tt.positions()))
        tt.rec("history", tt.history())
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)


def test_two_interrupts_in_subgraph(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        tt.flags["subgraphs"] = True
        tt.graph = _asking_parent(tt, _asking_child(tt, questions=2).compile()).compile(checkpointer=tt.saver)
        tt.rec("first", tt.value(tt.graph.invoke({"log": []}, tt.cfg)))
        tt.rec("second", tt.value(tt.graph.invoke(tt.impl.Command(resume="a"), tt.cfg)))
        tt.rec("state", tt.state())
        tt.rec("third", tt.value(tt.graph.invoke(tt.impl.Command(resume="b"), tt.cfg)))
        tt.rec("final", tt.state())
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)


@pytest.mark.parametrize("persistence", [None, True], ids=["stateless", "stateful"])
def test_interrupt_in_graph_invoked_inside_node(run_both, time_travel_saver, persistence):  # noqa: F811
    """test_stateless_state_resets_with_interrupt / test_stateful_state_accumulates_with_interrupt:
    two invoke+resume cycles; a default child starts afresh, a checkpointer=True one keeps
    its history."""

    def scenario(tt):
        tt.flags["subgraphs"] = True
        inner = _asking_child(tt).compile(checkpointer=persistence)
        seen = []

        def call(state):
            out = inner.invoke({"log": [f"topic{len(seen)}"]})
            seen.append(out["log"])
            return {"log": [out["log"][-1]]}

        p = tt.impl.StateGraph(Log)
        p.add_node("call", call)
        p.add_edge(tt.impl.START, "call")
        tt.graph = p.compile(checkpointer=tt.saver)
        for cycle in range(2):
            tt.rec(f"run {cycle}", tt.value(tt.graph.invoke({"log": []}, tt.cfg)))
            tt.rec(f"resume {cycle}", tt.value(tt.graph.invoke(tt.impl.Command(resume=f"r{cycle}"), tt.cfg)))
        tt.rec("seen", tt.value(seen))
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)


def test_update_state_of_a_subgraph(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        tt.flags["subgraphs"] = True
        tt.graph = _asking_parent(tt, _asking_child(tt).compile()).compile(checkpointer=tt.saver)
        tt.graph.invoke({"log": []}, tt.cfg)
        child_config = tt.graph.get_state(tt.cfg, subgraphs=True).tasks[0].state.config
        tt.rec("update", tt.call(tt.graph.update_state, child_config, {"log": ["edited"]}))
        tt.rec("update as node", tt.call(tt.graph.update_state, child_config, {"log": ["as-ask"]}, as_node="ask"))
        tt.rec("state+subgraphs", tt.snap(tt.graph.get_state(tt.cfg, subgraphs=True), tt.positions()))
        tt.rec("resume", tt.value(tt.graph.invoke(tt.impl.Command(resume="yes"), tt.cfg)))
        tt.rec("final", tt.state())
        # A namespace that names no subgraph node cannot be written.
        wrong = {"configurable": {"thread_id": "t1", "checkpoint_ns": "nope:1"}}
        try:
            tt.graph.update_state(wrong, {"log": ["x"]})
            tt.rec("unknown subgraph", None)
        except ValueError as exc:
            tt.rec("unknown subgraph", str(exc))

    run_both(scenario, time_travel_saver)


def test_interrupt_in_subgraph_async(run_both, time_travel_saver):  # noqa: F811
    async def scenario(tt):
        tt.flags["subgraphs"] = True
        tt.graph = _asking_parent(tt, _asking_child(tt).compile()).compile(checkpointer=tt.saver)
        tt.rec("first", ns(tt.value([c async for c in tt.graph.astream({"log": []}, tt.cfg, subgraphs=True)])))
        paused = await tt.graph.aget_state(tt.cfg, subgraphs=True)
        tt.rec("state+subgraphs", tt.snap(paused, await tt.apositions()))
        tt.rec("child history", await tt.ahistory(paused.tasks[0].state.config))
        tt.rec("update", await tt.acall(tt.graph.aupdate_state, paused.tasks[0].state.config, {"log": ["edited"]}))
        tt.rec("resume", tt.value(await tt.graph.ainvoke(tt.impl.Command(resume="yes"), tt.cfg)))
        tt.rec("final", await tt.astate())

    run_both(scenario, time_travel_saver)


# --------------------------------------------------------------------------------------------
# Slice 3: time travel into subgraphs; Command(graph=Command.PARENT)


def _three_step_child(tt):
    def ask(state):
        tt.hit("ask")
        return {"log": [f"ask:{tt.impl.interrupt('q?')}"]}

    return _chain(tt, Log, ("c1", _logs(tt, "c1", hit=True)), ("ask", ask), ("after", _logs(tt, "after", hit=True))).compile()


def _around(tt, child):
    return _chain(tt, Log, ("p1", _logs(tt, "p1", hit=True)), ("child", child), ("p2", _logs(tt, "p2", hit=True)))


def _hits(tt):
    from timetravel_harness import hit

    tt.hit = lambda name: hit(tt.probe, name)


def test_replay_parent_before_subgraph(run_both, time_travel_saver):  # noqa: F811
    """Replaying the parent from the checkpoint before the subgraph's step forks it: the child
    task is new, so the child starts afresh; replaying that fork again (it is no longer the
    latest) forks once more."""

    def scenario(tt):
        tt.flags["subgraphs"] = True
        _hits(tt)
        tt.graph = _around(tt, _three_step_child(tt)).compile(checkpointer=tt.saver)
        tt.rec("run", tt.call(tt.graph.invoke, {"log": []}, tt.cfg))
        tt.rec("resume", tt.call(tt.graph.invoke, tt.impl.Command(resume="yes"), tt.cfg))
        before_child = next(s for s in tt.graph.get_state_history(tt.cfg) if s.next == ("child",))
        tt.rec("replay", tt.call(tt.graph.invoke, None, before_child.config))
        tt.rec("state+subgraphs", tt.snap(tt.graph.get_state(tt.cfg, subgraphs=True), tt.positions()))
        fork = tt.graph.get_state(tt.cfg).config
        tt.rec("resume fork", tt.call(tt.graph.invoke, tt.impl.Command(resume="again"), tt.cfg))
        tt.rec("replay fork", tt.call(tt.graph.invoke, None, fork))
        tt.rec("history", tt.history())
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)


def test_invoke_with_a_childs_checkpoint_config(run_both, time_travel_saver):  # noqa: F811
    """A child's checkpoint config (with its checkpoint_map) given to the parent's invoke: the
    parent replays from its own checkpoint in the map, as LangGraph does."""

    def scenario(tt):
        tt.flags["subgraphs"] = True
        _hits(tt)
        tt.graph = _around(tt, _three_step_child(tt)).compile(checkpointer=tt.saver)
        tt.graph.invoke({"log": []}, tt.cfg)
        tt.graph.invoke(tt.impl.Command(resume="yes"), tt.cfg)
        tt.ran()
        before_child = next(s for s in tt.graph.get_state_history(tt.cfg) if s.next == ("child",))
        child_ns = before_child.tasks[0].state["configurable"]["checkpoint_ns"]
        child_history = list(tt.graph.get_state_history({"configurable": {"thread_id": "t1", "checkpoint_ns": child_ns}}))
        at_ask = next(s for s in child_history if s.next == ("ask",))
        tt.rec("child history", tt.history({"configurable": {"thread_id": "t1", "checkpoint_ns": child_ns}}))
        tt.rec("travel", tt.call(tt.graph.invoke, None, at_ask.config))
        tt.rec("state", tt.state())
        tt.rec("history", tt.history())

    run_both(scenario, time_travel_saver)


def test_time_travel_loads_a_stateful_childs_checkpoint_of_then(run_both, time_travel_saver):  # noqa: F811
    """A checkpointer=True child keeps one history per thread; replaying the parent from an
    earlier run's checkpoint starts the child from its checkpoint as of then, not its latest."""

    def scenario(tt):
        tt.flags["subgraphs"] = True

        def echo(state):
            return {"log": [f"echo{len(state['log'])}"]}

        inner = tt.impl.StateGraph(Log)
        inner.add_node("echo", echo)
        inner.add_edge(tt.impl.START, "echo")
        wrapper = tt.impl.StateGraph(Log)
        wrapper.add_node("agent", inner.compile())
        wrapper.add_edge(tt.impl.START, "agent")
        stateful = wrapper.compile(checkpointer=True)

        def pre(state):
            return {"log": ["pre"]}

        def call(state):
            return {"log": [stateful.invoke({"log": ["q"]})["log"][-1]]}

        p = tt.impl.StateGraph(Log)
        p.add_node("pre", pre)
        p.add_node("call", call)
        p.add_edge(tt.impl.START, "pre")
        p.add_edge("pre", "call")
        tt.graph = p.compile(checkpointer=tt.saver)
        for run in range(3):
            tt.rec(f"run {run}", tt.value(tt.graph.invoke({"log": []}, tt.cfg)))
        second = [s for s in tt.graph.get_state_history(tt.cfg) if s.next == ("call",)][1]
        tt.rec("replay", tt.value(tt.graph.invoke(None, second.config)))
        tt.rec("state", tt.state())
        # Read through the parent, which does not declare this child (it is invoked inside a
        # node): only its values are the child's (LangGraph derives `next` from the parent's
        # nodes there).
        child = tt.graph.get_state_history({"configurable": {"thread_id": "t1", "checkpoint_ns": "call"}})
        tt.rec("child", [(s.metadata["source"], s.metadata["step"], tt.value(s.values)) for s in child])

    run_both(scenario, time_travel_saver)


def _by_step(chunks: list) -> list:
    """(ns, mode, chunk) items with each run of "updates" chunks sorted: parallel tasks'
    updates stream in the order they finish, on both implementations."""
    out: list = []
    run: list = []
    for item in chunks + [None]:
        if item is not None and item[1] == "updates":
            run.append(item)
            continue
        out.extend(sorted(run, key=repr))
        run = []
        if item is not None:
            out.append(item)
    return out


def _jumping_child(tt):
    def jump(state):
        return tt.impl.Command(graph=tt.impl.Command.PARENT, goto="other", update={"log": ["jumped"]})

    return _chain(tt, Log, ("c1", _logs(tt, "c1")), ("jump", jump), ("c3", _logs(tt, "c3"))).compile()


def _jumping_parent(tt, child):
    return _chain(
        tt, Log, ("p1", _logs(tt, "p1")), ("child", child), ("p2", _logs(tt, "p2")), extra=[("other", _logs(tt, "other"))]
    )


def test_command_to_parent(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        tt.flags["subgraphs"] = True
        plain = _jumping_parent(tt, _jumping_child(tt)).compile()
        modes = ["updates", "values"]
        tt.rec("no saver", _by_step(ns(tt.value(list(plain.stream({"log": []}, stream_mode=modes, subgraphs=True))))))
        tt.graph = _jumping_parent(tt, _jumping_child(tt)).compile(checkpointer=tt.saver)
        tt.rec("saver", _by_step(ns(tt.value(list(tt.graph.stream({"log": []}, tt.cfg, stream_mode=modes, subgraphs=True))))))
        tt.rec("history", tt.history())
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)


def test_command_to_parent_from_a_graph_invoked_in_a_node(run_both):
    def scenario(tt):
        child = _jumping_child(tt)

        def call(state):
            return child.invoke({"log": []})

        g = _jumping_parent(tt, call)
        tt.rec("invoke", tt.value(g.compile().invoke({"log": []})))

    run_both(scenario)


def test_command_to_parent_async(run_both, time_travel_saver):  # noqa: F811
    async def scenario(tt):
        tt.flags["subgraphs"] = True
        tt.graph = _jumping_parent(tt, _jumping_child(tt)).compile(checkpointer=tt.saver)
        chunks = [c async for c in tt.graph.astream({"log": []}, tt.cfg, stream_mode=["updates", "values"], subgraphs=True)]
        tt.rec("astream", _by_step(ns(tt.value(chunks))))
        tt.rec("history", await tt.ahistory())

    run_both(scenario, time_travel_saver)


def test_command_to_parent_at_the_root_is_an_error(run_both):
    def scenario(tt):
        g = tt.impl.StateGraph(Log)
        g.add_node("n", lambda s: tt.impl.Command(graph=tt.impl.Command.PARENT, goto="n"))
        g.add_edge(tt.impl.START, "n")
        try:
            g.compile().invoke({"log": []})
            tt.rec("error", None)
        except Exception as exc:  # noqa: BLE001 - compared
            tt.rec("error", type(exc).__name__)

    run_both(scenario)


# --------------------------------------------------------------------------------------------
# Slice 4: drawing with xray, subgraphs found inside nodes, their classes in the allowlist


def _nested_for_drawing(tt, inner_persistence=None):
    def f(state):
        return {}

    inner = tt.impl.StateGraph(Log)
    inner.add_node("i1", f)
    inner.add_node("i2", f)
    inner.add_edge(tt.impl.START, "i1")
    inner.add_edge("i1", "i2")
    mid = tt.impl.StateGraph(Log)
    mid.add_node("m1", f)
    mid.add_node("inner", inner.compile(checkpointer=inner_persistence))
    mid.add_edge(tt.impl.START, "m1")
    mid.add_edge("m1", "inner")
    mid.add_conditional_edges("inner", lambda s: tt.impl.END, {tt.impl.END: tt.impl.END, "m1": "m1"})
    top = tt.impl.StateGraph(Log)
    top.add_node("p1", f)
    top.add_node("mid", mid.compile())
    top.add_node("p2", f)
    top.add_edge(tt.impl.START, "p1")
    top.add_edge("p1", "mid")
    top.add_edge("mid", "p2")
    return top.compile()


@pytest.mark.parametrize("inner_persistence", [None, False], ids=["inner", "inner-without-persistence"])
def test_draw_with_xray(run_both, inner_persistence):
    def scenario(tt):
        g = _nested_for_drawing(tt, inner_persistence)
        for xray in (False, True, 1, 2):
            drawn = g.get_graph(xray=xray)
            tt.rec(f"mermaid {xray}", drawn.draw_mermaid())
            tt.rec(f"nodes {xray}", [(k, n.name, n.metadata) for k, n in drawn.nodes.items()])
            tt.rec(f"edges {xray}", [(e.source, e.target, e.data, e.conditional) for e in drawn.edges])
        tt.rec("subgraphs", [name for name, _ in g.get_subgraphs()])
        tt.rec("recursive", [name for name, _ in g.get_subgraphs(recurse=True)])
        tt.rec("by namespace", [name for name, _ in g.get_subgraphs(namespace="mid", recurse=True)])

    run_both(scenario)


def test_draw_with_xray_async(run_both):
    async def scenario(tt):
        g = _nested_for_drawing(tt)
        tt.rec("mermaid", (await g.aget_graph(xray=True)).draw_mermaid())
        tt.rec("subgraphs", [name async for name, _ in g.aget_subgraphs(recurse=True)])

    run_both(scenario)


def test_subgraph_used_inside_a_node(run_both, time_travel_saver):  # noqa: F811
    """A graph the node's function uses (here from its closure) is that node's subgraph, as
    LangGraph detects it: its task carries the child's config, get_state(subgraphs=True) its
    snapshot, and update_state reaches it."""

    def scenario(tt):
        tt.flags["subgraphs"] = True
        inner = _asking_child(tt).compile()

        def call(state):
            return {"log": inner.invoke({"log": ["in"]})["log"]}

        p = tt.impl.StateGraph(Log)
        p.add_node("call", call)
        p.add_edge(tt.impl.START, "call")
        tt.graph = p.compile(checkpointer=tt.saver)
        tt.rec("first", tt.value(tt.graph.invoke({"log": []}, tt.cfg)))
        tt.rec("state", tt.state())
        paused = tt.graph.get_state(tt.cfg, subgraphs=True)
        tt.rec("state+subgraphs", tt.snap(paused, tt.positions()))
        tt.rec("update", tt.call(tt.graph.update_state, paused.tasks[0].state.config, {"log": ["edited"]}))
        tt.rec("resume", tt.value(tt.graph.invoke(tt.impl.Command(resume="yes"), tt.cfg)))
        tt.rec("history", tt.history())

    run_both(scenario, time_travel_saver)


def test_child_state_classes_reach_the_parent(run_both, time_travel_saver):  # noqa: F811
    """A child's schema classes may be stored in the parent's checkpoints too (ferrograph
    allows them there: they are the parent's subgraph's)."""

    def scenario(tt):
        tt.flags["subgraphs"] = True
        from typed_state_models import Citation

        class ChildState(TypedDict):
            item: Citation

        class ParentState(TypedDict):
            item: object

        c = tt.impl.StateGraph(ChildState)
        c.add_node("mk", lambda s: {"item": Citation("doc", 2)})
        c.add_edge(tt.impl.START, "mk")
        p = tt.impl.StateGraph(ParentState)
        p.add_node("child", c.compile())
        p.add_edge(tt.impl.START, "child")
        tt.graph = p.compile(checkpointer=tt.saver)
        tt.rec("invoke", tt.value(tt.graph.invoke({"item": None}, tt.cfg)))
        tt.rec("state+subgraphs", tt.snap(tt.graph.get_state(tt.cfg, subgraphs=True), tt.positions()))
        tt.rec("history", tt.history())

    run_both(scenario, time_travel_saver)


def test_child_streams_custom_and_debug(run_both):
    """A child's "custom" chunks (get_stream_writer in its nodes) and "debug" events carry its
    namespace with subgraphs=True; without it only the parent's own are streamed."""

    def scenario(tt):
        def c1(state):
            tt.impl.get_stream_writer()({"from": "c1"})
            return {"log": ["c1"]}

        def p1(state):
            tt.impl.get_stream_writer()({"from": "p1"})
            return {"log": ["p1"]}

        c = tt.impl.StateGraph(Log)
        c.add_node("c1", c1)
        c.add_edge(tt.impl.START, "c1")
        p = tt.impl.StateGraph(Log)
        p.add_node("p1", p1)
        p.add_node("child", c.compile())
        p.add_edge(tt.impl.START, "p1")
        p.add_edge("p1", "child")
        g = p.compile()
        tt.rec("custom", tt.value(list(g.stream({"log": []}, stream_mode="custom"))))
        tt.rec("custom+updates", ns(tt.value(list(g.stream({"log": []}, stream_mode=["custom", "updates"], subgraphs=True)))))
        debug = list(g.stream({"log": []}, stream_mode="debug", subgraphs=True))
        tt.rec("debug", ns([(list(n), c["step"], c["type"], c["payload"]["name"], tt.value(c["payload"].get("result"))) for n, c in debug]))
        tt.rec("invoke updates", tt.value(g.invoke({"log": []}, stream_mode="updates")))
        tt.rec("output_keys", ns(tt.value(list(g.stream({"log": []}, stream_mode="values", subgraphs=True, output_keys="log")))))

    run_both(scenario)


def test_failed_child_resumes_from_its_checkpoint(run_both, time_travel_saver):  # noqa: F811
    """A child's node fails: the parent's task fails with its error (the child's snapshot
    shows where); `invoke(None)` goes on in the child from its last checkpoint, re-running
    only the failed node."""

    def scenario(tt):
        tt.flags["subgraphs"] = True
        _hits(tt)

        def c1(state):
            tt.hit("c1")
            return {"log": ["c1"]}

        def c2(state):
            tt.hit("c2")
            if tt.flags.get("fail"):
                raise ValueError("boom")
            return {"log": ["c2"]}

        c = tt.impl.StateGraph(Log)
        c.add_node("c1", c1)
        c.add_node("c2", c2)
        c.add_edge(tt.impl.START, "c1")
        c.add_edge("c1", "c2")
        tt.graph = _around(tt, c.compile()).compile(checkpointer=tt.saver)
        tt.flags["fail"] = True
        tt.rec("run", tt.call(tt.graph.invoke, {"log": []}, tt.cfg))
        tt.rec("state+subgraphs", tt.snap(tt.graph.get_state(tt.cfg, subgraphs=True), tt.positions()))
        tt.flags["fail"] = False
        tt.rec("resume", tt.call(tt.graph.invoke, None, tt.cfg))
        tt.rec("history", tt.history())

    run_both(scenario, time_travel_saver)


def test_interrupt_before_inside_a_child(run_both, time_travel_saver):  # noqa: F811
    """A child compiled with interrupt_before stops there; its parent pauses with it (the stop
    is streamed in the parent's namespace) and `invoke(None)` goes on in the child."""

    def scenario(tt):
        tt.flags["subgraphs"] = True
        _hits(tt)

        def c1(state):
            tt.hit("c1")
            return {"log": ["c1"]}

        def c2(state):
            tt.hit("c2")
            return {"log": ["c2"]}

        c = tt.impl.StateGraph(Log)
        c.add_node("c1", c1)
        c.add_node("c2", c2)
        c.add_edge(tt.impl.START, "c1")
        c.add_edge("c1", "c2")
        tt.graph = _around(tt, c.compile(interrupt_before=["c2"])).compile(checkpointer=tt.saver)
        tt.rec("run", ns(tt.value(list(tt.graph.stream({"log": []}, tt.cfg, subgraphs=True)))))
        tt.rec("ran", tt.ran())
        tt.rec("state+subgraphs", tt.snap(tt.graph.get_state(tt.cfg, subgraphs=True), tt.positions()))
        tt.rec("resume", ns(tt.value(list(tt.graph.stream(None, tt.cfg, subgraphs=True)))))
        tt.rec("ran again", tt.ran())
        tt.rec("history", tt.history())

    run_both(scenario, time_travel_saver)


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_child_checkpoints_by_durability(run_both, time_travel_saver, durability):  # noqa: F811
    """A child runs with its parent's durability: with "exit" a default child that finishes
    keeps no checkpoint (LangGraph writes a child's only when it stops on an error or
    interrupt, or when it keeps a history per thread)."""

    def scenario(tt):
        tt.flags["subgraphs"] = True
        c = tt.impl.StateGraph(Log)
        c.add_node("c1", lambda s: {"log": ["c1"]})
        c.add_edge(tt.impl.START, "c1")
        tt.graph = _asking_parent(tt, c.compile()).compile(checkpointer=tt.saver)
        tt.rec("invoke", tt.value(tt.graph.invoke({"log": []}, tt.cfg, durability=durability)))
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)


def test_child_checkpoint_events(run_both, time_travel_saver):  # noqa: F811
    """stream_mode "checkpoints" and "tasks" with subgraphs=True: the child's events carry its
    namespace, its checkpoints' configs their checkpoint_map."""

    def scenario(tt):
        tt.flags["subgraphs"] = True
        c = tt.impl.StateGraph(Log)
        c.add_node("c1", lambda s: {"log": ["c1"]})
        c.add_edge(tt.impl.START, "c1")
        tt.graph = _asking_parent(tt, c.compile()).compile(checkpointer=tt.saver)
        chunks = list(tt.graph.stream({"log": []}, tt.cfg, stream_mode=["checkpoints", "tasks"], subgraphs=True, durability="sync"))
        pos = tt.positions()
        seen = []
        for n, mode, chunk in chunks:
            if mode == "checkpoints":
                seen.append((ns(list(n)), mode, tt.config(chunk["config"], pos), tt.config(chunk["parent_config"], pos), tt.metadata(chunk["metadata"], pos), chunk["next"], tt.value(chunk["values"])))
            else:
                seen.append((ns(list(n)), mode, chunk["name"], sorted(chunk)))
        tt.rec("events", seen)

    run_both(scenario, time_travel_saver)


def test_child_messages_stream(run_both):
    """stream_mode="messages": a chat model's tokens in a child are streamed with the child's
    namespace and metadata with subgraphs=True; without it the child's tokens are not
    streamed, and the messages the child returns come as the parent's node's output."""

    def scenario(tt):
        from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
        from langchain_core.messages import AIMessage, HumanMessage

        def ret(state):
            return {"messages": [AIMessage("returned", id="r1")]}

        def model(state):
            llm = GenericFakeChatModel(messages=iter([AIMessage("hello there", id="m0")]))
            return {"messages": [llm.invoke(state["messages"])]}

        c = tt.impl.StateGraph(tt.impl.MessagesState)
        c.add_node("ret", ret)
        c.add_node("model", model)
        c.add_edge(tt.impl.START, "ret")
        c.add_edge("ret", "model")
        p = tt.impl.StateGraph(tt.impl.MessagesState)
        p.add_node("child", c.compile())
        p.add_edge(tt.impl.START, "child")
        g = p.compile()
        keys = ("langgraph_node", "langgraph_step", "langgraph_path", "langgraph_triggers", "langgraph_checkpoint_ns", "checkpoint_ns")
        for sub in (False, True):
            seen = []
            for item in g.stream({"messages": [HumanMessage("hi", id="h")]}, stream_mode="messages", subgraphs=sub):
                space, (message, metadata) = item if sub else ((), item)
                seen.append((list(space), type(message).__name__, message.content, {k: tt.value(metadata.get(k)) for k in keys}))
            tt.rec(f"subgraphs={sub}", ns(seen))

    run_both(scenario)


# --------------------------------------------------------------------------------------------
# Ported from LangGraph's test_pregel.py: test_nested_graph_interrupts_parallel and
# test_doubly_nested_graph_interrupts


@pytest.mark.parametrize("durability", ["sync", "exit"])
def test_nested_graph_interrupts_parallel(run_both, time_travel_saver, durability):  # noqa: F811
    def scenario(tt):
        tt.flags["subgraphs"] = True

        class InnerState(TypedDict):
            my_key: Annotated[str, operator.add]
            my_other_key: str

        class State(TypedDict):
            my_key: Annotated[str, operator.add]

        inner = tt.impl.StateGraph(InnerState)
        inner.add_node("inner_1", lambda s: {"my_key": "got here", "my_other_key": s["my_key"]})
        inner.add_node("inner_2", lambda s: {"my_key": " and there", "my_other_key": s["my_key"]})
        inner.add_edge("inner_1", "inner_2")
        inner.set_entry_point("inner_1")
        inner.set_finish_point("inner_2")
        graph = tt.impl.StateGraph(State)
        graph.add_node("inner", inner.compile(interrupt_before=["inner_2"]))
        graph.add_node("outer_1", lambda s: {"my_key": " and parallel"})
        graph.add_node("outer_2", lambda s: {"my_key": " and back again"})
        graph.add_edge(tt.impl.START, "inner")
        graph.add_edge(tt.impl.START, "outer_1")
        graph.add_edge(["inner", "outer_1"], "outer_2")
        graph.set_finish_point("outer_2")
        tt.graph = app = graph.compile(checkpointer=tt.saver)
        d = {"durability": durability}
        tt.rec("invoke", tt.value(app.invoke({"my_key": ""}, tt.thread("1"), **d)))
        tt.rec("resume", tt.value(app.invoke(None, tt.thread("1"), **d)))
        tt.rec("stream", _by_step(ns(tt.value([c for c in app.stream({"my_key": ""}, tt.thread("2"), subgraphs=True, stream_mode=["updates"], **d)]))))
        # The finished outer_1 is streamed again on resume, marked cached, by LangGraph: that
        # is the root's resume (not the subgraph's), compared elsewhere; left out here.
        resumed = list(app.stream(None, tt.thread("2"), **d))
        tt.rec("stream resume", tt.value([c for c in resumed if "__metadata__" not in c]))
        tt.rec("values", tt.value(list(app.stream({"my_key": ""}, tt.thread("3"), stream_mode="values", **d))))
        tt.rec("values resume", tt.value(list(app.stream(None, tt.thread("3"), stream_mode="values", **d))))
        for when in ("interrupt_before", "interrupt_after"):
            tt.graph = app = graph.compile(checkpointer=tt.saver, **{when: ["outer_1"]})
            thread = tt.thread(when)
            tt.rec(f"{when} values", tt.value(list(app.stream({"my_key": ""}, thread, stream_mode="values", **d))))
            tt.rec(f"{when} resume", tt.value(list(app.stream(None, thread, stream_mode="values", **d))))
            tt.rec(f"{when} resume again", tt.value(list(app.stream(None, thread, stream_mode="values", **d))))

    run_both(scenario, time_travel_saver)


@pytest.mark.parametrize("durability", ["sync", "exit"])
def test_doubly_nested_graph_interrupts(run_both, time_travel_saver, durability):  # noqa: F811
    def scenario(tt):
        tt.flags["subgraphs"] = True

        class State(TypedDict):
            my_key: str

        grandchild = tt.impl.StateGraph(State)
        grandchild.add_node("grandchild_1", lambda s: {"my_key": s["my_key"] + " here"})
        grandchild.add_node("grandchild_2", lambda s: {"my_key": s["my_key"] + " and there"})
        grandchild.add_edge("grandchild_1", "grandchild_2")
        grandchild.set_entry_point("grandchild_1")
        grandchild.set_finish_point("grandchild_2")
        child = tt.impl.StateGraph(State)
        child.add_node("child_1", grandchild.compile(interrupt_before=["grandchild_2"]))
        child.set_entry_point("child_1")
        child.set_finish_point("child_1")
        graph = tt.impl.StateGraph(State)
        graph.add_node("parent_1", lambda s: {"my_key": "hi " + s["my_key"]})
        graph.add_node("child", child.compile())
        graph.add_node("parent_2", lambda s: {"my_key": s["my_key"] + " and back again"})
        graph.set_entry_point("parent_1")
        graph.add_edge("parent_1", "child")
        graph.add_edge("child", "parent_2")
        graph.set_finish_point("parent_2")
        tt.graph = app = graph.compile(checkpointer=tt.saver)
        d = {"durability": durability}
        tt.rec("invoke", tt.value(app.invoke({"my_key": "my value"}, tt.thread("1"), **d)))
        tt.rec("state", tt.snap(app.get_state(tt.thread("1"), subgraphs=True), tt.positions("1")))
        tt.rec("resume", tt.value(app.invoke(None, tt.thread("1"), **d)))
        tt.rec("stream", ns(tt.value(list(app.stream({"my_key": "my value"}, tt.thread("2"), subgraphs=True, **d)))))
        tt.rec("stream resume", ns(tt.value(list(app.stream(None, tt.thread("2"), subgraphs=True, **d)))))
        tt.rec("values", tt.value(list(app.stream({"my_key": "my value"}, tt.thread("3"), stream_mode="values", **d))))
        tt.rec("values resume", tt.value(list(app.stream(None, tt.thread("3"), stream_mode="values", **d))))

    run_both(scenario, time_travel_saver)


def test_subgraph_checkpoint_true_interrupt(run_both, time_travel_saver):  # noqa: F811
    """LangGraph's test_subgraph_checkpoint_true_interrupt: a checkpointer=True child with its
    own keys, invoked inside a node, asks; the parent's get_state(subgraphs=True) shows it."""

    def scenario(tt):
        tt.flags["subgraphs"] = True

        class SubgraphState(TypedDict):
            bar: str
            baz: str

        class ParentState(TypedDict):
            foo: str

        def subgraph_node_1(state):
            return {"baz": tt.impl.interrupt("Provide baz value")}

        def subgraph_node_2(state):
            return {"bar": state["bar"] + state["baz"]}

        sub = tt.impl.StateGraph(SubgraphState)
        sub.add_node("subgraph_node_1", subgraph_node_1)
        sub.add_node("subgraph_node_2", subgraph_node_2)
        sub.add_edge(tt.impl.START, "subgraph_node_1")
        sub.add_edge("subgraph_node_1", "subgraph_node_2")
        subgraph = sub.compile(checkpointer=True)

        def node_2(state):
            return {"foo": subgraph.invoke({"bar": state["foo"]})["bar"]}

        b = tt.impl.StateGraph(ParentState)
        b.add_node("node_1", lambda s: {"foo": "hi! " + s["foo"]})
        b.add_node("node_2", node_2)
        b.add_edge(tt.impl.START, "node_1")
        b.add_edge("node_1", "node_2")
        tt.graph = b.compile(checkpointer=tt.saver)
        tt.rec("invoke", tt.value(tt.graph.invoke({"foo": "foo"}, tt.cfg)))
        tt.rec("state+subgraphs", tt.snap(tt.graph.get_state(tt.cfg, subgraphs=True), tt.positions()))
        tt.rec("resume", tt.value(tt.graph.invoke(tt.impl.Command(resume="baz"), tt.cfg)))
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)


@pytest.mark.parametrize("persistence", [None, True, False], ids=["default", "stateful", "none"])
def test_parent_command_goto_deeply_nested(run_both, time_travel_saver, persistence):  # noqa: F811
    """LangGraph's test_parent_command_goto_deeply_nested: Command.PARENT from three levels
    down jumps in the immediate parent only."""

    def scenario(tt):
        tt.flags["subgraphs"] = True

        class State(TypedDict):
            dialog_state: Annotated[list[str], operator.add]

        def sub_sub_child(state):
            return tt.impl.Command(graph=tt.impl.Command.PARENT, goto="sub_child_3", update={"dialog_state": ["sub_sub_child"]})

        ssb = tt.impl.StateGraph(State)
        ssb.add_node("sub_sub_child", sub_sub_child)
        ssb.add_edge(tt.impl.START, "sub_sub_child")
        sub_sub = ssb.compile(name="sub_sub_graph", checkpointer=persistence)
        sb = tt.impl.StateGraph(State)
        sb.add_node("sub_child_1", lambda s: {"dialog_state": ["sub_child_1"]})
        sb.add_node("sub_child_2", sub_sub, destinations=("sub_child_3",))
        sb.add_node("sub_child_3", lambda s: {"dialog_state": ["sub_child_3"]})
        sb.add_edge(tt.impl.START, "sub_child_1")
        sb.add_edge("sub_child_1", "sub_child_2")
        sub = sb.compile(name="sub_graph", checkpointer=persistence)
        b = tt.impl.StateGraph(State)
        b.add_node("child_1", lambda s: {"dialog_state": ["child_1"]})
        b.add_node("child_2", sub)
        b.add_edge(tt.impl.START, "child_1")
        b.add_edge("child_1", "child_2")
        tt.graph = b.compile(name="main_graph", checkpointer=tt.saver)
        tt.rec("invoke", tt.value(tt.graph.invoke({"dialog_state": ["init"]}, tt.cfg)))
        tt.rec("history", tt.history())
        tt.rec("checkpoints", _checkpoints(tt))

    run_both(scenario, time_travel_saver)
