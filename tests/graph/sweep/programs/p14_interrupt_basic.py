"""Pause with interrupt() and resume with Command(resume=...) (docs: interrupts, "Pause using
interrupt"), with a uuid thread id as the docs write it."""

import uuid

from typing_extensions import TypedDict

from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt


class State(TypedDict):
    some_text: str


def human_node(state: State):
    value = interrupt(
        {
            "text_to_revise": state["some_text"]
        }
    )
    return {
        "some_text": value
    }


def build(checkpointer):
    graph_builder = StateGraph(State)
    graph_builder.add_node("human_node", human_node)
    graph_builder.add_edge(START, "human_node")
    return graph_builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": uuid.uuid4()}}
    result = graph.invoke({"some_text": "original text"}, config=config)
    print(result["__interrupt__"])
    print(result)
    state = graph.get_state(config)
    print(state.next, state.interrupts, [t.interrupts for t in state.tasks])
    print(graph.invoke(Command(resume="Edited text"), config=config))
    print(graph.get_state(config).next)


async def amain(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": uuid.uuid4()}}
    result = await graph.ainvoke({"some_text": "original text"}, config=config)
    print(result)
    print(await graph.ainvoke(Command(resume="Edited text"), config=config))
