"""A custom tool-calling graph with ToolNode and tools_condition (docs: "Call tools" /
ToolNode how-to), the model replaced by a fake that calls two tools in parallel."""

from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from fake_chat import FakeChatModel
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two numbers."""
    return a * b


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


tools = [multiply, add]


def build():
    model = FakeChatModel(
        responses=[
            AIMessage(
                "",
                id="ai-1",
                tool_calls=[
                    {"name": "multiply", "args": {"a": 3, "b": 4}, "id": "c1"},
                    {"name": "add", "args": {"a": 3, "b": 4}, "id": "c2"},
                ],
            ),
            AIMessage("3*4=12 and 3+4=7", id="ai-2"),
        ]
    ).bind_tools(tools)

    def call_model(state: MessagesState):
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("call_model", call_model)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "call_model")
    builder.add_conditional_edges("call_model", tools_condition)
    builder.add_edge("tools", "call_model")
    return builder.compile()


def main():
    graph = build()
    for chunk in graph.stream({"messages": [{"role": "user", "content": "3*4 and 3+4?", "id": "h"}]}):
        print(chunk)


async def amain():
    graph = build()
    print(await graph.ainvoke({"messages": [{"role": "user", "content": "3*4 and 3+4?", "id": "h"}]}))
