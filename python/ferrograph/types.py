"""The value types a graph's nodes and edges exchange with the engine: `Send`, `Command`,
`RetryPolicy`, with LangGraph's names and shapes."""

from __future__ import annotations

import dataclasses
import pickle
import uuid
from collections.abc import Mapping
from typing import Any, Callable, ClassVar, Generic, Hashable, Literal, NamedTuple, Optional, Sequence, TypeVar, Union, cast

__all__ = [
    "Send",
    "Command",
    "RetryPolicy",
    "CachePolicy",
    "default_cache_key",
    "StreamMode",
    "StreamWriter",
    "Durability",
    "default_retry_on",
    "Interrupt",
    "interrupt",
    "StateSnapshot",
    "GraphOutput",
    "PregelTask",
]

StreamMode = Literal["values", "updates", "debug", "messages", "custom", "checkpoints", "tasks"]
#: What a node receives as its `writer` parameter (or from `get_stream_writer()`): call it with
#: anything to emit it on the "custom" stream.
StreamWriter = Callable[[Any], None]
Durability = Literal["sync", "async", "exit"]


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


try:
    # A tool that returns a Command hands it to the graph unchanged (LangChain's tools wrap
    # any other return value in a ToolMessage); without langchain_core there are no such tools.
    from langchain_core.messages.tool import ToolOutputMixin as _ToolOutput
except ImportError:  # pragma: no cover - exercised only without langchain_core

    class _ToolOutput:  # type: ignore[no-redef]
        """Stands in for langchain_core's marker of tool outputs that are not messages."""


#: The node names a `Command` may go to: `Command[Literal["a", "b"]]` as a node's return
#: annotation declares them (drawing shows them as edges).
N = TypeVar("N", bound=Hashable)


@dataclasses.dataclass
class Command(Generic[N], _ToolOutput):
    """Returned by a node to update the state and choose where the run goes next.

    `goto` is a node name, a `Send`, or a sequence of them; `resume` answers an interrupt.
    """

    graph: str | None = None
    update: Any = None
    resume: Any = None
    goto: Union[Send, Sequence[Union[Send, N]], N] = ()

    PARENT: ClassVar[Literal["__parent__"]] = "__parent__"

    def __repr__(self) -> str:
        # Only what was set, as LangGraph prints it.
        contents = ", ".join(f"{key}={value!r}" for key, value in dataclasses.asdict(self).items() if value)
        return f"Command({contents})"


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
        # A predicate (a class that is no exception counts as one: mypy narrows it to type[object]).
        predicate = cast("Callable[[Exception], bool]", retry_on)
        return bool(predicate(exc))


def _frozen(value: Any, depth: int = 10) -> Any:
    """`value` made hashable for keying: mappings as key-sorted pairs, sequences as tuples."""
    if depth <= 0 or isinstance(value, Hashable):
        return value
    if isinstance(value, Mapping):
        return tuple(sorted((k, _frozen(v, depth - 1)) for k, v in value.items()))
    if isinstance(value, Sequence):
        return tuple(_frozen(v, depth - 1) for v in value)
    return value


def default_cache_key(*args: Any, **kwargs: Any) -> bytes:
    """A node input's cache key: the pickled input (only hashed, never unpickled), with
    mappings in key order so equal inputs give equal keys, as LangGraph keys them."""
    return pickle.dumps((_frozen(args), _frozen(kwargs)), protocol=5, fix_imports=False)


@dataclasses.dataclass(frozen=True)
class CachePolicy:
    """How a node's results are cached (with `compile(cache=...)`): `key_func` turns the
    node's input into a key (str or bytes), `ttl` is how many seconds an entry lives
    (None: until the cache is cleared)."""

    key_func: Callable[..., Union[str, bytes]] = default_cache_key
    ttl: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class Interrupt:
    """A pause requested by `interrupt(value)` inside a node; `id` names it for resuming.
    `response_schema` is the JSON Schema the answer must match, when the node gave one."""

    value: Any
    id: str = ""
    response_schema: Optional[dict] = dataclasses.field(default=None, kw_only=True)


OutputT = TypeVar("OutputT")


@dataclasses.dataclass(frozen=True)
class GraphOutput(Generic[OutputT]):
    """What `invoke(..., version="v2")` returns: the final output (a dict, or an instance of a
    pydantic or dataclass output schema) and the interrupts the run stopped on."""

    value: OutputT
    interrupts: tuple = ()

    def __getitem__(self, key: str) -> Any:
        """Deprecated dict access, as in LangGraph: `result["__interrupt__"]` or a state key."""
        _warn_dict_access()
        if key == "__interrupt__":
            return self.interrupts
        if isinstance(self.value, dict):
            return self.value[key]
        try:
            return getattr(self.value, key)
        except AttributeError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        _warn_dict_access()
        if key == "__interrupt__":
            return bool(self.interrupts)
        if isinstance(self.value, dict):
            return key in self.value
        return isinstance(key, str) and hasattr(self.value, key)


def _warn_dict_access() -> None:
    import warnings

    warnings.warn(
        "Accessing GraphOutput via `result[key]` is deprecated. Use `result.value` to access the "
        "output value directly, or `result.interrupts` for interrupts.",
        DeprecationWarning,
        stacklevel=3,
    )


class PregelTask(NamedTuple):
    """A task due at a checkpoint: what ran (result), failed (error) or paused (interrupts)."""

    id: str
    name: str
    path: tuple
    error: Optional[Any] = None
    interrupts: tuple = ()
    state: Any = None
    result: Any = None


class StateSnapshot(NamedTuple):
    """A thread's state at one checkpoint, as `get_state` and `get_state_history` return it."""

    values: Any
    next: tuple
    config: dict
    metadata: Optional[dict]
    created_at: Optional[str]
    parent_config: Optional[dict]
    tasks: tuple
    interrupts: tuple = ()


class _Scratchpad:
    """Per-task interrupt bookkeeping: the resume values received so far, how many
    `interrupt()` calls the current attempt has made, and the run's unclaimed resume values
    (a `Command(resume=...)` that found no paused task), shared by its tasks."""

    __slots__ = ("task_id", "resume", "calls", "null_resume")

    def __init__(self, task_id: str, resume: list, null_resume: list) -> None:
        self.task_id = task_id
        self.resume = resume
        self.calls = 0
        self.null_resume = null_resume


def interrupt_id(task_id: str, index: int) -> str:
    """The id of a task's `index`-th interrupt: stable across attempts of the same task."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"ferrograph:{task_id}:{index}").hex


def interrupt(value: Any, *, response_schema: Any = None) -> Any:
    """Pause the run here and hand `value` to the caller; when the run is resumed with
    `Command(resume=answer)`, the node runs again and this call returns `answer`.

    `response_schema` (a pydantic model, TypedDict, dataclass or other type pydantic
    validates, or a JSON Schema dict) describes the answer: the interrupt carries it as JSON
    Schema, and a type validates the answer, which this call then returns as validated
    (pydantic's ValidationError if it does not match; the interrupt can be answered again)."""
    from ferrograph.config import _CURRENT

    task = _CURRENT.get()
    pad = None if task is None else task.scratchpad
    if pad is None:
        from ferrograph.errors import FerrographError

        raise FerrographError("interrupt() can only be called inside a node of a graph with a checkpointer")
    adapter = _response_adapter(response_schema)
    index = pad.calls
    pad.calls += 1
    if index < len(pad.resume):
        answer = pad.resume[index]
        if adapter is None:
            return answer
        try:
            return adapter.validate_python(answer)
        except Exception as exc:
            # Forgotten, so that the interrupt can be answered again (the task saves the
            # answers it has left when it fails; see errors.is_invalid_resume).
            del pad.resume[index:]
            setattr(exc, INVALID_RESUME, True)
            raise
    if pad.null_resume:
        answer = pad.null_resume[0]
        if adapter is None:
            validated = answer
        else:
            try:
                validated = adapter.validate_python(answer)
            except Exception as exc:
                setattr(exc, INVALID_RESUME, True)
                raise
        pad.resume.append(pad.null_resume.pop(0))
        return validated
    from ferrograph.errors import GraphInterrupt

    schema = response_schema if adapter is None else adapter.json_schema()
    raise GraphInterrupt((Interrupt(value=value, id=interrupt_id(pad.task_id, index), response_schema=schema),))


#: The attribute that marks an error of `interrupt()` rejecting an answer (`response_schema`).
INVALID_RESUME = "_ferrograph_invalid_resume"


def _response_adapter(response_schema: Any) -> Any:
    """A pydantic TypeAdapter for a type `response_schema`; None for none or a JSON Schema dict."""
    if response_schema is None or isinstance(response_schema, dict):
        return None
    try:
        from pydantic import TypeAdapter
    except ImportError:
        raise TypeError(
            "interrupt(response_schema=<a type>) validates answers with pydantic, which is not installed; "
            "install ferrograph[pydantic] or pass a JSON Schema dict"
        ) from None
    return TypeAdapter(response_schema)
