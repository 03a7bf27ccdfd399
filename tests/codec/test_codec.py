"""The Rust checkpoint codec: exact round trips, the class allowlist, hostile payloads, depth."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pydantic
from codec_helpers import assert_same
from langchain_core import messages

from ferrograph import serde, types
from ferrograph.errors import CorruptCheckpointError, FerrographError, SerializationError
from ferrograph.serde import Serializer, allow, allowed_classes, dumps, loads


def roundtrip(value: Any, ser: Any = None, *, check_json: bool = True) -> Any:
    data = (ser or serde).dumps(value)
    if check_json:
        json.loads(data)  # always valid JSON
    back = (ser or serde).loads(data)
    assert_same(value, back)
    return back


class Color(enum.Enum):
    RED = "red"
    BLUE = (1, 2)


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    R = 1
    W = 2


@dataclasses.dataclass
class Point:
    x: int
    y: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Frozen:
    name: str
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class WithDerived:
    a: int
    total: int = dataclasses.field(init=False)
    calls: dataclasses.InitVar[int] = 0

    def __post_init__(self, calls: int) -> None:
        self.total = self.a * 10


class Pair(NamedTuple):
    left: Any
    right: Any


class Slotted:
    __slots__ = ("node", "arg")

    def __init__(self, node: str, arg: Any) -> None:
        self.node, self.arg = node, arg

    def __eq__(self, other: object) -> bool:
        return type(other) is Slotted and (self.node, self.arg) == (other.node, other.arg)


@dataclasses.dataclass
class NotListed:
    v: int


allow(Color, Level, Perm, Point, Frozen, WithDerived, Pair, Slotted)


# ---- JSON-native values stay plain JSON ----


@pytest.mark.parametrize(
    "value, text",
    [
        (None, b"null"),
        (True, b"true"),
        (-7, b"-7"),
        (2**64 - 1, b"18446744073709551615"),
        (1.0, b"1.0"),
        ("h\u00e9", '"h\u00e9"'.encode()),
        ([1, "a", None], b'[1,"a",null]'),
        ({"b": 1, "a": [True]}, b'{"b":1,"a":[true]}'),
    ],
)
def test_json_native_values_are_plain_json(value: Any, text: bytes) -> None:
    assert dumps(value) == text
    roundtrip(value)


@pytest.mark.parametrize(
    "value",
    [
        2**64,
        -(2**63) - 1,
        10**5000,  # beyond Python's default int/str digit limit
        -(10**40),
        float("inf"),
        float("-inf"),
        -0.0,
        (),
        (1, (2, [3])),
        {1: "a", (1, 2): "b", None: 3},
        {"__fg__": "tuple", "v": [1]},
        {"a": 1, 2: 2, "__fg__": {"__fg__": 3}},
        {1, "a", (1, 2)},
        frozenset({frozenset({1})}),
        set(),
        b"\x00\xff" * 10,
        bytearray(b"abc"),
        b"",
        dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        dt.datetime(1, 1, 1),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc),
        dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
        dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(seconds=3601, microseconds=5))),
        dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET")),
        dt.datetime(2024, 11, 3, 1, 30, tzinfo=ZoneInfo("America/New_York"), fold=1),
        dt.datetime(2024, 7, 1, 12, tzinfo=ZoneInfo("Europe/Paris")),
        dt.date(2020, 2, 29),
        dt.time(23, 59, 59, 1),
        dt.time(1, 2, tzinfo=dt.timezone(dt.timedelta(hours=9))),
        dt.time(1, 2, fold=1),
        dt.timedelta(days=-3, seconds=5, microseconds=7),
        dt.timedelta(0),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        uuid.uuid4(),
        Decimal("1.10"),
        Decimal("-0"),
        Decimal("NaN"),
        Decimal("-Infinity"),
        Decimal("1E+1000"),
        "lone \ud800 surrogate",
        {"k\udc80": 1},
    ],
    ids=lambda v: type(v).__name__,
)
def test_tagged_values_round_trip(value: Any) -> None:
    roundtrip(value)


def test_nan_round_trips() -> None:
    back = loads(dumps(float("nan")))
    assert type(back) is float and back != back


def test_bool_int_and_subclasses_keep_their_type() -> None:
    roundtrip([True, 1, False, 0, Level.LOW, 1.0])
    roundtrip({"flag": True, "lvl": Level.HIGH, Level.LOW: "as key"})


def test_dict_order_is_kept() -> None:
    back = roundtrip({"z": 1, "a": 2, "m": 3})
    assert list(back) == ["z", "a", "m"]


def test_loads_accepts_str_and_bytearray() -> None:
    assert loads('{"__fg__":"tuple","v":[1]}') == (1,)
    assert loads(bytearray(b"[1]")) == [1]


# ---- classes ----


def test_enums_round_trip_by_value() -> None:
    assert dumps(Color.RED) == b'{"__fg__":"enum","cls":"test_codec:Color","v":"red"}' or (
        json.loads(dumps(Color.RED))["v"] == "red"
    )
    for v in (Color.RED, Color.BLUE, Level.HIGH, Perm.R | Perm.W):
        assert roundtrip(v) is v


def test_dataclasses_round_trip() -> None:
    roundtrip(Point(1, 2.5))
    roundtrip([Point(x=Point(1), y=0.0)] * 2)
    roundtrip(Frozen("f", ("a", "b")))
    w = WithDerived(3)
    w.total = 99  # a non-init field keeps its stored value
    back = roundtrip(w)
    assert back.total == 99


def test_namedtuple_and_slotted_class_round_trip() -> None:
    roundtrip(Pair(1, Pair((), {"a": b"x"})))
    roundtrip(Slotted("node", {"x": (1, 2)}))


def test_pydantic_models_round_trip_exactly() -> None:
    class Inner(pydantic.BaseModel):
        when: dt.datetime
        ids: set[int] = set()

    class Outer(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")
        name: str
        inner: Inner | None = None
        pair: tuple[int, str] = (0, "")
        _secret: int = pydantic.PrivateAttr(default=0)

    ser = Serializer(allowed=[Inner, Outer])
    o = Outer(name="n", inner=Inner(when=dt.datetime(2024, 1, 1), ids={1, 2}), other=(1, 2))
    o._secret = 42
    back = ser.loads(ser.dumps(o))
    assert type(back) is Outer and back == o
    assert back.model_fields_set == o.model_fields_set == {"name", "inner", "other"}
    assert back._secret == 42 and back.model_extra == {"other": (1, 2)}
    assert type(back.inner) is Inner and back.inner.ids == {1, 2}
    # Not allowlisted in the default codec.
    with pytest.raises(SerializationError, match="Outer"):
        dumps(o)


def test_langchain_messages_round_trip() -> None:
    msgs = [
        messages.HumanMessage("hi", id="1"),
        messages.AIMessage(
            "",
            tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1", "type": "tool_call"}],
            usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        ),
        messages.ToolMessage("42", tool_call_id="c1"),
        messages.SystemMessage([{"type": "text", "text": "sys"}]),
        messages.RemoveMessage(id="1"),
    ]
    back = loads(dumps({"messages": msgs}))["messages"]
    for a, b in zip(msgs, back, strict=True):
        assert type(a) is type(b) and a == b
        assert a.model_fields_set == b.model_fields_set


def test_ferrograph_types_are_allowlisted_by_default() -> None:
    assert "ferrograph.types:Send" in allowed_classes()
    send = types.Send("node", {"x": (1,)})
    back = loads(dumps([send]))[0]
    assert type(back) is types.Send and (back.node, back.arg) == ("node", {"x": (1,)})
    cmd = types.Command(update={"a": 1}, goto="b")
    assert loads(dumps(cmd)) == cmd


def test_allowed_classes_lists_user_classes() -> None:
    names = allowed_classes()
    assert "test_codec:Point" in names and names == sorted(names)
    assert "langchain_core.messages.ai:AIMessage" in names


def test_serializer_has_its_own_allowlist() -> None:
    ser = Serializer()
    with pytest.raises(SerializationError, match="NotListed"):
        ser.dumps(NotListed(1))
    assert ser.allow(NotListed) is NotListed
    roundtrip(NotListed(1), ser)
    assert ser.own_classes() == ["test_codec:NotListed"]
    with pytest.raises(CorruptCheckpointError, match="not allowed"):
        loads(ser.dumps(NotListed(1)))


def test_a_serializer_stands_on_the_process_wide_allowed_set() -> None:
    """`allow` reaches every serializer; a serializer's own classes stay its own."""
    ser = Serializer()
    roundtrip(Point(1, 2), ser)
    assert "test_codec:Point" in ser.allowed_classes() and "test_codec:Point" not in ser.own_classes()


def test_allow_works_as_a_decorator() -> None:
    ser = Serializer()

    @ser.allow
    @dataclasses.dataclass
    class Local:
        a: int

    roundtrip(Local(1), ser)


# ---- refusals on write ----


class Opaque:
    pass


def test_dicts_that_repeat_keys_encode_each_as_its_own() -> None:
    """The writer copies a key it wrote before in the same value (by str object) instead of
    escaping it again: keys that need escapes, non-ASCII keys, more distinct keys than it keeps,
    and dicts that turn out not to be JSON objects (the tag key, an int key) after keys it kept
    all come out as each dict's own."""
    odd = ['q"uote', "back\\slash", "new\nline", "ünï", "emoji 🙂", "__fg__x"]
    many = [f"key{i}" for i in range(40)]
    value = [{k: i for k in odd} for i in range(3)]
    value += [{k: [k] for k in many}, {k: {"nested": k} for k in many[::-1]}]
    value += [{"role": 1, "__fg__": "not a tag"}, {"role": 2, 3: "int key"}]
    value += [{"a": {"b": {"a": {"b": None}}}}] * 3
    text = dumps(value)
    assert json.loads(text)[:5] == json.loads(json.dumps(value[:5]))
    assert loads(text) == value


def test_an_error_under_a_repeated_key_names_its_path() -> None:
    with pytest.raises(SerializationError, match=r"value\[2\]\['content'\]\[1\].*Opaque"):
        dumps([{"role": "a", "content": [1]}, {"role": "b", "content": [2]}, {"role": "c", "content": [3, Opaque()]}])


def test_unencodable_values_name_the_type_and_the_path(tmp_path: Any) -> None:
    with pytest.raises(SerializationError) as e:
        dumps({"items": [1, 2, 3, NotListed(1)]}, context="state")
    assert "state['items'][3]" in str(e.value) and "test_codec:NotListed" in str(e.value)
    assert "ferrograph.serde.allow(NotListed)" in str(e.value) and "allowed_types=[NotListed]" in str(e.value)
    assert "_core" not in str(e.value)

    with pytest.raises(SerializationError, match=r"value\[0\].*function"):
        dumps([lambda: 1])
    with open(tmp_path / "f", "w") as f, pytest.raises(SerializationError, match="TextIOWrapper"):
        dumps({"f": f})
    with pytest.raises(SerializationError, match=r"value\['o'\]\.y.*Opaque"):
        dumps({"o": Point(1, Opaque())})  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match=r"value\[\(1, 2\)\]"):
        dumps({(1, 2): object()})


def test_errors_share_the_root_and_builtin_categories() -> None:
    assert issubclass(SerializationError, (FerrographError, TypeError))
    assert issubclass(CorruptCheckpointError, (FerrographError, ValueError))
    with pytest.raises(TypeError):
        dumps(object())
    with pytest.raises(ValueError):
        loads(b"{")


def test_unsupported_tzinfo_is_refused() -> None:
    class MyTz(dt.tzinfo):
        def utcoffset(self, d: Any) -> dt.timedelta:
            return dt.timedelta(0)

    with pytest.raises(SerializationError, match="tzinfo"):
        dumps(dt.datetime(2020, 1, 1, tzinfo=MyTz()))


# ---- hostile payloads on read ----


@pytest.mark.parametrize(
    "payload",
    [
        {"__fg__": "object", "cls": "os:system", "v": {}},
        {"__fg__": "object", "cls": "subprocess:Popen", "v": {"args": "echo pwned"}},
        {"__fg__": "dataclass", "cls": "builtins:eval", "v": {}},
        {"__fg__": "enum", "cls": "posix:system", "v": "echo pwned"},
        {"__fg__": "dataclass", "cls": "test_codec:NotListed", "v": {"v": 1}},
        {"__fg__": "pydantic", "cls": "test_codec:Opaque", "v": {}},
    ],
)
def test_non_allowlisted_classes_are_refused(payload: Any) -> None:
    with pytest.raises(CorruptCheckpointError, match="not allowed") as e:
        loads(json.dumps({"state": [payload]}))
    assert "ferrograph.serde.allow" in str(e.value) and "--allow" in str(e.value)
    assert "_core" not in str(e.value)


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"__fg__": "pickle", "v": "gASV"}, "unknown type tag"),
        ({"__fg__": 3, "v": 1}, "must hold a string"),
        ({"__fg__": "tuple"}, "missing"),
        ({"__fg__": "tuple", "v": {}}, "expected a list"),
        ({"__fg__": "set", "v": [[1]]}, "unhashable"),
        ({"__fg__": "dict", "v": [[1]]}, "pairs"),
        ({"__fg__": "dict", "v": [[[1], 2]]}, "unhashable"),
        ({"__fg__": "int", "v": "12_3"}, "hex"),
        ({"__fg__": "int", "v": 5}, "expected a string"),
        ({"__fg__": "float", "v": "1e999"}, "nan, inf"),
        ({"__fg__": "bytes", "v": "not base64!"}, "base64"),
        ({"__fg__": "datetime", "v": "2024-13-01T00:00:00"}, "month"),
        ({"__fg__": "datetime", "v": "yesterday"}, "ISO-8601"),
        ({"__fg__": "datetime", "v": "2024-01-01T00:00:00", "tz": "../../etc/passwd"}, "ZoneInfo"),
        ({"__fg__": "datetime", "v": "2024-01-01T00:00:00+25:00"}, "timezone"),
        ({"__fg__": "timedelta", "v": [1, 2]}, "days, seconds"),
        ({"__fg__": "timedelta", "v": [10**10, 0, 0]}, "days, seconds"),
        ({"__fg__": "uuid", "v": "x" * 36}, "UUID"),
        ({"__fg__": "decimal", "v": "abc"}, "Decimal"),
        ({"__fg__": "enum", "cls": "test_codec:Color", "v": "green"}, "not a valid Color"),
        ({"__fg__": "dataclass", "cls": "test_codec:Color", "v": {}}, "not of this kind"),
        ({"__fg__": "dataclass", "cls": "test_codec:Point", "v": {"z": 1}}, "missing 1 required"),
        ({"__fg__": "dataclass", "cls": "test_codec:Point", "v": [1]}, "object of fields"),
        ({"__fg__": "enum", "v": "red"}, "cls"),
    ],
)
def test_malformed_tags_are_refused_clearly(payload: Any, message: str) -> None:
    with pytest.raises(CorruptCheckpointError, match=message) as e:
        loads(json.dumps({"a": [payload]}))
    assert "value['a'][0]" in str(e.value) or "__fg__" in str(e.value)


def test_invalid_json_is_corrupt() -> None:
    for data in (
        b"",
        b"[1,",
        b"[1] 2",
        b"\xff",
        b"{'a': 1}",
        b'"a\xffb"',
        b'{"k\xff": 1}',
        b'"\\ud800"',
        b'"tab\there"',
        b"[1e999]",
        b"[01]",
        b'{"a" 1}',
        b'{"__fg__":"tuple","v":[],"x":[}',
    ):
        with pytest.raises(CorruptCheckpointError, match="not valid JSON"):
            loads(data)


def test_foreign_json_reads_like_json_loads() -> None:
    text = '{"a": [1, -2.5e-3, true, false, null], "\\u00e9\\n": "\\ud83d\\ude00 \\"q\\" \\/", "big": 123456789012345678901234}'
    back, expected = loads(text.encode()), json.loads(text)
    assert back.pop("big") == float(expected.pop("big"))  # beyond 64 bits: a float, as before
    assert back == expected
    assert loads(b" \n[ ]\t") == []
    assert loads("[\"caf\u00e9 \u2192\"]") == ["caf\u00e9 \u2192"]


def test_only_a_leading_tag_key_marks_a_tagged_object() -> None:
    assert loads(b'{"v": [1], "__fg__": "tuple"}') == {"v": [1], "__fg__": "tuple"}
    assert loads(b'{"__fg__": "tuple", "v": [1]}') == (1,)
    # Members after the tag may come in any order; extras are read as plain JSON.
    assert loads(b'{"__fg__": "datetime", "fold": 1, "v": "2024-01-01T00:00:00"}').fold == 1


def test_repeated_keys_share_one_str() -> None:
    back = loads(dumps([{"role": "user"}, {"role": "ai"}]))
    assert back[0].keys() == back[1].keys()
    (k0,), (k1,) = back[0].keys(), back[1].keys()
    assert k0 is k1


def test_decoding_never_imports_a_named_module() -> None:
    for name in ("antigravity", "xml.dom.minidom", "smtplib"):
        assert name not in sys.modules
        with pytest.raises(CorruptCheckpointError):
            loads(json.dumps({"__fg__": "object", "cls": f"{name}:Thing", "v": {}}))
        assert name not in sys.modules


def test_path_allowlisted_class_of_an_unimported_module_is_not_imported() -> None:
    """langchain_core is allowlisted by name; reading its class must not import it."""
    code = (
        "import sys, json\n"
        "from ferrograph import serde\n"
        "from ferrograph.errors import CorruptCheckpointError\n"
        "p = {'__fg__': 'pydantic', 'cls': 'langchain_core.messages.ai:AIMessage', "
        "'v': {'content': 'x'}}\n"
        "try:\n"
        "    serde.loads(json.dumps(p))\n"
        "except CorruptCheckpointError as e:\n"
        "    assert 'not imported' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('loaded')\n"
        "assert not [m for m in sys.modules if m.startswith('langchain')], 'imported'\n"
        "from langchain_core.messages import AIMessage\n"
        "m = serde.loads(json.dumps(p))\n"
        "assert type(m) is AIMessage and m.content == 'x'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- depth ----


def nested_list(depth: int) -> list[Any]:
    v: list[Any] = []
    for _ in range(depth - 1):
        v = [v]
    return v


def test_loads_cached_gives_each_reader_its_own_value() -> None:
    """The SQL savers decode a text read before by copying its first decoding (`loads_cached`):
    every read still gets containers of its own, and a serializer's depth limit still holds."""
    from ferrograph import _core

    value = {"messages": [{"role": "user", "content": "x" * 300, "tags": ["a", (1, [2])]}], "n": 1.5}
    data = dumps(value)
    reads = [_core.loads_cached(data) for _ in range(4)]  # decoded, decoded and cached, copied, copied
    assert all(r == value for r in reads)
    assert len({id(r["messages"][0]["tags"]) for r in reads}) == 4
    assert len({id(r["messages"][0]["tags"][1][1]) for r in reads}) == 4  # a list inside a tuple too
    for r in reads:
        r["messages"][0]["tags"].append("changed")
        r["messages"].clear()
    assert _core.loads_cached(data) == value
    deep = dumps([nested_list(4), "y" * 300])  # five levels of lists
    for _ in range(3):
        assert _core.loads_cached(deep) == [nested_list(4), "y" * 300]
    with serde.using(Serializer(max_depth=4)), pytest.raises(CorruptCheckpointError, match="limit of 4"):
        _core.loads_cached(deep)
    with serde.using(Serializer(max_depth=5)):
        assert _core.loads_cached(deep) == [nested_list(4), "y" * 300]


def test_deep_values_are_refused_on_write() -> None:
    with pytest.raises(SerializationError, match="deeper than the limit of 1000"):
        dumps(nested_list(10_000))
    deep_tuple: Any = ()
    for _ in range(10_000):
        deep_tuple = (deep_tuple, {"k": deep_tuple}) if False else (deep_tuple,)
    with pytest.raises(SerializationError, match="deeper"):
        dumps(deep_tuple)


def test_a_deep_value_is_reported_in_one_short_line() -> None:
    # The first line says what is wrong and where, without a thousand-segment path.
    with pytest.raises(SerializationError) as raised:
        dumps({"messages": nested_list(5000)}, context="state")
    first = str(raised.value).splitlines()[0]
    assert first.startswith("cannot serialize state: nested too deep (deeper than the limit of 1000 levels)")
    assert "at state['messages'][0][0]" in first and "more levels" in first
    assert len(str(raised.value)) < 300
    with pytest.raises(CorruptCheckpointError) as read:
        loads(b"[" * 5000 + b"]" * 5000)
    assert str(read.value).startswith("cannot deserialize value: nested too deep")
    assert len(str(read.value)) < 300


def test_cycles_are_refused_on_write() -> None:
    a: list[Any] = []
    a.append(a)
    with pytest.raises(SerializationError, match="deeper"):
        dumps(a)


def test_deep_input_is_refused_on_read() -> None:
    for data in (
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b"[" * 1_000_000,
        ('{"__fg__":"tuple","v":[' * 10_000 + "]}" * 10_000).encode(),
    ):
        with pytest.raises(CorruptCheckpointError, match="deeper than the limit"):
            loads(data)


def test_depth_limit_is_exact_and_configurable() -> None:
    back = loads(dumps(nested_list(1000)))
    for _ in range(999):
        assert type(back) is list and len(back) == 1
        back = back[0]
    assert back == []
    ser = Serializer(max_depth=3)
    assert ser.max_depth == 3
    roundtrip([[[1]]], ser)
    roundtrip({"a": ({1},)}, ser)
    with pytest.raises(SerializationError, match="limit of 3"):
        ser.dumps([[[[1]]]])
    with pytest.raises(CorruptCheckpointError, match="limit of 3"):
        ser.loads(b"[[[[1]]]]")
    with pytest.raises(CorruptCheckpointError, match="limit of 3"):
        ser.loads(dumps(((((1,),),),)))
    with pytest.raises(ValueError):
        Serializer(max_depth=0)


# ---- property-based ----

hashables = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.binary(max_size=5),
    lambda c: st.tuples(c, c) | st.frozensets(c, max_size=3),
    max_leaves=8,
)

timezones = st.none() | st.just(dt.timezone.utc) | st.timezones() | st.builds(
    dt.timezone, st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23))
)

leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**200)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.datetimes(timezones=timezones)
    | st.dates()
    | st.times(timezones=st.none() | st.just(dt.timezone.utc))
    | st.timedeltas()
    | st.uuids()
    | st.decimals(allow_nan=False)
    | st.sampled_from([Color.RED, Level.HIGH, Perm.W])
)

values = st.recursive(
    leaves,
    lambda c: (
        st.lists(c, max_size=4)
        | st.tuples(c, c)
        | st.dictionaries(st.text(max_size=6), c, max_size=4)
        | st.dictionaries(hashables, c, max_size=3)
        | st.sets(hashables, max_size=4)
        | st.builds(Point, st.integers(), st.floats(allow_nan=False))
        | st.builds(Pair, c, c)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_property_round_trip(value: Any) -> None:
    roundtrip(value)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)))
def test_property_json_values_are_plain_json(value: Any) -> None:
    data = dumps(value)
    if "__fg__" not in data.decode() and not _has_big_int(value):
        assert json.loads(data) == value
    roundtrip(value)


def _has_big_int(v: Any) -> bool:
    if isinstance(v, int) and not isinstance(v, bool):
        return not (-(2**63) <= v < 2**64)
    if isinstance(v, list):
        return any(_has_big_int(x) for x in v)
    if isinstance(v, dict):
        return any(_has_big_int(x) for x in v.values())
    return False
