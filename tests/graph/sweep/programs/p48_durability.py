"""Durability modes "exit", "async" and "sync": what history each leaves (docs: durable
execution, "Durability modes")."""

import operator
from typing import Annotated

from typing_extensions import TypedDict

from langgraph.graph import START, StateGraph


class State(TypedDict):
    log: Annotated[list, operator.add]


def a(state: State):
    return {"log": ["a"]}


def b(state: State):
    return {"log": ["b"]}


def c(state: State):
    if "fail" in state["log"]:
        raise ValueError("c failed")
    return {"log": ["c"]}


def build(checkpointer):
    return StateGraph(State).add_sequence([a, b, c]).add_edge(START, "a").compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    for durability in ("exit", "async", "sync"):
        config = {"configurable": {"thread_id": durability}}
        print(durability, graph.invoke({"log": []}, config, durability=durability))
        print([(s.metadata["source"], s.metadata["step"], s.next) for s in graph.get_state_history(config)])
    config = {"configurable": {"thread_id": "fail-exit"}}
    try:
        graph.invoke({"log": ["fail"]}, config, durability="exit")
    except ValueError as e:
        print("error:", e)
    state = graph.get_state(config)
    print(state.values, state.next, [(t.name, repr(t.error)) for t in state.tasks])


async def amain(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "exit"}}
    print(await graph.ainvoke({"log": []}, config, durability="exit"))
    print([s.metadata["step"] async for s in graph.aget_state_history(config)])
