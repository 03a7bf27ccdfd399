"""What a running node can reach without taking it as a parameter, as LangGraph's
`langgraph.config`: the run's config (`get_config`) and the custom stream's writer
(`get_stream_writer`)."""

from __future__ import annotations

import contextvars
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from ferrograph.graph._loop import RunLoop
    from ferrograph.runtime import Runtime
    from ferrograph.types import _Scratchpad

__all__ = ["get_config", "get_stream_writer", "get_store"]


class CurrentTask:
    """What the engine tells the node it is running: set around each call. The task's own
    runtime (with its execution info: which attempt this is) is built only when asked for."""

    __slots__ = ("config", "scratchpad", "attempt", "_first_attempt_time", "_runtime", "_loop", "_name", "_task_id")

    def __init__(self, loop: "RunLoop", name: str, task_id: str, scratchpad: "Optional[_Scratchpad]") -> None:
        self.config: dict = loop.config
        #: Interrupt bookkeeping, with a checkpointer only.
        self.scratchpad = scratchpad
        #: 1 on the first run of the node, 2 on its first retry...
        self.attempt = 0
        self._first_attempt_time = time.time()
        self._runtime: "Optional[Runtime[Any]]" = None
        self._loop = loop
        self._name = name
        self._task_id = task_id

    @property
    def runtime(self) -> "Runtime[Any]":
        runtime = self._runtime
        if runtime is None or (runtime.execution_info is not None and runtime.execution_info.node_attempt != self.attempt):
            runtime = self._runtime = self._loop.task_runtime(self._name, self._task_id, self.attempt, self._first_attempt_time)
        return runtime


_CURRENT: contextvars.ContextVar[Optional[CurrentTask]] = contextvars.ContextVar("ferrograph_task", default=None)


def _current_task() -> CurrentTask:
    task = _CURRENT.get()
    if task is None:
        raise RuntimeError("Called get_config outside of a runnable context")
    return task


def get_config() -> dict:
    """The config of the run the current node belongs to."""
    return _current_task().config


def get_stream_writer() -> Callable[[Any], None]:
    """The current node's writer to `stream_mode="custom"` (a no-op when the run does not
    stream that mode)."""
    return _current_task().runtime.stream_writer


def get_store() -> Any:
    """The store the graph was compiled with (None without one)."""
    return _current_task().runtime.store
