"""Harness for the LangGraph-vs-ferrograph differential tests.

An *implementation* is a small namespace (``Impl``) holding the names a graph builder needs
(StateGraph, START, END, Send, Command, RetryPolicy, add_messages, MessagesState and the
error classes). Every graph in ``difftest_graphs`` is written once against that namespace,
so the very same builder runs on LangGraph and on ferrograph.

``run_case`` executes one case in one "mode" (invoke, a stream mode, or the async twins) and
returns an ``Outcome`` (final result or stream chunks, plus the exception if any).
``canonical_outcome`` turns an outcome into plain, comparable data:

* messages keep type/content/name/tool_calls; random uuid ids become "<uuid>";
* pydantic models and dataclasses become tagged dicts (class name + fields);
* tuples and lists compare equal (LangGraph puts tuples in debug ``triggers``);
* library errors compare by category (InvalidUpdateError, GraphRecursionError), a node's own
  exceptions by type and args;
* "debug" chunks drop ``timestamp`` and task ``id``s; inside one step the task events and the
  task_result events are each sorted (parallel tasks finish in any order);
* "updates" chunks are compared as a multiset per superstep (LangGraph emits them in
  finishing order); steps are delimited by the ``values`` chunks of the combined
  ``["values", "updates"]`` stream of the same implementation.
"""

import asyncio
import dataclasses
import json
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Optional

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

# Modes a case is run in. The value is what is passed as stream_mode (None = invoke).
SYNC_MODES = {
    "invoke": None,
    "values": "values",
    "updates": "updates",
    "values+updates": ["values", "updates"],
    "debug": "debug",
}
ASYNC_MODES = {
    "ainvoke": None,
    "astream-values": "values",
    "astream-updates": "updates",
    "astream-values+updates": ["values", "updates"],
    "astream-debug": "debug",
}


class Impl(SimpleNamespace):
    """Names a graph builder may use; one instance per implementation."""

    name: str


def load_langgraph() -> Impl:
    from langgraph.errors import GraphRecursionError, InvalidUpdateError
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.graph.message import add_messages
    from langgraph.types import Command, RetryPolicy, Send

    return Impl(
        name="langgraph",
        StateGraph=StateGraph,
        START=START,
        END=END,
        Send=Send,
        Command=Command,
        RetryPolicy=RetryPolicy,
        add_messages=add_messages,
        MessagesState=MessagesState,
        InvalidUpdateError=InvalidUpdateError,
        GraphRecursionError=GraphRecursionError,
        RootError=None,
    )


def load_ferrograph() -> Impl:
    # Imported when a test asks for it, so a LangGraph-only run does not need the extension.
    from ferrograph.errors import FerrographError, GraphRecursionError, InvalidUpdateError
    from ferrograph.graph import END, START, StateGraph
    from ferrograph.graph.message import MessagesState, add_messages
    from ferrograph.types import Command, RetryPolicy, Send

    return Impl(
        name="ferrograph",
        StateGraph=StateGraph,
        START=START,
        END=END,
        Send=Send,
        Command=Command,
        RetryPolicy=RetryPolicy,
        add_messages=add_messages,
        MessagesState=MessagesState,
        InvalidUpdateError=InvalidUpdateError,
        GraphRecursionError=GraphRecursionError,
        RootError=FerrographError,
    )


# --------------------------------------------------------------------------------------------
# Running


@dataclass
class Built:
    """What a graph builder returns."""

    graph: Any
    input: Any
    config: Optional[dict] = None
    # Per-run mutable record the nodes write to (attempt counters, call logs...).
    probe: dict = field(default_factory=dict)
    # Invariant on the invoke result (None when the run raises) and the probe.
    check: Optional[Callable[[Any, dict], None]] = None


@dataclass
class Outcome:
    impl: Impl
    mode: str
    result: Any = None  # invoke/ainvoke result
    chunks: list = field(default_factory=list)  # stream chunks seen (also before an error)
    error: Optional[BaseException] = None
    probe: dict = field(default_factory=dict)
    built: Optional[Built] = None


def run_sync(case, impl: Impl, mode: str) -> Outcome:
    built = case.build(impl)
    out = Outcome(impl=impl, mode=mode, probe=built.probe, built=built)
    stream_mode = SYNC_MODES[mode]
    try:
        if stream_mode is None:
            out.result = built.graph.invoke(built.input, built.config)
        else:
            for chunk in built.graph.stream(built.input, built.config, stream_mode=stream_mode):
                out.chunks.append(chunk)
    except Exception as exc:  # noqa: BLE001 - compared by the caller
        out.error = exc
    return out


async def run_async(case, impl: Impl, mode: str) -> Outcome:
    built = case.build(impl)
    out = Outcome(impl=impl, mode=mode, probe=built.probe, built=built)
    stream_mode = ASYNC_MODES[mode]
    try:
        if stream_mode is None:
            out.result = await built.graph.ainvoke(built.input, built.config)
        else:
            async for chunk in built.graph.astream(
                built.input, built.config, stream_mode=stream_mode
            ):
                out.chunks.append(chunk)
    except Exception as exc:  # noqa: BLE001 - compared by the caller
        out.error = exc
    return out


def run_case_sync(case, impl: Impl, mode: str) -> Outcome:
    """Run any case (sync or async) in `mode`, from synchronous code."""
    if mode in SYNC_MODES:
        return run_sync(case, impl, mode)
    return asyncio.run(run_async(case, impl, mode))


# --------------------------------------------------------------------------------------------
# Canonical forms


def error_category(exc: Optional[BaseException], impl: Impl):
    if exc is None:
        return None
    if isinstance(exc, impl.GraphRecursionError):
        return "GraphRecursionError"
    if isinstance(exc, impl.InvalidUpdateError):
        return "InvalidUpdateError"
    # A node's own exception must reach the caller unchanged: same class, same args.
    return ("own", f"{type(exc).__module__}.{type(exc).__qualname__}", canon(exc.args, impl))


def _is_message(x) -> bool:
    try:
        from langchain_core.messages import BaseMessage
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, BaseMessage)


def _norm_id(value):
    if value is None:
        return None
    if isinstance(value, str) and UUID_RE.match(value):
        return "<uuid>"
    return value


def canon(x, impl: Impl):
    """Plain-data canonical form of a value seen in states, chunks or errors."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, dict):
        return {str(k): canon(v, impl) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [canon(v, impl) for v in x]
    if isinstance(x, (set, frozenset)):
        return {"__set__": sorted(json.dumps(canon(v, impl), sort_keys=True) for v in x)}
    if _is_message(x):
        out = {
            "__message__": x.type,
            "content": canon(x.content, impl),
            "name": x.name,
            "id": _norm_id(x.id),
        }
        if getattr(x, "tool_calls", None):
            out["tool_calls"] = [
                {"name": tc["name"], "args": canon(tc["args"], impl), "id": _norm_id(tc.get("id"))}
                for tc in x.tool_calls
            ]
        if getattr(x, "tool_call_id", None):
            out["tool_call_id"] = x.tool_call_id
        return out
    if isinstance(x, impl.Send):
        return {"__send__": x.node, "arg": canon(x.arg, impl)}
    if isinstance(x, impl.Command):
        return {
            "__command__": True,
            "update": canon(x.update, impl),
            "goto": canon(x.goto, impl),
            "graph": x.graph,
        }
    if isinstance(x, BaseException):
        return {"__error__": error_category(x, impl)}
    if hasattr(type(x), "model_fields") and hasattr(x, "model_dump"):  # pydantic v2 model
        return {
            "__model__": type(x).__qualname__,
            **{k: canon(getattr(x, k), impl) for k in type(x).model_fields},
        }
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {
            "__dataclass__": type(x).__qualname__,
            **{f.name: canon(getattr(x, f.name), impl) for f in dataclasses.fields(x)},
        }
    return {"__repr__": repr(x)}


def _key(x) -> str:
    return json.dumps(x, sort_keys=True, default=repr)


def canon_debug_chunk(chunk, impl: Impl):
    kind = chunk["type"]
    payload = chunk.get("payload", {})
    out = {"type": kind, "step": chunk.get("step")}
    if kind == "task":
        out.update(
            name=payload.get("name"),
            input=canon(payload.get("input"), impl),
            triggers=sorted(canon(payload.get("triggers", ()), impl)),
        )
    elif kind == "task_result":
        out.update(
            name=payload.get("name"),
            result=canon(payload.get("result"), impl),
            error=canon(payload.get("error"), impl),
            interrupts=canon(payload.get("interrupts", []), impl),
        )
    else:  # "checkpoint" (only with a checkpointer) or anything newer
        out.update(
            values=canon(payload.get("values"), impl),
            next=sorted(canon(payload.get("next", []), impl)),
        )
    return out


def canon_debug(chunks, impl: Impl):
    """Per step: task events (sorted) then task_result events (sorted)."""
    steps: dict = {}
    order: list = []
    for chunk in chunks:
        c = canon_debug_chunk(chunk, impl)
        if c["step"] not in steps:
            steps[c["step"]] = []
            order.append(c["step"])
        steps[c["step"]].append(c)
    rank = {"checkpoint": 0, "task": 1, "task_result": 2}
    out = []
    for step in order:
        out.extend(sorted(steps[step], key=lambda c: (rank.get(c["type"], 3), _key(c))))
    return out


def canon_combined(chunks, impl: Impl):
    """A stream with a list of modes: (mode, chunk) pairs; runs of updates sorted."""
    out, run = [], []

    def flush():
        out.extend(sorted(run, key=_key))
        run.clear()

    for mode, chunk in chunks:
        if mode == "updates":
            run.append(["updates", canon(chunk, impl)])
        else:
            flush()
            if mode == "debug":
                out.append(["debug", canon_debug_chunk(chunk, impl)])
            else:
                out.append([mode, canon(chunk, impl)])
    flush()
    return out


def update_step_sizes(combined_chunks) -> list:
    """Sizes of the runs of 'updates' chunks between 'values' chunks of a combined stream."""
    sizes, n = [], 0
    for mode, _ in combined_chunks:
        if mode == "updates":
            n += 1
        elif n:
            sizes.append(n)
            n = 0
    if n:
        sizes.append(n)
    return sizes


def canon_updates(chunks, impl: Impl, step_sizes=None):
    """Updates stream: sorted within each superstep window, or as a whole multiset."""
    items = [canon(c, impl) for c in chunks]
    if step_sizes is None or sum(step_sizes) != len(items):
        return {"__multiset__": sorted(items, key=_key)}
    out, i = [], 0
    for n in step_sizes:
        out.append(sorted(items[i : i + n], key=_key))
        i += n
    return out


def canonical_outcome(out: Outcome, *, step_sizes=None):
    impl = out.impl
    stream_mode = SYNC_MODES.get(out.mode, ASYNC_MODES.get(out.mode))
    if stream_mode is None:
        body = canon(out.result, impl)
    elif isinstance(stream_mode, list):
        body = canon_combined(out.chunks, impl)
    elif stream_mode == "debug":
        body = canon_debug(out.chunks, impl)
    elif stream_mode == "updates":
        body = canon_updates(out.chunks, impl, step_sizes)
    else:
        body = [canon(c, impl) for c in out.chunks]
    return {"output": body, "error": error_category(out.error, impl)}


def assert_debug_well_formed(out: Outcome):
    """Structural invariants of a debug stream, checked on each implementation separately."""
    stream_mode = SYNC_MODES.get(out.mode, ASYNC_MODES.get(out.mode))
    if stream_mode != "debug":
        return
    seen_tasks, last_step = set(), None
    for chunk in out.chunks:
        assert set(chunk) >= {"type", "timestamp", "step", "payload"}, chunk
        assert last_step is None or chunk["step"] >= last_step, "debug steps go backwards"
        last_step = chunk["step"]
        payload = chunk["payload"]
        if chunk["type"] == "task":
            assert set(payload) >= {"id", "name", "input", "triggers"}, payload
            seen_tasks.add(payload["id"])
        elif chunk["type"] == "task_result":
            assert set(payload) >= {"id", "name", "error", "result", "interrupts"}, payload
            assert payload["id"] in seen_tasks, "task_result before its task event"
