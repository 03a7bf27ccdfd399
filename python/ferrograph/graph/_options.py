"""The keywords of `invoke`/`stream` and their async twins, checked once per run: which stream
modes the run produces, which it prints, how each chunk is shaped for the caller, and what
`invoke` returns. LangGraph's keywords with LangGraph's meanings; an unknown keyword is a
TypeError from Python itself (the methods take no `**kwargs`)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Sequence, Union

from ferrograph.checkpointers.base import INTERRUPT
from ferrograph.errors import GraphValidationError
from ferrograph.graph.schema import ROOT

if TYPE_CHECKING:
    from ferrograph.graph._subgraph import Forward
    from ferrograph.graph.pregel import CompiledStateGraph

__all__ = ["RunOptions", "STREAM_MODES"]

#: Every stream mode a run can produce.
STREAM_MODES = ("values", "updates", "debug", "messages", "custom", "checkpoints", "tasks")
_DURABILITIES = ("sync", "async", "exit")


def _node_list(nodes: Union[str, Sequence[str], None]) -> tuple[str, ...]:
    """interrupt_before/after as given: "*" (every node), a list of names, or nothing."""
    if nodes is None:
        return ()
    if isinstance(nodes, str):
        return (nodes,)
    return tuple(nodes)


def _mode_list(value: Union[str, Sequence[str]], what: str) -> tuple[str, ...]:
    modes = (value,) if isinstance(value, str) else tuple(value)
    for mode in modes:
        if mode not in STREAM_MODES:
            raise GraphValidationError(f"Unknown {what} {mode!r}; expected one of {STREAM_MODES}")
    return modes


def _class_of(schema: Any) -> Optional[type]:
    """The class "v2" chunks build state values as: a pydantic model or a dataclass."""
    return schema.cls if schema.kind in ("pydantic", "dataclass") else None


class RunOptions:
    """How one run streams: the modes it produces (asked for or printed), the caller's shape of
    a chunk, the output keys and the durability."""

    __slots__ = (
        "stream_mode", "requested", "modes", "printed", "tagged", "subgraphs", "output_keys", "durability",
        "version", "output_class", "state_class", "forward",
    )

    def __init__(
        self,
        stream_mode: Union[str, Sequence[str]],
        printed: tuple[str, ...],
        subgraphs: bool,
        output_keys: Union[str, tuple[str, ...], None],
        durability: str,
        version: str = "v1",
        output_class: Optional[type] = None,
        state_class: Optional[type] = None,
    ) -> None:
        self.stream_mode = stream_mode
        self.requested = _mode_list(stream_mode, "stream_mode")
        self.printed = printed
        # invoke() needs "values" for its result even when it only prints the others.
        self.modes = tuple(dict.fromkeys((*self.requested, *printed)))
        self.tagged = not isinstance(stream_mode, str)
        self.subgraphs = subgraphs
        #: None: every state key of the output schema; a str: that key's value alone.
        self.output_keys = output_keys
        self.durability = durability
        #: "v2": every chunk is a dict {"type", "ns", "data"} ("values" ones also carry
        #: "interrupts"), state values built as the output (or state) schema's class when it
        #: is a pydantic model or dataclass, and invoke returns a `GraphOutput`.
        self.version = version
        self.output_class = output_class
        self.state_class = state_class
        #: Of a child run whose chunks a parent streams (graph/_subgraph.py).
        self.forward: Optional["Forward"] = None

    @classmethod
    def of(
        cls,
        graph: "CompiledStateGraph",
        config: Optional[dict],
        stream_mode: Union[str, Sequence[str], None],
        print_mode: Union[str, Sequence[str]],
        output_keys: Union[str, Sequence[str], None],
        subgraphs: bool,
        debug: Optional[bool],
        version: str,
        durability: Optional[str],
        checkpoint_during: Optional[bool],
        *,
        invoked: bool = False,
    ) -> "RunOptions":
        if version not in ("v1", "v2"):
            raise GraphValidationError(f"version must be 'v1' or 'v2', got {version!r}")
        if checkpoint_during is not None:
            warnings.warn(
                "`checkpoint_during` is deprecated, as in LangGraph: use `durability` instead",
                DeprecationWarning,
                stacklevel=3,
            )
            if durability is not None:
                raise GraphValidationError("Pass either `checkpoint_during` or `durability`, not both")
            durability = "async" if checkpoint_during else "exit"
        durability = durability or "async"
        if durability not in _DURABILITIES:
            raise GraphValidationError(f"durability must be 'sync', 'async' or 'exit', got {durability!r}")
        if stream_mode is None:
            stream_mode = "updates"  # a compiled StateGraph's default, as in LangGraph
        printed = _mode_list(print_mode, "print_mode")
        if debug or (debug is None and graph.debug):
            printed = ("updates", "values")
        if output_keys is None and graph.root:
            output_keys = ROOT  # a state of one value shows that value, not a dict
        elif output_keys is None and invoked and set(graph.output_channels) != set(graph.stream_channels):
            # invoke returns the output schema's keys; stream shows every key.
            output_keys = graph.output_channels
        elif output_keys is not None:
            known = graph.stream_channels
            for key in (output_keys,) if isinstance(output_keys, str) else output_keys:
                if key not in known:
                    raise GraphValidationError(f"output_keys names {key!r}, which is not a state key")
            output_keys = output_keys if isinstance(output_keys, str) else tuple(output_keys)
        builder = graph._builder
        return cls(
            stream_mode, printed, bool(subgraphs), output_keys, durability, version,
            _class_of(builder.output_schema) if not graph.root else None,
            _class_of(builder.schema) if not graph.root else None,
        )

    @classmethod
    def inspecting(cls) -> "RunOptions":
        """Options of a loop that only reads or writes checkpoints (get_state, update_state)."""
        return cls((), (), False, None, "async")

    def nest(self, forward: Optional["Forward"], durability: str) -> None:
        """Make this a child run's options: it runs with its parent's durability, and when the
        parent streams its children, it also produces the parent's modes and hands them up
        (see graph/_subgraph.py)."""
        self.durability = durability
        if forward is not None:
            self.forward = forward
            self.modes = tuple(dict.fromkeys((*self.modes, *forward.modes)))

    def shape(self, chunks: Iterable[tuple]) -> Iterator[Any]:
        """The run's (mode, chunk) pairs as the caller asked for them, printing the printed
        modes on the way (LangGraph's `[mode] repr` lines). A (mode, chunk, namespace) triple
        comes from a child run: it is shown only with `subgraphs=True`."""
        forward = self.forward
        if forward is None and not self.subgraphs and "messages" not in self.modes and self.version != "v2":
            # No child run hands chunks to this one: only the run's own.
            for mode, chunk in chunks:
                if mode in self.printed:
                    print(f"\033[1m[{mode}]\033[0m {chunk!r}")
                if mode in self.requested:
                    yield (mode, chunk) if self.tagged else chunk
            return
        for item in chunks:
            mode, chunk = item[0], item[1]
            if forward is not None and mode in forward.modes:
                forward.put(item)
            ns = ()
            if len(item) == 3:
                if not self.subgraphs:
                    continue
                ns = item[2]
            elif mode in self.printed:
                print(f"\033[1m[{mode}]\033[0m {chunk!r}")
            if mode not in self.requested:
                continue
            if self.version == "v2":
                yield self._part(mode, chunk, ns)
            elif not self.subgraphs:
                yield (mode, chunk) if self.tagged else chunk
            else:
                yield (ns, mode, chunk) if self.tagged else (ns, chunk)

    def _part(self, mode: str, chunk: Any, ns: tuple = ()) -> dict:
        """A chunk in the "v2" format (LangGraph's StreamPart)."""
        if mode == "values":
            interrupts: tuple = ()
            if isinstance(chunk, dict):
                chunk = dict(chunk)
                interrupts = tuple(chunk.pop(INTERRUPT, ()))
                if self.output_class is not None and not ns:  # a child's values are its own
                    chunk = self.output_class(**chunk)
            return {"type": mode, "ns": ns, "data": chunk, "interrupts": interrupts}
        if mode in ("checkpoints", "debug") and self.state_class is not None:
            inner = chunk.get("payload") if mode == "debug" and chunk.get("type") == "checkpoint" else chunk
            if mode == "checkpoints" or inner is not chunk:
                values = inner.get("values")
                if isinstance(values, dict) and "__start__" not in inner.get("next", ()):
                    inner["values"] = self.state_class(**values)
        return {"type": mode, "ns": ns, "data": chunk}

    def result(self, chunks: Iterable[Any]) -> Any:
        """What invoke returns: the last "values" chunk (with its interrupts as a list), or for
        other modes the list of chunks; with version "v2", a `GraphOutput` for "values"."""
        if self.stream_mode != "values":
            return list(chunks)
        if self.version == "v2":
            from ferrograph.types import GraphOutput

            value, interrupts = None, []
            for part in chunks:
                value = part["data"]
                interrupts.extend(part["interrupts"])
            return GraphOutput(value=value, interrupts=tuple(interrupts))
        last, interrupts = None, []
        for chunk in chunks:
            last = chunk
            if isinstance(chunk, dict) and INTERRUPT in chunk:
                interrupts.extend(chunk[INTERRUPT])  # one chunk per paused task
        if interrupts:
            return {**last, INTERRUPT: interrupts} if isinstance(last, dict) else {INTERRUPT: interrupts}
        return last
