"""What a node can learn about the run it is part of, as LangGraph's `langgraph.runtime`:
`Runtime` (the run's context, store, stream writer, previous return value, the task's
execution info), `get_runtime()` inside a node, and `RunControl` to stop a run cleanly between
steps."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Generic, Optional, TypeVar

__all__ = ["Runtime", "ExecutionInfo", "RunControl", "get_runtime"]

ContextT = TypeVar("ContextT")


class RunControl:
    """Asks a running graph to stop at the next step boundary (`request_drain`), from any
    thread: the run saves where it got to and raises `GraphDrained`; resuming the thread goes on
    from there. One control per run."""

    __slots__ = ("_drain_reason",)

    def __init__(self) -> None:
        self._drain_reason: Optional[str] = None

    def request_drain(self, reason: str = "shutdown") -> None:
        # One attribute write: safe from another thread without a lock.
        self._drain_reason = reason

    @property
    def drain_requested(self) -> bool:
        return self._drain_reason is not None

    @property
    def drain_reason(self) -> Optional[str]:
        return self._drain_reason


@dataclasses.dataclass(frozen=True)
class ExecutionInfo:
    """Where the current node runs: its checkpoint, namespace, task and thread."""

    checkpoint_id: str
    checkpoint_ns: str
    task_id: str
    thread_id: Optional[str] = None
    run_id: Optional[str] = None
    node_attempt: int = 1
    node_first_attempt_time: Optional[float] = None


def _no_op_writer(_chunk: Any) -> None:
    """The stream writer of a run that does not stream "custom": what it is given is dropped."""


def _no_op_heartbeat() -> None:
    """Progress reports matter only to idle timeouts, which ferrograph's nodes do not have."""


@dataclasses.dataclass(frozen=True)
class Runtime(Generic[ContextT]):
    """Run-scoped things a node receives by declaring a `runtime` parameter (or reads with
    `get_runtime()`): `context` as passed to `invoke(..., context=...)`, the graph's `store`,
    `stream_writer` for `stream_mode="custom"`, and the task's `execution_info`."""

    context: ContextT = dataclasses.field(default=None)  # type: ignore[assignment]
    store: Any = None
    stream_writer: Callable[[Any], None] = _no_op_writer
    heartbeat: Callable[[], None] = _no_op_heartbeat
    previous: Any = None
    execution_info: Optional[ExecutionInfo] = None
    server_info: Any = None
    control: Optional[RunControl] = None

    def override(self, **overrides: Any) -> "Runtime[ContextT]":
        """A copy with the given fields replaced."""
        return dataclasses.replace(self, **overrides)

    def merge(self, other: "Runtime[ContextT]") -> "Runtime[ContextT]":
        """`other`'s fields where it sets them, this runtime's otherwise."""
        return Runtime(
            context=other.context or self.context,
            store=other.store or self.store,
            stream_writer=other.stream_writer if other.stream_writer is not _no_op_writer else self.stream_writer,
            heartbeat=other.heartbeat if other.heartbeat is not _no_op_heartbeat else self.heartbeat,
            previous=self.previous if other.previous is None else other.previous,
            execution_info=other.execution_info or self.execution_info,
            server_info=other.server_info or self.server_info,
            control=other.control or self.control,
        )

    @property
    def drain_requested(self) -> bool:
        return self.control.drain_requested if self.control is not None else False

    @property
    def drain_reason(self) -> Optional[str]:
        return self.control.drain_reason if self.control is not None else None


def get_runtime(context_schema: Optional[type] = None) -> Runtime[Any]:
    """The runtime of the node that is running (`context_schema` only types the result).
    Raises RuntimeError outside a node, as LangGraph does."""
    from ferrograph.config import _current_task

    return _current_task().runtime
