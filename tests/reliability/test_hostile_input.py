"""Hostile input to the JSON codec: `_core.loads` turns every input into a value or a
CorruptCheckpointError. Never a Rust panic (pyo3_runtime.PanicException, a BaseException),
never another exception type, never a hang, never an import or a call of something the data
names. Fuzzed with hypothesis over raw bytes and over near-valid typed payloads, a bounded
number of examples; faulthandler ends the process with tracebacks if an input hangs.

Also: values nested 10,000 deep returned by a node under a checkpointer are refused with
SerializationError (not a stack overflow), on every saver.
"""

from __future__ import annotations

import faulthandler
import json
import sys
from typing import Any, TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrograph import _core
from ferrograph.errors import CorruptCheckpointError, SerializationError
from ferrograph.graph import END, START, StateGraph

#: Seconds after which a fuzz test is taken to hang: tracebacks are dumped and the process ends.
HANG = 300
FUZZ = settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), database=None)

TAGS = [
    "tuple", "set", "frozenset", "dict", "int", "float", "str", "bytes", "bytearray", "date", "datetime",
    "time", "timedelta", "uuid", "decimal", "enum", "dataclass", "pydantic", "namedtuple", "object",
]
CLASSES = [
    "ferrograph.types:Send", "ferrograph.types:Command", "ferrograph.types:Interrupt", "builtins:eval",
    "os:system", "subprocess:Popen", "antigravity:x", "langchain_core.messages.ai:AIMessage", "", ":", "a:b:c",
    "ferrograph.types:", ":Send", "ferrograph.types:Send.__init__", "ferrograph.types:Send.__class__",
]


@pytest.fixture(autouse=True)
def hang_guard():
    faulthandler.dump_traceback_later(HANG, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def check_loads(data: Any) -> None:
    try:
        _core.loads(data)
    except CorruptCheckpointError:
        pass
    except BaseException as e:  # a PanicException derives from BaseException
        raise AssertionError(f"loads({data!r:.300}) raised {type(e).__module__}.{type(e).__name__}: {e}") from e


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
    max_leaves=12,
)
near_strings = (
    st.text(max_size=40)
    | st.sampled_from(
        [
            "nan", "inf", "-inf", "-", "", "0", "-0", "ff" * 200, "2024-02-30", "2024-01-01T24:00:00",
            "2024-01-01T23:59:60", "0000-01-01", "9999-12-31T23:59:59.999999+23:59", "2024-01-01T00:00:00+99:99",
            "12:00:00-00:00", "00000000-0000-0000-0000-00000000000g", "1e999999999", "-Infinity", "sNaN",
            "Europe/Paris", "../../etc/passwd", "/etc/localtime", "UTC", "=" * 4, "AA==", "A", "AAA=====",
        ]
    )
    | st.datetimes().map(lambda d: d.isoformat())
    | st.dates().map(lambda d: d.isoformat())
    | st.times().map(lambda t: t.isoformat())
    | st.uuids().map(str)
)


def tagged(children: st.SearchStrategy) -> st.SearchStrategy:
    body = st.one_of(near_strings, json_scalars, st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3))
    extra = st.fixed_dictionaries(
        {},
        optional={
            "cls": st.sampled_from(CLASSES) | st.text(max_size=10),
            "tz": near_strings | json_scalars,
            "tzname": near_strings | json_scalars,
            "fold": st.integers(-2, 2) | json_scalars,
            "set": json_values,
        },
    )
    return st.builds(
        lambda tag, v, more, drop_v: {"__fg__": tag, **({} if drop_v else {"v": v}), **more},
        st.sampled_from(TAGS) | st.text(max_size=8) | json_scalars,
        body,
        extra,
        st.booleans(),
    )


near_valid = st.recursive(json_scalars | near_strings, lambda c: tagged(c) | st.lists(c, max_size=3), max_leaves=10)

python_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10) | st.binary(max_size=10)
    | st.datetimes() | st.dates() | st.times() | st.timedeltas() | st.uuids() | st.decimals(allow_nan=False),
    lambda c: st.lists(c, max_size=3) | st.tuples(c, c) | st.dictionaries(st.text(max_size=4), c, max_size=3)
    | st.frozensets(st.integers() | st.text(max_size=3), max_size=3),
    max_leaves=10,
)


@FUZZ
@given(st.binary(max_size=300))
def test_loads_survives_any_bytes(data: bytes) -> None:
    check_loads(data)


@FUZZ
@given(st.text(max_size=200))
def test_loads_survives_any_text(data: str) -> None:
    check_loads(data)


@FUZZ
@given(near_valid)
def test_loads_survives_near_valid_typed_payloads(payload: Any) -> None:
    check_loads(json.dumps(payload))


@FUZZ
@given(python_values, st.data())
def test_loads_survives_mutated_encodings(value: Any, data: st.DataObject) -> None:
    """A real encoding, truncated, with a byte changed, or with a byte range repeated."""
    encoded = _core.dumps(value)
    assert _core.loads(encoded) == value
    n = len(encoded)
    i = data.draw(st.integers(0, n))
    how = data.draw(st.sampled_from(["truncate", "flip", "repeat"]))
    if how == "truncate":
        mutated = encoded[:i]
    elif how == "flip":
        mutated = encoded[:i] + bytes([data.draw(st.integers(0, 255))]) + encoded[i + 1 :]
    else:
        j = data.draw(st.integers(i, n))
        mutated = encoded[:j] + encoded[i:j] + encoded[j:]
    check_loads(mutated)


def test_decoding_imports_nothing_the_data_names() -> None:
    """Payloads naming `antigravity:x` (importing it opens a web browser) went through the
    fuzzers above; reading never imports a module, so it is still not loaded."""
    for _ in range(3):
        check_loads(json.dumps({"__fg__": "object", "cls": "antigravity:x", "v": {}}))
    assert "antigravity" not in sys.modules


@pytest.mark.parametrize("data", [b"[" * 100_000, b'{"a":' * 100_000, b'{"__fg__":"tuple","v":[' * 50_000])
def test_huge_nesting_is_refused_without_recursing(data: bytes) -> None:
    with pytest.raises(CorruptCheckpointError, match="deeper than the limit"):
        _core.loads(data)


# ---- deep values from a node


class State(TypedDict):
    value: Any


def deep(n: int) -> Any:
    v: Any = []
    for _ in range(n - 1):
        v = [v]
    return v


def test_a_node_returning_a_value_nested_10000_deep_is_refused(saver):
    g = StateGraph(State)
    g.add_node("deep", lambda s: {"value": {"k": deep(10_000)}})
    g.add_edge(START, "deep")
    g.add_edge("deep", END)
    graph = g.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "deep"}}
    with pytest.raises(SerializationError, match="deeper than the limit"):
        graph.invoke({"value": 0}, config)
    # The thread is still usable: its last good checkpoint loads.
    assert graph.get_state(config).values == {"value": 0}
