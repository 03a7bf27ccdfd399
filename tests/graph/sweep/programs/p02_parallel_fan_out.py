"""Run graph nodes in parallel: fan out from a to b and c, fan in to d (docs: use-graph-api,
"Create branches")."""

import operator
from typing import Annotated, Any

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    # The operator.add reducer fn makes this append-only
    aggregate: Annotated[list, operator.add]
    # What each node saw (printing from nodes of one step would race, on both libraries).
    seen: Annotated[list, operator.add]


def a(state: State):
    return {"aggregate": ["A"], "seen": [f"A saw {state['aggregate']}"]}


def b(state: State):
    return {"aggregate": ["B"], "seen": [f"B saw {state['aggregate']}"]}


def c(state: State):
    return {"aggregate": ["C"], "seen": [f"C saw {state['aggregate']}"]}


def d(state: State):
    return {"aggregate": ["D"], "seen": [f"D saw {state['aggregate']}"]}


def build():
    builder = StateGraph(State)
    builder.add_node(a)
    builder.add_node(b)
    builder.add_node(c)
    builder.add_node(d)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("a", "c")
    builder.add_edge("b", "d")
    builder.add_edge("c", "d")
    builder.add_edge("d", END)
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({"aggregate": []}, {"configurable": {"thread_id": "foo"}}))
    for chunk in graph.stream({"aggregate": []}, stream_mode="updates"):
        print(chunk)
    for chunk in graph.stream({"aggregate": []}, stream_mode="debug"):
        print(chunk["type"], chunk["step"], chunk["payload"].get("name"))


async def amain():
    graph = build()
    print(await graph.ainvoke({"aggregate": []}))
    async for chunk in graph.astream({"aggregate": []}):
        print(chunk)
