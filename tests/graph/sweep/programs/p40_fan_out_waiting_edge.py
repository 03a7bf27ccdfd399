"""Fan out, a waiting edge, interrupt_after / interrupt_before, update_state, debug printing
(test suite: test_pregel.py::test_in_one_fan_out_state_graph_waiting_edge)."""

import operator
import time
from typing import Annotated

from typing_extensions import TypedDict

from langgraph.graph import StateGraph


def sorted_add(x: list[str], y: list[str] | list[tuple[str, str]]) -> list[str]:
    if isinstance(y[0], tuple):
        for rem, _ in y:
            x.remove(rem)
        y = [t[1] for t in y]
    return sorted(operator.add(x, y))


class State(TypedDict, total=False):
    query: str
    answer: str
    docs: Annotated[list[str], sorted_add]


def build():
    workflow = StateGraph(State)

    @workflow.add_node
    def rewrite_query(data: State) -> State:
        return {"query": f"query: {data['query']}"}

    def analyzer_one(data: State) -> State:
        return {"query": f"analyzed: {data['query']}"}

    def retriever_one(data: State) -> State:
        return {"docs": ["doc1", "doc2"]}

    def retriever_two(data: State) -> State:
        time.sleep(0.1)  # to ensure stream order
        return {"docs": ["doc3", "doc4"]}

    def qa(data: State) -> State:
        return {"answer": ",".join(data["docs"])}

    workflow.add_node(analyzer_one)
    workflow.add_node(retriever_one)
    workflow.add_node(retriever_two)
    workflow.add_node(qa)

    workflow.set_entry_point("rewrite_query")
    workflow.add_edge("rewrite_query", "analyzer_one")
    workflow.add_edge("analyzer_one", "retriever_one")
    workflow.add_edge("rewrite_query", "retriever_two")
    workflow.add_edge(["retriever_one", "retriever_two"], "qa")
    workflow.set_finish_point("qa")
    return workflow


def main(checkpointer):
    workflow = build()
    app = workflow.compile()
    print(app.get_graph().draw_mermaid(with_styles=False))
    print(app.invoke({"query": "what is weather in sf"}))
    print([*app.stream({"query": "what is weather in sf"})])
    app_w_interrupt = workflow.compile(checkpointer=checkpointer, interrupt_after=["retriever_one"])
    config = {"configurable": {"thread_id": "1"}}
    print([c for c in app_w_interrupt.stream({"query": "what is weather in sf"}, config)])
    print([c for c in app_w_interrupt.stream(None, config)])
    app_w_interrupt = workflow.compile(checkpointer=checkpointer, interrupt_before=["qa"])
    config = {"configurable": {"thread_id": "2"}}
    print([c for c in app_w_interrupt.stream({"query": "what is weather in sf"}, config)])
    app_w_interrupt.update_state(config, {"docs": ["doc5"]})
    print(app_w_interrupt.get_state(config))
    print([c for c in app_w_interrupt.stream(None, config, debug=1)])


async def amain(checkpointer):
    workflow = build()
    app_w_interrupt = workflow.compile(checkpointer=checkpointer, interrupt_before=["qa"])
    config = {"configurable": {"thread_id": "2"}}
    print([c async for c in app_w_interrupt.astream({"query": "what is weather in sf"}, config)])
    await app_w_interrupt.aupdate_state(config, {"docs": ["doc5"]})
    print([c async for c in app_w_interrupt.astream(None, config)])
