"""Stream custom data from nodes with get_stream_writer, alone and with other modes (docs:
streaming, "Stream custom data")."""

from typing_extensions import TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph
from langgraph.types import StreamWriter


class State(TypedDict):
    query: str
    answer: str


def node(state: State):
    writer = get_stream_writer()
    writer({"custom_key": "Generating custom data inside node"})
    return {"answer": "some data"}


def node_2(state: State, writer: StreamWriter):
    writer({"progress": "half"})
    writer("done")
    return {"answer": state["answer"] + "!"}


def build():
    return (
        StateGraph(State)
        .add_node(node)
        .add_node(node_2)
        .add_edge(START, "node")
        .add_edge("node", "node_2")
        .compile()
    )


def main():
    graph = build()
    inputs = {"query": "example"}
    for chunk in graph.stream(inputs, stream_mode="custom"):
        print(chunk)
    for mode, chunk in graph.stream(inputs, stream_mode=["updates", "custom"]):
        print(mode, chunk)
    print(graph.invoke(inputs))


async def amain():
    graph = build()
    async for chunk in graph.astream({"query": "example"}, stream_mode=["custom", "values"]):
        print(chunk)
