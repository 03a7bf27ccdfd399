"""interrupt(value, response_schema=...): the interrupt carries the answer's JSON Schema and
the answer is validated (LangGraph 1.2's interrupt() reference documentation)."""

from pydantic import BaseModel, ValidationError
from typing_extensions import TypedDict

from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt


class Decision(BaseModel):
    approved: bool
    note: str = ""


class State(TypedDict):
    decision: str


def review(state: State):
    decision = interrupt("approve?", response_schema=Decision)
    return {"decision": f"{type(decision).__name__}:{decision.approved}:{decision.note}"}


def raw(state: State):
    answer = interrupt("anything", response_schema={"type": "string"})
    return {"decision": state["decision"] + "|" + answer}


def build(checkpointer):
    builder = StateGraph(State)
    builder.add_node(review)
    builder.add_node(raw)
    builder.add_edge(START, "review")
    builder.add_edge("review", "raw")
    return builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    result = graph.invoke({"decision": ""}, config)
    print(result["__interrupt__"])
    try:
        graph.invoke(Command(resume={"approved": "not a bool"}), config)
    except ValidationError as e:
        print("invalid:", e.error_count())
    print(graph.get_state(config).next)
    result = graph.invoke(Command(resume={"approved": True, "note": "ok"}), config)
    print(result)
    print(graph.invoke(Command(resume="free text"), config))


async def amain(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    print(await graph.ainvoke({"decision": ""}, config))
    print(await graph.ainvoke(Command(resume={"approved": False}), config))
