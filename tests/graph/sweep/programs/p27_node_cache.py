"""Add node caching: CachePolicy and InMemoryCache; the second run is served from the cache
(docs: use-graph-api, "Add node caching")."""

import time

from typing_extensions import TypedDict

from langgraph.cache.memory import InMemoryCache
from langgraph.graph import StateGraph
from langgraph.types import CachePolicy


class State(TypedDict):
    x: int
    result: int


calls = []


def expensive_node(state: State) -> dict[str, int]:
    # expensive computation
    calls.append(state["x"])
    return {"result": state["x"] * 2}


def build():
    builder = StateGraph(State)
    builder.add_node("expensive_node", expensive_node, cache_policy=CachePolicy(ttl=3))
    builder.set_entry_point("expensive_node")
    builder.set_finish_point("expensive_node")
    return builder.compile(cache=InMemoryCache())


def main():
    graph = build()
    print(graph.invoke({"x": 5}, stream_mode="updates"))
    print(graph.invoke({"x": 5}, stream_mode="updates"))
    print(graph.invoke({"x": 6}))
    print(graph.invoke({"x": 5}))
    graph.clear_cache()
    print(list(graph.stream({"x": 5}, stream_mode="updates")))
    print(calls)


async def amain():
    graph = build()
    print([c async for c in graph.astream({"x": 5})])
    print([c async for c in graph.astream({"x": 5})])
