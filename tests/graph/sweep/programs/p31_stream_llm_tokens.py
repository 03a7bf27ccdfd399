"""Stream LLM tokens with stream_mode="messages" and filter by node (docs: streaming, "LLM
tokens"), with the fake chat model in place of the LLM."""

from dataclasses import dataclass

from langchain_core.messages import AIMessage

from fake_chat import FakeChatModel
from langgraph.graph import START, StateGraph


@dataclass
class MyState:
    topic: str
    joke: str = ""


def call_model(state: MyState):
    """Call the LLM to generate a joke about a topic"""
    model = FakeChatModel(responses=[AIMessage("Why did the ice cream truck break down? It had a rocky road.", id="joke-1")])
    model_response = model.invoke(
        [
            {"role": "user", "content": f"Generate a joke about {state.topic}"}
        ]
    )
    return {"joke": model_response.content}


def build():
    return (
        StateGraph(MyState)
        .add_node(call_model)
        .add_edge(START, "call_model")
        .compile()
    )


def main():
    graph = build()
    for message_chunk, metadata in graph.stream(
        {"topic": "ice cream"},
        stream_mode="messages",
    ):
        if message_chunk.content:
            print(message_chunk.content, end="|", flush=True)
    print()
    for message_chunk, metadata in graph.stream({"topic": "ice cream"}, stream_mode="messages"):
        print(type(message_chunk).__name__, repr(message_chunk.content), metadata["langgraph_node"], metadata["langgraph_step"], metadata["langgraph_triggers"])
    for mode, chunk in graph.stream({"topic": "ice cream"}, stream_mode=["updates", "messages"]):
        print(mode, chunk[0].content if mode == "messages" else chunk)


async def amain():
    graph = build()
    async for message_chunk, metadata in graph.astream({"topic": "ice cream"}, stream_mode="messages"):
        print(repr(message_chunk.content), metadata["langgraph_node"])
