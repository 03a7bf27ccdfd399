"""Delete messages with RemoveMessage, from a node and through update_state (docs: "Delete
messages" how-to; test suite: test_pregel.py::test_remove_message_via_state_update and
test_remove_message_from_node)."""

from langchain_core.messages import AIMessage, HumanMessage, RemoveMessage

from langgraph.graph import END, START, MessagesState, StateGraph


def chatbot(state: MessagesState):
    return {"messages": [AIMessage("answer", id=f"ai-{len(state['messages'])}")]}


def delete_messages(state: MessagesState):
    messages = state["messages"]
    if len(messages) > 2:
        # remove the earliest two messages
        return {"messages": [RemoveMessage(id=m.id) for m in messages[:2]]}


def build(checkpointer):
    builder = StateGraph(MessagesState)
    builder.add_node("chatbot", chatbot)
    builder.add_node(delete_messages)
    builder.add_edge(START, "chatbot")
    builder.add_edge("chatbot", "delete_messages")
    builder.add_edge("delete_messages", END)
    return builder.compile(checkpointer=checkpointer)


def main(checkpointer):
    app = build(checkpointer)
    config = {"configurable": {"thread_id": "2"}}
    for event in app.stream({"messages": [HumanMessage("hi! I'm bob", id="h1")]}, config, stream_mode="values"):
        print([(message.type, message.content) for message in event["messages"]])
    for event in app.stream({"messages": [HumanMessage("what's my name?", id="h2")]}, config, stream_mode="values"):
        print([(message.type, message.content) for message in event["messages"]])
    messages = app.get_state(config).values["messages"]
    app.update_state(config, {"messages": RemoveMessage(id=messages[0].id)})
    print(app.get_state(config).values)


async def amain(checkpointer):
    app = build(checkpointer)
    config = {"configurable": {"thread_id": "2"}}
    await app.ainvoke({"messages": [HumanMessage("hi", id="h1")]}, config)
    print(await app.ainvoke({"messages": [HumanMessage("again", id="h2")]}, config))
