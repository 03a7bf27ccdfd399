"""Persistence: get_state, get_state_history and checkpoints of a thread (docs: persistence,
"Get state" / "Get state history")."""

from operator import add
from typing import Annotated

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    foo: str
    bar: Annotated[list[str], add]


def node_a(state: State):
    return {"foo": "a", "bar": ["a"]}


def node_b(state: State):
    return {"foo": "b", "bar": ["b"]}


def build(checkpointer):
    workflow = StateGraph(State)
    workflow.add_node(node_a)
    workflow.add_node(node_b)
    workflow.add_edge(START, "node_a")
    workflow.add_edge("node_a", "node_b")
    workflow.add_edge("node_b", END)
    return workflow.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    print(graph.invoke({"foo": "", "bar": []}, config))
    # get the latest state snapshot
    print(graph.get_state(config))
    history = list(graph.get_state_history(config))
    for snapshot in history:
        print(snapshot)
    print([s.metadata["step"] for s in graph.get_state_history(config, limit=2)])
    print(len(list(graph.get_state_history(config, filter={"source": "loop"}))))
    # a specific checkpoint
    print(graph.get_state(history[2].config))


async def amain(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    print(await graph.ainvoke({"foo": "", "bar": []}, config))
    print(await graph.aget_state(config))
    async for snapshot in graph.aget_state_history(config):
        print(snapshot.values, snapshot.next, snapshot.metadata["step"], snapshot.metadata["source"])
