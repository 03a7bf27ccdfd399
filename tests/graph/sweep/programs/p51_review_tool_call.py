"""Review tool calls: interrupt() inside a tool run by ToolNode, approve or edit the call
(docs: interrupts, "Review tool calls" / human-in-the-loop for tools)."""

from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from fake_chat import FakeChatModel
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, interrupt


@tool
def book_hotel(hotel_name: str):
    """Book a hotel"""
    response = interrupt(
        f"Trying to call `book_hotel` with args {{'hotel_name': {hotel_name}}}. "
        "Please approve or suggest edits."
    )
    if response["type"] == "accept":
        pass
    elif response["type"] == "edit":
        hotel_name = response["args"]["hotel_name"]
    else:
        raise ValueError(f"Unknown response type: {response['type']}")
    return f"Successfully booked a stay at {hotel_name}."


def build(checkpointer):
    model = FakeChatModel(
        responses=[
            AIMessage("", id="ai-1", tool_calls=[{"name": "book_hotel", "args": {"hotel_name": "McKittrick"}, "id": "t1"}]),
            AIMessage("Booked.", id="ai-2"),
        ]
    )

    def agent(state: MessagesState):
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([book_hotel]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    for chunk in graph.stream({"messages": [{"role": "user", "content": "book a stay at McKittrick hotel", "id": "h1"}]}, config):
        print(chunk)
    for chunk in graph.stream(Command(resume={"type": "edit", "args": {"hotel_name": "Hilton"}}), config):
        print(chunk)
    print(graph.get_state(config).values["messages"][-2].content)


async def amain(checkpointer):
    graph = build(checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    print(await graph.ainvoke({"messages": [{"role": "user", "content": "book", "id": "h1"}]}, config))
    print(await graph.ainvoke(Command(resume={"type": "accept"}), config))
