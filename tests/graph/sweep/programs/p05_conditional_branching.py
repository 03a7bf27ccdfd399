"""Conditional branching to one or several nodes (docs: use-graph-api, "Conditional
branching")."""

import operator
from typing import Annotated, Sequence

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    aggregate: Annotated[list, operator.add]
    # What each node saw (printing from nodes of one step would race, on both libraries).
    seen: Annotated[list, operator.add]
    # Add a key to the state. We will set this key to determine how we branch.
    which: str


def make(name):
    def node(state: State):
        return {"aggregate": [name], "seen": [f"{name} saw {state['aggregate']}"]}

    return node


def route_bc_or_cd(state: State) -> Sequence[str]:
    if state["which"] == "cd":
        return ["c", "d"]
    return ["b", "c"]


def build():
    builder = StateGraph(State)
    for name in ["a", "b", "c", "d", "e"]:
        builder.add_node(name, make(name))
    builder.add_edge(START, "a")
    intermediates = ["b", "c", "d"]
    builder.add_conditional_edges("a", route_bc_or_cd, intermediates)
    for node in intermediates:
        builder.add_edge(node, "e")
    builder.add_edge("e", END)
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({"aggregate": [], "which": "bc"}))
    print(graph.invoke({"aggregate": [], "which": "cd"}))
    for chunk in graph.stream({"aggregate": [], "which": "cd"}):
        print(chunk)
    print(graph.get_graph().draw_mermaid())


async def amain():
    graph = build()
    print(await graph.ainvoke({"aggregate": [], "which": "cd"}))
