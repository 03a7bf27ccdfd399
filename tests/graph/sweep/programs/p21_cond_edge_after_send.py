"""Root list state, Send to a node twice, then a conditional edge (test suite:
test_pregel.py::test_cond_edge_after_send and test_concurrent_emit_sends)."""

import operator
from typing import Annotated, Literal

from langgraph.graph import START, StateGraph
from langgraph.types import Send


class Node:
    def __init__(self, name: str):
        self.name = name
        setattr(self, "__name__", name)

    def __call__(self, state):
        return [self.name] if isinstance(state, list) else ["|".join((self.name, str(state)))]


def send_for_fun(state):
    return [Send("2", state), Send("2", state)]


def send_many(state):
    return [Send("2", 1), Send("2", 2), "3.1"]


def send_for_profit(state):
    return [Send("2", 3), Send("2", 4)]


def route_to_three(state) -> Literal["3"]:
    return "3"


def build_one():
    builder = StateGraph(Annotated[list, operator.add])
    builder.add_node(Node("1"))
    builder.add_node(Node("2"))
    builder.add_node(Node("3"))
    builder.add_edge(START, "1")
    builder.add_conditional_edges("1", send_for_fun)
    builder.add_conditional_edges("2", route_to_three)
    return builder.compile()


def build_two():
    builder = StateGraph(Annotated[list, operator.add])
    builder.add_node(Node("1"))
    builder.add_node(Node("1.1"))
    builder.add_node(Node("2"))
    builder.add_node(Node("3"))
    builder.add_node(Node("3.1"))
    builder.add_edge(START, "1")
    builder.add_edge(START, "1.1")
    builder.add_conditional_edges("1", send_many)
    builder.add_conditional_edges("1.1", send_for_profit)
    builder.add_conditional_edges("2", route_to_three)
    return builder.compile()


def main():
    print(build_one().invoke(["0"]))
    graph = build_two()
    print(graph.invoke(["0"]))
    for chunk in graph.stream(["0"], stream_mode="updates"):
        print(chunk)


async def amain():
    print(await build_one().ainvoke(["0"]))
    print(await build_two().ainvoke(["0"]))
