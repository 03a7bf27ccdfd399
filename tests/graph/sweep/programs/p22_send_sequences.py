"""Send carrying a Command, nodes returning a list of Commands (test suite:
test_pregel.py::test_send_sequences)."""

import operator
from typing import Annotated, Literal

from langgraph.graph import START, StateGraph
from langgraph.types import Command, Send


class Node:
    def __init__(self, name: str):
        self.name = name
        setattr(self, "__name__", name)

    def __call__(self, state):
        update = [self.name] if isinstance(state, list) else ["|".join((self.name, str(state)))]
        if isinstance(state, Command):
            return [state, Command(update=update)]
        else:
            return update


def send_for_fun(state):
    return [
        Send("2", Command(goto=Send("2", 3))),
        Send("2", Command(goto=Send("2", 4))),
        "3.1",
    ]


def route_to_three(state) -> Literal["3"]:
    return "3"


def build():
    builder = StateGraph(Annotated[list, operator.add])
    builder.add_node(Node("1"))
    builder.add_node(Node("2"))
    builder.add_node(Node("3"))
    builder.add_node(Node("3.1"))
    builder.add_edge(START, "1")
    builder.add_conditional_edges("1", send_for_fun)
    builder.add_conditional_edges("2", route_to_three)
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke(["0"]))
    for chunk in graph.stream(["0"]):
        print(chunk)


async def amain():
    print(await build().ainvoke(["0"]))
