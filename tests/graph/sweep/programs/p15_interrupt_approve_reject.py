"""Approve or reject: route on the human's answer with Command[Literal[...]] (docs:
interrupts, "Approve or reject")."""

from typing import Literal

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt


class State(TypedDict):
    llm_output: str
    decision: str


def generate_llm_output(state: State) -> State:
    return {"llm_output": "This is the generated output."}


def human_approval(state: State) -> Command[Literal["approved_path", "rejected_path"]]:
    decision = interrupt({
        "question": "Do you approve the following output?",
        "llm_output": state["llm_output"]
    })

    if decision == "approve":
        return Command(goto="approved_path", update={"decision": "approved"})
    else:
        return Command(goto="rejected_path", update={"decision": "rejected"})


def approved_node(state: State) -> State:
    print("✅ Approved path taken.")
    return state


def rejected_node(state: State) -> State:
    print("❌ Rejected path taken.")
    return state


def build(checkpointer):
    builder = StateGraph(State)
    builder.add_node("generate_llm_output", generate_llm_output)
    builder.add_node("human_approval", human_approval)
    builder.add_node("approved_path", approved_node)
    builder.add_node("rejected_path", rejected_node)
    builder.set_entry_point("generate_llm_output")
    builder.add_edge("generate_llm_output", "human_approval")
    builder.add_edge("approved_path", END)
    builder.add_edge("rejected_path", END)
    return builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "approve"}}
    result = graph.invoke({}, config=config)
    print(result["__interrupt__"])
    final_result = graph.invoke(Command(resume="approve"), config=config)
    print(final_result)
    config = {"configurable": {"thread_id": "reject"}}
    for chunk in graph.stream({}, config=config):
        print(chunk)
    for chunk in graph.stream(Command(resume="reject"), config=config):
        print(chunk)
    print(graph.get_graph().draw_mermaid())


async def amain(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "approve"}}
    async for chunk in graph.astream({}, config=config, stream_mode="values"):
        print(chunk)
    async for chunk in graph.astream(Command(resume="approve"), config=config, stream_mode="values"):
        print(chunk)
