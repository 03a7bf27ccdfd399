"""The compiled graph: running it (`invoke`, `stream` and async twins) and looking back at
its threads (`get_state`, `get_state_history`, `update_state`).

The drivers here call the nodes — inline when a step has one task, on a thread pool (sync)
or as asyncio tasks (async) when it has several — and hand the saver calls the shared
`RunLoop` queues to a writer (`_writer.py`): inline with durability "sync" and "exit", in the
background (coalesced into batches) with "async", the default. A run waits for its writer
before it returns or raises.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import os
import queue
import time
from typing import TYPE_CHECKING, Any, AsyncGenerator, AsyncIterator, Iterator, Optional, Sequence, Union

from ferrograph import serde
from ferrograph.config import _CURRENT
from ferrograph.errors import AsyncNodeError, CheckpointerError, GraphValidationError
from ferrograph.graph import _subgraph
from ferrograph.graph._loop import ORDER_GRACE, RunLoop, SaverCall, acall_with_retry, call_with_retry, thread_of
from ferrograph.graph._messages import MessageSink
from ferrograph.graph._options import RunOptions, _node_list
from ferrograph.graph._subgraph import SubgraphNode
from ferrograph.graph._writer import MAX_PENDING_BYTES, MAX_PENDING_STEPS, AsyncWriter, Writer, asettle, settle, writes_inline
from ferrograph.graph.schema import ROOT
from ferrograph.graph.state import START, NodeSpec, StateGraph
from ferrograph.runtime import RunControl
from ferrograph.types import StateSnapshot

if TYPE_CHECKING:
    from ferrograph.graph.draw import Graph

__all__ = ["CompiledStateGraph"]

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


class CompiledStateGraph:
    """A graph ready to run: `invoke`, `stream` and their async twins; with a checkpointer,
    also `get_state`, `get_state_history` and `update_state` (and their async twins)."""

    def __init__(
        self,
        builder: StateGraph,
        core: Any,
        *,
        name: str,
        checkpointer: Any = None,
        persistence: Optional[bool] = None,
        cache: Any = None,
        interrupt_before: Sequence[str] = (),
        interrupt_after: Sequence[str] = (),
        store: Any = None,
        debug: bool = False,
        allowed_types: Sequence[type] = (),
        max_pending_bytes: Optional[int] = None,
        max_pending_steps: Optional[int] = None,
    ) -> None:
        #: The classes this graph's checkpoints may hold (its schemas' and `compile`'s).
        self.allowed_types = tuple(allowed_types)
        #: Those classes as an allowed set on the process-wide one.
        self.serializer = serde.Serializer(allowed=list(self.allowed_types))
        self._builder = builder
        self.cache = cache
        self._core = core
        self.name = name
        self.checkpointer = checkpointer
        #: `compile(checkpointer=True/False)` of a subgraph (see graph/_subgraph.py), else None.
        self.persistence = persistence
        self.store = store
        self.debug = debug
        #: What this graph's calls on its checkpointer use: its classes over the saver's own.
        self._codec = self.serializer_for(checkpointer)
        self.interrupt_before = tuple(interrupt_before)
        self.interrupt_after = tuple(interrupt_after)
        self._nodes: dict[str, NodeSpec] = dict(builder.nodes)
        #: The subgraphs by node: compiled graphs added as nodes or used by a node's function
        #: (see graph/_subgraph.py); they are what state methods and drawing reach into.
        self.subgraphs = _subgraph.find_subgraphs(self._nodes)
        #: Every key of the run (what `stream` shows and `output_keys` may name)...
        self.stream_channels = tuple(builder.channels)
        #: ...and what `invoke` returns by default: the output schema's keys.
        self.output_channels = tuple(k.name for k in builder.output_schema.keys)
        #: Whether the state is one value (`StateGraph(Annotated[list, add_messages])`).
        self.root = builder.schema.kind == "root"
        #: The keys a graph's input may write, when not every key.
        input_names = builder.input_schema.names
        self._input_names = None if input_names >= set(self.stream_channels) else input_names
        #: The state schema's keys, when the run has others too (keys only a node's input
        #: schema declares): a node reading the state itself gets those keys only.
        state_names = builder.schema.names
        self._state_names = None if state_names >= set(self.stream_channels) else state_names
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        #: The bounds of a run's background writer (see `StateGraph.compile`).
        self.max_pending_bytes = MAX_PENDING_BYTES if max_pending_bytes is None else max_pending_bytes
        self.max_pending_steps = MAX_PENDING_STEPS if max_pending_steps is None else max_pending_steps

    @property
    def builder(self) -> StateGraph:
        return self._builder

    def serializer_for(self, saver: Any) -> serde.Serializer:
        """The allowed set of this graph's calls on `saver`: the graph's classes on top of the
        saver's own serializer (a `MemorySaver`'s), or of the process-wide one."""
        own = getattr(saver, "serializer", None)
        return self.serializer.over(own if isinstance(own, serde.Serializer) else serde.default_serializer())

    def _input_update(self, input: Any) -> Optional[dict]:
        """The run's input as writes: only the input schema's keys are taken, as in LangGraph."""
        if input is None:
            return None
        if self.root:
            return {ROOT: input}
        if not isinstance(input, dict):
            from ferrograph.graph.schema import object_fields

            input = object_fields(input, START)
        names = self._input_names
        if names is not None:
            return {k: v for k, v in input.items() if k in names}
        return input

    def _coerce_context(self, context: Any) -> Any:
        """`context` as nodes see it: a dict becomes the graph's dataclass or pydantic
        `context_schema`, as LangGraph does; anything else is passed as it is."""
        schema = self._builder.context_schema
        if context is None or schema is None or not isinstance(context, dict):
            return context
        from ferrograph.graph.schema import Schema

        if Schema.is_class_schema(schema):
            return schema(**context)
        return context

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="ferrograph"
            )
        return self._pool

    def _loop(
        self,
        config: Optional[dict],
        options: Optional[RunOptions] = None,
        interrupt_before: Union[str, Sequence[str], None] = None,
        interrupt_after: Union[str, Sequence[str], None] = None,
        context: Any = None,
        control: Optional[RunControl] = None,
        *,
        nesting: Optional[_subgraph.Nesting] = None,
    ) -> RunLoop:
        if options is None:
            options = RunOptions.inspecting()
        else:
            # A run started inside a node is that node's child run (graph/_subgraph.py).
            nested = _subgraph.nesting(self, config) if _CURRENT.get() is not None else None
            if nested is not None:
                config, nesting = nested
                options.nest(nesting.forward, nesting.durability)
            elif self.persistence is True:
                raise CheckpointerError("checkpointer=True cannot be used for root graphs.")
            else:
                config = _subgraph.at_root(config)
        # As in LangGraph, an empty list per call falls back to the compiled ones.
        before = _node_list(interrupt_before) or self.interrupt_before
        after = _node_list(interrupt_after) or self.interrupt_after
        for name in (*before, *after):
            if name != "*" and name not in self._nodes:
                raise GraphValidationError(f"Cannot interrupt at unknown node '{name}'")
        if (before or after) and (self.checkpointer if nesting is None else nesting.saver) is None:
            raise GraphValidationError("interrupt_before/interrupt_after need a graph compiled with a checkpointer")
        if control is not None and not isinstance(control, RunControl):
            raise TypeError(f"control must be a RunControl, got {type(control).__name__}")
        return RunLoop(
            self,
            _check_config(config),
            options,
            interrupt_before=before,
            interrupt_after=after,
            context=context,
            control=control,
            nesting=nesting,
        )

    # ---- sync

    def _background(self, loop: RunLoop, *, sync: bool = True) -> bool:
        """Whether the run's saver calls go to a background writer: with durability "async",
        unless the saver's calls are better made inline (`writes_inline`)."""
        saver = loop.saver
        return saver is not None and loop.durability == "async" and not writes_inline(saver, sync=sync)

    def _load(self, loop: RunLoop, call: Optional[SaverCall] = None) -> Any:
        """The saved checkpoint the run starts from (or what `call` reads), once earlier runs'
        writes are in."""
        call = call or loop.load_call()
        if call is None:
            return None
        settle(loop.saver)
        with serde.using(loop.codec):
            if call.method == _subgraph.LOAD_BEFORE:
                return _subgraph.load_before(loop.saver, *call.args)
            result = getattr(loop.saver, call.method)(*call.args)
        if call.on_done is not None:
            call.on_done(result)
        return result

    def _iter(self, input: Any, loop: RunLoop) -> Iterator[tuple[str, Any]]:
        writer = Writer(loop.saver, self._background(loop), loop.codec, self.max_pending_bytes, self.max_pending_steps)
        try:
            yield from self._steps(input, loop, writer)
        except BaseException as exc:
            writer.close(exc)
            raise
        writer.close()

    def _steps(self, input: Any, loop: RunLoop, writer: Writer) -> Iterator[tuple[str, Any]]:
        saved = self._load(loop)
        if (latest := loop.latest_call()) is not None:
            self._load(loop, latest)
        chunks = loop.begin(saved, input)
        writer.submit(loop.take_outbox())
        yield from chunks
        while True:
            writer.check()
            if not loop.tick():
                break
            yield from loop.started()
            keys = loop.cache_lookup()
            if keys:
                with serde.using(loop.codec):
                    found = self.cache.get(keys)
                yield from loop.cached(found)
                writer.submit(loop.take_outbox())
            held: list = []
            if len(loop.to_run) == 1 and loop.messages is None:
                held = self._run_one(loop, loop.to_run[0])
                if not loop.after_step:
                    # A task's writes are queued before anyone sees its result.
                    writer.submit(loop.take_outbox())
                    yield from held
                    held = []
            elif loop.to_run:
                yield from self._run_parallel(loop, writer)
            if loop.cache is not None and (stored := loop.cache.take()):
                with serde.using(loop.codec):
                    self.cache.set(stored)
            if loop.error is not None:
                loop.failed_run()
                writer.submit(loop.take_outbox())
                yield from held
                raise loop.error
            try:
                chunks = loop.apply()
            finally:
                # The step's writes (those of a lone task whose chunks wait for the step) go
                # to the writer with the step's checkpoint, in one submit, before any of the
                # step's chunks is seen; when applying them fails, the writes still go.
                writer.submit(loop.take_outbox())
            yield from held
            yield from chunks
        chunks = loop.finish()
        writer.submit(loop.take_outbox())
        writer.wait()
        yield from chunks
        loop.check_stopped()

    def _run_one(self, loop: RunLoop, i: int) -> list[tuple[str, Any]]:
        """Runs task `i` alone and returns its chunks; its writes are left in the loop's outbox
        for the caller to queue before anyone sees them (`_steps`)."""
        try:
            result = call_with_retry(loop.call(i), loop.policy(i))
        except Exception as exc:
            return loop.failed(i, exc)
        return loop.complete(i, result)

    def _run_parallel(self, loop: RunLoop, writer: Writer) -> Iterator[tuple[str, Any]]:
        pool = self._executor()
        sink = loop.messages.sink if loop.messages is not None else None
        futures: dict[concurrent.futures.Future, int] = {}
        for i in loop.to_run:
            ctx = contextvars.copy_context()
            future = pool.submit(ctx.run, call_with_retry, loop.call(i), loop.policy(i))
            if sink is not None:
                future.add_done_callback(sink.wake)
            futures[future] = i
        # Results are recorded as tasks finish (that is the order `updates` streams in); the
        # core applies them in a fixed order regardless. After a failure the remaining tasks
        # are waited for and their writes still saved, as LangGraph's runner does (a resume
        # then re-runs only the failed tasks, whichever finished first), but nothing more is
        # streamed: the step is lost and its error is what the caller gets.
        for item in _as_finished(futures, sink):
            if not isinstance(item, concurrent.futures.Future):
                yield item  # a "messages" chunk of a node still running (or just finished)
                continue
            i = futures[item]
            exc = item.exception()
            streaming = loop.error is None
            chunks = loop.failed(i, exc) if exc is not None else loop.complete(i, item.result())
            writer.submit(loop.take_outbox())
            if streaming:
                yield from chunks

    def stream(
        self,
        input: Any,
        config: Optional[dict] = None,
        *,
        context: Any = None,
        stream_mode: Union[str, Sequence[str], None] = None,
        print_mode: Union[str, Sequence[str]] = (),
        output_keys: Union[str, Sequence[str], None] = None,
        interrupt_before: Union[str, Sequence[str], None] = None,
        interrupt_after: Union[str, Sequence[str], None] = None,
        durability: Optional[str] = None,
        control: Optional[RunControl] = None,
        subgraphs: bool = False,
        debug: Optional[bool] = None,
        version: str = "v1",
        checkpoint_during: Optional[bool] = None,
    ) -> Iterator[Any]:
        """Run the graph, yielding chunks of the requested mode(s) as the run goes ("updates"
        by default). The keywords are LangGraph's, with its meanings (see `RunOptions`)."""
        options = RunOptions.of(
            self, config, stream_mode, print_mode, output_keys, subgraphs, debug, version,
            durability, checkpoint_during,
        )
        loop = self._loop(config, options, interrupt_before, interrupt_after, context, control)
        self._check_sync()
        yield from options.shape(self._iter(input, loop))

    def invoke(
        self,
        input: Any,
        config: Optional[dict] = None,
        *,
        context: Any = None,
        stream_mode: Union[str, Sequence[str]] = "values",
        print_mode: Union[str, Sequence[str]] = (),
        output_keys: Union[str, Sequence[str], None] = None,
        interrupt_before: Union[str, Sequence[str], None] = None,
        interrupt_after: Union[str, Sequence[str], None] = None,
        durability: Optional[str] = None,
        control: Optional[RunControl] = None,
        debug: Optional[bool] = None,
        version: str = "v1",
        checkpoint_during: Optional[bool] = None,
    ) -> Any:
        """Run the graph to the end (or an interrupt) and return the final state; for another
        stream mode, the list of its chunks."""
        options = RunOptions.of(
            self, config, stream_mode, print_mode, output_keys, False, debug, version,
            durability, checkpoint_during, invoked=True,
        )
        loop = self._loop(config, options, interrupt_before, interrupt_after, context, control)
        self._check_sync()
        return options.result(options.shape(self._iter(input, loop)))

    def batch(
        self, inputs: Sequence[Any], config: Union[dict, Sequence[dict], None] = None, *, return_exceptions: bool = False, **options: Any
    ) -> list[Any]:
        """`invoke` on each input (LangChain's Runnable.batch): one config for all, or one per
        input; the runs go concurrently; with `return_exceptions` a run's error is its result."""
        configs = _batch_configs(config, len(inputs))

        def one(pair: tuple[Any, Optional[dict]]) -> Any:
            try:
                return self.invoke(pair[0], pair[1], **options)
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        if len(inputs) <= 1:
            return [one(pair) for pair in zip(inputs, configs)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(inputs), 8)) as pool:
            return list(pool.map(one, zip(inputs, configs)))

    def _check_sync(self) -> None:
        for spec in self._nodes.values():
            if spec.is_async:
                raise AsyncNodeError(
                    f"Node '{spec.name}' is async: run the graph with ainvoke/astream"
                )

    def _require_saver(self) -> None:
        if self.checkpointer is None:
            raise GraphValidationError("No checkpointer set: compile the graph with checkpointer=...")

    def _inspect(self, config: dict, *, for_update: bool = False) -> RunLoop:
        """A loop that reads or writes the checkpoints `config` names: this graph's, or a
        subgraph's (its `checkpoint_ns`), on this graph's saver."""
        self._require_saver()
        graph, nesting, config = _subgraph.resolve(self, config, for_update=for_update)
        return graph._loop(config, nesting=nesting)

    def get_state(self, config: dict, *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's state at `config`'s checkpoint (the latest when it names none). With
        `subgraphs=True`, a subgraph node's task holds the child's state (recursively)."""
        loop = self._inspect(config)
        snapshot = loop.snapshot(self._load(loop), live=_is_live(config), requested=config)
        if not subgraphs:
            return snapshot
        children = {t.id: self.get_state(t.state, subgraphs=True) for t in snapshot.tasks if isinstance(t.state, dict)}
        return _subgraph.with_children(snapshot, children)

    def get_state_history(
        self,
        config: dict,
        *,
        filter: Optional[dict] = None,
        before: Optional[dict] = None,
        limit: Optional[int] = None,
    ) -> Iterator[StateSnapshot]:
        """The thread's checkpoints, newest first, as snapshots (a subgraph's, for a config
        with its `checkpoint_ns`)."""
        loop = self._inspect(config)
        settle(loop.saver)
        with serde.using(loop.codec):
            listed = loop.saver.list(_listed(loop.config), filter=filter, before=before, limit=limit)
        for saved in serde.iterate(loop.codec, listed):
            yield loop.snapshot(saved, live=False)

    def update_state(self, config: dict, values: Any, as_node: Optional[str] = None) -> dict:
        """Write `values` into the thread as if node `as_node` had returned them, as a new
        checkpoint whose parent is `config`'s checkpoint (a fork when that is not the latest).
        Returns the new checkpoint's config."""
        loop = self._inspect(config, for_update=True)
        loop.update(self._load(loop), values, as_node)
        Writer(loop.saver, False, loop.codec).submit(loop.take_outbox())
        assert loop.parent_config is not None, "update() saved a checkpoint"
        return _subgraph.with_checkpoint_map(loop.parent_config, {"parents": loop.parents})

    # ---- async

    async def _aload(self, loop: RunLoop, call: Optional[SaverCall] = None) -> Any:
        call = call or loop.load_call()
        if call is None:
            return None
        await asettle(loop.saver)
        with serde.using(loop.codec):
            if call.method == _subgraph.LOAD_BEFORE:
                return await _subgraph.aload_before(loop.saver, *call.args)
            result = await getattr(loop.saver, "a" + call.method)(*call.args)
        if call.on_done is not None:
            call.on_done(result)
        return result

    async def _aiter(self, input: Any, loop: RunLoop) -> AsyncIterator[tuple[str, Any]]:
        writer = AsyncWriter(
            loop.saver,
            self._background(loop, sync=False),
            loop.codec,
            self.max_pending_bytes,
            self.max_pending_steps,
        )
        steps: AsyncGenerator[tuple[str, Any], None] = self._asteps(input, loop, writer)
        try:
            async for chunk in steps:
                yield chunk
        except BaseException as exc:
            await steps.aclose()  # its own cleanup first (pending tasks cancelled), as `yield from` would
            await writer.close(exc)
            raise
        await writer.close()

    async def _asteps(self, input: Any, loop: RunLoop, writer: AsyncWriter) -> AsyncGenerator[tuple[str, Any], None]:
        saved = await self._aload(loop)
        if (latest := loop.latest_call()) is not None:
            await self._aload(loop, latest)
        chunks = loop.begin(saved, input)
        await writer.submit(loop.take_outbox())
        for chunk in chunks:
            yield chunk
        while True:
            writer.check()
            if not loop.tick():
                break
            for chunk in loop.started():
                yield chunk
            keys = loop.cache_lookup()
            if keys:
                with serde.using(loop.codec):
                    found = await self.cache.aget(keys)
                for chunk in loop.cached(found):
                    yield chunk
                await writer.submit(loop.take_outbox())
            pending = {asyncio.ensure_future(self._acall(loop, i)): i for i in loop.to_run}
            held: Optional[list] = [] if len(pending) == 1 and loop.after_step else None
            sink = loop.messages.sink if loop.messages is not None else None
            arrived = sink.bind_loop() if sink is not None else None
            try:
                while pending and loop.error is None:
                    waiting: set[asyncio.Future] = set(pending)
                    waiter = None
                    if arrived is not None:
                        arrived.clear()
                        waiter = asyncio.ensure_future(arrived.wait())
                        waiting.add(waiter)
                    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    if waiter is not None:
                        waiter.cancel()
                    if sink is not None:
                        for chunk in sink.drain():  # a task's messages come before its update
                            yield chunk
                    order = sorted(pending, key=pending.__getitem__)
                    finished = [f for f in order if f.done()]
                    earlier = [f for f in order[: order.index(finished[-1])] if not f.done()] if finished else []
                    if earlier:  # see ORDER_GRACE
                        await asyncio.wait(earlier, timeout=ORDER_GRACE)
                        finished = [f for f in order if f.done()]
                    for future in finished:
                        i = pending.pop(future)
                        streaming = loop.error is None
                        exc = future.exception()
                        chunks = loop.failed(i, exc) if exc is not None else await loop.acomplete(i, future.result())
                        await writer.submit(loop.take_outbox())
                        if streaming and held is not None:
                            held.extend(chunks)
                        elif streaming:
                            for chunk in chunks:
                                yield chunk
                # After a failure the tasks still running are cancelled (see `cancelled`).
                for future, i in sorted(pending.items(), key=lambda item: item[1]):
                    future.cancel()
                    loop.cancelled(i)
                pending = {}
                await writer.submit(loop.take_outbox())
            finally:
                for future in pending:
                    future.cancel()
            if loop.cache is not None and (stored := loop.cache.take()):
                with serde.using(loop.codec):
                    await self.cache.aset(stored)
            if loop.error is not None:
                loop.failed_run()
            await writer.submit(loop.take_outbox())
            if loop.error is not None:
                for chunk in held or ():
                    yield chunk
                raise loop.error
            chunks = loop.apply()
            await writer.submit(loop.take_outbox())
            for chunk in [*(held or ()), *chunks]:
                yield chunk
        chunks = loop.finish()
        await writer.submit(loop.take_outbox())
        await writer.wait()
        for chunk in chunks:
            yield chunk
        loop.check_stopped()

    async def _acall(self, loop: RunLoop, i: int) -> Any:
        name = loop.tasks[i][0]
        if name == START:
            return loop.call(i)()
        spec = self._nodes[name]
        if type(spec.fn) is SubgraphNode:  # the child runs as an async run too
            return await acall_with_retry(loop.call(i, asynchronous=True), loop.policy(i), True)
        return await acall_with_retry(loop.call(i), loop.policy(i), spec.is_async)

    async def astream(
        self,
        input: Any,
        config: Optional[dict] = None,
        *,
        context: Any = None,
        stream_mode: Union[str, Sequence[str], None] = None,
        print_mode: Union[str, Sequence[str]] = (),
        output_keys: Union[str, Sequence[str], None] = None,
        interrupt_before: Union[str, Sequence[str], None] = None,
        interrupt_after: Union[str, Sequence[str], None] = None,
        durability: Optional[str] = None,
        control: Optional[RunControl] = None,
        subgraphs: bool = False,
        debug: Optional[bool] = None,
        version: str = "v1",
        checkpoint_during: Optional[bool] = None,
    ) -> AsyncIterator[Any]:
        """Async twin of `stream`: async nodes are awaited, sync nodes run on threads, and
        the checkpointer's async methods are used."""
        options = RunOptions.of(
            self, config, stream_mode, print_mode, output_keys, subgraphs, debug, version,
            durability, checkpoint_during,
        )
        loop = self._loop(config, options, interrupt_before, interrupt_after, context, control)
        async for item in self._aiter(input, loop):
            for shaped in options.shape((item,)):
                yield shaped

    async def ainvoke(
        self,
        input: Any,
        config: Optional[dict] = None,
        *,
        context: Any = None,
        stream_mode: Union[str, Sequence[str]] = "values",
        print_mode: Union[str, Sequence[str]] = (),
        output_keys: Union[str, Sequence[str], None] = None,
        interrupt_before: Union[str, Sequence[str], None] = None,
        interrupt_after: Union[str, Sequence[str], None] = None,
        durability: Optional[str] = None,
        control: Optional[RunControl] = None,
        debug: Optional[bool] = None,
        version: str = "v1",
        checkpoint_during: Optional[bool] = None,
    ) -> Any:
        """Async twin of `invoke`."""
        options = RunOptions.of(
            self, config, stream_mode, print_mode, output_keys, False, debug, version,
            durability, checkpoint_during, invoked=True,
        )
        loop = self._loop(config, options, interrupt_before, interrupt_after, context, control)
        chunks: list[Any] = []
        async for item in self._aiter(input, loop):
            chunks.extend(options.shape((item,)))
        return options.result(chunks)

    async def abatch(
        self, inputs: Sequence[Any], config: Union[dict, Sequence[dict], None] = None, *, return_exceptions: bool = False, **options: Any
    ) -> list[Any]:
        """Async twin of `batch`."""
        runs = [self.ainvoke(i, c, **options) for i, c in zip(inputs, _batch_configs(config, len(inputs)))]
        return list(await asyncio.gather(*runs, return_exceptions=return_exceptions))

    async def aget_state(self, config: dict, *, subgraphs: bool = False) -> StateSnapshot:
        """Async twin of `get_state`."""
        loop = self._inspect(config)
        snapshot = loop.snapshot(await self._aload(loop), live=_is_live(config), requested=config)
        if not subgraphs:
            return snapshot
        children = {t.id: await self.aget_state(t.state, subgraphs=True) for t in snapshot.tasks if isinstance(t.state, dict)}
        return _subgraph.with_children(snapshot, children)

    async def aget_state_history(
        self,
        config: dict,
        *,
        filter: Optional[dict] = None,
        before: Optional[dict] = None,
        limit: Optional[int] = None,
    ) -> AsyncIterator[StateSnapshot]:
        """Async twin of `get_state_history`."""
        loop = self._inspect(config)
        await asettle(loop.saver)
        with serde.using(loop.codec):
            listed = loop.saver.alist(_listed(loop.config), filter=filter, before=before, limit=limit)
        async for saved in serde.aiterate(loop.codec, listed):
            yield loop.snapshot(saved, live=False)

    async def aupdate_state(self, config: dict, values: Any, as_node: Optional[str] = None) -> dict:
        """Async twin of `update_state`."""
        loop = self._inspect(config, for_update=True)
        loop.update(await self._aload(loop), values, as_node)
        await AsyncWriter(loop.saver, False, loop.codec).submit(loop.take_outbox())
        assert loop.parent_config is not None, "update() saved a checkpoint"
        return _subgraph.with_checkpoint_map(loop.parent_config, {"parents": loop.parents})

    def get_subgraphs(self, *, namespace: Optional[str] = None, recurse: bool = False) -> Iterator[tuple[str, "CompiledStateGraph"]]:
        """The subgraphs, as (namespace, graph): those of this graph's nodes (only the one
        named `namespace`, a node name, or a path of them joined by `|`); with `recurse`, also
        theirs, under `node|child` namespaces."""
        first, _, rest = (namespace or "").partition(_subgraph.NS_SEP)
        for name, child in self.subgraphs.items():
            if namespace is not None and name != first:
                continue
            if not rest:
                yield name, child
            if recurse and (namespace is None or rest):
                for sub, graph in child.get_subgraphs(namespace=rest or None, recurse=True):
                    yield f"{name}{_subgraph.NS_SEP}{sub}", graph

    async def aget_subgraphs(self, *, namespace: Optional[str] = None, recurse: bool = False) -> AsyncIterator[tuple[str, "CompiledStateGraph"]]:
        """Async twin of `get_subgraphs`."""
        for item in self.get_subgraphs(namespace=namespace, recurse=recurse):
            yield item

    # ---- cache

    def _cache_namespaces(self, nodes: Optional[Sequence[str]]) -> tuple[Any, list[tuple[str, ...]]]:
        if self.cache is None:
            raise GraphValidationError("No cache is set for this graph. Cannot clear cache.")
        from ferrograph.graph._cache import cache_namespace

        return self.cache, [cache_namespace(n, self._nodes[n].fn) for n in (nodes or self._nodes) if n in self._nodes]

    def clear_cache(self, nodes: Optional[Sequence[str]] = None) -> None:
        """Forget the cached results of `nodes` (all nodes when None)."""
        cache, namespaces = self._cache_namespaces(nodes)
        cache.clear(namespaces)

    async def aclear_cache(self, nodes: Optional[Sequence[str]] = None) -> None:
        """Async twin of `clear_cache`."""
        cache, namespaces = self._cache_namespaces(nodes)
        await cache.aclear(namespaces)

    # ---- drawing

    def get_graph(self, config: Optional[dict] = None, *, xray: Union[int, bool] = False) -> "Graph":
        """The graph's nodes and edges as LangGraph draws them (`.draw_mermaid()`,
        `.draw_ascii()`). `xray` draws subgraph nodes as their graphs: True all the way
        down, a number that many levels."""
        from ferrograph.graph.draw import build

        return build(self, xray)

    async def aget_graph(self, config: Optional[dict] = None, *, xray: Union[int, bool] = False) -> "Graph":
        """Async twin of `get_graph`."""
        return self.get_graph(config, xray=xray)


def _as_finished(
    futures: dict[concurrent.futures.Future, int], sink: Optional[MessageSink]
) -> Iterator[Union[concurrent.futures.Future, tuple[str, Any]]]:
    """The futures as they finish, those finishing within `ORDER_GRACE` of each other in task
    order; with a sink (a run streaming "messages"), also the chunks the running nodes
    produce, each task's before the task itself."""
    if sink is not None:
        yield from _as_finished_with_messages(futures, sink)
        return
    arrivals: queue.SimpleQueue = queue.SimpleQueue()
    for future in futures:
        future.add_done_callback(arrivals.put)
    pending = set(futures)
    while pending:
        ready = [arrivals.get()]
        deadline = time.monotonic() + ORDER_GRACE
        while True:
            with contextlib.suppress(queue.Empty):
                while True:
                    ready.append(arrivals.get_nowait())
            latest = max(futures[f] for f in ready)
            if not any(futures[f] < latest for f in pending.difference(ready)):
                break
            left = deadline - time.monotonic()
            try:
                ready.append(arrivals.get(timeout=left) if left > 0 else arrivals.get_nowait())
            except queue.Empty:
                break
        ready.sort(key=futures.__getitem__)
        pending.difference_update(ready)
        yield from ready


def _as_finished_with_messages(
    futures: dict[concurrent.futures.Future, int], sink: MessageSink
) -> Iterator[Union[concurrent.futures.Future, tuple[str, Any]]]:
    pending = sorted(futures, key=futures.__getitem__)
    while pending:
        sink.event.clear()
        done = [f for f in pending if f.done()]
        yield from sink.drain()
        if not done:
            sink.event.wait()
            continue
        earlier = [f for f in pending[: pending.index(done[-1])] if not f.done()]
        if earlier:
            concurrent.futures.wait(earlier, timeout=ORDER_GRACE)
            done = [f for f in pending if f.done()]
        for future in done:
            pending.remove(future)
        yield from done


def _listed(config: dict) -> dict:
    """What a history lists: the thread's checkpoints in the config's namespace, or only the
    one it names (the saver's `list` narrows to a given checkpoint id, as in LangGraph)."""
    configurable = thread_of(config)
    checkpoint_id = (config.get("configurable") or {}).get("checkpoint_id")
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def _batch_configs(config: Union[dict, Sequence[dict], None], n: int) -> list[Optional[dict]]:
    if config is None or isinstance(config, dict):
        return [config] * n
    configs: list[Optional[dict]] = list(config)
    if len(configs) != n:
        raise ValueError(f"batch got {n} inputs and {len(configs)} configs; pass one config or one per input")
    return configs


def _is_live(config: dict) -> bool:
    """A config without a checkpoint id asks for the thread as it stands now."""
    return not ((config or {}).get("configurable") or {}).get("checkpoint_id")
