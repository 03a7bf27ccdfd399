"""Typed state values just work (issue 16): the classes a graph's schemas name are allowed for
that graph's checkpoints, on every saver, and come back exactly as LangGraph returns them; a
class only in the data is refused with the public way to allow it; one graph's classes are never
rebuilt for another graph reading the same saver; `ferrograph show/history` read them with
`--allow` or `--graph`. Builtin-type subclasses (issue 19, LangChain 1.x's `AIMessage.text`)
are stored as LangGraph stores them, on ferrograph's engine and through `as_langgraph_saver`."""

from __future__ import annotations

import dataclasses
import enum
import json
import operator
import typing
import warnings
from typing import Annotated, Any, Literal, NewType, Optional, TypedDict, Union

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import StateGraph as LGStateGraph
from pydantic import BaseModel
from typed_state_models import Author, Box, Citation, Doc, Hit, Note, Priority, Review, Secret

from ferrograph import cli, serde
from ferrograph.checkpointers import MemorySaver, SqliteSaver
from ferrograph.errors import CorruptCheckpointError, SerializationError
from ferrograph.graph import END, START, StateGraph
from ferrograph.graph.schema import declared_classes
from ferrograph.integrations.langgraph import as_langgraph_saver


class State(TypedDict):
    doc: Optional[Doc]
    hits: list[Hit]
    by_source: dict[str, Citation]
    priority: Priority
    log: Annotated[list[str], operator.add]


def search(state: dict) -> dict:
    return {
        "hits": [Hit("a", 0.5), Hit("b", 0.25)],
        "doc": Doc(title="t", tags=["x"], citation=Citation("wiki", 3), priority=Priority.HIGH),
        "log": ["search"],
    }


def cite(state: dict) -> dict:
    return {"by_source": {h.doc_id: Citation(h.doc_id) for h in state["hits"]}, "priority": Priority.HIGH, "log": ["cite"]}


def build(graph_cls: Any, start: str, end: str) -> Any:
    g = graph_cls(State)
    g.add_node("search", search)
    g.add_node("cite", cite)
    g.add_edge(start, "search")
    g.add_edge("search", "cite")
    g.add_edge("cite", end)
    return g


INPUT = {"doc": None, "hits": [], "by_source": {}, "priority": Priority.LOW, "log": []}


def canon(value: Any) -> Any:
    """Plain data with the exact class of every value kept."""
    if isinstance(value, BaseModel):
        return (type(value).__qualname__, {k: canon(v) for k, v in value.__dict__.items()})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__qualname__, {f.name: canon(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return (type(value).__qualname__, {k: canon(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return (type(value).__qualname__, [canon(v) for v in value])
    return (type(value).__qualname__, value)


def langgraph_reference() -> tuple[Any, Any, list[Any]]:
    """What LangGraph's engine and saver return for the same graph."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LangGraph warns that it rebuilds unregistered types
        from langgraph.graph import END as LG_END
        from langgraph.graph import START as LG_START

        graph = build(LGStateGraph, LG_START, LG_END).compile(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "t"}}
        result = graph.invoke(INPUT, config)
        state = graph.get_state(config).values
        history = [s.values for s in graph.get_state_history(config)]
    return canon(result), canon(state), canon(history)


def test_schema_classes_round_trip_on_every_saver_as_langgraph_returns_them(saver: Any) -> None:
    graph = build(StateGraph, START, END).compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}}
    result = graph.invoke(INPUT, config)
    state = graph.get_state(config).values
    history = [s.values for s in graph.get_state_history(config)]
    assert (canon(result), canon(state), canon(history)) == langgraph_reference()
    assert type(state["doc"].citation) is Citation and type(state["hits"][0]) is Hit


async def test_schema_classes_round_trip_on_every_async_saver(async_saver: Any) -> None:
    graph = build(StateGraph, START, END).compile(checkpointer=async_saver)
    config = {"configurable": {"thread_id": "t"}}
    result = await graph.ainvoke(INPUT, config)
    state = (await graph.aget_state(config)).values
    history = [s.values async for s in graph.aget_state_history(config)]
    assert (canon(result), canon(state), canon(history)) == langgraph_reference()


def test_the_schema_classes_are_the_graph_s_own_not_the_process_s() -> None:
    graph = build(StateGraph, START, END).compile(checkpointer=MemorySaver())
    assert set(graph.allowed_types) == {Doc, Citation, Priority, Hit}
    for cls in graph.allowed_types:
        assert f"{cls.__module__}:{cls.__qualname__}" not in serde.allowed_classes()
    with pytest.raises(SerializationError):
        serde.dumps(Hit("a", 1.0))


# ---- what the walk over annotations finds

Score = NewType("Score", Citation)


class Inner(TypedDict):
    review: Review


class Wide(TypedDict):
    a: Union[Doc, None]
    b: tuple[Hit, ...]
    c: set[Priority]
    d: Annotated[dict[str, list[Optional[Box[Note]]]], operator.or_]
    e: Literal[Priority.HIGH, "x"]
    f: Score
    g: Inner
    h: "typing.Sequence[Author]"


def test_declared_classes_walk_every_kind_of_annotation() -> None:
    found = set(declared_classes(Wide))
    assert found == {Doc, Citation, Priority, Hit, Box, Note, Review, Author}
    assert Wide not in found and Inner not in found  # TypedDicts are dicts


def test_input_output_context_and_node_schemas_count() -> None:
    class In(TypedDict):
        hits: list[Hit]

    class Out(TypedDict):
        doc: Doc

    class Ctx(TypedDict):
        author: Author

    class NodeIn(TypedDict):
        note: Note

    class Main(TypedDict):
        hits: list[Hit]
        doc: Doc
        note: Note
        review: Review

    g = StateGraph(Main, Ctx, input_schema=In, output_schema=Out)
    g.add_node("n", lambda s: {}, input_schema=NodeIn)
    g.add_edge(START, "n")
    graph = g.compile(allowed_types=[Secret])
    assert set(graph.allowed_types) == {Hit, Citation, Doc, Priority, Author, Note, Review, Secret}
    assert Review in graph.allowed_types  # named by the state schema only
    with pytest.raises(TypeError, match="allowed_types"):
        g.compile(allowed_types=Secret)  # type: ignore[arg-type]


# ---- a class only in the data, and allowed_types


class Loose(TypedDict):
    items: list


def loose_graph(saver: Any, **compile_kwargs: Any) -> Any:
    g = StateGraph(Loose)
    g.add_node("put", lambda s: {"items": [Secret("s")]})
    g.add_edge(START, "put")
    g.add_edge("put", END)
    return g.compile(checkpointer=saver, **compile_kwargs)


def test_a_class_only_in_the_data_is_refused_naming_the_channel_the_path_and_the_public_way(saver: Any) -> None:
    with pytest.raises(SerializationError) as e:
        loose_graph(saver).invoke({"items": []}, {"configurable": {"thread_id": "loose"}})
    message = str(e.value)
    assert "items" in message and "[0]" in message and "typed_state_models:Secret" in message
    assert "allowed_types=[Secret]" in message and "ferrograph.serde.allow(Secret)" in message
    assert "_core" not in message


def test_allowed_types_at_compile_let_it_through(saver: Any) -> None:
    graph = loose_graph(saver, allowed_types=[Secret])
    config = {"configurable": {"thread_id": "loose-ok"}}
    assert graph.invoke({"items": []}, config) == {"items": [Secret("s")]}
    assert graph.get_state(config).values == {"items": [Secret("s")]}


# ---- one graph's classes are never rebuilt for another graph on the same saver


class Untyped(TypedDict):
    doc: Any
    hits: Any
    by_source: Any
    priority: Any
    log: Annotated[list, operator.add]


def untyped_graph(saver: Any) -> Any:
    g = StateGraph(Untyped)
    g.add_node("noop", lambda s: {})
    g.add_edge(START, "noop")
    return g.compile(checkpointer=saver)


def test_a_row_naming_another_graph_s_class_is_refused_when_this_graph_reads_it(saver: Any) -> None:
    typed = build(StateGraph, START, END).compile(checkpointer=saver)
    other = untyped_graph(saver)
    config = {"configurable": {"thread_id": "shared"}}
    typed.invoke(INPUT, config)
    assert typed.get_state(config).values["doc"].title == "t"  # the writing graph reads it back
    for _ in range(2):  # after the typed graph read it too: nothing leaked into a shared set
        with pytest.raises(CorruptCheckpointError, match="typed_state_models:") as e:
            other.get_state(config)
        assert "not allowed" in str(e.value) and "_core" not in str(e.value)
        with pytest.raises(CorruptCheckpointError):
            list(other.get_state_history(config))
        assert typed.get_state(config).values["hits"] == [Hit("a", 0.5), Hit("b", 0.25)]
    # Nor can the other graph write them, nor a read outside any graph rebuild them.
    with pytest.raises(SerializationError):
        other.invoke({"doc": Doc(title="x")}, {"configurable": {"thread_id": "other"}})
    with pytest.raises(CorruptCheckpointError):
        saver.get_tuple(config)


async def test_the_hostile_row_is_refused_on_every_async_saver(async_saver: Any) -> None:
    typed = build(StateGraph, START, END).compile(checkpointer=async_saver)
    other = untyped_graph(async_saver)
    config = {"configurable": {"thread_id": "shared"}}
    await typed.ainvoke(INPUT, config)
    with pytest.raises(CorruptCheckpointError, match="typed_state_models:"):
        await other.aget_state(config)
    assert (await typed.aget_state(config)).values["doc"].title == "t"
    with pytest.raises(CorruptCheckpointError):
        await other.aget_state(config)


def test_using_and_a_saver_serializer_allow_classes_for_scripts() -> None:
    saver = MemorySaver()
    typed = build(StateGraph, START, END).compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "script"}}
    typed.invoke(INPUT, config)
    with pytest.raises(CorruptCheckpointError):
        saver.get_tuple(config)
    with serde.using(serde.Serializer(allowed=[Doc, Citation, Priority, Hit])):
        assert saver.get_tuple(config).checkpoint["channel_values"]["hits"][0] == Hit("a", 0.5)
    own = MemorySaver(serializer=serde.Serializer(allowed=[Secret]))
    graph = loose_graph(own)  # the graph's classes and the saver's own, together
    assert graph.invoke({"items": []}, {"configurable": {"thread_id": "own"}}) == {"items": [Secret("s")]}


# ---- the command line


def test_show_and_history_read_schema_classes_with_allow_or_graph(tmp_path: Any, capsys: Any, monkeypatch: Any) -> None:
    db = str(tmp_path / "typed.db")
    with SqliteSaver.from_conn_string(db) as saver:
        saver.setup()
        build(StateGraph, START, END).compile(checkpointer=saver).invoke(INPUT, {"configurable": {"thread_id": "t"}})
    (tmp_path / "typed_app.py").write_text(
        "from test_typed_state import State, build\n"
        "from ferrograph.graph import END, START, StateGraph\n"
        "graph = build(StateGraph, START, END).compile()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    assert cli.main(["show", db, "t", "--json"]) == 1
    err = capsys.readouterr().err
    assert "not allowed" in err and "--allow" in err and "_core" not in err

    allow = ["--allow", "typed_state_models:Doc", "--allow", "typed_state_models:Citation"]
    allow += ["--allow", "typed_state_models:Hit", "--allow", "typed_state_models:Priority"]
    assert cli.main(["show", db, "t", "--json", *allow]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "search" in json.dumps(shown) and "wiki" in json.dumps(shown)
    for flags in (["--graph", "typed_app:graph"], allow):
        assert cli.main(["history", db, "t", "--json", *flags]) == 0
        assert len(json.loads(capsys.readouterr().out)) == 4
    assert cli.main(["show", db, "t", "--allow", "typed_state_models:nothing"]) == 1
    assert "no attribute" in capsys.readouterr().err


# ---- builtin-type subclasses (issue 19)


class MyStr(str):
    pass


class MyInt(int):
    pass


class MyFloat(float):
    pass


class MyList(list):
    pass


class MyDict(dict):
    pass


class MySet(set):
    pass


class MyTuple(tuple):
    pass


SUBCLASSED = [MyStr("x"), MyInt(7), MyList([1, MyStr("y")]), MyDict(a=MyInt(1)), AIMessage(content="Done").text]


@pytest.mark.parametrize("value", SUBCLASSED, ids=lambda v: type(v).__name__)
def test_builtin_subclasses_are_stored_as_langgraph_stores_them(value: Any) -> None:
    lg = JsonPlusSerializer()
    theirs = lg.loads_typed(lg.dumps_typed(value))
    ours = serde.loads(serde.dumps(value))
    assert canon(ours) == canon(theirs)
    assert type(ours) in (str, int, list, dict)


def test_subclasses_langgraph_refuses_or_rebuilds_by_import_are_stored_as_their_builtin_value() -> None:
    for value, base in ((MyFloat(1.5), float), (MyTuple((1, 2)), tuple), (MySet({1}), set)):
        back = serde.loads(serde.dumps(value))
        assert type(back) is base and back == value


def test_allowed_subclasses_keep_their_class_and_enums_their_tag() -> None:
    ser = serde.Serializer(allowed=[MyStr, MyList, MyDict, MyTuple])
    for value in (MyStr("abc"), MyList([1, 2]), MyDict({1: "a"}), MyTuple((1,))):
        value.extra = "kept"  # type: ignore[attr-defined]
        back = ser.loads(ser.dumps(value))
        assert type(back) is type(value) and back == value and back.extra == "kept"

    class Mode(str, enum.Enum):
        A = "a"

    with pytest.raises(SerializationError, match="Mode"):  # an enum is a class of its own
        serde.dumps(Mode.A)
    modes = serde.Serializer(allowed=[Mode])
    data = modes.dumps(Mode.A)
    assert b'"enum"' in data and modes.loads(data) is Mode.A


class Answer(TypedDict):
    question: str
    result: str


def text_graph(graph_cls: Any, start: str, end: str) -> Any:
    g = graph_cls(Answer)
    g.add_node("answer", lambda s: {"result": AIMessage(content="Done").text})
    g.add_edge(start, "answer")
    g.add_edge("answer", end)
    return g


def test_message_text_is_stored_on_every_saver(saver: Any) -> None:
    graph = text_graph(StateGraph, START, END).compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "text"}}
    assert graph.invoke({"question": "q"}, config) == {"question": "q", "result": "Done"}
    result = graph.get_state(config).values["result"]
    assert type(result) is str and result == "Done"


async def test_message_text_is_stored_on_every_async_saver(async_saver: Any) -> None:
    graph = text_graph(StateGraph, START, END).compile(checkpointer=async_saver)
    config = {"configurable": {"thread_id": "text"}}
    assert await graph.ainvoke({"question": "q"}, config) == {"question": "q", "result": "Done"}
    assert type((await graph.aget_state(config)).values["result"]) is str


def _lg_text_graph(saver: Any, serializer: Optional[serde.Serializer] = None) -> Any:
    from langgraph.graph import END as LG_END
    from langgraph.graph import START as LG_START

    return text_graph(LGStateGraph, LG_START, LG_END).compile(checkpointer=as_langgraph_saver(saver, serializer=serializer))


def test_message_text_through_as_langgraph_saver_on_every_saver(saver: Any) -> None:
    graph = _lg_text_graph(saver)
    config = {"configurable": {"thread_id": "lg-text"}}
    reference = text_graph(LGStateGraph, *_lg_ends()).compile(checkpointer=InMemorySaver())
    assert graph.invoke({"question": "q"}, config) == reference.invoke({"question": "q"}, config)
    assert graph.get_state(config).values == reference.get_state(config).values
    assert type(graph.get_state(config).values["result"]) is str


async def test_message_text_through_as_langgraph_saver_on_every_async_saver(async_saver: Any) -> None:
    graph = _lg_text_graph(async_saver)
    config = {"configurable": {"thread_id": "lg-text"}}
    assert await graph.ainvoke({"question": "q"}, config) == {"question": "q", "result": "Done"}
    assert type((await graph.aget_state(config)).values["result"]) is str


def _lg_ends() -> tuple[str, str]:
    from langgraph.graph import END as LG_END
    from langgraph.graph import START as LG_START

    return LG_START, LG_END


def test_as_langgraph_saver_takes_a_serializer_for_classes_of_your_own(saver: Any) -> None:
    ser = serde.Serializer(allowed=[Doc, Citation, Priority, Hit])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = build(LGStateGraph, *_lg_ends()).compile(checkpointer=as_langgraph_saver(saver, serializer=ser))
        config = {"configurable": {"thread_id": "lg-typed"}}
        graph.invoke(INPUT, config)
        assert canon(graph.get_state(config).values) == langgraph_reference()[1]
        bare = build(LGStateGraph, *_lg_ends()).compile(checkpointer=as_langgraph_saver(saver))
        with pytest.raises(CorruptCheckpointError, match="not allowed"):
            bare.get_state(config)
    with pytest.raises(TypeError, match="Serializer"):
        as_langgraph_saver(saver, serializer=[Doc])  # type: ignore[arg-type]


def test_messages_in_a_schema_still_round_trip(saver: Any) -> None:
    class Chat(TypedDict):
        messages: list

    g = StateGraph(Chat)
    g.add_node("reply", lambda s: {"messages": [*s["messages"], AIMessage(content="hi")]})
    g.add_edge(START, "reply")
    graph = g.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "chat"}}
    graph.invoke({"messages": [HumanMessage(content="q")]}, config)
    assert [type(m) for m in graph.get_state(config).values["messages"]] == [HumanMessage, AIMessage]
