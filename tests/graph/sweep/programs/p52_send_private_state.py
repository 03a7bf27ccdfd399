"""Map-reduce where each Send carries a state of its own schema (docs: graph API concepts,
"Send": `Send("generate_joke", {"subject": s})` with a node taking a different state)."""

import operator
from typing import Annotated

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send


class OverallState(TypedDict):
    subjects: list[str]
    jokes: Annotated[list[str], operator.add]


class JokeState(TypedDict):
    subject: str


def generate_joke(state: JokeState):
    return {"jokes": [f"Joke about {state['subject']}"]}


def continue_to_jokes(state: OverallState):
    return [Send("generate_joke", {"subject": s}) for s in state["subjects"]]


def summarize(state: OverallState):
    return {"jokes": [f"{len(state['jokes'])} jokes"]}


def build():
    builder = StateGraph(OverallState)
    builder.add_node("generate_joke", generate_joke)
    builder.add_node("summarize", summarize)
    builder.add_conditional_edges(START, continue_to_jokes, ["generate_joke"])
    builder.add_edge("generate_joke", "summarize")
    builder.add_edge("summarize", END)
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({"subjects": ["cats", "dogs"]}))
    for chunk in graph.stream({"subjects": ["cats", "dogs", "owls"]}, stream_mode=["updates", "values"]):
        print(chunk)
    print(graph.get_graph().draw_mermaid())


async def amain():
    print(await build().ainvoke({"subjects": ["cats"]}))
