"""One parallel node interrupts while its sibling succeeds; both streamed, then resumed
(test suite: test_pregel.py::test_parallel_interrupts, reduced; docs: interrupts).

The "updates" chunks of one step are printed sorted: which of two parallel tasks finishes
first is a race on LangGraph too when one of them pauses (its writes go to the saver first)."""

import operator
from typing import Annotated

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt


class State(TypedDict):
    log: Annotated[list, operator.add]


def ask(state: State):
    answer = interrupt("continue?")
    return {"log": [f"ask:{answer}"]}


def work(state: State):
    return {"log": ["work"]}


def ask_too(state: State):
    answer = interrupt("really?")
    return {"log": [f"ask_too:{answer}"]}


def build(checkpointer, both):
    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_node("work", work)
    builder.add_node("ask_too", ask_too)
    builder.add_edge(START, "ask")
    builder.add_edge(START, "ask_too" if both else "work")
    return builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer, both=False)
    config = {"configurable": {"thread_id": "1"}}
    for chunk in graph.stream({"log": []}, config, stream_mode="values"):
        print(chunk)
    state = graph.get_state(config)
    print(state.next, [(t.name, t.interrupts, t.result) for t in state.tasks])
    for chunk in graph.stream(Command(resume="yes"), config, stream_mode=["updates", "values"]):
        print(chunk)
    graph = build(checkpointer, both=True)
    config = {"configurable": {"thread_id": "2"}}
    print(sorted(map(repr, graph.stream({"log": []}, config))))
    result = graph.invoke({"log": []}, {"configurable": {"thread_id": "3"}})
    print(result["log"], sorted(i.value for i in result["__interrupt__"]))


async def amain(checkpointer):
    graph = build(checkpointer, both=False)
    config = {"configurable": {"thread_id": "1"}}
    async for chunk in graph.astream({"log": []}, config, stream_mode="values"):
        print(chunk)
    print(sorted([repr(c) async for c in graph.astream({"log": []}, {"configurable": {"thread_id": "9"}}, stream_mode="updates")]))
    print(await graph.ainvoke(Command(resume="yes"), config))
