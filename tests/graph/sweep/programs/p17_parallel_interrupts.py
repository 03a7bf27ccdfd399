"""Resume several interrupts of parallel nodes at once, with a map of interrupt ids to
values (docs: interrupts, "Resume multiple interrupts with one invocation")."""

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt


class State(TypedDict):
    text_1: str
    text_2: str


def human_node_1(state: State):
    value = interrupt({"text_to_revise": state["text_1"]})
    return {"text_1": value}


def human_node_2(state: State):
    value = interrupt({"text_to_revise": state["text_2"]})
    return {"text_2": value}


def build(checkpointer):
    graph_builder = StateGraph(State)
    graph_builder.add_node("human_node_1", human_node_1)
    graph_builder.add_node("human_node_2", human_node_2)
    # Add both nodes in parallel from START
    graph_builder.add_edge(START, "human_node_1")
    graph_builder.add_edge(START, "human_node_2")
    return graph_builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    thread_config = {"configurable": {"thread_id": "1"}}
    result = graph.invoke({"text_1": "original text 1", "text_2": "original text 2"}, config=thread_config)
    print(sorted(i.value["text_to_revise"] for i in result["__interrupt__"]))
    # Resume with mapping of interrupt IDs to values
    resume_map = {
        i.id: f"human input for prompt {i.value}"
        for i in graph.get_state(thread_config).interrupts
    }
    print(graph.invoke(Command(resume=resume_map), config=thread_config))


async def amain(checkpointer):
    graph = build(checkpointer)
    thread_config = {"configurable": {"thread_id": "1"}}
    await graph.ainvoke({"text_1": "original text 1", "text_2": "original text 2"}, config=thread_config)
    state = await graph.aget_state(thread_config)
    resume_map = {i.id: f"human input for prompt {i.value}" for i in state.interrupts}
    print(await graph.ainvoke(Command(resume=resume_map), config=thread_config))
