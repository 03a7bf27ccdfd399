"""Graphs of the time-travel tests, each written once against ``tt.impl`` (see
timetravel_harness). Every node counts its runs with ``hit(tt.probe, name)``.

No ``from __future__ import annotations``: schemas must evaluate eagerly.
"""

import operator
import threading
import time
from typing import Annotated, Any, TypedDict

from timetravel_harness import NodeBoom, hit


class LogState(TypedDict):
    log: Annotated[list, operator.add]
    v: int


class MapState(TypedDict):
    items: list
    results: Annotated[list, operator.add]
    total: int


class AskState(TypedDict):
    log: Annotated[list, operator.add]
    answers: Annotated[list, operator.add]


def _node(tt, name, fn=None):
    """A node that logs its name, counts its run, and applies fn(state) -> partial update."""

    def node(state):
        hit(tt.probe, name)
        update = {"log": [name]}
        if fn is not None:
            update.update(fn(state))
        return update

    node.__name__ = name
    return node


def chain(tt):
    """START -> a -> b -> c -> END: v -> (v + 1) * 2 - 3."""
    i = tt.impl
    g = i.StateGraph(LogState)
    g.add_node("a", _node(tt, "a", lambda s: {"v": s["v"] + 1}))
    g.add_node("b", _node(tt, "b", lambda s: {"v": s["v"] * 2}))
    g.add_node("c", _node(tt, "c", lambda s: {"v": s["v"] - 3}))
    g.add_edge(i.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", i.END)
    return g


def fanout(tt):
    """START -> a -> (b, c) -> d -> END; b and c write the reducer only."""
    i = tt.impl
    g = i.StateGraph(LogState)
    g.add_node("a", _node(tt, "a", lambda s: {"v": s["v"] + 1}))
    g.add_node("b", _node(tt, "b"))
    g.add_node("c", _node(tt, "c"))
    g.add_node("d", _node(tt, "d", lambda s: {"v": s["v"] * 10 + len(s["log"])}))
    g.add_edge(i.START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")
    g.add_edge(["b", "c"], "d")
    g.add_edge("d", i.END)
    return g


def loop(tt):
    """START -> inc (self loop while v < 3) -> done -> END."""
    i = tt.impl
    g = i.StateGraph(LogState)
    g.add_node("inc", _node(tt, "inc", lambda s: {"v": s["v"] + 1}))
    g.add_node("done", _node(tt, "done"))
    g.add_edge(i.START, "inc")
    g.add_conditional_edges("inc", lambda s: "inc" if s["v"] < 3 else "done", ["inc", "done"])
    g.add_edge("done", i.END)
    return g


def map_reduce(tt):
    """START -> plan -> Send(work, x) per item -> join -> END."""
    i = tt.impl
    g = i.StateGraph(MapState)

    def plan(state):
        hit(tt.probe, "plan")
        return {"items": state["items"] + [len(state["items"]) + 1]}

    def work(arg):
        hit(tt.probe, "work")
        return {"results": [arg["x"] * 10]}

    def join(state):
        hit(tt.probe, "join")
        return {"total": sum(state["results"])}

    g.add_node("plan", plan)
    g.add_node("work", work)
    g.add_node("join", join)
    g.add_edge(i.START, "plan")
    g.add_conditional_edges("plan", lambda s: [i.Send("work", {"x": x}) for x in s["items"]], ["work"])
    g.add_edge("work", "join")
    g.add_edge("join", i.END)
    return g


def failing_fanout(tt, *, late_sibling: bool = False):
    """START -> a -> (b, c) -> d; c raises NodeBoom while tt.flags["fail_c"] is set, after b
    has finished (so which of them the failed step saw is not left to the thread scheduler).
    With `late_sibling`, b finishes only after c has raised: the failure reaches the runner
    before b's result does."""
    i = tt.impl
    g = i.StateGraph(LogState)
    c_failed = threading.Event()
    b_finished = threading.Event()

    def b(state):
        hit(tt.probe, "b")
        if late_sibling and tt.flags.get("fail_c"):
            assert c_failed.wait(10)
            time.sleep(0.05)
        b_finished.set()
        return {"log": ["b"], "v": state["v"] * 100}

    def c(state):
        hit(tt.probe, "c")
        if tt.flags.get("fail_c"):
            if not late_sibling:
                assert b_finished.wait(10)
                time.sleep(0.05)  # b's result reaches the runner first
            c_failed.set()
            raise NodeBoom("c failed", 7)
        return {"log": ["c"]}

    g.add_node("a", _node(tt, "a", lambda s: {"v": s["v"] + 1}))
    g.add_node("b", b)
    g.add_node("c", c)
    g.add_node("d", _node(tt, "d"))
    g.add_edge(i.START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")
    g.add_edge(["b", "c"], "d")
    g.add_edge("d", i.END)
    return g


def failing_fanout_late_sibling(tt):
    """`failing_fanout` whose b finishes after c has failed."""
    return failing_fanout(tt, late_sibling=True)


def ask(tt):
    """START -> pre -> ask (one interrupt()) -> post -> END."""
    i = tt.impl
    g = i.StateGraph(AskState)

    def ask_node(state):
        hit(tt.probe, "ask")
        answer = i.interrupt({"question": "name?", "seen": list(state["log"])})
        return {"log": ["ask"], "answers": [answer]}

    g.add_node("pre", _node(tt, "pre", lambda s: {}))
    g.add_node("ask", ask_node)
    g.add_node("post", _node(tt, "post", lambda s: {}))
    g.add_edge(i.START, "pre")
    g.add_edge("pre", "ask")
    g.add_edge("ask", "post")
    g.add_edge("post", i.END)
    return g


def ask_twice(tt):
    """START -> two (two interrupt() calls) -> END."""
    i = tt.impl
    g = i.StateGraph(AskState)

    def two(state):
        hit(tt.probe, "two")
        first = i.interrupt("first?")
        second = i.interrupt(f"second after {first}?")
        return {"log": ["two"], "answers": [first, second]}

    g.add_node("two", two)
    g.add_edge(i.START, "two")
    g.add_edge("two", i.END)
    return g


def ask_parallel(tt):
    """START -> (p1, p2, p3): p1 and p2 interrupt, p3 does not -> join -> END."""
    i = tt.impl
    g = i.StateGraph(AskState)

    def asker(name):
        def node(state):
            hit(tt.probe, name)
            answer = i.interrupt(f"{name}?")
            return {"log": [name], "answers": [f"{name}={answer}"]}

        return node

    g.add_node("p1", asker("p1"))
    g.add_node("p2", asker("p2"))
    g.add_node("p3", _node(tt, "p3", lambda s: {}))
    g.add_node("join", _node(tt, "join", lambda s: {}))
    for n in ("p1", "p2", "p3"):
        g.add_edge(i.START, n)
    g.add_edge(["p1", "p2", "p3"], "join")
    g.add_edge("join", i.END)
    return g


def async_chain(tt):
    """The chain with async nodes."""
    i = tt.impl
    g = i.StateGraph(LogState)

    def anode(name, fn):
        async def node(state):
            hit(tt.probe, name)
            return {"log": [name], **fn(state)}

        return node

    g.add_node("a", anode("a", lambda s: {"v": s["v"] + 1}))
    g.add_node("b", anode("b", lambda s: {"v": s["v"] * 2}))
    g.add_node("c", anode("c", lambda s: {"v": s["v"] - 3}))
    g.add_edge(i.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", i.END)
    return g


GRAPHS: dict[str, Any] = {
    "chain": (chain, {"v": 1}),
    "fanout": (fanout, {"v": 1}),
    "loop": (loop, {"v": 0}),
    "map_reduce": (map_reduce, {"items": [1, 2]}),
}
