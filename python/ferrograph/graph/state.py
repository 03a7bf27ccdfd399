"""`StateGraph`, the builder: nodes, edges, conditional edges and sequences, checked as they are
added and compiled into the Rust core's channels."""

from __future__ import annotations

import inspect
import typing
from typing import TYPE_CHECKING, Any, Callable, Hashable, Optional, Sequence, Union

from ferrograph import _core
from ferrograph.errors import GraphValidationError
from ferrograph.graph.schema import Schema
from ferrograph.types import CachePolicy, Command, RetryPolicy

if TYPE_CHECKING:
    from ferrograph.cache.base import BaseCache
    from ferrograph.graph.pregel import CompiledStateGraph

__all__ = ["StateGraph", "START", "END", "NodeSpec", "BranchSpec"]

START = "__start__"
END = "__end__"


class NodeSpec:
    """A node as added: its function, how to call it, and its retry policy."""

    __slots__ = ("name", "fn", "is_async", "takes_config", "retry_policy", "input_schema", "ends", "metadata", "cache_policy")

    def __init__(
        self,
        name: str,
        fn: Callable[..., Any],
        retry_policy: Optional[RetryPolicy],
        input_schema: Optional[Schema],
        ends: Union[tuple[str, ...], dict[str, str]] = (),
        metadata: Optional[dict[str, Any]] = None,
        cache_policy: Optional[CachePolicy] = None,
    ) -> None:
        self.name = name
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)
        )
        self.takes_config = _accepts(fn, "config")
        self.retry_policy = retry_policy
        self.input_schema = input_schema
        #: Where a `Command` it returns may go (names, or names to edge labels); only drawing
        #: reads it, as in LangGraph.
        self.ends = ends
        #: The caller's metadata of the node (drawn in its box).
        self.metadata = metadata
        #: How its results are cached, when the graph is compiled with a cache.
        self.cache_policy = cache_policy


class BranchSpec:
    """A conditional edge: `path` reads the state and names where to go next."""

    __slots__ = ("path", "path_map", "is_async", "takes_config")

    def __init__(self, path: Callable[..., Any], path_map: Optional[dict[Hashable, str]]) -> None:
        self.path = path
        self.path_map = path_map
        self.is_async = inspect.iscoroutinefunction(path)
        self.takes_config = _accepts(path, "config")

    def ends(self) -> Optional[dict[Hashable, str]]:
        """Where this branch declares it may route to, by what `path` returns: its path_map,
        or its `Literal[...]` return annotation; None when it does not say."""
        if self.path_map is not None:
            return self.path_map
        hints = _return_hint(self.path)
        if hints is not None:
            return {name: name for name in hints}
        return None

    def targets(self) -> list[str]:
        """The nodes this branch declares it may route to (empty when it does not say)."""
        return list(dict.fromkeys((self.ends() or {}).values()))


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _command_destinations(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The node names of a `Command[Literal[...]]` return annotation (also inside a Union),
    read from functions and methods (and callable objects' `__call__`) as LangGraph reads them."""
    call = getattr(fn, "__call__", None)
    if not (inspect.isfunction(fn) or inspect.ismethod(fn) or inspect.ismethod(call)):
        return ()
    try:
        hints = typing.get_type_hints(call) or typing.get_type_hints(fn)
    except (NameError, TypeError):  # unresolvable annotations declare nothing
        return ()
    returned = hints.get("return")
    if typing.get_origin(returned) is Union:
        returned = next((a for a in typing.get_args(returned) if typing.get_origin(a) is Command), returned)
    if typing.get_origin(returned) is not Command:
        return ()
    (literal,) = typing.get_args(returned)
    if typing.get_origin(literal) is not typing.Literal:
        return ()
    return typing.get_args(literal)


def _return_hint(fn: Callable[..., Any]) -> Optional[list[str]]:
    """Targets named by a `Literal[...]` return annotation, if the path function has one."""
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable annotations just mean "unknown targets"
        return None
    if typing.get_origin(hint) is typing.Literal:
        return [str(a) for a in typing.get_args(hint)]
    return None


class StateGraph:
    """A graph whose nodes read and update a shared state described by `state_schema`."""

    def __init__(
        self,
        state_schema: Any,
        context_schema: Any = None,
        *,
        input_schema: Any = None,
        output_schema: Any = None,
    ) -> None:
        self.schema = Schema(state_schema)
        self.context_schema = context_schema
        self.input_schema = Schema(input_schema) if input_schema is not None else self.schema
        self.output_schema = Schema(output_schema) if output_schema is not None else self.schema
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: list[tuple[str, str]] = []
        self.joins: list[tuple[list[str], str]] = []
        self.branches: dict[str, list[BranchSpec]] = {}

    def add_node(
        self,
        node: Union[str, Callable[..., Any]],
        action: Optional[Callable[..., Any]] = None,
        *,
        retry_policy: Optional[RetryPolicy] = None,
        input_schema: Any = None,
        destinations: Union[dict[str, str], tuple[str, ...], None] = None,
        metadata: Optional[dict[str, Any]] = None,
        cache_policy: Optional[CachePolicy] = None,
        **_options: Any,
    ) -> "StateGraph":
        """Add a node. `add_node(fn)` names it after the function. `destinations` (names, or
        names to edge labels) says where a `Command` it returns may go; without it a
        `Command[Literal[...]]` return annotation says so. Only drawing reads them."""
        if action is None:
            if not callable(node):
                raise GraphValidationError(f"Node '{node}' needs a function to run")
            action = node
            node = getattr(action, "__name__", None) or type(action).__name__
        if not isinstance(node, str):
            raise GraphValidationError(f"A node name must be a string, got {node!r}")
        if not callable(action):
            raise GraphValidationError(f"Node '{node}' must be callable, got {action!r}")
        _core.check_node_name(node)
        if node in self.nodes:
            raise GraphValidationError(f"Node '{node}' already present")
        if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
            raise GraphValidationError(f"retry_policy of node '{node}' must be a RetryPolicy")
        schema = Schema(input_schema) if input_schema is not None else None
        if destinations is None:
            ends: Union[tuple[str, ...], dict[str, str]] = _command_destinations(action)
        elif isinstance(destinations, dict):
            ends = dict(destinations)
        elif isinstance(destinations, (tuple, list)):
            ends = tuple(destinations)
        else:
            raise GraphValidationError(
                f"destinations of node '{node}' must be a tuple of node names or a dict of names to labels, got {destinations!r}"
            )
        if metadata is not None and not isinstance(metadata, dict):
            raise GraphValidationError(f"metadata of node '{node}' must be a dict, got {metadata!r}")
        if cache_policy is not None and not isinstance(cache_policy, CachePolicy):
            raise GraphValidationError(f"cache_policy of node '{node}' must be a CachePolicy, got {cache_policy!r}")
        self.nodes[node] = NodeSpec(node, action, retry_policy, schema, ends, metadata, cache_policy)
        return self

    def add_edge(self, start_key: Union[str, Sequence[str]], end_key: str) -> "StateGraph":
        """Run `end_key` after `start_key`; with a list of starts, after all of them."""
        if isinstance(start_key, str):
            if start_key == END:
                raise GraphValidationError("END cannot be the start of an edge")
            if end_key == START:
                raise GraphValidationError("START cannot be the end of an edge")
            self.edges.append((start_key, end_key))
        else:
            starts = list(start_key)
            if not starts:
                raise GraphValidationError(f"An edge into '{end_key}' needs at least one start")
            if any(s == END for s in starts):
                raise GraphValidationError("END cannot be the start of an edge")
            self.joins.append((starts, end_key))
        return self

    def add_conditional_edges(
        self,
        source: str,
        path: Callable[..., Any],
        path_map: Union[dict[Hashable, str], Sequence[str], None] = None,
    ) -> "StateGraph":
        """After `source`, call `path(state)`; it returns a node name, END, a `Send`, or a list
        of them. With `path_map`, its return value is looked up there first."""
        if not callable(path):
            raise GraphValidationError(f"The path of a branch from '{source}' must be callable")
        if path_map is not None and not isinstance(path_map, dict):
            path_map = {name: name for name in path_map}
        self.branches.setdefault(source, []).append(BranchSpec(path, path_map))
        return self

    def add_sequence(
        self, nodes: Sequence[Union[Callable[..., Any], tuple[str, Callable[..., Any]]]]
    ) -> "StateGraph":
        """Add nodes that run one after another, in the order given."""
        if not nodes:
            raise GraphValidationError("A sequence needs at least one node")
        previous: Optional[str] = None
        for item in nodes:
            if isinstance(item, tuple):
                name, fn = item
            else:
                fn = item
                name = getattr(fn, "__name__", None) or type(fn).__name__
            self.add_node(name, fn)
            if previous is not None:
                self.add_edge(previous, name)
            previous = name
        return self

    def set_entry_point(self, key: str) -> "StateGraph":
        return self.add_edge(START, key)

    def set_conditional_entry_point(
        self, path: Callable[..., Any], path_map: Union[dict[Hashable, str], Sequence[str], None] = None
    ) -> "StateGraph":
        return self.add_conditional_edges(START, path, path_map)

    def set_finish_point(self, key: str) -> "StateGraph":
        return self.add_edge(key, END)

    def compile(
        self,
        checkpointer: Any = None,
        *,
        cache: Optional["BaseCache"] = None,
        interrupt_before: Any = None,
        interrupt_after: Any = None,
        debug: bool = False,
        name: Optional[str] = None,
        allowed_types: Sequence[type] = (),
    ) -> "CompiledStateGraph":
        """Check the graph and build it in the core. Raises GraphValidationError for unknown
        nodes, a missing entry point and the like. The graph's checkpoints may hold the classes
        its schemas name and `allowed_types` (see `ferrograph.serde`). `cache` keeps the results
        of nodes added with a `cache_policy`."""
        if isinstance(allowed_types, type) or not all(isinstance(t, type) for t in allowed_types):
            raise TypeError(f"allowed_types must be a list of classes, got {allowed_types!r}")
        if cache is not None and not all(callable(getattr(cache, m, None)) for m in ("get", "set", "clear")):
            raise GraphValidationError(f"cache must implement the cache protocol (get, set, clear), got {cache!r}")
        if checkpointer is not None and checkpointer is not False:
            from ferrograph.checkpointers.base import BaseCheckpointSaver

            if not isinstance(checkpointer, BaseCheckpointSaver) and not all(
                callable(getattr(checkpointer, m, None)) for m in ("get_tuple", "list", "put", "put_writes")
            ):
                raise GraphValidationError(
                    f"checkpointer must implement the saver protocol (get_tuple, list, put, put_writes), got {checkpointer!r}"
                )
        else:
            checkpointer = None
        for names, what in ((interrupt_before, "interrupt_before"), (interrupt_after, "interrupt_after")):
            for node in names or ():
                if node != "*" and node not in self.nodes:
                    raise GraphValidationError(f"{what} names unknown node '{node}'")
        for source in self.branches:
            if source != START and source not in self.nodes:
                raise GraphValidationError(f"Found a branch starting at unknown node '{source}'")
        for spec in self.nodes.values():
            for target in spec.ends:
                if target != END and target not in self.nodes:
                    raise GraphValidationError(f"Found edge ending at unknown node `{target}`")
        core = _core.CoreGraph(
            [(k.name, k.reducer, k.initial) for k in self.schema.keys],
            [(n, None) for n in self.nodes],
            list(self.edges),
            # A join into END waits for nothing that runs after it: LangGraph wires nothing for it.
            [(list(starts), end) for starts, end in self.joins if end != END],
            [(src, b.targets()) for src, branches in self.branches.items() for b in branches],
        )
        from ferrograph.graph.pregel import CompiledStateGraph

        return CompiledStateGraph(
            self,
            core,
            name=name or "LangGraph",
            checkpointer=checkpointer,
            cache=cache,
            interrupt_before=tuple(interrupt_before or ()),
            interrupt_after=tuple(interrupt_after or ()),
            allowed_types=self._declared_classes(allowed_types),
        )

    def _declared_classes(self, extra: Sequence[type]) -> tuple[type, ...]:
        """The classes this graph's checkpoints may hold: those its schemas name, and `extra`."""
        from ferrograph.graph.schema import declared_classes

        schemas = [self.schema, self.input_schema, self.output_schema]
        schemas += [n.input_schema for n in self.nodes.values() if n.input_schema is not None]
        found = declared_classes(*(s.cls for s in schemas), self.context_schema)
        return tuple(dict.fromkeys([*found, *extra]))
