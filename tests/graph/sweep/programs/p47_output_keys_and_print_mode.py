"""invoke/stream with output_keys and print_mode, a graph's stream of one key (LangGraph's
Pregel options; test suite: test_pregel.py::test_invoke_single_process_in_out and
test_checkpoint_errors style runs)."""

import operator
from typing import Annotated

from typing_extensions import TypedDict

from langgraph.graph import START, StateGraph


class State(TypedDict):
    question: str
    answer: str
    log: Annotated[list, operator.add]


def think(state: State):
    return {"log": ["think"]}


def answer(state: State):
    return {"answer": state["question"].upper(), "log": ["answer"]}


def build():
    return StateGraph(State).add_sequence([think, answer]).add_edge(START, "think").compile()


def main():
    graph = build()
    print(graph.invoke({"question": "hi"}, output_keys="answer"))
    print(graph.invoke({"question": "hi"}, output_keys=["answer", "log"]))
    print(list(graph.stream({"question": "hi"}, stream_mode="values", output_keys="log")))
    print(list(graph.stream({"question": "hi"}, stream_mode="updates", output_keys=["answer"])))
    print(graph.invoke({"question": "hi"}, print_mode="updates"))
    print(list(graph.stream({"question": "hi"}, stream_mode="values", print_mode=["updates", "values"])))


async def amain():
    graph = build()
    print(await graph.ainvoke({"question": "hi"}, output_keys="answer"))
    print([c async for c in graph.astream({"question": "hi"}, stream_mode="values", output_keys=["log"])])
