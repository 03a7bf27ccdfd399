"""Building and compiling graphs: every mistake is a clear error naming what is wrong."""

from __future__ import annotations

import operator
from typing import Annotated, Literal, TypedDict

import pytest

from ferrograph.errors import FerrographError, GraphValidationError
from ferrograph.graph import END, START, StateGraph


class State(TypedDict):
    x: int
    items: Annotated[list, operator.add]


def noop(state: State) -> None:
    return None


def test_unknown_node_in_an_edge_is_named():
    g = StateGraph(State)
    g.add_node("a", noop)
    g.add_edge(START, "a")
    g.add_edge("a", "ghost")
    with pytest.raises(GraphValidationError, match="unknown node 'ghost'"):
        g.compile()


def test_unknown_edge_source_is_named():
    g = StateGraph(State)
    g.add_node("a", noop)
    g.add_edge(START, "a")
    g.add_edge("phantom", "a")
    with pytest.raises(GraphValidationError, match="'phantom'"):
        g.compile()


def test_graph_without_entry_point():
    g = StateGraph(State)
    g.add_node("a", noop)
    g.add_edge("a", END)
    with pytest.raises(GraphValidationError, match="entrypoint"):
        g.compile()


@pytest.mark.parametrize("name", [START, END, "a:b", "x|y", ""])
def test_reserved_node_names(name):
    with pytest.raises(GraphValidationError):
        StateGraph(State).add_node(name, noop)


def test_duplicate_node():
    g = StateGraph(State).add_node("a", noop)
    with pytest.raises(GraphValidationError, match="'a' already present"):
        g.add_node("a", noop)


def test_errors_share_one_root_and_stay_value_errors():
    g = StateGraph(State)
    with pytest.raises(FerrographError):
        g.compile()
    with pytest.raises(ValueError):
        g.compile()


def test_branch_from_unknown_node_and_to_unknown_target():
    g = StateGraph(State).add_node("a", noop).add_edge(START, "a")
    g.add_conditional_edges("nope", lambda s: END)
    with pytest.raises(GraphValidationError, match="'nope'"):
        g.compile()
    g = StateGraph(State).add_node("a", noop).add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "b", {"b": "bbb"})
    with pytest.raises(GraphValidationError, match="'bbb'"):
        g.compile()


def test_literal_return_annotation_declares_branch_targets():
    def route(state: State) -> Literal["a", "missing"]:
        return "a"

    g = StateGraph(State).add_node("a", noop).add_edge(START, "a")
    g.add_conditional_edges("a", route)
    with pytest.raises(GraphValidationError, match="'missing'"):
        g.compile()


def test_add_node_by_function_and_sequence():
    def first(state: State) -> dict:
        return {"items": ["first"]}

    def second(state: State) -> dict:
        return {"items": ["second"]}

    g = StateGraph(State)
    g.add_node(first)
    g.add_sequence([second, ("third", lambda s: {"x": len(s["items"])})])
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    assert g.compile().invoke({"x": 0}) == {"x": 2, "items": ["first", "second"]}


def test_retry_policy_must_be_a_retry_policy():
    with pytest.raises(GraphValidationError, match="RetryPolicy"):
        StateGraph(State).add_node("a", noop, retry_policy={"max_attempts": 2})


def test_schema_must_be_a_class():
    with pytest.raises(TypeError, match="state schema"):
        StateGraph({"x": int})


def test_mermaid_shows_edges_and_conditional_edges():
    g = StateGraph(State)
    g.add_node("a", noop).add_node("b", noop).add_node("c", noop)
    g.add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "b", {"go": "b", "stop": END})
    g.add_edge(["a", "b"], "c")
    text = g.compile().get_graph().draw_mermaid()
    assert text.startswith("---\nconfig:\n  flowchart:\n    curve: linear\n---\ngraph TD;\n")
    assert "\t__start__ --> a;" in text
    assert "\ta -. &nbsp;go&nbsp; .-> b;" in text
    assert "\ta -. &nbsp;stop&nbsp; .-> __end__;" in text
    assert "\tb --> c;" in text and "\ta --> c;" in text
