"""Static breakpoints: interrupt_before / interrupt_after at compile time and per run, go on
with invoke(None) (docs: interrupts, "Debug with interrupts")."""

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    input: str


def step_1(state):
    print("---Step 1---")
    pass


def step_2(state):
    print("---Step 2---")
    pass


def step_3(state):
    print("---Step 3---")
    pass


def build(checkpointer, **kwargs):
    builder = StateGraph(State)
    builder.add_node("step_1", step_1)
    builder.add_node("step_2", step_2)
    builder.add_node("step_3", step_3)
    builder.add_edge(START, "step_1")
    builder.add_edge("step_1", "step_2")
    builder.add_edge("step_2", "step_3")
    builder.add_edge("step_3", END)
    return builder.compile(checkpointer=checkpointer, **kwargs)


def main(checkpointer):
    graph = build(checkpointer, interrupt_before=["step_3"])
    initial_input = {"input": "hello world"}
    thread = {"configurable": {"thread_id": "1"}}
    for event in graph.stream(initial_input, thread, stream_mode="values"):
        print(event)
    print(graph.get_state(thread).next)
    for event in graph.stream(None, thread, stream_mode="values"):
        print(event)
    graph = build(checkpointer, interrupt_after=["step_1"])
    thread = {"configurable": {"thread_id": "2"}}
    print(graph.invoke(initial_input, thread))
    print(graph.get_state(thread).next)
    for event in graph.stream(None, thread):
        print(event)
    thread = {"configurable": {"thread_id": "3"}}
    for event in graph.stream(initial_input, thread, interrupt_before=["step_2"]):
        print(event)


async def amain(checkpointer):
    graph = build(checkpointer, interrupt_before=["step_3"])
    thread = {"configurable": {"thread_id": "1"}}
    async for event in graph.astream({"input": "hello world"}, thread):
        print(event)
    async for event in graph.astream(None, thread):
        print(event)
