"""The compiled graph and the loop that runs it.

The Rust core owns the run's state: channels, versions, which tasks are due, how writes are
applied. This module only calls the nodes — inline when a step has one task, on a thread
pool (sync) or as asyncio tasks (async) when it has several — and turns what they return
into writes and stream chunks. `_Step` holds everything the sync and async loops share.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import os
import random
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable, Iterator, Optional, Sequence, Union

from ferrograph import _core
from ferrograph.errors import GraphValidationError, InvalidUpdateError
from ferrograph.graph.state import END, START, BranchSpec, NodeSpec, StateGraph
from ferrograph.types import Command, RetryPolicy, Send

__all__ = ["CompiledStateGraph"]

_MODES = ("values", "updates", "debug")
_DEFAULT_RECURSION_LIMIT = 25


def _check_config(config: Optional[dict]) -> dict:
    if config is None:
        return {"recursion_limit": _DEFAULT_RECURSION_LIMIT}
    if not isinstance(config, dict):
        raise GraphValidationError(f"config must be a dict, got {type(config).__name__}")
    limit = config.get("recursion_limit", _DEFAULT_RECURSION_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise GraphValidationError(f"recursion_limit must be a positive integer, got {limit!r}")
    if "recursion_limit" not in config:
        config = {**config, "recursion_limit": limit}
    return config


def _check_modes(stream_mode: Union[str, Sequence[str]]) -> tuple[tuple[str, ...], bool]:
    """The requested modes, and whether chunks are tagged with their mode (a list was given)."""
    modes = (stream_mode,) if isinstance(stream_mode, str) else tuple(stream_mode)
    for mode in modes:
        if mode not in _MODES:
            raise GraphValidationError(f"Unknown stream_mode {mode!r}; expected one of {_MODES}")
    return modes, not isinstance(stream_mode, str)


def _note(exc: BaseException, name: str, task_id: str) -> None:
    """Name the failing node on the exception itself, which otherwise stays unchanged."""
    note = f"During task with name '{name}' and id '{task_id}'"
    if sys.version_info >= (3, 11):
        if note not in getattr(exc, "__notes__", ()):
            exc.add_note(note)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class _Step:
    """One run's bookkeeping shared by the sync and async loops: starts the core run, hands
    out the tasks of each step, records their results, and produces stream chunks."""

    def __init__(self, graph: "CompiledStateGraph", input: Any, config: dict, modes: tuple[str, ...]):
        self.graph = graph
        self.config = config
        self.modes = modes
        self.debug = "debug" in modes
        self.run = _core.CoreRun(graph._core, config["recursion_limit"], uuid.uuid4().hex)
        self.run.input(input)
        self.tasks: list[tuple] = []
        #: An error raised after a task's update was recorded (by a branch function).
        self.error: Optional[BaseException] = None

    def tick(self) -> Optional[list[tuple]]:
        tasks = self.run.tick()
        self.tasks = tasks or []
        return tasks

    def started(self) -> list[tuple[str, Any]]:
        if not self.debug:
            return []
        step = self.run.step + 1
        chunks = []
        for i, (name, input, task_id, _push) in enumerate(self.tasks):
            if name == START:
                continue
            payload = {
                "id": task_id,
                "name": name,
                "input": input if _push else self._debug_input(name, input),
                "triggers": tuple(self.run.task_triggers(i)),
            }
            chunks.append(("debug", {"step": step, "timestamp": _now(), "type": "task", "payload": payload}))
        return chunks

    def _debug_input(self, name: str, state: dict) -> Any:
        schema = self.graph._nodes[name].input_schema or self.graph._builder.schema
        if schema.kind == "dict":
            return state
        try:
            return schema.to_node_input(state)
        except Exception:  # the node itself will report invalid input when it runs
            return state

    def call(self, i: int) -> Callable[[], Any]:
        """A zero-argument callable that runs task `i`'s node once."""
        name, input, _task_id, push = self.tasks[i]
        if name == START:
            return functools.partial(self.graph._input_update, input)
        spec = self.graph._nodes[name]
        kwargs = {"config": self.config} if spec.takes_config else {}
        if push:  # a Send's argument is the node's whole input, as given
            return functools.partial(spec.fn, input, **kwargs)
        schema = spec.input_schema or self.graph._builder.schema
        if schema.kind == "dict":
            if spec.input_schema is not None:
                input = {k: v for k, v in input.items() if k in schema.names}
            return functools.partial(spec.fn, input, **kwargs)
        # Built inside the call, so a pydantic ValidationError surfaces as the node's error.
        return lambda: spec.fn(schema.to_node_input(input), **kwargs)

    def policy(self, i: int) -> Optional[RetryPolicy]:
        name = self.tasks[i][0]
        return None if name == START else self.graph._nodes[name].retry_policy

    def failed(self, i: int, exc: BaseException) -> list[tuple[str, Any]]:
        """Note which node raised `exc`; returns the debug chunk reporting the failure."""
        name, _input, task_id, _push = self.tasks[i]
        _note(exc, name, task_id)
        self.error = exc
        return self._chunks(i, None, exc, updates=False)

    def _record(self, i: int, result: Any) -> tuple[Optional[dict], Sequence[BranchSpec], Any]:
        """Write task `i`'s update and gotos. Returns the update as applied, the branches to
        evaluate next and the state they read (the task's own writes included)."""
        name = self.tasks[i][0]
        schema = self.graph._builder.schema
        if name == START:
            update, gotos = result, ()
        elif isinstance(result, Command):
            update = None if result.update is None else schema.to_update(result.update, name)
            gotos = result.goto
        else:
            update = schema.to_update(result, name)
            gotos = ()
        applied = self.run.update(i, update) if update else None
        if gotos:
            for target in (gotos,) if isinstance(gotos, (str, Send)) else gotos:
                self._route(i, name, target, None)
        branches = self.graph._builder.branches.get(name, ())
        state = schema.to_node_input(self.run.preview(i)) if branches else None
        return applied, branches, state

    def complete(self, i: int, result: Any) -> list[tuple[str, Any]]:
        """Record task `i`'s result as writes and routes; returns its stream chunks. If a
        branch function raises, the node's update is still reported and the error is kept
        in `self.error` for the loop to raise once the chunks are out."""
        try:
            applied, branches, state = self._record(i, result)
        except Exception as exc:
            return self.failed(i, exc)
        try:
            for branch in branches:
                if branch.is_async:
                    raise GraphValidationError(
                        f"The branch from '{self.tasks[i][0]}' is async: run the graph with ainvoke/astream"
                    )
                args = {"config": self.config} if branch.takes_config else {}
                self._routes(i, branch, branch.path(state, **args))
        except Exception as exc:
            return self._branch_failed(i, applied, exc)
        self.run.finish(i)
        return self._chunks(i, applied, None)

    async def acomplete(self, i: int, result: Any) -> list[tuple[str, Any]]:
        """`complete`, awaiting async branch functions."""
        try:
            applied, branches, state = self._record(i, result)
        except Exception as exc:
            return self.failed(i, exc)
        try:
            for branch in branches:
                args = {"config": self.config} if branch.takes_config else {}
                out = branch.path(state, **args)
                if asyncio.iscoroutine(out):
                    out = await out
                self._routes(i, branch, out)
        except Exception as exc:
            return self._branch_failed(i, applied, exc)
        self.run.finish(i)
        return self._chunks(i, applied, None)

    def _branch_failed(self, i: int, applied: Optional[dict], exc: BaseException) -> list[tuple[str, Any]]:
        self.failed(i, exc)
        return self._chunks(i, applied, exc)

    def _chunks(
        self, i: int, applied: Optional[dict], error: Optional[BaseException], *, updates: bool = True
    ) -> list[tuple[str, Any]]:
        name, _input, task_id, _push = self.tasks[i]
        if name == START:
            return []
        chunks: list[tuple[str, Any]] = []
        if updates and "updates" in self.modes:
            chunks.append(("updates", {name: applied}))
        if self.debug:
            payload = {
                "id": task_id,
                "name": name,
                "error": error,
                "result": dict(applied) if applied else {},
                "interrupts": [],
            }
            chunks.append(
                ("debug", {"step": self.run.step + 1, "timestamp": _now(), "type": "task_result", "payload": payload})
            )
        return chunks

    def _routes(self, i: int, branch: BranchSpec, result: Any) -> None:
        targets = result if isinstance(result, (list, tuple)) else (result,)
        for target in targets:
            self._route(i, self.tasks[i][0], target, branch.path_map)

    def _route(self, i: int, source: str, target: Any, path_map: Optional[dict]) -> None:
        if isinstance(target, Send):
            self.run.send(i, target.node, target.arg)
            return
        if path_map is not None:
            try:
                target = path_map[target]
            except (KeyError, TypeError):
                raise GraphValidationError(
                    f"The branch from '{source}' returned {target!r}, which is not in its path_map"
                ) from None
        if target is None or target == END:
            return
        if not isinstance(target, str):
            raise InvalidUpdateError(
                f"The branch from '{source}' must return node names or Send objects, got {target!r}"
            )
        self.run.goto(i, target)

    def apply(self) -> list[tuple[str, Any]]:
        changed = self.run.apply()
        if changed and "values" in self.modes:
            return [("values", self.output())]
        return []

    def output(self) -> dict:
        state = self.run.state()
        names = self.graph._output_names
        if names is not None:
            return {k: v for k, v in state.items() if k in names}
        return state


def _call_with_retry(call: Callable[[], Any], policy: Optional[RetryPolicy]) -> Any:
    if policy is None:
        return call()
    attempt = 1
    while True:
        try:
            return call()
        except Exception as exc:
            delay = _retry_delay(policy, attempt, exc)
            if delay is None:
                raise
            time.sleep(delay)
            attempt += 1


async def _acall_with_retry(call: Callable[[], Any], policy: Optional[RetryPolicy], is_async: bool) -> Any:
    attempt = 1
    while True:
        try:
            if is_async:
                return await call()
            loop = asyncio.get_running_loop()
            ctx = contextvars.copy_context()
            return await loop.run_in_executor(None, ctx.run, call)
        except Exception as exc:
            delay = None if policy is None else _retry_delay(policy, attempt, exc)
            if delay is None:
                raise
            await asyncio.sleep(delay)
            attempt += 1


def _retry_delay(policy: RetryPolicy, attempt: int, exc: Exception) -> Optional[float]:
    if not policy.should_retry(exc):
        return None
    return _core.retry_delay(
        attempt,
        random.random(),
        policy.initial_interval,
        policy.backoff_factor,
        policy.max_interval,
        policy.max_attempts,
        policy.jitter,
    )


class CompiledStateGraph:
    """A graph ready to run: `invoke`, `stream` and their async twins."""

    def __init__(self, builder: StateGraph, core: Any, *, name: str) -> None:
        self._builder = builder
        self._core = core
        self.name = name
        self._nodes: dict[str, NodeSpec] = dict(builder.nodes)
        output = builder.output_schema
        self._output_names = None if output is builder.schema else output.names
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None

    @property
    def builder(self) -> StateGraph:
        return self._builder

    def _input_update(self, input: Any) -> Optional[dict]:
        if input is None:
            return None
        if isinstance(input, dict):
            return input
        from ferrograph.graph.schema import object_fields

        return object_fields(input, START)

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="ferrograph"
            )
        return self._pool

    # ---- sync

    def _iter(self, input: Any, config: dict, modes: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
        step = _Step(self, input, config, modes)
        while step.tick():
            yield from step.started()
            if len(step.tasks) == 1:
                yield from self._run_one(step)
            else:
                yield from self._run_parallel(step)
            if step.error is not None:
                raise step.error
            yield from step.apply()

    def _run_one(self, step: _Step) -> Iterator[tuple[str, Any]]:
        try:
            result = _call_with_retry(step.call(0), step.policy(0))
        except Exception as exc:
            yield from step.failed(0, exc)
            return
        yield from step.complete(0, result)

    def _run_parallel(self, step: _Step) -> Iterator[tuple[str, Any]]:
        pool = self._executor()
        futures = {}
        for i in range(len(step.tasks)):
            ctx = contextvars.copy_context()
            futures[pool.submit(ctx.run, _call_with_retry, step.call(i), step.policy(i))] = i
        # Results are recorded as tasks finish (that is the order `updates` streams in); the
        # core applies them in a fixed order regardless. After a failure the remaining tasks
        # are waited for but not recorded.
        for future in concurrent.futures.as_completed(futures):
            if step.error is not None:
                continue
            i = futures[future]
            exc = future.exception()
            if exc is not None:
                yield from step.failed(i, exc)
            else:
                yield from step.complete(i, future.result())

    def stream(
        self,
        input: Any,
        config: Optional[dict] = None,
        *,
        stream_mode: Union[str, Sequence[str]] = "values",
        **_kwargs: Any,
    ) -> Iterator[Any]:
        """Run the graph, yielding chunks of the requested mode(s) as the run goes."""
        config = _check_config(config)
        modes, tagged = _check_modes(stream_mode)
        self._check_sync()
        for mode, chunk in self._iter(input, config, modes):
            yield (mode, chunk) if tagged else chunk

    def invoke(
        self,
        input: Any,
        config: Optional[dict] = None,
        *,
        stream_mode: Union[str, Sequence[str]] = "values",
        **_kwargs: Any,
    ) -> Any:
        """Run the graph to the end and return the final state (or, for another stream mode,
        the list of its chunks)."""
        config = _check_config(config)
        if stream_mode == "values":
            self._check_sync()
            last = None
            for _mode, chunk in self._iter(input, config, ("values",)):
                last = chunk
            return last
        return list(self.stream(input, config, stream_mode=stream_mode))

    def _check_sync(self) -> None:
        for spec in self._nodes.values():
            if spec.is_async:
                raise GraphValidationError(
                    f"Node '{spec.name}' is async: run the graph with ainvoke/astream"
                )

    # ---- async

    async def _aiter(self, input: Any, config: dict, modes: tuple[str, ...]) -> AsyncIterator[tuple[str, Any]]:
        step = _Step(self, input, config, modes)
        while step.tick():
            for chunk in step.started():
                yield chunk
            pending = {asyncio.ensure_future(self._acall(step, i)): i for i in range(len(step.tasks))}
            try:
                while pending and step.error is None:
                    done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for future in sorted(done, key=lambda f: pending[f]):
                        i = pending.pop(future)
                        if step.error is not None:
                            continue
                        exc = future.exception()
                        chunks = step.failed(i, exc) if exc is not None else await step.acomplete(i, future.result())
                        for chunk in chunks:
                            yield chunk
            finally:
                for future in pending:
                    future.cancel()
            if step.error is not None:
                raise step.error
            for chunk in step.apply():
                yield chunk

    async def _acall(self, step: _Step, i: int) -> Any:
        name = step.tasks[i][0]
        if name == START:
            return step.call(i)()
        spec = self._nodes[name]
        return await _acall_with_retry(step.call(i), step.policy(i), spec.is_async)

    async def astream(
        self,
        input: Any,
        config: Optional[dict] = None,
        *,
        stream_mode: Union[str, Sequence[str]] = "values",
        **_kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Async twin of `stream`: async nodes are awaited, sync nodes run on threads."""
        config = _check_config(config)
        modes, tagged = _check_modes(stream_mode)
        async for mode, chunk in self._aiter(input, config, modes):
            yield (mode, chunk) if tagged else chunk

    async def ainvoke(
        self,
        input: Any,
        config: Optional[dict] = None,
        *,
        stream_mode: Union[str, Sequence[str]] = "values",
        **_kwargs: Any,
    ) -> Any:
        """Async twin of `invoke`."""
        config = _check_config(config)
        if stream_mode == "values":
            last = None
            async for _mode, chunk in self._aiter(input, config, ("values",)):
                last = chunk
            return last
        return [chunk async for chunk in self.astream(input, config, stream_mode=stream_mode)]

    # ---- drawing

    def get_graph(self) -> Any:
        """The graph's shape, for drawing (`.draw_mermaid()`)."""
        from ferrograph.graph.draw import DrawableGraph

        return DrawableGraph.from_builder(self._builder)
