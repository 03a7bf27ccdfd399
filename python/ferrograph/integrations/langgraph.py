"""Use a ferrograph saver as LangGraph's checkpointer.

    from langgraph.graph import StateGraph
    from ferrograph.checkpointers import MemorySaver
    from ferrograph.integrations.langgraph import as_langgraph_saver

    graph = StateGraph(State).add_node(...).compile(checkpointer=as_langgraph_saver(MemorySaver()))

LangGraph's `compile()` accepts only instances of its own `BaseCheckpointSaver`, so
`as_langgraph_saver` returns one that hands every call (sync and async) to the ferrograph saver.
It also allows the LangGraph types its engine stores in checkpoints (`Send`, `Interrupt`,
`Command`, ...) process-wide, and stores an exception written to `__error__` as its `repr`, as
LangGraph's own serializer does. LangGraph is imported only when this is called.

LangGraph's engine does not tell a saver which graph calls it, so classes of your own are
allowed with `as_langgraph_saver(saver, serializer=ferrograph.serde.Serializer(allowed=[...]))`
(made active around every call) or process-wide with `ferrograph.serde.allow`.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, AsyncIterator, ContextManager, Iterator, Optional, Sequence

from ferrograph import serde

__all__ = ["as_langgraph_saver"]

_NOTHING_TO_ACTIVATE = contextlib.nullcontext()

# The classes LangGraph's engine puts into channel values and pending writes.
_LANGGRAPH_TYPES = (
    ("langgraph.types", "Send"),
    ("langgraph.types", "Interrupt"),
    ("langgraph.types", "Command"),
    ("langgraph.types", "Overwrite"),
    ("langgraph.types", "TimeoutPolicy"),
    ("langgraph.checkpoint.serde.types", "_DeltaSnapshot"),
)


def as_langgraph_saver(saver: Any, *, serializer: Optional[serde.Serializer] = None) -> Any:
    """A `langgraph.checkpoint.base.BaseCheckpointSaver` that delegates to `saver` (any
    ferrograph saver, or any object with the saver protocol), with `serializer` (if given)
    active around every call. Calling it again on the result, with no serializer, returns the
    result unchanged."""
    if serializer is not None and not isinstance(serializer, serde.Serializer):
        raise TypeError(f"serializer must be a ferrograph.serde.Serializer, got {serializer!r}")
    cls = _wrapper_class()
    if isinstance(saver, cls):
        if serializer is None:
            return saver
        saver = saver.saver
    _allow_langgraph_types()
    return cls(saver, serializer)


def _import_langgraph() -> Any:
    try:
        import langgraph.checkpoint.base as base
    except ImportError as e:  # pragma: no cover - exercised only without langgraph installed
        raise ImportError(
            "ferrograph.integrations.langgraph needs LangGraph: pip install 'langgraph>=1.0' "
            "(it provides langgraph.checkpoint.base.BaseCheckpointSaver)"
        ) from e
    return base


@functools.cache
def _allow_langgraph_types() -> None:
    import importlib

    for module_name, name in _LANGGRAPH_TYPES:
        try:
            cls = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError):
            continue  # an older or newer LangGraph without this type
        serde.allow(cls)


def _writes(writes: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    # LangGraph writes the exception object itself to `__error__`; its serializer keeps the repr.
    return [(channel, repr(value) if isinstance(value, BaseException) else value) for channel, value in writes]


@functools.cache
def _wrapper_class() -> Any:
    base = _import_langgraph()
    LangGraphTuple = base.CheckpointTuple
    LangGraphSaver: Any = base.BaseCheckpointSaver  # imported at run time: mypy sees Any

    def lg_tuple(t: Any) -> Any:
        return None if t is None else LangGraphTuple(*t)

    class FerrographLangGraphSaver(LangGraphSaver):
        """LangGraph's saver interface over a ferrograph saver (`self.saver`), with
        `self.serializer` active around every call."""

        def __init__(self, saver: Any, serializer: Optional[serde.Serializer]) -> None:
            super().__init__()
            self.saver = saver
            self.serializer = serializer

        def __repr__(self) -> str:
            return f"as_langgraph_saver({self.saver!r})"

        def _active(self) -> ContextManager[None]:
            # Without a serializer of its own, a call costs no context manager of its own.
            return _NOTHING_TO_ACTIVATE if self.serializer is None else serde.using(self.serializer)

        def get_tuple(self, config: Any) -> Any:
            with self._active():
                return lg_tuple(self.saver.get_tuple(config))

        def list(
            self,
            config: Optional[Any],
            *,
            filter: Optional[dict[str, Any]] = None,
            before: Optional[Any] = None,
            limit: Optional[int] = None,
        ) -> Iterator[Any]:
            with self._active():
                listed = self.saver.list(config, filter=filter, before=before, limit=limit)
            for t in serde.iterate(self.serializer, iter(listed)):
                yield lg_tuple(t)

        def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
            with self._active():
                return self.saver.put(config, checkpoint, metadata, new_versions)

        def put_writes(self, config: Any, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "") -> None:
            with self._active():
                self.saver.put_writes(config, _writes(writes), task_id, task_path)

        def delete_thread(self, thread_id: str) -> None:
            self.saver.delete_thread(thread_id)

        def delete_for_runs(self, run_ids: Sequence[str]) -> None:
            self.saver.delete_for_runs(run_ids)

        def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
            self.saver.copy_thread(source_thread_id, target_thread_id)

        def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
            self.saver.prune(thread_ids, strategy=strategy)

        def get_next_version(self, current: Any, channel: Any = None) -> Any:
            return self.saver.get_next_version(current, channel)

        async def aget_tuple(self, config: Any) -> Any:
            with self._active():
                return lg_tuple(await self.saver.aget_tuple(config))

        async def alist(
            self,
            config: Optional[Any],
            *,
            filter: Optional[dict[str, Any]] = None,
            before: Optional[Any] = None,
            limit: Optional[int] = None,
        ) -> AsyncIterator[Any]:
            with self._active():
                listed = self.saver.alist(config, filter=filter, before=before, limit=limit)
            async for t in serde.aiterate(self.serializer, listed):
                yield lg_tuple(t)

        async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
            with self._active():
                return await self.saver.aput(config, checkpoint, metadata, new_versions)

        async def aput_writes(
            self, config: Any, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
        ) -> None:
            with self._active():
                await self.saver.aput_writes(config, _writes(writes), task_id, task_path)

        async def adelete_thread(self, thread_id: str) -> None:
            await self.saver.adelete_thread(thread_id)

        async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
            await self.saver.adelete_for_runs(run_ids)

        async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
            await self.saver.acopy_thread(source_thread_id, target_thread_id)

        async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
            await self.saver.aprune(thread_ids, strategy=strategy)

    return FerrographLangGraphSaver
