"""interrupt() inside a loop in a node, until the human says stop (test suite:
test_pregel.py::test_interrupt_loop)."""

from typing_extensions import TypedDict

from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt


class State(TypedDict):
    age: int
    other: str


def ask_age(s: State):
    """Ask an expert for help."""
    question = "How old are you?"
    value = None
    for _ in range(10):
        value: str = interrupt(question)
        if not value.isdigit() or int(value) < 18:
            question = "invalid response"
            value = None
        else:
            break

    return {"age": int(value)}


def build(checkpointer):
    builder = StateGraph(State)
    builder.add_node("node", ask_age)
    builder.add_edge(START, "node")
    return builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    thread1 = {"configurable": {"thread_id": "1"}}
    print([c for c in graph.stream({"other": ""}, thread1)])
    print([c for c in graph.stream(Command(resume="13"), thread1)])
    print([c for c in graph.stream(Command(resume="15"), thread1)])
    print([c for c in graph.stream(Command(resume="19"), thread1)])


async def amain(checkpointer):
    graph = build(checkpointer)
    thread1 = {"configurable": {"thread_id": "1"}}
    print([c async for c in graph.astream({"other": ""}, thread1)])
    print([c async for c in graph.astream(Command(resume="a"), thread1)])
    print([c async for c in graph.astream(Command(resume="20"), thread1)])
