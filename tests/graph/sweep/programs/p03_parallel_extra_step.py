"""Parallel branches of different lengths joined by a waiting edge (docs: use-graph-api,
"Defer node execution" first graph, with add_edge(["b_2", "c"], "d"))."""

import operator
from typing import Annotated, Any

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    aggregate: Annotated[list, operator.add]
    # What each node saw (printing from nodes of one step would race, on both libraries).
    seen: Annotated[list, operator.add]


def make(name):
    def node(state: State):
        return {"aggregate": [name], "seen": [f"{name} saw {state['aggregate']}"]}

    return node


def build():
    builder = StateGraph(State)
    for name in ["a", "b", "b_2", "c", "d"]:
        builder.add_node(name, make(name))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("a", "c")
    builder.add_edge("b", "b_2")
    builder.add_edge(["b_2", "c"], "d")
    builder.add_edge("d", END)
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({"aggregate": []}))
    for chunk in graph.stream({"aggregate": []}, stream_mode=["values", "updates"]):
        print(chunk)


async def amain():
    graph = build()
    async for chunk in graph.astream({"aggregate": []}, stream_mode=["values", "updates"]):
        print(chunk)
