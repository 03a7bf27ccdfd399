"""Two parallel nodes writing one last-value key: InvalidUpdateError; with a reducer both
writes apply (docs: graph API, reducers; test suite:
test_pregel.py::test_invoke_two_processes_two_in_two_out_invalid)."""

import operator
from typing import Annotated

from typing_extensions import TypedDict

from langgraph.errors import InvalidUpdateError
from langgraph.graph import START, StateGraph


class Plain(TypedDict):
    value: int


class Reduced(TypedDict):
    value: Annotated[int, operator.add]


def one(state):
    return {"value": 1}


def two(state):
    return {"value": 2}


def build(schema):
    builder = StateGraph(schema)
    builder.add_node("one", one)
    builder.add_node("two", two)
    builder.add_edge(START, "one")
    builder.add_edge(START, "two")
    return builder.compile()


def main():
    try:
        build(Plain).invoke({"value": 0})
    except InvalidUpdateError:
        print("InvalidUpdateError")
    print(build(Reduced).invoke({"value": 0}))
    chunks = []
    try:
        for chunk in build(Plain).stream({"value": 0}, stream_mode="values"):
            chunks.append(chunk)
    except InvalidUpdateError:
        print("InvalidUpdateError after", chunks)


async def amain():
    try:
        await build(Plain).ainvoke({"value": 0})
    except InvalidUpdateError:
        print("InvalidUpdateError")
    print(await build(Reduced).ainvoke({"value": 5}))
