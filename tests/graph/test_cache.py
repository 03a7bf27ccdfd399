"""Node caching, differentially: the same graph on LangGraph and on ferrograph, each with its
own in-memory or SQLite cache, must return the same results, stream the same "updates"
(cached writes marked `"__metadata__": {"cached": True}`) and call the cached node the same
number of times, sync and async; `clear_cache()` makes the nodes run again. Ported from
LangGraph's `test_in_one_fan_out_state_graph_waiting_edge_multiple` (with and without a cache)."""

import dataclasses
import operator
import time
from typing import Annotated, TypedDict

import pytest

from difftest_harness import load_ferrograph, load_langgraph

LG = load_langgraph()
FG = load_ferrograph()


def _policy(impl, **kwargs):
    if impl is LG:
        from langgraph.types import CachePolicy
    else:
        from ferrograph.types import CachePolicy
    return CachePolicy(**kwargs)


def _cache(impl, kind, tmp_path):
    if kind == "memory":
        if impl is LG:
            from langgraph.cache.memory import InMemoryCache
        else:
            from ferrograph.cache.memory import InMemoryCache
        return InMemoryCache()
    if impl is LG:
        from langgraph.cache.sqlite import SqliteCache
    else:
        from ferrograph.cache.sqlite import SqliteCache
    return SqliteCache(path=str(tmp_path / f"{impl.name}-cache.db"))


def sorted_add(x, y):
    return sorted(operator.add(x, y))


class State(TypedDict, total=False):
    query: str
    answer: str
    docs: Annotated[list[str], sorted_add]


def waiting_edge_multiple(impl, cache, with_cache, calls):
    """LangGraph's fan-out graph that loops once through `rewrite_query`."""

    def rewrite_query(data):
        calls["rewrite_query"] = calls.get("rewrite_query", 0) + 1
        return {"query": f"query: {data['query']}"}

    def analyzer_one(data):
        return {"query": f"analyzed: {data['query']}"}

    def retriever_one(data):
        return {"docs": ["doc1", "doc2"]}

    def retriever_two(data):
        time.sleep(0.1)  # finishes after retriever_one, on both
        return {"docs": ["doc3", "doc4"]}

    def qa(data):
        return {"answer": ",".join(data["docs"])}

    def decider(data):
        return None

    def decider_cond(data):
        return "qa" if data["query"].count("analyzed") > 1 else "rewrite_query"

    g = impl.StateGraph(State)
    g.add_node("rewrite_query", rewrite_query, cache_policy=_policy(impl) if with_cache else None)
    g.add_node("analyzer_one", analyzer_one)
    g.add_node("retriever_one", retriever_one)
    g.add_node("retriever_two", retriever_two)
    g.add_node("decider", decider)
    g.add_node("qa", qa)
    g.set_entry_point("rewrite_query")
    g.add_edge("rewrite_query", "analyzer_one")
    g.add_edge("analyzer_one", "retriever_one")
    g.add_edge("rewrite_query", "retriever_two")
    g.add_edge(["retriever_one", "retriever_two"], "decider")
    g.add_conditional_edges("decider", decider_cond)
    g.set_finish_point("qa")
    return g.compile(cache=cache)


def _run_sync(impl, kind, with_cache, tmp_path):
    calls: dict = {}
    app = waiting_edge_multiple(impl, _cache(impl, kind, tmp_path), with_cache, calls)
    seen = [app.invoke({"query": "what is weather in sf"})]
    seen.append(list(app.stream({"query": "what is weather in sf"}, stream_mode="updates")))
    seen.append(dict(calls))
    if with_cache:
        app.clear_cache()
        seen.append(app.invoke({"query": "what is weather in sf"}))
        seen.append(dict(calls))
        app.clear_cache(["analyzer_one"])  # not the cached node: its entries stay
        seen.append(list(app.stream({"query": "what is weather in sf"}, stream_mode="updates")))
        seen.append(dict(calls))
    return seen


async def _run_async(impl, kind, with_cache, tmp_path):
    calls: dict = {}
    app = waiting_edge_multiple(impl, _cache(impl, kind, tmp_path), with_cache, calls)
    seen = [await app.ainvoke({"query": "what is weather in sf"})]
    seen.append([c async for c in app.astream({"query": "what is weather in sf"}, stream_mode="updates")])
    seen.append(dict(calls))
    if with_cache:
        await app.aclear_cache()
        seen.append(await app.ainvoke({"query": "what is weather in sf"}))
        seen.append(dict(calls))
    return seen


@pytest.mark.parametrize("with_cache", [True, False])
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_cached_node_same_as_langgraph(kind, with_cache, tmp_path):
    expected = _run_sync(LG, kind, with_cache, tmp_path)
    assert _run_sync(FG, kind, with_cache, tmp_path) == expected
    if with_cache:  # what LangGraph's own test asserts
        assert expected[1][0] == {
            "rewrite_query": {"query": "query: what is weather in sf"},
            "__metadata__": {"cached": True},
        }
        assert expected[2] == {"rewrite_query": 2} and expected[4] == {"rewrite_query": 4}


@pytest.mark.parametrize("with_cache", [True, False])
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_cached_node_same_as_langgraph_async(kind, with_cache, tmp_path):
    expected = await _run_async(LG, kind, with_cache, tmp_path)
    assert await _run_async(FG, kind, with_cache, tmp_path) == expected


def _keyed_graph(impl, cache, calls, **policy):
    """A node cached by a key of the caller's choosing, fanned out with Send."""

    class S(TypedDict, total=False):
        items: list[str]
        out: Annotated[list[str], operator.add]

    def work(arg):
        calls.append(arg["item"])
        return {"out": [arg["item"].upper()]}

    g = impl.StateGraph(S)
    g.add_node("work", work, cache_policy=_policy(impl, **policy))
    g.add_conditional_edges(impl.START, lambda s: [impl.Send("work", {"item": i}) for i in s["items"]])
    return g.compile(cache=cache)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_send_tasks_cached_by_key_func(kind, tmp_path):
    def outcome(impl):
        calls: list = []
        app = _keyed_graph(impl, _cache(impl, kind, tmp_path), calls, key_func=lambda arg: arg["item"].lower())
        first = list(app.stream({"items": ["a", "B"]}, stream_mode=["updates", "values"]))
        second = list(app.stream({"items": ["b", "a", "c"]}, stream_mode=["updates", "values"]))
        return _updates_sorted(first), _updates_sorted(second), sorted(calls)

    assert outcome(FG) == outcome(LG)


def _updates_sorted(chunks):
    """A step's "updates" chunks, compared sorted: cache hits come in the order the cache
    returns them (LangGraph's SqliteCache by its key hash, ferrograph's caches in task order),
    and the parallel tasks that ran in the order they finished (which varies with the load)."""
    out, run = [], []
    for chunk in chunks + [None]:
        if chunk is not None and chunk[0] == "updates":
            run.append(chunk)
            continue
        out.extend(sorted(run, key=repr))
        run = []
        if chunk is not None:
            out.append(chunk)
    return out


def test_cached_writes_are_saved_as_pending_writes(tmp_path):
    """With a checkpointer, a cache hit's writes go to the checkpoint like a run's."""
    from langgraph.checkpoint.memory import InMemorySaver as LGSaver

    from ferrograph.checkpointers import MemorySaver

    def history(impl, saver):
        calls: list = []
        app = _keyed_graph(impl, _cache(impl, "memory", tmp_path), calls)
        app = app.builder.compile(checkpointer=saver, cache=app.cache)
        for thread in ("1", "2"):
            app.invoke({"items": ["x"]}, {"configurable": {"thread_id": thread}})
        snaps = list(app.get_state_history({"configurable": {"thread_id": "2"}}))
        return calls, [(s.values, s.next, [t.result for t in s.tasks]) for s in snaps]

    assert history(FG, MemorySaver()) == history(LG, LGSaver())


def test_ttl_expires_entries(monkeypatch):
    from ferrograph.cache import base
    from ferrograph.cache.memory import InMemoryCache

    now = [1000.0]
    monkeypatch.setattr(base.time, "time", lambda: now[0])
    calls: list = []
    app = _keyed_graph(FG, InMemoryCache(), calls, ttl=5)
    app.invoke({"items": ["a"]})
    now[0] += 4
    app.invoke({"items": ["a"]})
    assert calls == ["a"]
    now[0] += 2
    app.invoke({"items": ["a"]})
    assert calls == ["a", "a"]


def test_errors_and_interrupts_are_not_cached():
    from ferrograph.cache.memory import InMemoryCache

    attempts: list = []

    class S(TypedDict, total=False):
        x: int

    def flaky(state):
        attempts.append(state["x"])
        if len(attempts) == 1:
            raise RuntimeError("first time fails")
        return {"x": state["x"] + 1}

    g = FG.StateGraph(S)
    g.add_node("flaky", flaky, cache_policy=_policy(FG))
    g.add_edge(FG.START, "flaky")
    app = g.compile(cache=InMemoryCache())
    with pytest.raises(RuntimeError):
        app.invoke({"x": 1})
    assert app.invoke({"x": 1}) == {"x": 2}
    assert app.invoke({"x": 1}) == {"x": 2}
    assert attempts == [1, 1]


def test_clear_cache_without_a_cache_is_refused():
    g = FG.StateGraph(State)
    g.add_node("a", lambda s: None)
    g.add_edge(FG.START, "a")
    with pytest.raises(ValueError, match="No cache is set for this graph"):
        g.compile().clear_cache()


def test_bad_cache_options_are_refused():
    from ferrograph.errors import GraphValidationError

    g = FG.StateGraph(State)
    with pytest.raises(GraphValidationError, match="cache_policy of node 'a' must be a CachePolicy"):
        g.add_node("a", lambda s: None, cache_policy={"ttl": 3})
    g.add_node("a", lambda s: None)
    g.add_edge(FG.START, "a")
    with pytest.raises(GraphValidationError, match="cache must implement the cache protocol"):
        g.compile(cache=object())


def test_sqlite_cache_shares_the_saver_file_and_outlives_the_graph(tmp_path):
    from ferrograph.cache.sqlite import SqliteCache
    from ferrograph.checkpointers import SqliteSaver

    path = str(tmp_path / "threads.db")
    calls: list = []
    with SqliteSaver.from_conn_string(path) as saver:
        saver.setup()
        app = _keyed_graph(FG, SqliteCache(path=path), calls)
        app = app.builder.compile(checkpointer=saver, cache=app.cache)
        app.invoke({"items": ["a"]}, {"configurable": {"thread_id": "1"}})
    again = _keyed_graph(FG, SqliteCache(path=path), calls)
    assert again.invoke({"items": ["a"]}) == {"items": ["a"], "out": ["A"]}
    assert calls == ["a"]


@dataclasses.dataclass
class Item:
    name: str
    size: int


class ItemState(TypedDict, total=False):
    query: str
    item: Item


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_cached_values_of_schema_classes_come_back_as_such(kind, tmp_path):
    """A cached write holding a class the state schema names is rebuilt from the cache (the
    graph allows its schema's classes, for its cache as for its checkpoints)."""

    def outcome(impl):
        calls: list = []

        def make(state):
            calls.append(state["query"])
            return {"item": Item(state["query"], len(state["query"]))}

        g = impl.StateGraph(ItemState)
        g.add_node("make", make, cache_policy=_policy(impl))
        g.add_edge(impl.START, "make")
        app = g.compile(cache=_cache(impl, kind, tmp_path))
        first = app.invoke({"query": "box"})
        second = list(app.stream({"query": "box"}, stream_mode="updates"))
        return first, second, calls

    expected = outcome(LG)
    assert outcome(FG) == expected
    assert isinstance(expected[1][0]["make"]["item"], Item)
