"""Stream the "checkpoints", "tasks" and "debug" modes of a persisted run (docs: streaming,
"Debug" / stream modes table)."""

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    topic: str
    joke: str


def refine_topic(state: State):
    return {"topic": state["topic"] + " and cats"}


def generate_joke(state: State):
    return {"joke": f"This is a joke about {state['topic']}"}


def build(checkpointer):
    return (
        StateGraph(State)
        .add_node(refine_topic)
        .add_node(generate_joke)
        .add_edge(START, "refine_topic")
        .add_edge("refine_topic", "generate_joke")
        .add_edge("generate_joke", END)
        .compile(checkpointer=checkpointer)
    )


def main(checkpointer):
    graph = build(checkpointer)
    for chunk in graph.stream({"topic": "ice cream"}, {"configurable": {"thread_id": "1"}}, stream_mode="debug"):
        print(chunk)
    for mode, chunk in graph.stream({"topic": "dogs"}, {"configurable": {"thread_id": "2"}}, stream_mode=["checkpoints", "tasks"]):
        print(mode, chunk)


async def amain(checkpointer):
    graph = build(checkpointer)
    async for chunk in graph.astream({"topic": "ice cream"}, {"configurable": {"thread_id": "1"}}, stream_mode="debug"):
        print(chunk)
