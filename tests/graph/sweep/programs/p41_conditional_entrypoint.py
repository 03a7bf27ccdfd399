"""A conditional entry point with a path map, a lambda edge to END (test suite:
test_pregel.py::test_conditional_entrypoint_graph_state)."""

import operator
from typing import Annotated

from typing_extensions import TypedDict

from langgraph.graph import END, StateGraph


class AgentState(TypedDict, total=False):
    input: str
    output: str
    steps: Annotated[list[str], operator.add]


def left(data: AgentState) -> AgentState:
    return {"output": data["input"] + "->left"}


def right(data: AgentState) -> AgentState:
    return {"output": data["input"] + "->right"}


def should_start(data: AgentState) -> str:
    assert data["steps"] == [], "Expected input to be read from the state"
    # Logic to decide where to start
    if len(data["input"]) > 10:
        return "go-right"
    else:
        return "go-left"


def build():
    workflow = StateGraph(AgentState)
    workflow.add_node("left", left)
    workflow.add_node("right", right)
    workflow.set_conditional_entry_point(should_start, {"go-left": "left", "go-right": "right"})
    workflow.add_conditional_edges("left", lambda data: END, {END: END})
    workflow.add_edge("right", END)
    return workflow.compile()


def main():
    app = build()
    print(app.get_graph().draw_mermaid(with_styles=False))
    print(app.invoke({"input": "what is weather in sf"}))
    print([*app.stream({"input": "what is weather in sf"})])
    print(app.invoke({"input": "short"}))


async def amain():
    app = build()
    print(await app.ainvoke({"input": "what is weather in sf"}))
    print([c async for c in app.astream({"input": "short"})])
