"""ferrograph's exceptions: one hierarchy under `FerrographError`.

Where LangGraph has a name for an error, ferrograph uses the same name, and where Python has a
matching built-in category the class derives from it too, so `except ValueError` or
`except RecursionError` keeps working for code written against LangGraph. A node's own
exception is never wrapped: it reaches the caller unchanged, with a note naming the node.
"""

from __future__ import annotations

__all__ = [
    "FerrographError",
    "GraphValidationError",
    "GraphDrained",
    "InvalidUpdateError",
    "GraphRecursionError",
    "SerializationError",
    "CorruptCheckpointError",
    "ConcurrentUpdateError",
    "SchemaVersionError",
    "GraphInterrupt",
    "EmptyInputError",
    "CheckpointerError",
    "ParentCommand",
    "AsyncNodeError",
    "is_invalid_resume",
]


class FerrographError(Exception):
    """Root of every error ferrograph raises itself."""


class GraphValidationError(FerrographError, ValueError):
    """The graph as declared cannot run: unknown node, no entry point, reserved or duplicated
    node name, bad edge."""


class InvalidUpdateError(FerrographError):
    """A step's writes cannot be applied: two parallel writes to a last-value key, or a node
    that returned something other than an update."""


class GraphRecursionError(FerrographError, RecursionError):
    """The run reached its `recursion_limit` without finishing."""


class SerializationError(FerrographError, TypeError):
    """A value cannot be written to a checkpoint (its type is not serializable)."""


class CorruptCheckpointError(FerrographError, ValueError):
    """A stored checkpoint cannot be read back."""


class ConcurrentUpdateError(FerrographError):
    """Two writers advanced the same thread from the same checkpoint."""


class SchemaVersionError(FerrographError):
    """A database's schema is older or newer than this version of ferrograph supports."""


class CheckpointerError(FerrographError, RuntimeError):
    """The graph's checkpointer setting does not allow the call: `checkpointer=True` (a
    subgraph's own history) on a graph run on its own."""


class GraphInterrupt(FerrographError):
    """Raised inside a node by `interrupt()` to pause the run; the loop catches it, saves the
    interrupt and returns. `interrupts` holds the `Interrupt` values."""

    def __init__(self, interrupts: tuple = ()) -> None:
        super().__init__(interrupts)
        self.interrupts = tuple(interrupts)


class ParentCommand(FerrographError):
    """Raised in a child run by a node returning `Command(graph=Command.PARENT, ...)`: it ends
    the child's run and reaches the parent's task that ran the child, whose result `command`
    becomes (its update and goto apply in the parent). `sender` is the child's run."""

    def __init__(self, command: object, sender: object = None) -> None:
        super().__init__(command)
        self.command = command
        self.sender = sender


class GraphDrained(FerrographError):
    """A run stopped between two steps because its `RunControl` asked it to drain; everything
    up to there is saved, and the thread resumes from it. `reason` is the drain's reason."""

    def __init__(self, reason: str = "shutdown") -> None:
        super().__init__(f"Graph drained: {reason}")
        self.reason = reason


class EmptyInputError(FerrographError, ValueError):
    """A run was asked to resume a thread that has nothing to resume."""


__all__ += [
    "InvalidConfigError",
    "InvalidCheckpointError",
    "CheckpointNotFoundError",
    "CheckpointStorageError",
    "ThreadDeletedError",
]


class AsyncNodeError(FerrographError, TypeError):
    """A sync run (`invoke`/`stream`) met an async node or branch: run it with
    `ainvoke`/`astream`. A TypeError, as LangGraph raises."""


class InvalidConfigError(FerrographError, ValueError):
    """A config cannot address checkpoints: `config['configurable']` is missing, or lacks a
    `thread_id`, or holds a value of the wrong type."""


class InvalidCheckpointError(FerrographError, ValueError):
    """A checkpoint handed to a saver is malformed (no id, a field of the wrong type, a channel
    version without a counter)."""


class CheckpointNotFoundError(FerrographError, LookupError):
    """A saver was asked to act on a thread or checkpoint it does not hold."""


class CheckpointStorageError(FerrographError):
    """A saver's storage failed (a poisoned lock, a lost connection)."""


class ThreadDeletedError(ConcurrentUpdateError):
    """A run wrote to a thread that was deleted or pruned while it ran: a checkpoint whose
    parent, or pending writes whose checkpoint, no longer exists. Refused, so that a deleted
    thread never comes back half-written."""


def is_invalid_resume(error: BaseException) -> bool:
    """Whether `error` (a pydantic ValidationError) was raised by `interrupt()` because the
    answer it was resumed with does not match its `response_schema`. The answer is not kept:
    the interrupt can be answered again."""
    from ferrograph.types import INVALID_RESUME

    return getattr(error, INVALID_RESUME, False) is True
