"""The value types a graph's nodes and edges exchange with the engine: `Send`, `Command`,
`RetryPolicy`, with LangGraph's names and shapes."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal, NamedTuple, Sequence, Union

__all__ = ["Send", "Command", "RetryPolicy", "StreamMode", "default_retry_on"]

StreamMode = Literal["values", "updates", "debug"]


class Send:
    """Run `node` once in the next step with `arg` as its whole input (map-reduce fan-out)."""

    __slots__ = ("node", "arg")

    def __init__(self, node: str, arg: Any) -> None:
        self.node = node
        self.arg = arg

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Send) and (self.node, self.arg) == (other.node, other.arg)

    def __hash__(self) -> int:
        return hash(self.node)

    def __repr__(self) -> str:
        return f"Send(node={self.node!r}, arg={self.arg!r})"


@dataclasses.dataclass
class Command:
    """Returned by a node to update the state and choose where the run goes next.

    `goto` is a node name, a `Send`, or a sequence of them; `resume` answers an interrupt.
    """

    graph: str | None = None
    update: Any = None
    resume: Any = None
    goto: Union[str, Send, Sequence[Union[str, Send]]] = ()

    PARENT = "__parent__"


def default_retry_on(exc: Exception) -> bool:
    """Retry what looks transient; never retry programming errors (bad values, missing keys,
    wrong types), which would fail the same way again."""
    if isinstance(exc, ConnectionError):
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return status >= 500
    return not isinstance(
        exc,
        (
            ValueError,
            TypeError,
            ArithmeticError,
            ImportError,
            LookupError,
            NameError,
            SyntaxError,
            RuntimeError,
            ReferenceError,
            StopIteration,
            StopAsyncIteration,
            OSError,
        ),
    )


class RetryPolicy(NamedTuple):
    """How a failing node is retried: exponential backoff from `initial_interval` seconds,
    multiplied by `backoff_factor`, capped at `max_interval`, `max_attempts` attempts in all."""

    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 128.0
    max_attempts: int = 3
    jitter: bool = True
    retry_on: Union[
        type[Exception], Sequence[type[Exception]], Callable[[Exception], bool]
    ] = default_retry_on

    def should_retry(self, exc: Exception) -> bool:
        retry_on = self.retry_on
        if isinstance(retry_on, type) and issubclass(retry_on, BaseException):
            return isinstance(exc, retry_on)
        if isinstance(retry_on, Sequence):
            return isinstance(exc, tuple(retry_on))
        return bool(retry_on(exc))
