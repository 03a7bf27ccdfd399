"""Run a graph on a fresh thread and assert on what it left behind, in one line each.

```python
run = graph_harness.run(app, {"topic": "x"}, saver=saver)
run.assert_history(sources=["input", "loop", "loop"], steps=[-1, 0, 1])
run.assert_values(topic="x")
run.assert_next()                      # finished: nothing left to run
```

`GraphHarness` is what the `graph_harness` fixture gives; it works outside pytest as well.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Optional, Sequence

if TYPE_CHECKING:
    from ferrograph.graph.pregel import CompiledStateGraph
    from ferrograph.graph.state import StateGraph
    from ferrograph.types import StateSnapshot

__all__ = ["GraphHarness", "GraphRun"]

_MISSING: Any = object()


class GraphRun:
    """One run of a graph on its thread, and the thread's history after it.

    Attributes:
        graph: the compiled graph that ran (compiled with the harness's saver, if one was given).
        thread: the run's config, `{"configurable": {"thread_id": ...}}`; pass it to the graph
            (or to `graph_harness.run(..., config=run.thread)`) to go on with the same thread.
        result: what `invoke` / `ainvoke` returned.
        history: the thread's snapshots, oldest first (`get_state_history` reversed).
    """

    def __init__(self, graph: "CompiledStateGraph", thread: dict, result: Any, history: list["StateSnapshot"]) -> None:
        self.graph = graph
        self.thread = thread
        self.result = result
        self.history = history

    @property
    def state(self) -> "StateSnapshot":
        """The thread's latest snapshot (the last of `history`)."""
        if not self.history:
            raise AssertionError(f"thread {self.thread_id!r} has no checkpoints")
        return self.history[-1]

    @property
    def thread_id(self) -> str:
        return str(self.thread["configurable"]["thread_id"])

    @property
    def sources(self) -> list[Optional[str]]:
        """Each checkpoint's `metadata["source"]`, oldest first: input, loop, update, fork."""
        return [(s.metadata or {}).get("source") for s in self.history]

    @property
    def steps(self) -> list[Optional[int]]:
        """Each checkpoint's `metadata["step"]`, oldest first (-1 for the input)."""
        return [(s.metadata or {}).get("step") for s in self.history]

    @property
    def nexts(self) -> list[tuple[str, ...]]:
        """Each checkpoint's `next`: the nodes left to run from it, oldest first."""
        return [tuple(s.next) for s in self.history]

    @property
    def values(self) -> list[Any]:
        """Each checkpoint's state values, oldest first."""
        return [s.values for s in self.history]

    # ---- assertions

    def assert_history(
        self,
        *,
        sources: Optional[Sequence[str]] = None,
        steps: Optional[Sequence[int]] = None,
        nexts: Optional[Sequence[Sequence[str]]] = None,
        values: Optional[Sequence[Any]] = None,
    ) -> "GraphRun":
        """Assert the history (oldest first) has these sources, steps, nexts and/or values;
        what is not given is not checked. Returns the run, so assertions chain."""
        __tracebackhide__ = True
        wrong = []
        for name, expected, actual in (
            ("sources", sources, self.sources),
            ("steps", steps, self.steps),
            ("nexts", None if nexts is None else [tuple(n) for n in nexts], self.nexts),
            ("values", values, self.values),
        ):
            if expected is not None and list(expected) != actual:
                wrong.append(f"  {name}:\n    expected {list(expected)!r}\n    actual   {actual!r}")
        if wrong:
            raise AssertionError(f"history of thread {self.thread_id!r} differs:\n" + "\n".join(wrong) + "\n" + self.describe())
        return self

    def assert_values(self, expected: Any = _MISSING, /, **fields: Any) -> "GraphRun":
        """Assert the latest state: `assert_values({...})` compares all of its values,
        `assert_values(key=value, ...)` only the keys given. Returns the run."""
        __tracebackhide__ = True
        if expected is _MISSING and not fields:
            raise TypeError("assert_values needs the expected values, or some key=value fields")
        actual = self.state.values
        if expected is not _MISSING and actual != expected:
            raise AssertionError(
                f"latest values of thread {self.thread_id!r} differ:\n  expected {expected!r}\n  actual   {actual!r}"
            )
        wrong = []
        for key, value in fields.items():
            got = _field(actual, key)
            if got is _MISSING:
                wrong.append(f"  {key}: expected {value!r}, but the state has no {key!r}")
            elif got != value:
                wrong.append(f"  {key}:\n    expected {value!r}\n    actual   {got!r}")
        if wrong:
            raise AssertionError(f"latest values of thread {self.thread_id!r} differ:\n" + "\n".join(wrong))
        return self

    def assert_next(self, *nodes: str) -> "GraphRun":
        """Assert the nodes left to run from the latest checkpoint, in order: none (the run
        finished) when called without arguments, `assert_next("review")` after an interrupt
        before "review". Returns the run."""
        __tracebackhide__ = True
        actual = tuple(self.state.next)
        if actual != nodes:
            done = " (finished)" if not actual else ""
            raise AssertionError(
                f"next nodes of thread {self.thread_id!r} differ:\n  expected {nodes!r}\n  actual   {actual!r}{done}"
            )
        return self

    def describe(self) -> str:
        """The history as a table, oldest first: one line per checkpoint."""
        lines = [f"history of thread {self.thread_id!r} (oldest first):"]
        for i, s in enumerate(self.history):
            meta = s.metadata or {}
            lines.append(
                f"  #{i} step={meta.get('step')!r} source={meta.get('source')!r} "
                f"next={tuple(s.next)!r} values={s.values!r}"
            )
        if not self.history:
            lines.append("  (no checkpoints)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<GraphRun thread={self.thread_id!r} checkpoints={len(self.history)} next={self.nexts[-1] if self.history else None!r}>"


def _thread_of(config: dict) -> dict:
    """The thread a config names, without the checkpoint it may point at."""
    return {"configurable": {k: v for k, v in config["configurable"].items() if k != "checkpoint_id"}}


def _field(values: Any, key: str) -> Any:
    if isinstance(values, dict):
        return values.get(key, _MISSING)
    return getattr(values, key, _MISSING)


class GraphHarness:
    """Runs graphs on fresh threads (the `graph_harness` fixture).

    `run` / `arun` accept a compiled graph or a `StateGraph` builder. With `saver=`, the graph
    runs on that saver (a builder is compiled with it; a graph compiled with another
    checkpointer, or none, is recompiled from its builder, keeping its interrupts). Without it,
    the graph must have been compiled with a checkpointer, since the history is read back.
    """

    def __init__(self, prefix: str = "test") -> None:
        self.prefix = prefix

    def new_thread(self, **configurable: Any) -> dict:
        """A config naming a thread no one has used yet, plus any other `configurable` keys."""
        return {"configurable": {"thread_id": f"{self.prefix}-{uuid.uuid4().hex[:12]}", **configurable}}

    def compile(self, graph: "CompiledStateGraph | StateGraph", saver: Any = None) -> "CompiledStateGraph":
        """`graph`, compiled to run on `saver` when one is given."""
        from ferrograph.graph.state import StateGraph

        if isinstance(graph, StateGraph):
            return graph.compile(checkpointer=saver)
        if saver is None or graph.checkpointer is saver:
            if graph.checkpointer is None:
                raise ValueError("the graph has no checkpointer: pass saver=..., or compile it with one")
            return graph
        return graph.builder.compile(
            checkpointer=saver,
            interrupt_before=list(graph.interrupt_before),
            interrupt_after=list(graph.interrupt_after),
            name=graph.name,
        )

    def _config(self, config: Optional[dict]) -> dict:
        config = dict(config or {})
        configurable = dict(config.get("configurable") or {})
        if "thread_id" not in configurable:
            configurable = self.new_thread(**configurable)["configurable"]
        config["configurable"] = configurable
        return config

    def run(
        self,
        graph: "CompiledStateGraph | StateGraph",
        input: Any,
        *,
        saver: Any = None,
        config: Optional[dict] = None,
        **invoke_kwargs: Any,
    ) -> GraphRun:
        """`invoke(input)` on a fresh thread (or on `config`'s thread when it names one), then
        read the thread's history. Extra keyword arguments go to `invoke` (e.g.
        `interrupt_before=["review"]`). A node's exception propagates unchanged."""
        app = self.compile(graph, saver)
        config = self._config(config)
        result = app.invoke(input, config, **invoke_kwargs)
        thread = _thread_of(config)
        history = list(app.get_state_history(thread))
        history.reverse()
        return GraphRun(app, thread, result, history)

    async def arun(
        self,
        graph: "CompiledStateGraph | StateGraph",
        input: Any,
        *,
        saver: Any = None,
        config: Optional[dict] = None,
        **invoke_kwargs: Any,
    ) -> GraphRun:
        """The async twin of `run`: `ainvoke`, then `aget_state_history` (use it with an async
        saver, such as the `async_saver` fixture's)."""
        app = self.compile(graph, saver)
        config = self._config(config)
        result = await app.ainvoke(input, config, **invoke_kwargs)
        thread = _thread_of(config)
        history = [s async for s in app.aget_state_history(thread)]
        history.reverse()
        return GraphRun(app, thread, result, history)
