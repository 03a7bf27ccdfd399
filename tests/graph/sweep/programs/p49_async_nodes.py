"""Async nodes and an async conditional edge, run concurrently with asyncio (docs: use-graph-
api, "Async"; test suite: test_pregel_async.py fan-out with async nodes)."""

import asyncio
import operator
from typing import Annotated, Literal

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    items: Annotated[list, operator.add]
    rounds: int


async def fetch_a(state: State):
    await asyncio.sleep(0.01)
    return {"items": ["a"]}


async def fetch_b(state: State):
    await asyncio.sleep(0.05)
    return {"items": ["b"]}


async def count(state: State):
    return {"rounds": state["rounds"] + 1}


async def again(state: State) -> Literal["fetch_a", "__end__"]:
    await asyncio.sleep(0)
    return "fetch_a" if state["rounds"] < 2 else END


def build():
    builder = StateGraph(State)
    builder.add_node(fetch_a)
    builder.add_node(fetch_b)
    builder.add_node(count)
    builder.add_edge(START, "fetch_a")
    builder.add_edge(START, "fetch_b")
    builder.add_edge(["fetch_a", "fetch_b"], "count")
    builder.add_conditional_edges("count", again)
    return builder.compile()


async def amain():
    graph = build()
    print(await graph.ainvoke({"items": [], "rounds": 0}))
    async for chunk in graph.astream({"items": [], "rounds": 0}, stream_mode=["updates", "values"]):
        print(chunk)
    try:
        graph.invoke({"items": [], "rounds": 0})
    except TypeError:
        print("TypeError: no sync function")
