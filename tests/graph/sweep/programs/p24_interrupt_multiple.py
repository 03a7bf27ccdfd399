"""Two interrupt() calls in one node, answered one after the other; the node reruns from the
top each time (test suite: test_pregel.py::test_interrupt_multiple)."""

from typing import Annotated

from typing_extensions import TypedDict

from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt
import operator


class State(TypedDict):
    my_key: Annotated[str, operator.add]


runs = []


def node(s: State) -> State:
    runs.append("node")
    answer = interrupt({"value": 1})
    answer2 = interrupt({"value": 2})
    return {"my_key": answer + " " + answer2}


def build(checkpointer):
    builder = StateGraph(State)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    return builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    thread1 = {"configurable": {"thread_id": "1"}}
    print([e for e in graph.stream({"my_key": "DE", "market": "DE"}, thread1)])
    print([event for event in graph.stream(Command(resume="answer 1", update={"my_key": "foofoo"}), thread1, stream_mode="updates")])
    print([event for event in graph.stream(Command(resume="answer 2"), thread1, stream_mode="updates")])
    print(graph.get_state(thread1).values)
    print(len(runs))


async def amain(checkpointer):
    graph = build(checkpointer)
    thread1 = {"configurable": {"thread_id": "1"}}
    print([e async for e in graph.astream({"my_key": "DE"}, thread1)])
    print([e async for e in graph.astream(Command(resume="answer 1"), thread1)])
    print([e async for e in graph.astream(Command(resume="answer 2"), thread1)])
