"""The inspection views the page shows (`ferrograph._inspect`): `typed` values, `diff` between
two checkpoints (the public shape `ferrograph.inspect.diff` will have), and `jsonable` as
`typed` without its marks."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from typing import Any, NamedTuple, TypedDict

import pytest

from ferrograph._inspect import diff, jsonable, typed
from ferrograph.checkpointers import MemorySaver
from ferrograph.errors import FerrographError
from ferrograph.graph import START, StateGraph
from ferrograph.types import Send


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: tuple


class Pair(NamedTuple):
    left: int
    right: str


def test_typed_marks_what_json_cannot_say():
    value = {
        "plain": [1, "a", None, True, 1.5, {"k": []}],
        "when": datetime.datetime(2024, 5, 1, 12, 0),
        "day": datetime.date(2024, 5, 1),
        "pair": (1, "x"),
        "tags": {"b", "a"},
        "money": decimal.Decimal("1.50"),
        "id": uuid.UUID(int=1),
        "raw": b"\x00\xff",
        "text": b"hi",
        "nan": float("nan"),
        "color": Color.RED,
        "point": Point(1, (2, 3)),
        "named": Pair(1, "r"),
        "send": Send("research", {"q": 1}),
        "error": ValueError("bad"),
        "int_keys": {1: "one"},
        "type_key": {"$type": "not a mark"},
    }
    assert typed(value) == {
        "plain": [1, "a", None, True, 1.5, {"k": []}],
        "when": {"$type": "datetime", "value": "2024-05-01T12:00:00"},
        "day": {"$type": "date", "value": "2024-05-01"},
        "pair": {"$type": "tuple", "value": [1, "x"]},
        "tags": {"$type": "set", "value": ["a", "b"]},
        "money": {"$type": "Decimal", "value": "1.50"},
        "id": {"$type": "UUID", "value": "00000000-0000-0000-0000-000000000001"},
        "raw": {"$type": "bytes", "value": "base64:AP8="},
        "text": {"$type": "bytes", "value": "hi"},
        "nan": {"$type": "float", "value": "nan"},
        "color": {"$type": "Color.RED", "value": "red"},
        "point": {"$type": "Point", "value": {"x": 1, "y": {"$type": "tuple", "value": [2, 3]}}},
        "named": {"$type": "Pair", "value": {"left": 1, "right": "r"}},
        "send": {"$type": "Send", "value": {"node": "research", "arg": {"q": 1}}},
        "error": {"$type": "ValueError", "value": "ValueError('bad')"},
        "int_keys": {"$type": "dict", "value": [[1, "one"]]},
        "type_key": {"$type": "dict", "value": [["$type", "not a mark"]]},
    }
    assert jsonable(value) == {
        "plain": [1, "a", None, True, 1.5, {"k": []}],
        "when": "2024-05-01T12:00:00",
        "day": "2024-05-01",
        "pair": [1, "x"],
        "tags": ["a", "b"],
        "money": "1.50",
        "id": "00000000-0000-0000-0000-000000000001",
        "raw": "base64:AP8=",
        "text": "hi",
        "nan": "nan",
        "color": "red",
        "point": {"__type__": "Point", "x": 1, "y": [2, 3]},
        "named": {"__type__": "Pair", "left": 1, "right": "r"},
        "send": {"__type__": "Send", "node": "research", "arg": {"q": 1}},
        "error": "ValueError('bad')",
        "int_keys": {"1": "one"},
        "type_key": {"$type": "not a mark"},
    }


class Three(TypedDict, total=False):
    a: Any
    b: Any
    c: Any


def _saver_with(*states: dict) -> tuple[MemorySaver, list[dict]]:
    """A thread whose checkpoints hold `states` in turn (each written by update_state)."""
    g = StateGraph(Three)
    g.add_node("n", lambda s: None)
    g.add_edge(START, "n")
    saver = MemorySaver()
    app = g.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}}
    configs = [app.update_state(config, state, as_node="n") for state in states]
    return saver, configs


def test_diff_compares_keys_items_and_types():
    saver, (first, second) = _saver_with(
        {"a": {"x": 1, "gone": 2, "deep": [1, 2, 3]}, "b": (1, 2), "c": {"s"}},
        {"a": {"x": 1, "deep": [1, 5], "new": True}, "b": [1, 2], "c": {"s", "t"}},
    )
    result = diff(saver, first, second)
    assert result.a == {**first["configurable"]} and result.b == {**second["configurable"]}
    assert result.as_json()["changes"] == [
        {"path": ["a", "gone"], "kind": "removed", "before": 2, "after": None},
        {"path": ["a", "deep", 1], "kind": "changed", "before": 2, "after": 5},
        {"path": ["a", "deep", 2], "kind": "removed", "before": 3, "after": None},
        {"path": ["a", "new"], "kind": "added", "before": None, "after": True},
        {"path": ["b"], "kind": "changed", "before": {"$type": "tuple", "value": [1, 2]}, "after": [1, 2]},
        {"path": ["c"], "kind": "changed", "before": {"$type": "set", "value": ["s"]}, "after": {"$type": "set", "value": ["s", "t"]}},
    ]
    backwards = diff(saver, second, first).as_json()["changes"]
    assert [(c["path"], c["kind"]) for c in backwards][:2] == [(["a", "deep", 1], "changed"), (["a", "deep", 2], "added")]
    assert diff(saver, second, second).changes == []
    # Without a checkpoint id: the thread's latest.
    assert diff(saver, first, {"configurable": {"thread_id": "t"}}).as_json() == result.as_json()


def test_diff_of_a_missing_checkpoint_names_it():
    saver, (only,) = _saver_with({"a": 1})
    with pytest.raises(FerrographError, match="thread 'nope' not found"):
        diff(saver, only, {"configurable": {"thread_id": "nope"}})
    missing = {"configurable": {"thread_id": "t", "checkpoint_id": "1f000000-0000-6000-8000-000000000000"}}
    with pytest.raises(FerrographError, match="checkpoint '1f000000-0000-6000-8000-000000000000' of thread 't' not found"):
        diff(saver, missing, only)
    with pytest.raises(FerrographError, match="names no thread_id"):
        diff(saver, {"configurable": {}}, only)
