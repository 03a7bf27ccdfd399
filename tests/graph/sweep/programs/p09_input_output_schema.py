"""Define input and output schemas (docs: use-graph-api, "Define input and output
schemas")."""

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


# Define the schema for the input
class InputState(TypedDict):
    question: str


# Define the schema for the output
class OutputState(TypedDict):
    answer: str


# Define the overall schema, combining both input and output
class OverallState(InputState, OutputState):
    pass


# Define the node that processes the input and generates an answer
def answer_node(state: InputState):
    # Example answer and an extra key
    return {"answer": "bye", "question": state["question"]}


def build():
    builder = StateGraph(OverallState, input_schema=InputState, output_schema=OutputState)
    builder.add_node(answer_node)  # Add the answer node
    builder.add_edge(START, "answer_node")  # Define the starting edge
    builder.add_edge("answer_node", END)  # Define the ending edge
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({"question": "hi"}))
    for chunk in graph.stream({"question": "hi"}, stream_mode=["values", "updates"]):
        print(chunk)


async def amain():
    graph = build()
    print(await graph.ainvoke({"question": "hi"}))
