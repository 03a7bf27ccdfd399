"""The "v2" streaming format: typed stream parts and invoke returning GraphOutput, with a
pydantic state and an interrupt (docs: streaming, "Stream output format (v2)"; LangGraph 1.x
`version="v2"`)."""

from pydantic import BaseModel

from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt


class State(BaseModel):
    topic: str
    joke: str = ""
    approved: bool = False


def write_joke(state: State):
    get_stream_writer()({"progress": "writing"})
    return {"joke": f"a joke about {state.topic}"}


def review(state: State):
    answer = interrupt({"joke": state.joke})
    return {"approved": answer == "yes"}


def build(checkpointer):
    builder = StateGraph(State)
    builder.add_node(write_joke)
    builder.add_node(review)
    builder.add_edge(START, "write_joke")
    builder.add_edge("write_joke", "review")
    return builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    for part in graph.stream({"topic": "cats"}, config, stream_mode=["values", "updates", "custom"], version="v2"):
        print(part["type"], part)
    result = graph.invoke(Command(resume="yes"), config, version="v2")
    print(result)
    print(type(result.value).__name__, result.interrupts)
    config = {"configurable": {"thread_id": "2"}}
    result = graph.invoke({"topic": "dogs"}, config, version="v2")
    print(result.value, [i.value for i in result.interrupts])
    print(graph.invoke(Command(resume="no"), config, stream_mode="updates", version="v2"))
    for part in graph.stream({"topic": "owls"}, {"configurable": {"thread_id": "3"}}, version="v2"):
        print(part)


async def amain(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    async for part in graph.astream({"topic": "cats"}, config, stream_mode="values", version="v2"):
        print(part)
    print(await graph.ainvoke(Command(resume="yes"), config, version="v2"))
