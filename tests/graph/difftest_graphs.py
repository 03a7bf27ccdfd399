"""The graphs of the differential tests, each written once against an implementation namespace.

A builder takes ``impl`` (see ``difftest_harness.Impl``) and returns a ``Built``: the compiled
graph, its input, an optional config, a fresh ``probe`` dict the nodes record into (so counters
are per run, never shared between implementations or runs) and an invariant ``check`` on the
invoke result that makes the LangGraph half meaningful on its own.

Schemas that do not mention an implementation-specific reducer live at module level so both
implementations see the very same class objects (dataclass and pydantic states compare by
class name). Schemas with ``impl.add_messages`` are built inside their builder.

Do not use ``from __future__ import annotations`` here: schemas defined inside builders need
their annotations evaluated eagerly.
"""

import asyncio
import operator
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Optional, TypedDict

from pydantic import BaseModel

from difftest_harness import Built


class NodeBoom(Exception):
    """A node's own error; must reach the caller unchanged."""


class Flaky(Exception):
    """Transient error used by the retry graphs (retried by LangGraph's default retry_on)."""


@dataclass
class Case:
    name: str
    build: Callable
    is_async: bool = False
    # Expected error category on LangGraph ("InvalidUpdateError", "GraphRecursionError", or an
    # exception class for a node's own error); None = the run succeeds.
    error: Any = None
    notes: str = ""


CASES: list = []


def case(name=None, *, is_async=False, error=None, notes=""):
    def deco(fn):
        CASES.append(Case(name or fn.__name__, fn, is_async=is_async, error=error, notes=notes))
        return fn

    return deco


# --------------------------------------------------------------------------------------------
# Shared schemas


class PathState(TypedDict):
    path: str
    n: int


class LogState(TypedDict):
    log: Annotated[list, operator.add]
    value: int


class CountState(TypedDict):
    count: int
    trace: Annotated[list, operator.add]


def keep_max(left: int, right: int) -> int:
    return max(left, right)


def merge_dicts(left: Optional[dict], right: Optional[dict]) -> dict:
    out = dict(left or {})
    out.update(right or {})
    return out


def sorted_union(left: Optional[list], right: Any) -> list:
    items = right if isinstance(right, list) else [right]
    return sorted(set(left or []) | set(items))


class CustomReducerState(TypedDict):
    best: Annotated[int, keep_max]
    meta: Annotated[dict, merge_dicts]
    tags: Annotated[list, sorted_union]
    plain: str


class MapState(TypedDict):
    items: list
    results: Annotated[list, operator.add]
    total: int


class WorkerInput(TypedDict):
    item: int
    n_items: int


class Plain(TypedDict):
    x: int
    y: int


@dataclass
class DataState:
    x: int
    label: str = "start"
    log: Annotated[list, operator.add] = field(default_factory=list)
    untouched: str = "never-written"


class ModelState(BaseModel):
    x: int
    label: str = "start"
    log: Annotated[list, operator.add] = []
    untouched: str = "never-written"


# --------------------------------------------------------------------------------------------
# Linear chains, reducers


@case()
def linear_chain(impl):
    def a(s):
        return {"path": s["path"] + "a", "n": s["n"] + 1}

    def b(s):
        return {"path": s["path"] + "b", "n": s["n"] + 1}

    def c(s):
        return {"path": s["path"] + "c"}

    g = impl.StateGraph(PathState)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_node("c", c)
    g.add_edge(impl.START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", impl.END)

    def check(r, probe):
        assert r == {"path": ">abc", "n": 2}

    return Built(g.compile(), {"path": ">", "n": 0}, check=check)


@case()
def reducer_operator_add(impl):
    def first(s):
        return {"log": ["first"], "value": s["value"] * 10}

    def second(s):
        return {"log": ["second", len(s["log"])]}

    def third(s):
        return {"log": [s["value"]]}

    g = impl.StateGraph(LogState)
    g.add_node("first", first)
    g.add_node("second", second)
    g.add_node("third", third)
    g.add_edge(impl.START, "first")
    g.add_edge("first", "second")
    g.add_edge("second", "third")

    def check(r, probe):
        assert r["log"] == ["seed", "first", "second", 2, 30]
        assert r["value"] == 30

    return Built(g.compile(), {"log": ["seed"], "value": 3}, check=check)


@case()
def custom_reducers_parallel(impl):
    """Custom reducer functions, written by two parallel nodes and then a sequential one."""

    def left(s):
        return {"best": 7, "meta": {"left": 1, "shared": "left"}, "tags": ["b", "a"]}

    def right(s):
        return {"best": 3, "meta": {"right": 2, "shared": "right"}, "tags": "c"}

    def after(s):
        return {"best": 5, "meta": {"after": s["best"]}, "tags": ["a", "z"], "plain": "done"}

    g = impl.StateGraph(CustomReducerState)
    g.add_node("left", left)
    g.add_node("right", right)
    g.add_node("after", after)
    g.add_edge(impl.START, "left")
    g.add_edge(impl.START, "right")
    g.add_edge(["left", "right"], "after")

    def check(r, probe):
        assert r["best"] == 7
        # parallel writes to a reducer are applied in node-name order: right wins "shared"
        assert r["meta"] == {"seed": 0, "left": 1, "right": 2, "shared": "right", "after": 7}
        assert r["tags"] == ["a", "b", "c", "s", "z"]
        assert r["plain"] == "done"

    return Built(
        g.compile(), {"best": 1, "meta": {"seed": 0}, "tags": ["s"], "plain": "p"}, check=check
    )


@case()
def fan_out_fan_in_order(impl):
    """Three parallel writers to an operator.add list, added out of name order, finishing in
    reverse name order: the merged list follows node-name order."""

    def writer(name, delay):
        def fn(s):
            time.sleep(delay)
            return {"log": [name]}

        return fn

    def collect(s):
        return {"value": len(s["log"]), "log": ["collect"]}

    g = impl.StateGraph(LogState)
    g.add_node("zeta", writer("zeta", 0.0))
    g.add_node("alpha", writer("alpha", 0.03))
    g.add_node("mid", writer("mid", 0.015))
    g.add_node("collect", collect)
    for n in ("zeta", "alpha", "mid"):
        g.add_edge(impl.START, n)
        g.add_edge(n, "collect")

    def check(r, probe):
        assert r["log"] == ["alpha", "mid", "zeta", "collect"]
        assert r["value"] == 3

    return Built(g.compile(), {"log": [], "value": 0}, check=check)


@case()
def join_uneven_branches(impl):
    """add_edge([a2, b], c): c waits for both branches although they have different lengths."""
    probe = {"c_runs": 0}

    def step(name):
        def fn(s):
            return {"log": [name]}

        return fn

    def c(s):
        probe["c_runs"] += 1
        return {"log": ["c"], "value": len(s["log"])}

    g = impl.StateGraph(LogState)
    g.add_node("a", step("a"))
    g.add_node("a2", step("a2"))
    g.add_node("b", step("b"))
    g.add_node("c", c)
    g.add_edge(impl.START, "a")
    g.add_edge("a", "a2")
    g.add_edge(impl.START, "b")
    g.add_edge(["a2", "b"], "c")
    g.add_edge("c", impl.END)

    def check(r, probe):
        assert probe["c_runs"] == 1
        assert r["log"] == ["a", "b", "a2", "c"]
        assert r["value"] == 3

    return Built(g.compile(), {"log": [], "value": 0}, probe=probe, check=check)


@case()
def fan_in_without_join(impl):
    """Two plain edges into c from branches of different lengths: c runs once per arrival."""
    probe = {"c_runs": 0}

    def step(name):
        def fn(s):
            return {"log": [name]}

        return fn

    def c(s):
        probe["c_runs"] += 1
        return {"log": [f"c{len(s['log'])}"]}

    g = impl.StateGraph(LogState)
    g.add_node("a", step("a"))
    g.add_node("a2", step("a2"))
    g.add_node("b", step("b"))
    g.add_node("c", c)
    g.add_edge(impl.START, "a")
    g.add_edge("a", "a2")
    g.add_edge(impl.START, "b")
    g.add_edge("a2", "c")
    g.add_edge("b", "c")

    def check(r, probe):
        assert probe["c_runs"] == 2
        assert r["log"] == ["a", "b", "a2", "c2", "c4"]

    return Built(g.compile(), {"log": [], "value": 0}, probe=probe, check=check)


# --------------------------------------------------------------------------------------------
# Conditional routing


@case()
def conditional_by_name(impl):
    def start(s):
        return {"x": s["x"] + 1}

    def even(s):
        return {"y": 2}

    def odd(s):
        return {"y": 1}

    g = impl.StateGraph(Plain)
    g.add_node("start", start)
    g.add_node("even", even)
    g.add_node("odd", odd)
    g.add_edge(impl.START, "start")
    g.add_conditional_edges("start", lambda s: "even" if s["x"] % 2 == 0 else "odd")
    g.add_edge("even", impl.END)
    g.add_edge("odd", impl.END)

    def check(r, probe):
        assert r == {"x": 4, "y": 2}

    return Built(g.compile(), {"x": 3, "y": 0}, check=check)


@case()
def conditional_to_end(impl):
    probe = {"skipped_ran": False}

    def gate(s):
        return {"x": s["x"] * 2}

    def skipped(s):
        probe["skipped_ran"] = True
        return {"y": -1}

    g = impl.StateGraph(Plain)
    g.add_node("gate", gate)
    g.add_node("skipped", skipped)
    g.add_edge(impl.START, "gate")
    g.add_conditional_edges("gate", lambda s: impl.END if s["x"] > 5 else "skipped")
    g.add_edge("skipped", impl.END)

    def check(r, probe):
        assert r == {"x": 8, "y": 0}
        assert probe["skipped_ran"] is False

    return Built(g.compile(), {"x": 4, "y": 0}, probe=probe, check=check)


@case()
def conditional_path_map_dict(impl):
    """path returns labels; the dict maps them to node names and to END."""

    def classify(s):
        return {"x": s["x"] + 1}

    def big(s):
        return {"y": 100}

    def small(s):
        return {"y": 1}

    def route(s):
        if s["x"] > 100:
            return "stop"
        return "large" if s["x"] >= 10 else "little"

    g = impl.StateGraph(Plain)
    g.add_node("classify", classify)
    g.add_node("big", big)
    g.add_node("small", small)
    g.add_edge(impl.START, "classify")
    g.add_conditional_edges(
        "classify", route, {"large": "big", "little": "small", "stop": impl.END}
    )
    g.add_edge("big", impl.END)
    g.add_edge("small", impl.END)

    def check(r, probe):
        assert r == {"x": 10, "y": 100}

    return Built(g.compile(), {"x": 9, "y": 0}, check=check)


@case()
def conditional_path_map_list(impl):
    def head(s):
        return {"x": s["x"] - 1}

    def left(s):
        return {"y": s["x"] * 3}

    def right(s):
        return {"y": -s["x"]}

    g = impl.StateGraph(Plain)
    g.add_node("head", head)
    g.add_node("left", left)
    g.add_node("right", right)
    g.add_edge(impl.START, "head")
    g.add_conditional_edges("head", lambda s: "left" if s["x"] > 0 else "right", ["left", "right"])
    g.add_edge("left", impl.END)
    g.add_edge("right", impl.END)

    def check(r, probe):
        assert r == {"x": 0, "y": 0}

    return Built(g.compile(), {"x": 1, "y": 5}, check=check)


@case()
def conditional_fan_out_list(impl):
    """path returns a list of names: all of them run in the same superstep."""

    def root(s):
        return {"log": ["root"]}

    def leaf(name):
        def fn(s):
            return {"log": [name], "value": s["value"] + 1} if name == "b" else {"log": [name]}

        return fn

    g = impl.StateGraph(LogState)
    g.add_node("root", root)
    for n in ("d", "b", "c"):
        g.add_node(n, leaf(n))
    g.add_edge(impl.START, "root")
    g.add_conditional_edges("root", lambda s: ["d", "b"])
    g.add_edge("d", "c")

    def check(r, probe):
        assert r["log"] == ["root", "b", "d", "c"]
        assert r["value"] == 1

    return Built(g.compile(), {"log": [], "value": 0}, check=check)


@case()
def conditional_from_start(impl):
    def route(s):
        return "neg" if s["x"] < 0 else "pos"

    g = impl.StateGraph(Plain)
    g.add_node("neg", lambda s: {"y": -1})
    g.add_node("pos", lambda s: {"y": 1})
    g.add_conditional_edges(impl.START, route, {"neg": "neg", "pos": "pos"})

    def check(r, probe):
        assert r == {"x": -5, "y": -1}

    return Built(g.compile(), {"x": -5, "y": 0}, check=check)


@case()
def loop_with_counter(impl):
    probe = {"runs": 0}

    def tick(s):
        probe["runs"] += 1
        return {"count": s["count"] + 1, "trace": [s["count"]]}

    def done(s):
        return {"trace": ["done"]}

    g = impl.StateGraph(CountState)
    g.add_node("tick", tick)
    g.add_node("done", done)
    g.add_edge(impl.START, "tick")
    g.add_conditional_edges("tick", lambda s: "tick" if s["count"] < 5 else "done")
    g.add_edge("done", impl.END)

    def check(r, probe):
        assert r == {"count": 5, "trace": [0, 1, 2, 3, 4, "done"]}
        assert probe["runs"] == 5

    return Built(g.compile(), {"count": 0, "trace": []}, probe=probe, check=check)


# --------------------------------------------------------------------------------------------
# Send (map-reduce)


def _map_reduce(impl, *, reverse_finish: bool):
    def plan(s):
        return {"total": 0}

    def fan_out(s):
        return [impl.Send("worker", {"item": i, "n_items": len(s["items"])}) for i in s["items"]]

    def worker(arg):
        if reverse_finish:  # first Send finishes last
            time.sleep(0.01 * (arg["n_items"] - arg["item"]))
        return {"results": [arg["item"] * arg["item"]]}

    def reduce(s):
        return {"total": sum(s["results"])}

    g = impl.StateGraph(MapState)
    g.add_node("plan", plan)
    g.add_node("worker", worker)
    g.add_node("reduce", reduce)
    g.add_edge(impl.START, "plan")
    g.add_conditional_edges("plan", fan_out, ["worker"])
    g.add_edge("worker", "reduce")
    g.add_edge("reduce", impl.END)

    def check(r, probe):
        # results are merged in Send order, not in finishing order
        assert r["results"] == [i * i for i in [1, 2, 3, 4]]
        assert r["total"] == 30

    return Built(g.compile(), {"items": [1, 2, 3, 4], "results": [], "total": -1}, check=check)


@case()
def send_map_reduce(impl):
    return _map_reduce(impl, reverse_finish=False)


@case()
def send_map_reduce_reverse_finish(impl):
    return _map_reduce(impl, reverse_finish=True)


@case()
def send_from_start_mixed_with_names(impl):
    """A path function from START returning a mix of a node name and Sends."""

    def route(s):
        return ["tally", impl.Send("echo", {"item": 10, "n_items": 0}), impl.Send("echo", {"item": 20, "n_items": 0})]

    def echo(arg):
        return {"results": [arg["item"]]}

    def tally(s):
        return {"total": len(s["items"])}

    g = impl.StateGraph(MapState)
    g.add_node("echo", echo)
    g.add_node("tally", tally)
    g.add_conditional_edges(impl.START, route)

    def check(r, probe):
        assert sorted(r["results"]) == [10, 20]
        assert r["total"] == 2

    return Built(g.compile(), {"items": ["a", "b"], "results": [], "total": 0}, check=check)


# --------------------------------------------------------------------------------------------
# Command


@case()
def command_update_goto(impl):
    probe = {"visited": []}

    def decide(s):
        probe["visited"].append("decide")
        return impl.Command(update={"x": s["x"] + 1}, goto="yes" if s["x"] >= 0 else "no")

    def yes(s):
        probe["visited"].append("yes")
        return {"y": s["x"] * 10}

    def no(s):
        probe["visited"].append("no")
        return {"y": -1}

    g = impl.StateGraph(Plain)
    g.add_node("decide", decide)
    g.add_node("yes", yes)
    g.add_node("no", no)
    g.add_edge(impl.START, "decide")

    def check(r, probe):
        assert r == {"x": 2, "y": 20}
        assert probe["visited"] == ["decide", "yes"]

    return Built(g.compile(), {"x": 1, "y": 0}, probe=probe, check=check)


@case()
def command_goto_list(impl):
    def split(s):
        return impl.Command(update={"log": ["split"]}, goto=["right", "left"])

    def side(name):
        def fn(s):
            return {"log": [name]}

        return fn

    g = impl.StateGraph(LogState)
    g.add_node("split", split)
    g.add_node("left", side("left"))
    g.add_node("right", side("right"))
    g.add_node("end", lambda s: {"value": len(s["log"])})
    g.add_edge(impl.START, "split")
    g.add_edge(["left", "right"], "end")

    def check(r, probe):
        assert r["log"] == ["split", "left", "right"]
        assert r["value"] == 3

    return Built(g.compile(), {"log": [], "value": 0}, check=check)


@case()
def command_goto_send(impl):
    def plan(s):
        return impl.Command(
            update={"total": 0},
            goto=[impl.Send("worker", {"item": i, "n_items": 0}) for i in s["items"]],
        )

    def worker(arg):
        return {"results": [arg["item"] + 100]}

    g = impl.StateGraph(MapState)
    g.add_node("plan", plan)
    g.add_node("worker", worker)
    g.add_edge(impl.START, "plan")

    def check(r, probe):
        assert r["results"] == [103, 101, 102]
        assert r["total"] == 0

    return Built(g.compile(), {"items": [3, 1, 2], "results": [], "total": 9}, check=check)


@case()
def command_goto_plus_static_edge(impl):
    """A node with a static edge that also returns Command(goto=...): both targets run."""

    def a(s):
        return impl.Command(update={"log": ["a"]}, goto="side")

    g = impl.StateGraph(LogState)
    g.add_node("a", a)
    g.add_node("next", lambda s: {"log": ["next"]})
    g.add_node("side", lambda s: {"log": ["side"]})
    g.add_edge(impl.START, "a")
    g.add_edge("a", "next")

    def check(r, probe):
        assert r["log"] == ["a", "next", "side"]

    return Built(g.compile(), {"log": [], "value": 0}, check=check)


@case()
def command_goto_end(impl):
    probe = {"after_ran": False}

    def stop(s):
        return impl.Command(update={"x": 99}, goto=impl.END)

    def after(s):
        probe["after_ran"] = True
        return {"y": 1}

    g = impl.StateGraph(Plain)
    g.add_node("stop", stop)
    g.add_node("after", after)
    g.add_edge(impl.START, "stop")

    def check(r, probe):
        assert r == {"x": 99, "y": 0}
        assert probe["after_ran"] is False

    return Built(g.compile(), {"x": 0, "y": 0}, probe=probe, check=check)


# --------------------------------------------------------------------------------------------
# Retries


@case()
def retry_fails_twice_then_succeeds(impl):
    probe = {"attempts": 0}

    def flaky(s):
        probe["attempts"] += 1
        if probe["attempts"] < 3:
            raise Flaky(f"attempt {probe['attempts']}")
        return {"x": s["x"] + probe["attempts"]}

    g = impl.StateGraph(Plain)
    g.add_node("prep", lambda s: {"y": 1})
    g.add_node(
        "flaky",
        flaky,
        retry_policy=impl.RetryPolicy(max_attempts=3, initial_interval=0.0, jitter=False),
    )
    g.add_edge(impl.START, "prep")
    g.add_edge("prep", "flaky")

    def check(r, probe):
        assert r == {"x": 3, "y": 1}
        assert probe["attempts"] == 3

    return Built(g.compile(), {"x": 0, "y": 0}, probe=probe, check=check)


@case(error=Flaky)
def retry_exhausted(impl):
    probe = {"attempts": 0}

    def always(s):
        probe["attempts"] += 1
        raise Flaky("still failing")

    g = impl.StateGraph(Plain)
    g.add_node(
        "always",
        always,
        retry_policy=impl.RetryPolicy(
            max_attempts=2, initial_interval=0.001, backoff_factor=1.0, jitter=False, retry_on=Flaky
        ),
    )
    g.add_edge(impl.START, "always")

    def check(r, probe):
        assert probe["attempts"] == 2

    return Built(g.compile(), {"x": 0, "y": 0}, probe=probe, check=check)


@case(error=ValueError)
def retry_default_skips_value_error(impl):
    """The default retry_on does not retry ValueError (nor TypeError, KeyError, ...)."""
    probe = {"attempts": 0}

    def bad(s):
        probe["attempts"] += 1
        raise ValueError("not transient", probe["attempts"])

    g = impl.StateGraph(Plain)
    g.add_node(
        "bad", bad, retry_policy=impl.RetryPolicy(max_attempts=5, initial_interval=0.0, jitter=False)
    )
    g.add_edge(impl.START, "bad")

    def check(r, probe):
        assert probe["attempts"] == 1

    return Built(g.compile(), {"x": 0, "y": 0}, probe=probe, check=check)


@case()
def retry_in_parallel_branch(impl):
    """One of two parallel branches fails once; the step's result equals a clean run."""
    probe = {"attempts": 0, "steady_runs": 0}

    def steady(s):
        probe["steady_runs"] += 1
        return {"log": ["steady"]}

    def shaky(s):
        probe["attempts"] += 1
        if probe["attempts"] == 1:
            raise Flaky("first try")
        return {"log": ["shaky"]}

    g = impl.StateGraph(LogState)
    g.add_node("steady", steady)
    g.add_node(
        "shaky",
        shaky,
        retry_policy=impl.RetryPolicy(max_attempts=2, initial_interval=0.0, jitter=False),
    )
    g.add_edge(impl.START, "steady")
    g.add_edge(impl.START, "shaky")

    def check(r, probe):
        assert r["log"] == ["shaky", "steady"]
        assert probe == {"attempts": 2, "steady_runs": 1}

    return Built(g.compile(), {"log": [], "value": 0}, probe=probe, check=check)


# --------------------------------------------------------------------------------------------
# Async nodes


@case(is_async=True)
def async_chain(impl):
    async def a(s):
        await asyncio.sleep(0)
        return {"path": s["path"] + "a", "n": s["n"] + 1}

    async def b(s):
        await asyncio.sleep(0.001)
        return {"path": s["path"] + "b"}

    g = impl.StateGraph(PathState)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(impl.START, "a")
    g.add_edge("a", "b")

    def check(r, probe):
        assert r == {"path": "ab", "n": 1}

    return Built(g.compile(), {"path": "", "n": 0}, check=check)


@case(is_async=True)
def async_parallel_fan_out(impl):
    def writer(name, delay):
        async def fn(s):
            await asyncio.sleep(delay)
            return {"log": [name]}

        return fn

    async def join(s):
        return {"value": len(s["log"])}

    g = impl.StateGraph(LogState)
    g.add_node("c", writer("c", 0.0))
    g.add_node("a", writer("a", 0.02))
    g.add_node("b", writer("b", 0.01))
    g.add_node("join", join)
    g.add_edge(impl.START, "c")
    g.add_edge(impl.START, "a")
    g.add_edge(impl.START, "b")
    g.add_edge(["a", "b", "c"], "join")

    def check(r, probe):
        assert r == {"log": ["a", "b", "c"], "value": 3}

    return Built(g.compile(), {"log": [], "value": 0}, check=check)


@case(is_async=True)
def async_mixed_sync_nodes_and_send(impl):
    async def fan_out(s):
        return [impl.Send("worker", {"item": i, "n_items": 3}) for i in s["items"]]

    async def worker(arg):
        await asyncio.sleep(0.005 * (3 - arg["item"]))
        return {"results": [arg["item"] * 2]}

    def reduce(s):  # a sync node inside an async run
        return {"total": sum(s["results"])}

    g = impl.StateGraph(MapState)
    g.add_node("worker", worker)
    g.add_node("reduce", reduce)
    g.add_conditional_edges(impl.START, fan_out, ["worker"])
    g.add_edge("worker", "reduce")

    def check(r, probe):
        assert r == {"items": [0, 1, 2], "results": [0, 2, 4], "total": 6}

    return Built(g.compile(), {"items": [0, 1, 2], "results": [], "total": 0}, check=check)


@case(is_async=True)
def async_retry_and_command(impl):
    probe = {"attempts": 0}

    async def flaky(s):
        probe["attempts"] += 1
        if probe["attempts"] < 3:
            raise Flaky("async attempt")
        return impl.Command(update={"x": probe["attempts"]}, goto="finish")

    async def finish(s):
        return {"y": s["x"] * 2}

    g = impl.StateGraph(Plain)
    g.add_node(
        "flaky",
        flaky,
        retry_policy=impl.RetryPolicy(max_attempts=3, initial_interval=0.0, jitter=False),
    )
    g.add_node("finish", finish)
    g.add_edge(impl.START, "flaky")

    def check(r, probe):
        assert r == {"x": 3, "y": 6}
        assert probe["attempts"] == 3

    return Built(g.compile(), {"x": 0, "y": 0}, probe=probe, check=check)


@case(is_async=True, error=NodeBoom)
def async_node_error(impl):
    async def ok(s):
        return {"x": 1}

    async def boom(s):
        raise NodeBoom("async boom", s["x"])

    g = impl.StateGraph(Plain)
    g.add_node("ok", ok)
    g.add_node("boom", boom)
    g.add_edge(impl.START, "ok")
    g.add_edge("ok", "boom")
    return Built(g.compile(), {"x": 0, "y": 0})


# --------------------------------------------------------------------------------------------
# Schema kinds


@case()
def dataclass_schema(impl):
    def bump(s: DataState):
        assert isinstance(s, DataState)
        return {"x": s.x + 1, "log": [f"bump:{s.label}"]}

    def relabel(s: DataState):
        return {"label": "relabelled", "log": [s.x]}

    g = impl.StateGraph(DataState)
    g.add_node("bump", bump)
    g.add_node("relabel", relabel)
    g.add_edge(impl.START, "bump")
    g.add_edge("bump", "relabel")

    def check(r, probe):
        assert isinstance(r, dict)  # invoke returns a dict for every schema kind
        assert r == {"x": 2, "label": "relabelled", "log": ["bump:start", 2]}
        assert "untouched" not in r  # fields never written are left out

    return Built(g.compile(), {"x": 1}, check=check)


@case()
def pydantic_schema_coercion(impl):
    def bump(s: ModelState):
        assert isinstance(s, ModelState)
        return {"x": s.x + 1, "log": [type(s.x).__name__, s.label]}

    g = impl.StateGraph(ModelState)
    g.add_node("bump", bump)
    g.add_node("tail", lambda s: {"log": [s.x]})
    g.add_edge(impl.START, "bump")
    g.add_edge("bump", "tail")

    def check(r, probe):
        assert isinstance(r, dict)
        assert r == {"x": 4, "log": ["int", "start", 4]}  # "3" was coerced to 3 for the node

    return Built(g.compile(), {"x": "3"}, check=check)


@case()
def pydantic_model_instance_input(impl):
    def bump(s: ModelState):
        return {"x": s.x * 2, "label": "doubled"}

    g = impl.StateGraph(ModelState)
    g.add_node("bump", bump)
    g.add_edge(impl.START, "bump")

    def check(r, probe):
        assert r == {"x": 10, "label": "doubled", "log": [], "untouched": "never-written"}

    return Built(g.compile(), ModelState(x=5), check=check)


# --------------------------------------------------------------------------------------------
# add_sequence, None updates, messages, unusual inputs


@case()
def add_sequence_chain(impl):
    def step_one(s):
        return {"path": s["path"] + "1", "n": s["n"] + 1}

    def step_two(s):
        return {"path": s["path"] + "2"}

    def three(s):
        return {"path": s["path"] + "3", "n": s["n"] * 10}

    g = impl.StateGraph(PathState)
    g.add_sequence([step_one, step_two, ("step_three", three)])
    g.add_edge(impl.START, "step_one")

    def check(r, probe):
        assert r == {"path": "123", "n": 10}

    return Built(g.compile(), {"path": "", "n": 0}, check=check)


@case()
def nodes_returning_none(impl):
    probe = {"seen": []}

    def observe(s):
        probe["seen"].append(dict(s))
        return None

    def write(s):
        return {"x": s["x"] + 1}

    g = impl.StateGraph(Plain)
    g.add_node("observe", observe)
    g.add_node("write", write)
    g.add_node("observe_again", observe)
    g.add_edge(impl.START, "observe")
    g.add_edge("observe", "write")
    g.add_edge("write", "observe_again")

    def check(r, probe):
        assert r == {"x": 2, "y": 0}
        assert probe["seen"] == [{"x": 1, "y": 0}, {"x": 2, "y": 0}]

    return Built(g.compile(), {"x": 1, "y": 0}, probe=probe, check=check)


@case()
def parallel_none_and_write(impl):
    """In one superstep a node returning None next to a node writing."""

    g = impl.StateGraph(Plain)
    g.add_node("quiet", lambda s: None)
    g.add_node("loud", lambda s: {"y": s["x"] + 1})
    g.add_edge(impl.START, "quiet")
    g.add_edge(impl.START, "loud")

    def check(r, probe):
        assert r == {"x": 1, "y": 2}

    return Built(g.compile(), {"x": 1, "y": 0}, check=check)


@case()
def messages_reducer(impl):
    from langchain_core.messages import AIMessage, HumanMessage

    class State(TypedDict):
        messages: Annotated[list, impl.add_messages]
        turns: int

    def bot(s):
        last = s["messages"][-1]
        return {
            "messages": [AIMessage(content=f"echo: {last.content}", id="ai-1")],
            "turns": s["turns"] + 1,
        }

    def user(s):
        return {"messages": [("user", "second"), HumanMessage(content="third", name="bob")]}

    def edit(s):
        # same id: replaces the earlier AI message in place
        return {"messages": [AIMessage(content="edited", id="ai-1")]}

    g = impl.StateGraph(State)
    g.add_node("bot", bot)
    g.add_node("user", user)
    g.add_node("edit", edit)
    g.add_edge(impl.START, "bot")
    g.add_edge("bot", "user")
    g.add_edge("user", "edit")

    def check(r, probe):
        msgs = r["messages"]
        assert [(m.type, m.content) for m in msgs] == [
            ("human", "hi"),
            ("ai", "edited"),
            ("human", "second"),
            ("human", "third"),
        ]
        assert all(m.id for m in msgs)  # add_messages gives every message an id
        assert r["turns"] == 1

    return Built(g.compile(), {"messages": [("user", "hi")], "turns": 0}, check=check)


@case()
def messages_state_tool_calls_and_remove(impl):
    from langchain_core.messages import AIMessage, RemoveMessage, ToolMessage

    class State(impl.MessagesState):
        note: str

    def agent(s):
        return {
            "messages": [
                AIMessage(
                    content="",
                    id="ai-call",
                    tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "call-1"}],
                )
            ]
        }

    def tool(s):
        call = s["messages"][-1].tool_calls[0]
        total = call["args"]["a"] + call["args"]["b"]
        return {"messages": [ToolMessage(content=str(total), tool_call_id=call["id"], id="tool-1")]}

    def prune(s):
        return {"messages": [RemoveMessage(id="ai-call")], "note": f"{len(s['messages'])} before"}

    g = impl.StateGraph(State)
    g.add_node("agent", agent)
    g.add_node("tool", tool)
    g.add_node("prune", prune)
    g.add_edge(impl.START, "agent")
    g.add_edge("agent", "tool")
    g.add_edge("tool", "prune")

    def check(r, probe):
        assert [(m.type, m.content) for m in r["messages"]] == [("human", "add"), ("tool", "3")]
        assert r["note"] == "3 before"

    return Built(
        g.compile(), {"messages": [{"role": "user", "content": "add"}], "note": ""}, check=check
    )


@case()
def input_keys_not_in_schema(impl):
    probe = {"keys": None}

    def a(s):
        probe["keys"] = sorted(s)
        return {"x": s["x"] + 1}

    g = impl.StateGraph(Plain)
    g.add_node("a", a)
    g.add_edge(impl.START, "a")

    def check(r, probe):
        assert r == {"x": 2}
        assert probe["keys"] == ["x"]  # unknown input keys are dropped; unset keys absent

    return Built(g.compile(), {"x": 1, "not_in_schema": "ignored"}, probe=probe, check=check)


@case()
def update_key_not_in_schema(impl):
    g = impl.StateGraph(Plain)
    g.add_node("a", lambda s: {"x": s["x"] + 1, "bogus": 1})
    g.add_node("b", lambda s: {"y": len(s)})
    g.add_edge(impl.START, "a")
    g.add_edge("a", "b")

    def check(r, probe):
        assert r == {"x": 2, "y": 1}  # the unknown key is dropped silently by LangGraph

    return Built(g.compile(), {"x": 1}, check=check)


# --------------------------------------------------------------------------------------------
# Recursion limit edge cases (k node runs need recursion_limit >= k + 1 in LangGraph)


def _self_loop(impl, runs: int, limit: int):
    probe = {"runs": 0}

    def again(s):
        probe["runs"] += 1
        return {"count": s["count"] + 1, "trace": [s["count"]]}

    g = impl.StateGraph(CountState)
    g.add_node("again", again)
    g.add_edge(impl.START, "again")
    g.add_conditional_edges("again", lambda s: impl.END if s["count"] >= runs else "again")

    def check(r, probe):
        if r is not None:
            assert r == {"count": runs, "trace": list(range(runs))}
        assert probe["runs"] == min(runs, limit)

    return Built(
        g.compile(),
        {"count": 0, "trace": []},
        config={"recursion_limit": limit},
        probe=probe,
        check=check,
    )


@case()
def recursion_limit_exactly_enough(impl):
    return _self_loop(impl, runs=4, limit=5)


@case(error="GraphRecursionError")
def recursion_limit_one_too_few(impl):
    return _self_loop(impl, runs=4, limit=4)


@case(error="GraphRecursionError")
def recursion_limit_unbounded_loop(impl):
    probe = {"runs": 0}

    def spin(s):
        probe["runs"] += 1
        return {"count": s["count"] + 1}

    g = impl.StateGraph(CountState)
    g.add_node("spin", spin)
    g.add_node("other", lambda s: {"trace": [s["count"]]})
    g.add_edge(impl.START, "spin")
    g.add_edge("spin", "other")
    g.add_edge("other", "spin")

    def check(r, probe):
        assert probe["runs"] == 4  # steps 1..7 alternate spin/other

    return Built(
        g.compile(), {"count": 0, "trace": []}, config={"recursion_limit": 7}, probe=probe, check=check
    )


# --------------------------------------------------------------------------------------------
# Errors


@case(error="InvalidUpdateError")
def parallel_writes_to_plain_key(impl):
    g = impl.StateGraph(Plain)
    g.add_node("one", lambda s: {"x": 1})
    g.add_node("two", lambda s: {"x": 2})
    g.add_node("never", lambda s: {"y": 9})
    g.add_edge(impl.START, "one")
    g.add_edge(impl.START, "two")
    g.add_edge(["one", "two"], "never")
    return Built(g.compile(), {"x": 0, "y": 0})


@case(error="InvalidUpdateError")
def node_returns_non_dict(impl):
    g = impl.StateGraph(Plain)
    g.add_node("ok", lambda s: {"x": 1})
    g.add_node("bad", lambda s: 5)
    g.add_edge(impl.START, "ok")
    g.add_edge("ok", "bad")
    return Built(g.compile(), {"x": 0, "y": 0})


@case(error=NodeBoom)
def node_error_propagates(impl):
    probe = {"after": 0}

    def boom(s):
        raise NodeBoom("boom", s["x"])

    def after(s):
        probe["after"] += 1
        return {"y": 1}

    g = impl.StateGraph(Plain)
    g.add_node("first", lambda s: {"x": s["x"] + 1})
    g.add_node("boom", boom)
    g.add_node("after", after)
    g.add_edge(impl.START, "first")
    g.add_edge("first", "boom")
    g.add_edge("boom", "after")

    def check(r, probe):
        assert probe["after"] == 0

    return Built(g.compile(), {"x": 0, "y": 0}, probe=probe, check=check)


@case(error=KeyError)
def node_key_error_in_router(impl):
    """An exception raised by a conditional edge's path function also propagates unchanged."""

    def route(s):
        return {"a": "a"}[s["missing_key"]]

    g = impl.StateGraph(Plain)
    g.add_node("first", lambda s: {"x": 1})
    g.add_node("a", lambda s: {"y": 1})
    g.add_edge(impl.START, "first")
    g.add_conditional_edges("first", route, ["a"])
    return Built(g.compile(), {"x": 0, "y": 0})


SYNC_CASES = [c for c in CASES if not c.is_async]
ASYNC_CASES = [c for c in CASES if c.is_async]
