"""LangChain runnables as nodes and batches of runs: RunnableLambda and RunnablePassthrough
nodes, batch and abatch (docs: graph API, "nodes can be runnables"; test suite:
test_pregel.py::test_runnable_passthrough_node_graph)."""

from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    changeme: str
    other: str


def build():
    builder = StateGraph(State)
    builder.add_node("upper", RunnableLambda(lambda s: {"changeme": s["changeme"].upper()}))
    builder.add_node("passthrough", RunnablePassthrough())
    builder.add_edge(START, "upper")
    builder.add_edge("upper", "passthrough")
    builder.add_edge("passthrough", END)
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({"changeme": "value", "other": "x"}))
    print(list(graph.stream({"changeme": "value", "other": "x"})))
    print(graph.batch([{"changeme": "a", "other": "1"}, {"changeme": "b", "other": "2"}]))
    print(graph.batch([{"changeme": "c", "other": "3"}, {"other": "4"}], [{"recursion_limit": 5}, {}], return_exceptions=True))


async def amain():
    graph = build()
    print(await graph.ainvoke({"changeme": "value", "other": "x"}))
    print(await graph.abatch([{"changeme": "a", "other": "1"}]))
