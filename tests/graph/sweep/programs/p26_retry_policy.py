"""Add retry policies: a flaky node retried by RetryPolicy, several policies on one node
(docs: use-graph-api, "Add retry policies"; test suite: test_retry.py)."""

from typing_extensions import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy


class State(TypedDict):
    attempts: int


calls = {"flaky": 0, "picky": 0}


def flaky(state: State):
    calls["flaky"] += 1
    if calls["flaky"] < 3:
        raise ConnectionError("temporary")
    return {"attempts": calls["flaky"]}


def picky(state: State):
    calls["picky"] += 1
    if calls["picky"] == 1:
        raise KeyError("first")
    if calls["picky"] == 2:
        raise ValueError("second")
    return {"attempts": state["attempts"] + calls["picky"]}


def build():
    builder = StateGraph(State)
    builder.add_node("flaky", flaky, retry_policy=RetryPolicy(max_attempts=5, initial_interval=0.001, jitter=False))
    builder.add_node(
        "picky",
        picky,
        retry_policy=[
            RetryPolicy(retry_on=KeyError, initial_interval=0.001),
            RetryPolicy(retry_on=ValueError, initial_interval=0.001),
        ],
    )
    builder.add_edge(START, "flaky")
    builder.add_edge("flaky", "picky")
    builder.add_edge("picky", END)
    return builder.compile()


def main():
    graph = build()
    print(graph.invoke({"attempts": 0}))
    print(calls)
    calls.update(flaky=0, picky=0)
    for chunk in graph.stream({"attempts": 0}, stream_mode="updates"):
        print(chunk)
    calls.update(flaky=-10, picky=0)
    try:
        graph.invoke({"attempts": 0})
    except ConnectionError as e:
        print("gave up:", e, calls)


async def amain():
    calls.update(flaky=0, picky=0)
    print(await build().ainvoke({"attempts": 0}))
