"""Pass private state between nodes (docs: use-graph-api, "Pass private state between
nodes")."""


from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


# The overall state of the graph (this is the public state shared across nodes)
class OverallState(TypedDict):
    a: str


# Output from node_1 contains private data that is not part of the overall state
class Node1Output(TypedDict):
    private_data: str


# The private data is only shared between node_1 and node_2
def node_1(state: OverallState) -> Node1Output:
    output = {"private_data": "set by node_1"}
    print(f"Entered node `node_1`:\n\tInput: {state}.\n\tReturned: {output}")
    return output


# Node 2 input only requests the private data available after node_1
class Node2Input(TypedDict):
    private_data: str


def node_2(state: Node2Input) -> OverallState:
    output = {"a": "set by node_2"}
    print(f"Entered node `node_2`:\n\tInput: {state}.\n\tReturned: {output}")
    return output


# Node 3 only has access to the overall state (no access to private data from node_1)
def node_3(state: OverallState) -> OverallState:
    output = {"a": "set by node_3"}
    print(f"Entered node `node_3`:\n\tInput: {state}.\n\tReturned: {output}")
    return output


def build():
    builder = StateGraph(OverallState).add_sequence([node_1, node_2, node_3])
    builder.add_edge(START, "node_1")
    return builder.compile()


def main():
    graph = build()
    response = graph.invoke({"a": "set at start"})
    print()
    print(f"Output of graph invocation: {response}")
    for chunk in graph.stream({"a": "set at start"}, stream_mode="updates"):
        print(chunk)


async def amain():
    graph = build()
    print(await graph.ainvoke({"a": "set at start"}))
