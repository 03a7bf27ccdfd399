"""Managed values: RemainingSteps lets a looping node stop before the recursion limit (docs:
use-graph-api, "Impose a recursion limit" with RemainingSteps; test suite:
test_managed_values.py)."""

import operator
from typing import Annotated, Literal

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.managed import IsLastStep, RemainingSteps


class State(TypedDict):
    aggregate: Annotated[list, operator.add]
    remaining_steps: RemainingSteps
    is_last_step: IsLastStep


def a(state: State):
    print(f"a: remaining {state['remaining_steps']}, last {state['is_last_step']}")
    return {"aggregate": ["A"]}


def b(state: State):
    return {"aggregate": ["B"]}


def route(state: State) -> Literal["b", END]:
    if state["remaining_steps"] <= 2:
        return END
    else:
        return "b"


def build():
    builder = StateGraph(State)
    builder.add_node(a)
    builder.add_node(b)
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", route)
    builder.add_edge("b", "a")
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({"aggregate": []}, {"recursion_limit": 8}))
    for chunk in graph.stream({"aggregate": []}, {"recursion_limit": 5}, stream_mode="values"):
        print(chunk)


async def amain():
    print(await build().ainvoke({"aggregate": []}, {"recursion_limit": 6}))
