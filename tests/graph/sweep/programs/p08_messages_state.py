"""MessagesState and add_messages: appending, coercion of dict messages, replacing by id
(docs: use-graph-api, "Define and update state" / "Working with messages")."""

from langchain_core.messages import AIMessage, HumanMessage

from langgraph.graph import MessagesState, START, StateGraph
from langgraph.graph.message import add_messages


class State(MessagesState):
    extra_field: int


def node(state: State):
    messages = state["messages"]
    new_message = AIMessage("Hello!", id="ai-1")
    return {"messages": messages + [new_message], "extra_field": 10}


def build():
    return StateGraph(State).add_node(node).add_edge(START, "node").compile()


def main():
    graph = build()
    result = graph.invoke({"messages": [HumanMessage("Hi", id="h-1")]})
    for message in result["messages"]:
        message.pretty_print()
    print(result)
    result = graph.invoke({"messages": [{"role": "user", "content": "Hi", "id": "h-2"}]})
    print(result)
    left = [HumanMessage("a", id="1")]
    print(add_messages(left, [AIMessage("b", id="2"), HumanMessage("a2", id="1")]))


async def amain():
    graph = build()
    print(await graph.ainvoke({"messages": [HumanMessage("Hi", id="h-1")]}))
