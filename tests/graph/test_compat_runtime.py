"""Issue 12, item 13: Runtime and context — `StateGraph(State, context_schema=Ctx)`,
`invoke(..., context=...)`, nodes taking `runtime: Runtime[Ctx]`, `get_runtime()`, `get_config()`,
the run's store, execution info and RunControl — differentially (see compat_harness).

Ported from LangGraph's test_runtime.py: test_injected_runtime, test_context_runtime,
test_context_coercion_dataclass / _pydantic / _typeddict / _none / _errors / _async / _stream,
test_run_control_request_drain_stops_future_steps (sync and async),
test_drain_requested_in_terminal_step_finishes_normally,
test_drain_with_exit_durability_persists_resume_checkpoint,
test_execution_info_populated_in_graph (sync and async), test_override_runtime.
"""

import dataclasses
from typing import Any, TypedDict

import pydantic
import pytest

pytest.register_assert_rewrite("timetravel_harness", "compat_harness")

from compat_harness import attempt  # noqa: E402
from timetravel_savers import time_travel_saver  # noqa: E402,F401 - fixture


class State(TypedDict):
    message: str


@dataclasses.dataclass
class DataContext:
    api_key: str
    timeout: int = 30


class ModelContext(pydantic.BaseModel):
    api_key: str
    timeout: int = 30
    tags: list[str] = []


class DictContext(TypedDict):
    api_key: str
    timeout: int


def _one_node(tt, node, context_schema=None, **compile_kwargs):
    g = tt.impl.StateGraph(State, context_schema=context_schema)
    g.add_node("node", node)
    g.add_edge(tt.impl.START, "node")
    g.add_edge("node", tt.impl.END)
    return g.compile(**compile_kwargs)


def test_injected_runtime_and_get_runtime(run_both):
    def scenario(tt):
        Runtime = tt.impl.Runtime

        def injected(state: State, runtime: Runtime[DataContext]) -> dict[str, Any]:
            return {"message": f"api key: {runtime.context.api_key}"}

        def fetched(state: State) -> dict[str, Any]:
            runtime = tt.impl.get_runtime(DataContext)
            return {"message": f"api key: {runtime.context.api_key}, who: {tt.impl.get_config()['configurable']['who']}"}

        for name, node in (("injected", injected), ("fetched", fetched)):
            app = _one_node(tt, node, DataContext)
            tt.rec(name, tt.value(app.invoke({"message": "hi"}, {"configurable": {"who": "me"}}, context=DataContext(api_key="sk_123456"))))
        tt.rec("outside", attempt(tt, lambda: tt.impl.get_runtime()))

    run_both(scenario)


@pytest.mark.parametrize("schema", [DataContext, ModelContext, DictContext], ids=["dataclass", "pydantic", "typeddict"])
def test_context_coercion(run_both, schema):
    def scenario(tt):
        def node(state: State, runtime: tt.impl.Runtime) -> dict[str, Any]:
            ctx = runtime.context
            shown = ctx if ctx is None or isinstance(ctx, dict) else (type(ctx).__name__, ctx.api_key, ctx.timeout)
            return {"message": repr(shown)}

        app = _one_node(tt, node, schema)
        tt.rec("dict", tt.value(app.invoke({"message": "t"}, context={"api_key": "sk", "timeout": 60})))
        if schema is not DictContext:
            tt.rec("defaults", tt.value(app.invoke({"message": "t"}, context={"api_key": "sk2"})))
            tt.rec("instance", tt.value(app.invoke({"message": "t"}, context=schema(api_key="sk3", timeout=90))))
            tt.rec("missing", attempt(tt, lambda: app.invoke({"message": "t"}, context={"timeout": 60})))
            tt.rec("unknown", attempt(tt, lambda: app.invoke({"message": "t"}, context={"api_key": "k", "bogus": 1})))
        tt.rec("none", tt.value(app.invoke({"message": "t"}, context=None)))
        tt.rec("absent", tt.value(app.invoke({"message": "t"})))
        tt.rec("stream", tt.value(list(app.stream({"message": "t"}, context={"api_key": "s", "timeout": 1}))))

    run_both(scenario)


def test_context_coercion_async(run_both):
    async def scenario(tt):
        async def node(state: State, runtime: tt.impl.Runtime[DataContext]) -> dict[str, Any]:
            return {"message": f"async {runtime.context.api_key} {runtime.context.timeout}"}

        app = _one_node(tt, node, DataContext)
        tt.rec("ainvoke", tt.value(await app.ainvoke({"message": "t"}, context={"api_key": "sk_async", "timeout": 5})))
        tt.rec("astream", tt.value([c async for c in app.astream({"message": "t"}, context={"api_key": "sk_stream"})]))

    run_both(scenario)


def test_runtime_store_and_config_injection(run_both):
    """The store given to compile() reaches nodes as `runtime.store`, a `store` parameter and
    get_store(); a `config` parameter gets the run's config."""

    def scenario(tt):
        from langgraph.store.memory import InMemoryStore

        store = InMemoryStore()
        store.put(("users",), "u1", {"name": "Alice"})

        def node(state: State, config, runtime: tt.impl.Runtime, store):
            item = runtime.store.get(("users",), "u1")
            return {"message": f"{item.value['name']} {store is runtime.store} {config['configurable']['who']}"}

        app = _one_node(tt, node, store=store)
        tt.rec("invoke", tt.value(app.invoke({"message": ""}, {"configurable": {"who": "me"}})))

    run_both(scenario)


def _drain_graph(tt, control, nodes=("first", "second")):
    class TwoKeys(TypedDict, total=False):
        first: str
        second: str

    def first(state):
        control.request_drain(*(("sigterm",) if len(nodes) == 2 else ()))
        return {"first": "done"}

    def second(state):
        return {"second": "done"}

    g = tt.impl.StateGraph(TwoKeys)
    g.add_node("first", first)
    previous = "first"
    g.add_edge(tt.impl.START, "first")
    if "second" in nodes:
        g.add_node("second", second)
        g.add_edge("first", "second")
        previous = "second"
    g.add_edge(previous, tt.impl.END)
    return g


def test_run_control_drain(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        control = tt.impl.RunControl()
        tt.rec("stops", attempt(tt, lambda: _drain_graph(tt, control).compile().invoke({}, control=control)))
        terminal = tt.impl.RunControl()
        tt.rec("terminal", tt.value(_drain_graph(tt, terminal, ("first",)).compile().invoke({}, control=terminal)))
        tt.rec("requested", (terminal.drain_requested, terminal.drain_reason))
        saved = tt.impl.RunControl()
        g = tt.build(lambda tt: _drain_graph(tt, saved))
        tt.rec("exit", attempt(tt, lambda: g.invoke({}, tt.cfg, durability="exit", control=saved)))
        tt.rec("resume", tt.value(g.invoke(None, tt.cfg, durability="exit")))
        tt.rec("history", tt.outline())

    run_both(scenario, time_travel_saver)


def test_run_control_drain_async(run_both):
    async def scenario(tt):
        control = tt.impl.RunControl()
        try:
            await _drain_graph(tt, control).compile().ainvoke({}, control=control)
        except tt.impl.GraphDrained as exc:
            tt.rec("drained", (str(exc), exc.reason))

    run_both(scenario)


def test_execution_info(run_both, time_travel_saver):  # noqa: F811
    def scenario(tt):
        captured = []

        def node(state: State, runtime: tt.impl.Runtime):
            info = runtime.execution_info
            captured.append(
                {
                    "thread_id": info.thread_id,
                    "checkpoint_ns": info.checkpoint_ns.replace(info.task_id, "<task_id>"),
                    "attempt": info.node_attempt,
                    "has_task_id": bool(info.task_id),
                    "has_checkpoint_id": bool(info.checkpoint_id),
                    "first_time": isinstance(info.node_first_attempt_time, float),
                }
            )
            if len(captured) < 2:
                raise ConnectionError("retry me")
            return {"message": "done"}

        g = tt.impl.StateGraph(State)
        g.add_node("node", node, retry_policy=tt.impl.RetryPolicy(initial_interval=0.0, jitter=False))
        g.add_edge(tt.impl.START, "node")
        tt.graph = g.compile(checkpointer=tt.saver)
        tt.rec("invoke", tt.value(tt.graph.invoke({"message": "hi"}, {"configurable": {"thread_id": "t-123"}})))
        tt.rec("captured", captured)

    run_both(scenario, time_travel_saver)


def test_execution_info_async(run_both):
    async def scenario(tt):
        captured = []

        async def node(state: State, runtime: tt.impl.Runtime):
            captured.append((runtime.execution_info.node_attempt, runtime.execution_info.thread_id))
            return {"message": "done"}

        await _one_node(tt, node).ainvoke({"message": "x"})
        tt.rec("captured", captured)

    run_both(scenario)


def test_override_runtime(run_both):
    def scenario(tt):
        prev = tt.impl.Runtime(context=DataContext(api_key="abc"))
        new = prev.override(context=DataContext(api_key="def"))
        tt.rec("override", (new.context.api_key, prev.context.api_key))
        merged = prev.merge(tt.impl.Runtime(context=DataContext(api_key="xyz")))
        tt.rec("merge", (merged.context.api_key, merged.store, merged.previous, merged.drain_requested))

    run_both(scenario)
