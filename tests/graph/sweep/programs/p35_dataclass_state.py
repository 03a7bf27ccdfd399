"""A dataclass as graph state with defaults and a reducer field (docs: use-graph-api, "Define
and update state" with dataclasses; test suite: test_pregel.py::test_command_pydantic_dataclass)."""

import operator
from dataclasses import dataclass, field
from typing import Annotated

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command


@dataclass
class State:
    name: str
    items: Annotated[list[str], operator.add] = field(default_factory=list)
    count: int = 0


def first(state: State):
    return {"items": [state.name], "count": state.count + 1}


def second(state: State) -> Command:
    return Command(update={"items": ["second"], "count": state.count + 1}, goto=END)


def build():
    builder = StateGraph(State)
    builder.add_node("first", first)
    builder.add_node("second", second)
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({"name": "x"}))
    print(graph.invoke(State(name="y", items=["start"])))
    for chunk in graph.stream({"name": "z"}, stream_mode=["values", "updates"]):
        print(chunk)


async def amain():
    print(await build().ainvoke({"name": "x"}))
