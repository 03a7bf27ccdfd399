"""Defer node execution: d waits for every pending branch (docs: use-graph-api, "Defer node
execution")."""

import operator
from typing import Annotated, Any

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    aggregate: Annotated[list, operator.add]
    # What each node saw (printing from nodes of one step would race, on both libraries).
    seen: Annotated[list, operator.add]


def a(state: State):
    return {"aggregate": ["A"], "seen": [f"A saw {state['aggregate']}"]}


def b(state: State):
    return {"aggregate": ["B"], "seen": [f"B saw {state['aggregate']}"]}


def b_2(state: State):
    return {"aggregate": ["B_2"], "seen": [f"B_2 saw {state['aggregate']}"]}


def c(state: State):
    return {"aggregate": ["C"], "seen": [f"C saw {state['aggregate']}"]}


def d(state: State):
    return {"aggregate": ["D"], "seen": [f"D saw {state['aggregate']}"]}


def build():
    builder = StateGraph(State)
    builder.add_node(a)
    builder.add_node(b)
    builder.add_node(b_2)
    builder.add_node(c)
    builder.add_node(d, defer=True)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("a", "c")
    builder.add_edge("b", "b_2")
    builder.add_edge("b_2", "d")
    builder.add_edge("c", "d")
    builder.add_edge("d", END)
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({"aggregate": []}))
    for chunk in graph.stream({"aggregate": []}):
        print(chunk)


async def amain():
    graph = build()
    print(await graph.ainvoke({"aggregate": []}))
