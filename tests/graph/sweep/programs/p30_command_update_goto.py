"""Combine control flow and state updates with Command (docs: use-graph-api, "Combine control
flow and state updates with Command"), drawn with its Command[Literal[...]] edges."""

import random
from typing import Literal

from typing_extensions import TypedDict

from langgraph.graph import START, StateGraph
from langgraph.types import Command


# The docs call random.choice; a seeded generator of its own keeps the run repeatable (the
# module-level one would not do: LangGraph draws from it for its checkpoint ids).
rng = random.Random(7)


# Define graph state
class State(TypedDict):
    foo: str


# Define the nodes


def node_a(state: State) -> Command[Literal["node_b", "node_c"]]:
    print("Called A")
    value = rng.choice(["b", "c"])
    # this is a replacement for a conditional edge function
    if value == "b":
        goto = "node_b"
    else:
        goto = "node_c"

    # note how Command allows you to BOTH update the graph state AND route to the next node
    return Command(
        # this is the state update
        update={"foo": value},
        # this is a replacement for an edge
        goto=goto,
    )


def node_b(state: State):
    print("Called B")
    return {"foo": state["foo"] + "b"}


def node_c(state: State):
    print("Called C")
    return {"foo": state["foo"] + "c"}


def build():
    builder = StateGraph(State)
    builder.add_edge(START, "node_a")
    builder.add_node(node_a)
    builder.add_node(node_b)
    builder.add_node(node_c)
    # NOTE: there are no edges between nodes A, B and C!
    return builder.compile()


def main():
    graph = build()
    rng.seed(7)
    print(graph.invoke({"foo": ""}))
    rng.seed(8)
    for chunk in graph.stream({"foo": ""}):
        print(chunk)
    print(graph.get_graph().draw_mermaid())


async def amain():
    rng.seed(7)
    print(await build().ainvoke({"foo": ""}))
