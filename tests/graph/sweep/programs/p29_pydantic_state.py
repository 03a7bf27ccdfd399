"""Pydantic model as graph state: input validated, coercion, ValidationError at the input
(docs: use-graph-api, "Use Pydantic models for graph state")."""

from pydantic import BaseModel

from langgraph.graph import END, START, StateGraph


# The overall state of the graph (this is the public state shared across nodes)
class OverallState(BaseModel):
    a: str


def node(state: OverallState):
    return {"a": "goodbye"}


class CoercionExample(BaseModel):
    number: int  # string numbers will be coerced to integers
    flag: bool = False


def inspect_node(state: CoercionExample):
    print(f"number: {state.number} (type: {type(state.number)})")
    print(f"flag: {state.flag} (type: {type(state.flag)})")
    return {}


def build():
    builder = StateGraph(OverallState)
    builder.add_node(node)  # node_1 is the first node
    builder.add_edge(START, "node")  # Start the graph with node_1
    builder.add_edge("node", END)  # End the graph after node_1
    return builder.compile()


def build_coercion():
    builder = StateGraph(CoercionExample)
    builder.add_node("inspect", inspect_node)
    builder.add_edge(START, "inspect")
    return builder.compile()


def main():
    graph = build()
    # Test the graph with a valid input
    print(graph.invoke({"a": "hello"}))
    try:
        graph.invoke({"a": 123})  # Should be a string
    except Exception as e:
        print("An exception was raised because `a` is an integer rather than a string.")
        print(type(e).__name__)
    print(build_coercion().invoke({"number": "42", "flag": "true"}))
    print(list(graph.stream({"a": "hello"}, stream_mode=["values", "updates"])))


async def amain():
    print(await build().ainvoke({"a": "hello"}))
