"""Enum node names, add_sequence with (name, fn) pairs, set_entry/finish_point (test suite:
test_pregel.py::test_enum_node_names and test_add_sequence)."""

import enum

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


class NodeName(str, enum.Enum):
    BAZ = "baz"


class State(TypedDict):
    foo: str
    bar: str


def baz(state: State):
    return {"bar": state["foo"] + "!"}


def step1(state: State):
    return {"foo": state["foo"] + "1"}


def step2(state: State):
    return {"foo": state["foo"] + "2"}


def build_enum():
    graph = StateGraph(State)
    graph.add_node(NodeName.BAZ, baz)
    graph.add_edge(START, NodeName.BAZ)
    graph.add_edge(NodeName.BAZ, END)
    return graph.compile()


def build_sequence():
    builder = StateGraph(State).add_sequence([("first", step1), ("second", step2), step1])
    builder.set_entry_point("first")
    builder.set_finish_point("step1")
    return builder.compile()


def main():
    print(build_enum().invoke({"foo": "hello"}))
    graph = build_sequence()
    print(graph.invoke({"foo": "x"}))
    print(list(graph.stream({"foo": "x"})))
    print(graph.get_graph().draw_mermaid())


async def amain():
    print(await build_enum().ainvoke({"foo": "hello"}))
    print(await build_sequence().ainvoke({"foo": "y"}))
