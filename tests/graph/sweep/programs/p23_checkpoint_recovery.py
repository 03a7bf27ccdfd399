"""A node fails once; the run resumes from the last checkpoint with invoke(None) (test suite:
test_pregel.py::test_checkpoint_recovery)."""

import operator
from typing import Annotated

from typing_extensions import TypedDict

from langgraph.graph import START, StateGraph


class State(TypedDict):
    steps: Annotated[list[str], operator.add]
    attempt: int  # Track number of attempts


def failing_node(state: State):
    # Fail on first attempt, succeed on retry
    if state["attempt"] == 1:
        raise RuntimeError("Simulated failure")
    return {"steps": ["node1"]}


def second_node(state: State):
    return {"steps": ["node2"]}


def build(checkpointer):
    builder = StateGraph(State)
    builder.add_node("node1", failing_node)
    builder.add_node("node2", second_node)
    builder.add_edge(START, "node1")
    builder.add_edge("node1", "node2")
    return builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    try:
        graph.invoke({"steps": ["start"], "attempt": 1}, config)
    except RuntimeError as e:
        print("failed:", e)
    state = graph.get_state(config)
    print(state.values, state.next)
    print([(t.name, repr(t.error)) for t in state.tasks])
    print(state.metadata["source"], state.metadata["step"])
    # Retry with updated attempt count
    result = graph.invoke({"steps": [], "attempt": 2}, config)
    print(result)
    history = list(graph.get_state_history(config))
    print(len(history))
    print([(s.metadata["source"], s.metadata["step"], s.next) for s in history])


async def amain(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    try:
        await graph.ainvoke({"steps": ["start"], "attempt": 1}, config)
    except RuntimeError as e:
        print("failed:", e)
    print(await graph.ainvoke({"steps": [], "attempt": 2}, config))
