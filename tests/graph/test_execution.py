"""Running graphs: concurrency within a step, errors from nodes and writes, retries, config."""

from __future__ import annotations

import asyncio
import operator
import sys
import threading
from dataclasses import dataclass, field
from typing import Annotated, TypedDict

import pytest

from ferrograph.errors import GraphRecursionError, GraphValidationError, InvalidUpdateError
from ferrograph.graph import END, START, StateGraph, add_messages
from ferrograph.types import Command, RetryPolicy, Send


class State(TypedDict):
    x: int
    items: Annotated[list, operator.add]


def two_parallel(a, b):
    g = StateGraph(State)
    g.add_node("a", a).add_node("b", b)
    g.add_edge(START, "a").add_edge(START, "b")
    return g.compile()


def test_sync_nodes_of_one_step_run_concurrently():
    # Each node waits for the other: only possible if both run at the same time.
    barrier = threading.Barrier(2, timeout=5)

    def meet(tag):
        def node(state):
            barrier.wait()
            return {"items": [tag]}

        return node

    assert two_parallel(meet("a"), meet("b")).invoke({"x": 0})["items"] == ["a", "b"]


async def test_async_nodes_of_one_step_run_concurrently():
    started = {"a": asyncio.Event(), "b": asyncio.Event()}

    def meet(me, other):
        async def node(state):
            started[me].set()
            await asyncio.wait_for(started[other].wait(), 5)
            return {"items": [me]}

        return node

    app = two_parallel(meet("a", "b"), meet("b", "a"))
    assert (await app.ainvoke({"x": 0}))["items"] == ["a", "b"]


def test_parallel_reducer_writes_merge_in_node_name_order_not_finish_order():
    release = threading.Event()

    def slow(state):
        release.wait(5)
        return {"items": ["a"]}

    def fast(state):
        release.set()
        return {"items": ["b"]}

    assert two_parallel(slow, fast).invoke({"x": 0})["items"] == ["a", "b"]


def test_two_parallel_writes_to_a_plain_key_is_invalid_update():
    app = two_parallel(lambda s: {"x": 1}, lambda s: {"x": 2})
    with pytest.raises(InvalidUpdateError, match="'x'"):
        app.invoke({"x": 0})


def test_node_exception_reaches_caller_unchanged_and_names_the_node():
    class Boom(Exception):
        pass

    original = Boom("kaput")

    def bad(state):
        raise original

    g = StateGraph(State).add_node("bad", bad).add_edge(START, "bad")
    with pytest.raises(Boom) as info:
        g.compile().invoke({"x": 0})
    assert info.value is original
    if sys.version_info >= (3, 11):
        assert any("'bad'" in note for note in info.value.__notes__)


def test_failure_in_a_parallel_step_is_raised_after_the_step():
    def bad(state):
        raise KeyError("missing")

    with pytest.raises(KeyError):
        two_parallel(lambda s: {"items": ["ok"]}, bad).invoke({"x": 0})


def test_non_dict_update_is_refused():
    g = StateGraph(State).add_node("a", lambda s: 42).add_edge(START, "a")
    with pytest.raises(InvalidUpdateError, match="Expected dict, got 42"):
        g.compile().invoke({"x": 0})


def test_recursion_limit_is_a_recursion_error_and_counts_runs():
    runs = []
    g = StateGraph(State)
    g.add_node("loop", lambda s: runs.append(1) or {"x": s["x"] + 1})
    g.add_edge(START, "loop").add_edge("loop", "loop")
    with pytest.raises(GraphRecursionError) as info:
        g.compile().invoke({"x": 0}, {"recursion_limit": 5})
    assert isinstance(info.value, RecursionError)
    assert len(runs) == 5


@pytest.mark.parametrize("bad", [0, -1, "10", 2.5, True])
def test_bad_recursion_limit_is_refused(bad):
    g = StateGraph(State).add_node("a", lambda s: None).add_edge(START, "a")
    with pytest.raises(GraphValidationError, match="recursion_limit"):
        g.compile().invoke({"x": 0}, {"recursion_limit": bad})


def test_unknown_stream_mode_is_refused():
    g = StateGraph(State).add_node("a", lambda s: None).add_edge(START, "a")
    with pytest.raises(GraphValidationError, match="stream_mode"):
        list(g.compile().stream({"x": 0}, stream_mode="everything"))


def test_retry_policy_retries_then_succeeds():
    attempts = []

    def flaky(state):
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("transient")
        return {"x": 99}

    policy = RetryPolicy(initial_interval=0.001, max_attempts=3, jitter=False)
    g = StateGraph(State).add_node("flaky", flaky, retry_policy=policy).add_edge(START, "flaky")
    assert g.compile().invoke({"x": 0})["x"] == 99
    assert len(attempts) == 3


def test_retry_policy_gives_up_and_skips_non_retryable():
    attempts = []

    def always(state):
        attempts.append(1)
        raise ConnectionError("down")

    policy = RetryPolicy(initial_interval=0.001, max_attempts=2, jitter=False)
    g = StateGraph(State).add_node("n", always, retry_policy=policy).add_edge(START, "n")
    with pytest.raises(ConnectionError):
        g.compile().invoke({"x": 0})
    assert len(attempts) == 2

    attempts.clear()

    def wrong(state):
        attempts.append(1)
        raise ValueError("a bug, not a glitch")

    g = StateGraph(State).add_node("n", wrong, retry_policy=policy).add_edge(START, "n")
    with pytest.raises(ValueError):
        g.compile().invoke({"x": 0})
    assert len(attempts) == 1


async def test_async_retry():
    attempts = []

    async def flaky(state):
        attempts.append(1)
        if len(attempts) < 2:
            raise TimeoutError("slow")
        return {"x": 5}

    policy = RetryPolicy(initial_interval=0.001, jitter=False, retry_on=TimeoutError)
    g = StateGraph(State).add_node("n", flaky, retry_policy=policy).add_edge(START, "n")
    assert (await g.compile().ainvoke({"x": 0}))["x"] == 5


def test_async_node_with_sync_invoke_is_a_clear_error():
    async def node(state):
        return None

    g = StateGraph(State).add_node("anode", node).add_edge(START, "anode")
    with pytest.raises(TypeError, match="'anode' is async"):  # LangGraph raises TypeError
        g.compile().invoke({"x": 0})


def test_command_updates_and_routes():
    g = StateGraph(State)
    g.add_node("a", lambda s: Command(update={"x": 1}, goto=["b", Send("c", {"x": 10})]))
    g.add_node("b", lambda s: {"items": [f"b saw {s['x']}"]})
    g.add_node("c", lambda arg: {"items": [f"c got {arg['x']}"]})
    g.add_edge(START, "a")
    assert g.compile().invoke({"x": 0}) == {"x": 1, "items": ["b saw 1", "c got 10"]}


def test_route_to_unknown_node_at_run_time():
    g = StateGraph(State).add_node("a", lambda s: Command(goto="nowhere")).add_edge(START, "a")
    with pytest.raises(GraphValidationError, match="'nowhere'"):
        g.compile().invoke({"x": 0})


def test_path_result_missing_from_path_map():
    g = StateGraph(State).add_node("a", lambda s: None).add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "maybe", {"yes": END})
    with pytest.raises(GraphValidationError, match="'maybe'"):
        g.compile().invoke({"x": 0})


def test_branch_sees_the_nodes_own_update():
    seen = []
    g = StateGraph(State).add_node("a", lambda s: {"x": 7, "items": ["a"]}).add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: seen.append(dict(s)) or END)
    g.compile().invoke({"x": 0})
    assert seen == [{"x": 7, "items": ["a"]}]


def test_config_reaches_nodes_that_ask_for_it():
    def node(state, config):
        return {"x": config["configurable"]["factor"] * 2}

    g = StateGraph(State).add_node("n", node).add_edge(START, "n")
    assert g.compile().invoke({"x": 0}, {"configurable": {"factor": 21}})["x"] == 42


def test_dataclass_state_nodes_get_instances_and_invoke_returns_a_dict():
    @dataclass
    class DC:
        x: int
        items: Annotated[list, operator.add] = field(default_factory=list)

    kinds = []

    def node(state):
        kinds.append(type(state))
        return {"x": state.x + 1, "items": ["n"]}

    g = StateGraph(DC).add_node("n", node).add_edge(START, "n")
    assert g.compile().invoke({"x": 1}) == {"x": 2, "items": ["n"]}
    assert kinds == [DC]


def test_pydantic_state_validates_node_input():
    pydantic = pytest.importorskip("pydantic")

    class Model(pydantic.BaseModel):
        x: int
        items: Annotated[list, operator.add] = []

    g = StateGraph(Model).add_node("n", lambda s: {"x": s.x * 2}).add_edge(START, "n")
    app = g.compile()
    assert app.invoke({"x": "21"})["x"] == 42
    with pytest.raises(pydantic.ValidationError):
        app.invoke({"x": "not a number"})


def test_messages_reducer_appends_and_replaces_by_id():
    class Chat(TypedDict):
        messages: Annotated[list, add_messages]

    g = StateGraph(Chat)
    g.add_node("reply", lambda s: {"messages": [{"role": "assistant", "content": "hi", "id": "m2"}]})
    g.add_node("edit", lambda s: {"messages": [{"role": "assistant", "content": "hello", "id": "m2"}]})
    g.add_edge(START, "reply").add_edge("reply", "edit")
    out = g.compile().invoke({"messages": [{"role": "user", "content": "hey", "id": "m1"}]})
    assert [(m.id, m.content) for m in out["messages"]] == [("m1", "hey"), ("m2", "hello")]


def test_stream_modes_list_tags_chunks():
    g = StateGraph(State).add_node("a", lambda s: {"x": 1}).add_edge(START, "a")
    chunks = list(g.compile().stream({"x": 0}, stream_mode=["updates", "values"]))
    assert chunks == [("values", {"x": 0, "items": []}), ("updates", {"a": {"x": 1}}), ("values", {"x": 1, "items": []})]


def test_send_map_reduce_keeps_send_order():
    class MR(TypedDict):
        words: list
        lengths: Annotated[list, operator.add]

    g = StateGraph(MR)
    g.add_node("measure", lambda arg: {"lengths": [len(arg)]})
    g.add_conditional_edges(START, lambda s: [Send("measure", w) for w in s["words"]])
    words = ["a", "abcd", "ab", "abc"] * 5
    assert g.compile().invoke({"words": words})["lengths"] == [len(w) for w in words]
