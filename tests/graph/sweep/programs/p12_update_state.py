"""Persistence: update_state through reducers, as a node, on a past checkpoint (docs:
persistence, "Update state")."""

from operator import add
from typing import Annotated

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    foo: int
    bar: Annotated[list[str], add]


def node_a(state: State):
    return {"foo": 1, "bar": ["a"]}


def node_b(state: State):
    return {"foo": 2, "bar": ["b"]}


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
    graph.invoke({"foo": 0, "bar": []}, config)
    new_config = graph.update_state(config, {"foo": 2, "bar": ["b"]})
    print(sorted(new_config["configurable"]))
    state = graph.get_state(config)
    print(state.values, state.next, state.metadata)
    # as a node: the next node is the one after it
    first = list(graph.get_state_history(config))[-2]
    print(first.next)
    forked = graph.update_state(first.config, {"foo": 10}, as_node="node_a")
    fork_state = graph.get_state(forked)
    print(fork_state.values, fork_state.next, fork_state.metadata["source"], fork_state.metadata["step"])
    print(graph.invoke(None, forked))
    print([(s.metadata["source"], s.metadata["step"], s.next) for s in graph.get_state_history(config)])


async def amain(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    await graph.ainvoke({"foo": 0, "bar": []}, config)
    await graph.aupdate_state(config, {"foo": 2, "bar": ["b"]}, as_node="node_a")
    state = await graph.aget_state(config)
    print(state.values, state.next, state.metadata)
    print(await graph.ainvoke(None, config))
