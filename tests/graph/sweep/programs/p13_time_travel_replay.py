"""Time travel: replay from a past checkpoint and fork it with update_state (docs:
use-time-travel)."""

import uuid

from typing_extensions import NotRequired, TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    topic: NotRequired[str]
    joke: NotRequired[str]


calls = []


def generate_topic(state: State):
    calls.append("generate_topic")
    return {"topic": "socks in the dryer"}


def write_joke(state: State):
    calls.append("write_joke")
    return {"joke": f"Why do {state['topic']} disappear? They elope!"}


def build(checkpointer):
    workflow = StateGraph(State)
    workflow.add_node("generate_topic", generate_topic)
    workflow.add_node("write_joke", write_joke)
    workflow.add_edge(START, "generate_topic")
    workflow.add_edge("generate_topic", "write_joke")
    workflow.add_edge("write_joke", END)
    return workflow.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": uuid.uuid4()}}
    state = graph.invoke({}, config)
    print(state["topic"])
    print(state["joke"])
    # The states are returned in reverse chronological order.
    states = list(graph.get_state_history(config))
    for state in states:
        print(state.next)
        print(state.config["configurable"]["checkpoint_id"])
        print()
    # This is the state before last (states are listed in chronological order)
    selected_state = states[1]
    print(selected_state.next)
    print(selected_state.values)
    new_config = graph.update_state(selected_state.config, values={"topic": "chickens"})
    print(new_config)
    calls.clear()
    print(graph.invoke(None, new_config))
    print(calls)
    # replay without changes
    calls.clear()
    print(graph.invoke(None, states[1].config))
    print(calls)
    print(len(list(graph.get_state_history(config))))


async def amain(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "t"}}
    await graph.ainvoke({}, config)
    states = [s async for s in graph.aget_state_history(config)]
    new_config = await graph.aupdate_state(states[1].config, values={"topic": "chickens"})
    calls.clear()
    print(await graph.ainvoke(None, new_config))
    print(calls)
