"""A prebuilt ReAct agent with a tool and memory (docs: agents / create_react_agent
quickstart), the model replaced by a fake that calls the tool once."""

from langchain_core.messages import AIMessage
from langchain_core.tools import tool

from fake_chat import FakeChatModel
from langgraph.prebuilt import create_react_agent


@tool
def get_weather(city: str) -> str:
    """Get weather for a given city."""
    return f"It's always sunny in {city}!"


def model():
    return FakeChatModel(
        responses=[
            AIMessage("", id="ai-1", tool_calls=[{"name": "get_weather", "args": {"city": "sf"}, "id": "call-1"}]),
            AIMessage("It's always sunny in sf!", id="ai-2"),
        ]
    )


def main(checkpointer):
    agent = create_react_agent(model(), tools=[get_weather], checkpointer=checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    result = agent.invoke({"messages": [{"role": "user", "content": "what is the weather in sf", "id": "h-1"}]}, config)
    for m in result["messages"]:
        m.pretty_print()
    for chunk in agent.stream({"messages": [{"role": "user", "content": "and now?", "id": "h-2"}]}, config):
        print(chunk)
    print(len(agent.get_state(config).values["messages"]))
    print(agent.get_graph().draw_mermaid())


async def amain(checkpointer):
    agent = create_react_agent(model(), tools=[get_weather], checkpointer=checkpointer)
    config = {"configurable": {"thread_id": "1"}}
    result = await agent.ainvoke({"messages": [{"role": "user", "content": "weather in sf?", "id": "h-1"}]}, config)
    print(result)
