"""The standard types a checkpoint may hold without allowlisting (`ferrograph.serde`), round-
tripping exactly (type, value, flavour) through a graph on every saver, sync and async; numpy
arrays and scalars; and, where LangGraph's serializer stores a type, the same value back as it
returns."""

from __future__ import annotations

import collections
import datetime as dt
import ipaddress
import math
import pathlib
import re
import warnings
from fractions import Fraction
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from codec_helpers import assert_same

from ferrograph import serde
from ferrograph.errors import SerializationError
from ferrograph.graph import END, START, StateGraph


# ---- strategies: one per standard type of ferrograph.serde's list

leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.floats(allow_nan=False))
offsets = st.timedeltas(min_value=-dt.timedelta(hours=23, minutes=59), max_value=dt.timedelta(hours=23, minutes=59))
fixed_zones = st.one_of(
    st.builds(dt.timezone, offsets),
    st.builds(dt.timezone, offsets, st.text(min_size=1, max_size=6)),
    st.just(dt.timezone.utc),
)
path_parts = st.lists(st.text(alphabet="abcxyz._- ", min_size=1, max_size=6), min_size=1, max_size=4)
factories = st.sampled_from([None, list, dict, set, int, float, str, tuple])

STANDARD: dict[str, st.SearchStrategy[Any]] = {
    "fraction": st.fractions(),
    "complex": st.complex_numbers(allow_nan=True, allow_infinity=True),
    "range": st.builds(range, st.integers(), st.integers(), st.integers().filter(bool)),
    "pure posix path": path_parts.map(lambda p: pathlib.PurePosixPath("/", *p)),
    "pure windows path": path_parts.map(lambda p: pathlib.PureWindowsPath("C:\\", *p)),
    "posix path": path_parts.map(lambda p: pathlib.Path(*p)),
    "ip address": st.ip_addresses(),
    "ip network": st.ip_addresses().map(lambda a: ipaddress.ip_network(f"{a}/{a.max_prefixlen // 2}", strict=False)),
    "ip interface": st.ip_addresses().map(lambda a: ipaddress.ip_interface(f"{a}/{a.max_prefixlen - 3}")),
    "pattern": st.builds(
        lambda text, flags: re.compile(re.escape(text), flags),
        st.text(max_size=8),
        st.sampled_from([0, re.I, re.M | re.S, re.X]),
    ),
    "bytes pattern": st.binary(max_size=8).map(lambda b: re.compile(re.escape(b))),
    "zoneinfo": st.timezones(),
    "timezone": fixed_zones,
    "datetime with every tzinfo kind": st.datetimes(timezones=st.one_of(st.none(), st.timezones(), fixed_zones)),
    "time with a fixed zone": st.times(timezones=st.one_of(st.none(), fixed_zones)),
    "deque": st.builds(
        lambda items, extra: collections.deque(items, maxlen=None if extra is None else len(items) + extra),
        st.lists(leaves, max_size=5),
        st.none() | st.integers(0, 3),
    ),
    "ordereddict": st.lists(st.tuples(st.text(max_size=4) | st.integers(), leaves), max_size=5).map(
        collections.OrderedDict
    ),
    "counter": st.dictionaries(st.text(max_size=4), st.integers()).map(collections.Counter),
    "defaultdict": st.builds(
        collections.defaultdict, factories, st.dictionaries(st.text(max_size=4) | st.integers(), leaves, max_size=4)
    ),
    "numpy array": hnp.arrays(
        st.sampled_from(["<i4", "<i8", "u1", "<f4", "<f8", "<c16", "?", "<U3", "S3", "<M8[s]", "<m8[ms]"]).map(np.dtype),
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=3),
    ),
    "numpy scalar": st.one_of(
        st.floats().map(np.float64),
        st.floats(width=32).map(np.float32),
        st.integers(-(2**63), 2**63 - 1).map(np.int64),
        st.integers(0, 255).map(np.uint8),
        st.booleans().map(np.bool_),
        st.text(max_size=4).map(np.str_),
    ),
}

any_standard = st.one_of(*STANDARD.values())
values = st.one_of(any_standard, st.lists(any_standard, max_size=3), st.dictionaries(st.text(max_size=4), any_standard, max_size=3))


class State(TypedDict):
    value: Any


def passthrough() -> Any:
    """A graph that stores the input value and writes it back from a node (a pending write
    and a checkpoint value on every saver)."""
    g = StateGraph(State)
    g.add_node("copy", lambda s: {"value": s["value"]})
    g.add_edge(START, "copy")
    g.add_edge("copy", END)
    return g


@pytest.mark.parametrize("kind", sorted(STANDARD))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_each_standard_type_round_trips_through_the_codec(kind: str, data: st.DataObject) -> None:
    value = data.draw(STANDARD[kind])
    assert_same(value, serde.loads(serde.dumps(value)))


@pytest.mark.parametrize(
    "value",
    [np.str_("a\x00"), np.str_("\x00"), np.str_(""), np.str_("é\U0001f600\x00"), np.bytes_(b"a\x00"), np.bytes_(b"")],
    ids=repr,
)
def test_numpy_text_scalars_keep_trailing_nuls(value: Any) -> None:
    # A str_/bytes_ scalar is a Python str/bytes: its trailing NULs are part of the value,
    # although numpy drops them when it reads fixed-width text back from bytes.
    assert_same(value, serde.loads(serde.dumps(value)))


_SAVER_SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SAVER_SETTINGS
@given(value=values, n=st.integers(0, 2**32))
def test_standard_types_round_trip_through_a_graph_on_every_saver(saver: Any, value: Any, n: int) -> None:
    graph = passthrough().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": f"std-{n}"}}
    assert_same(value, graph.invoke({"value": value}, config)["value"])
    assert_same(value, graph.get_state(config).values["value"])
    for snapshot in graph.get_state_history(config, limit=2):  # the node's and the input's
        assert_same(value, snapshot.values["value"])


@_SAVER_SETTINGS
@given(value=values, n=st.integers(0, 2**32))
async def test_standard_types_round_trip_through_a_graph_on_every_async_saver(async_saver: Any, value: Any, n: int) -> None:
    graph = passthrough().compile(checkpointer=async_saver)
    config = {"configurable": {"thread_id": f"astd-{n}"}}
    assert_same(value, (await graph.ainvoke({"value": value}, config))["value"])
    assert_same(value, (await graph.aget_state(config)).values["value"])
    async for snapshot in graph.aget_state_history(config, limit=2):
        assert_same(value, snapshot.values["value"])


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(examples=st.fixed_dictionaries(STANDARD), n=st.integers(0, 2**32))
def test_every_kind_listed_is_covered_on_every_saver(saver: Any, examples: dict, n: int) -> None:
    """Every kind in one value, so no kind depends on hypothesis drawing it above."""
    graph = passthrough().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": f"every-kind-{n}"}}
    assert_same(examples, graph.invoke({"value": examples}, config)["value"])
    assert_same(examples, graph.get_state(config).values["value"])


# ---- what is refused, and why


def _keyless_zone() -> ZoneInfo:
    with open(pathlib.Path("/usr/share/zoneinfo/UTC"), "rb") as f:
        return ZoneInfo.from_file(f)


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: collections.defaultdict(lambda: 0), "default_factory"),
        (_keyless_zone, "without a key"),
        (lambda: np.array([object()]), "Python objects"),
        (lambda: np.zeros(2, dtype=[("a", "<i4")]), "structured"),
    ],
)
def test_what_cannot_be_rebuilt_safely_is_refused_on_write(make: Any, why: str) -> None:
    with pytest.raises(SerializationError, match=why):
        serde.dumps({"v": make()})


def test_a_stored_object_array_is_refused_on_read() -> None:
    from ferrograph.errors import CorruptCheckpointError

    with pytest.raises(CorruptCheckpointError, match="Python objects"):
        serde.loads('{"__fg__":"ndarray","v":"","dtype":"O","shape":[0]}')
    with pytest.raises(CorruptCheckpointError, match="builtin type"):
        serde.loads('{"__fg__":"defaultdict","v":[],"factory":"eval"}')


# ---- the same values back as LangGraph's serializer returns, where it stores the type

LANGGRAPH_EXACT = [
    pathlib.Path("/srv/data/file.txt"),
    ipaddress.ip_address("10.1.2.3"),
    ipaddress.ip_address("2001:db8::1"),
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("2001:db8::/32"),
    ipaddress.ip_interface("192.168.1.7/24"),
    re.compile(r"a+b?", re.I | re.M),
    ZoneInfo("Europe/Paris"),
    dt.timezone(dt.timedelta(hours=5, minutes=30), "IST"),
    dt.timezone.utc,
    dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-4))),
    collections.deque([1, "a", None]),
    frozenset({1, 2}),
]


@pytest.mark.parametrize("value", LANGGRAPH_EXACT, ids=repr)
def test_types_langgraph_stores_come_back_as_langgraph_returns_them(value: Any) -> None:
    lg = JsonPlusSerializer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = lg.loads_typed(lg.dumps_typed(value))
    assert_same(theirs, serde.loads(serde.dumps(value)))


def test_types_langgraph_cannot_store_round_trip_here() -> None:
    """LangGraph's serializer refuses these (TypeError); ferrograph keeps them exactly."""
    lg = JsonPlusSerializer()
    for value in (Fraction(1, 3), complex(1, -2), range(0, 10, 3), pathlib.PurePosixPath("/a/b")):
        with pytest.raises(TypeError):
            lg.dumps_typed(value)
        assert_same(value, serde.loads(serde.dumps(value)))
    assert math.isnan(serde.loads(serde.dumps(complex("nan+1j"))).real)
    # LangGraph keeps a zoned datetime's offset only; its zone is kept here.
    zoned = dt.datetime(2024, 3, 31, 2, 30, tzinfo=ZoneInfo("Europe/Paris"))
    assert type(lg.loads_typed(lg.dumps_typed(zoned)).tzinfo) is dt.timezone
    assert_same(zoned, serde.loads(serde.dumps(zoned)))
