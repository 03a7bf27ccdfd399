"""Create a sequence of steps (docs: use-graph-api, "Create a sequence of steps")."""

from typing_extensions import TypedDict

from langgraph.graph import START, StateGraph


class State(TypedDict):
    value_1: str
    value_2: int


def step_1(state: State):
    return {"value_1": "a"}


def step_2(state: State):
    current_value_1 = state["value_1"]
    return {"value_1": f"{current_value_1} b"}


def step_3(state: State):
    return {"value_2": 10}


def build():
    builder = StateGraph(State).add_sequence([step_1, step_2, step_3])
    builder.add_edge(START, "step_1")
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({"value_1": "c"}))
    for chunk in graph.stream({"value_1": "c"}):
        print(chunk)
    for chunk in graph.stream({"value_1": "c"}, stream_mode="values"):
        print(chunk)
    for chunk in graph.stream({"value_1": "c"}, stream_mode=["updates", "values"]):
        print(chunk)


async def amain():
    graph = build()
    print(await graph.ainvoke({"value_1": "c"}))
    async for chunk in graph.astream({"value_1": "c"}, stream_mode=["updates", "values"]):
        print(chunk)
