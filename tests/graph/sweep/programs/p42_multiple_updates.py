"""A node returning a list of Commands, on a dict state and on a root state (test suite:
test_pregel.py::test_multiple_updates and test_multiple_updates_root)."""

import operator
from typing import Annotated

from typing_extensions import TypedDict

from langgraph.graph import START, StateGraph
from langgraph.types import Command


class State(TypedDict):
    foo: Annotated[str, operator.add]


def node_a(state):
    return [Command(update={"foo": "a1"}), Command(update={"foo": "a2"})]


def node_b(state):
    return {"foo": "b"}


def root_a(state):
    return [Command(update="a1"), Command(update="a2")]


def root_b(state):
    return "b"


def build():
    return StateGraph(State).add_sequence([node_a, node_b]).add_edge(START, "node_a").compile()


def build_root():
    return (
        StateGraph(Annotated[str, operator.add])
        .add_sequence([root_a, root_b])
        .add_edge(START, "root_a")
        .compile()
    )


def main():
    graph = build()
    print(graph.invoke({"foo": ""}))
    print([c for c in graph.stream({"foo": ""}, stream_mode="updates")])
    root = build_root()
    print(root.invoke(""))
    print([c for c in root.stream("", stream_mode="updates")])
    print([c for c in root.stream("", stream_mode="values")])


async def amain():
    print(await build().ainvoke({"foo": ""}))
    print([c async for c in build_root().astream("", stream_mode="updates")])
