"""`StateGraph`, the builder: nodes, edges, conditional edges and sequences, checked as they are
added and compiled into the Rust core's channels."""

from __future__ import annotations

import inspect
import sys
import typing
from typing import TYPE_CHECKING, Any, Callable, Hashable, Optional, Sequence, Union, cast

from ferrograph import _core
from ferrograph.errors import GraphValidationError
from ferrograph.graph.schema import Schema, StateKey
from ferrograph.types import CachePolicy, Command, RetryPolicy, StreamWriter

if TYPE_CHECKING:
    from ferrograph.cache.base import BaseCache
    from ferrograph.graph.pregel import CompiledStateGraph

__all__ = ["StateGraph", "START", "END", "NodeSpec", "BranchSpec"]

START = "__start__"
END = "__end__"


class NodeSpec:
    """A node as added: its function, how to call it (which parameters the engine fills in),
    its retry policies and its input schema."""

    __slots__ = (
        "name",
        "fn",
        "is_async",
        "injects",
        "wants_runtime",
        "retry_policy",
        "input_schema",
        "ends",
        "metadata",
        "cache_policy",
        "defer",
    )

    def __init__(
        self,
        name: str,
        fn: Callable[..., Any],
        retry_policy: Sequence[RetryPolicy],
        input_schema: Optional[Schema],
        ends: Union[tuple[str, ...], dict[str, str]] = (),
        metadata: Optional[dict[str, Any]] = None,
        cache_policy: Optional[CachePolicy] = None,
        *,
        defer: bool = False,
    ) -> None:
        self.name = name
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)
        )
        #: Keyword parameters the engine passes by name (config, runtime, writer, store, previous).
        self.injects = _injected_parameters(fn)
        self.wants_runtime = "runtime" in self.injects
        #: Tried in order: the first whose `retry_on` matches a failure applies.
        self.retry_policy = tuple(retry_policy)
        self.input_schema = input_schema
        #: Where a `Command` it returns may go (names, or names to edge labels); only drawing
        #: reads it, as in LangGraph.
        self.ends = ends
        #: The caller's metadata of the node (drawn in its box).
        self.metadata = metadata
        #: How its results are cached, when the graph is compiled with a cache.
        self.cache_policy = cache_policy
        #: Runs only once nothing else is left to run.
        self.defer = defer


def _is_runnable(obj: Any) -> bool:
    """Whether `obj` is a LangChain Runnable (a chain, a RunnableLambda...): LangGraph takes
    those as nodes. Only checked when langchain-core is loaded, as only then can it be one."""
    runnables = sys.modules.get("langchain_core.runnables")
    return runnables is not None and isinstance(obj, runnables.Runnable)


class RunnableNode:
    """A LangChain Runnable as a node: invoked with the state and the run's config (so its
    callbacks, tags and configurable values reach it), as LangGraph runs one. Under
    `ainvoke`/`astream` it runs on a worker thread like any sync node."""

    __slots__ = ("runnable", "__name__")

    def __init__(self, runnable: Any) -> None:
        self.runnable = runnable
        self.__name__ = runnable.get_name()

    def __call__(self, state: Any, config: Any) -> Any:
        return self.runnable.invoke(state, config)


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


#: Parameters LangGraph fills by name, and what it lets them be annotated with besides nothing
#: (None: anything).
_INJECTABLE: dict[str, Optional[tuple[Any, ...]]] = {
    "config": None,
    "writer": (StreamWriter, "StreamWriter"),
    "store": ("BaseStore", "Optional[BaseStore]"),
    "previous": None,
    "runtime": None,
}


def _injected_parameters(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Which of LangGraph's injectable keyword parameters `fn` declares. A `writer` counts only
    unannotated or annotated `StreamWriter`, a `store` only unannotated or annotated with a
    store type, as LangGraph decides (otherwise the parameter is the caller's business)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return ()
    found = []
    for name, allowed in _INJECTABLE.items():
        p = params.get(name)
        if p is None or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        if allowed is not None and p.annotation is not p.empty and not _annotation_in(p.annotation, allowed):
            continue
        found.append(name)
    return tuple(found)


def _annotation_in(annotation: Any, allowed: tuple[Any, ...]) -> bool:
    if any(annotation == a for a in allowed):
        return True
    # A store class (LangGraph's BaseStore or a subclass), or Optional of one.
    names = {getattr(a, "__name__", None) for a in (annotation, *typing.get_args(annotation))}
    return "Store" in str(annotation) and bool(names & {"BaseStore", "InMemoryStore", "Optional"} or "Store" in "".join(filter(None, names)))


def _same_reducer(a: Callable[..., Any], b: Optional[Callable[..., Any]]) -> bool:
    """Whether two declarations of a key agree on its reducer. Lambdas cannot be told apart
    (each declaration makes a new one), so LangGraph takes any lambda as the same."""
    if b is None:
        return False
    if getattr(a, "__name__", None) == "<lambda>" or getattr(b, "__name__", None) == "<lambda>":
        return True
    return a is b


def _inferred_input_schema(fn: Callable[..., Any]) -> Optional[Schema]:
    """A node's input schema from the annotation of its first parameter, when that is a class
    with annotated fields (a TypedDict, dataclass or pydantic model), as LangGraph infers it."""
    if not (inspect.isfunction(fn) or inspect.ismethod(fn) or inspect.ismethod(getattr(fn, "__call__", None))):
        return None
    try:
        hints = typing.get_type_hints(getattr(fn, "__call__")) or typing.get_type_hints(fn)
        first = next(iter(inspect.signature(fn).parameters))
    except (NameError, TypeError, ValueError, StopIteration):
        return None
    hint = hints.get(first)
    if not isinstance(hint, type):
        return None
    try:
        if not typing.get_type_hints(hint):
            return None
    except (NameError, TypeError):
        return None
    return Schema(hint)


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
        #: Every key of the run: the state schema's, then those only the input, output or a
        #: node's input schema declares (private channels), as LangGraph gathers them.
        self.channels: dict[str, StateKey] = {}
        #: The type of `invoke(..., context=...)`, as nodes receive it in `runtime.context`.
        self.context_schema = context_schema
        self.input_schema = Schema(input_schema) if input_schema is not None else self.schema
        self.output_schema = Schema(output_schema) if output_schema is not None else self.schema
        for schema in (self.schema, self.input_schema, self.output_schema):
            self._add_schema(schema)
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: list[tuple[str, str]] = []
        self.joins: list[tuple[list[str], str]] = []
        self.branches: dict[str, list[BranchSpec]] = {}

    def add_node(
        self,
        node: Union[str, Callable[..., Any]],
        action: Optional[Callable[..., Any]] = None,
        *,
        defer: bool = False,
        metadata: Optional[dict[str, Any]] = None,
        input_schema: Any = None,
        retry_policy: Union[RetryPolicy, Sequence[RetryPolicy], None] = None,
        cache_policy: Optional[CachePolicy] = None,
        destinations: Union[dict[str, str], tuple[str, ...], None] = None,
    ) -> "StateGraph":
        """Add a node. `add_node(fn)` names it after the function. The keywords are
        LangGraph's: `defer` runs the node only when nothing else is left to run, `metadata` is
        kept with the node (and drawn), `input_schema` narrows what it reads (inferred from the
        annotation of its first parameter otherwise), `retry_policy` is one policy or several
        (the first whose `retry_on` matches applies), `cache_policy` caches its results when the
        graph is compiled with a cache, `destinations` (names, or names to edge labels) says
        where a `Command` it returns may go (without it a `Command[Literal[...]]` return
        annotation says so; only drawing reads them)."""
        from ferrograph.graph.pregel import CompiledStateGraph

        if action is None and isinstance(node, CompiledStateGraph):
            node, action = node.name, node
        if isinstance(action, CompiledStateGraph):
            from ferrograph.graph._subgraph import SubgraphNode

            # The parent's keys, as a live view: input schemas added later add keys too.
            action = SubgraphNode(action, self.channels)
        if action is None:
            if _is_runnable(node):
                action = cast(Callable[..., Any], node)
                node = cast(Any, action).get_name()
            elif not callable(node):
                raise GraphValidationError(f"Node '{node}' needs a function to run")
            else:
                action = node
                node = getattr(action, "__name__", None) or type(action).__name__
        if _is_runnable(action):
            action = RunnableNode(action)
        if not isinstance(node, str):
            raise GraphValidationError(f"A node name must be a string, got {node!r}")
        if not callable(action):
            raise GraphValidationError(f"Node '{node}' must be callable, got {action!r}")
        _core.check_node_name(node)
        if node in self.nodes:
            raise GraphValidationError(f"Node '{node}' already present")
        if retry_policy is None:
            policies: tuple[RetryPolicy, ...] = ()
        elif isinstance(retry_policy, RetryPolicy):
            policies = (retry_policy,)
        elif isinstance(retry_policy, (list, tuple)) and all(isinstance(p, RetryPolicy) for p in retry_policy):
            policies = tuple(retry_policy)
        else:
            raise GraphValidationError(f"retry_policy of node '{node}' must be a RetryPolicy or a sequence of them")
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
        schema = Schema(input_schema) if input_schema is not None else _inferred_input_schema(action)
        if schema is not None:
            self._add_schema(schema)
            if schema.cls is self.schema.cls:
                schema = None  # the state itself: nothing to narrow
        self.nodes[node] = NodeSpec(node, action, policies, schema, ends, metadata, cache_policy, defer=bool(defer))
        return self

    def _add_schema(self, schema: Schema) -> None:
        """Add the keys of `schema` that the run does not have yet. A key declared again keeps
        its first reducer; declaring it with another reducer is an error, as in LangGraph."""
        for key in schema.keys:
            known = self.channels.get(key.name)
            if known is None:
                self.channels[key.name] = key
            elif key.reducer is not None and not _same_reducer(key.reducer, known.reducer):
                raise GraphValidationError(f"Channel '{key.name}' already exists with a different type")

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
        store: Any = None,
        debug: bool = False,
        name: Optional[str] = None,
        allowed_types: Sequence[type] = (),
        max_pending_bytes: Optional[int] = None,
        max_pending_steps: Optional[int] = None,
    ) -> "CompiledStateGraph":
        """Check the graph and build it in the core. Raises GraphValidationError for unknown
        nodes, a missing entry point and the like. The graph's checkpoints may hold the classes
        its schemas name and `allowed_types` (see `ferrograph.serde`). `cache` keeps the results
        of nodes added with a `cache_policy`. `checkpointer` is a saver, or for a graph that
        runs as a subgraph None (the parent's saver, a fresh history in each parent task),
        True (the parent's saver, one history per thread) or False (no persistence). With
        durability "async", a run's background writer holds at most `max_pending_bytes`
        (estimated; 32 MiB unless given) of values and `max_pending_steps` (100) checkpoints
        not yet stored; past that the run waits for it."""
        for option, bound in (("max_pending_bytes", max_pending_bytes), ("max_pending_steps", max_pending_steps)):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int) or bound < 1):
                raise GraphValidationError(f"{option} must be a positive int, got {bound!r}")
        if isinstance(allowed_types, type) or not all(isinstance(t, type) for t in allowed_types):
            raise TypeError(f"allowed_types must be a list of classes, got {allowed_types!r}")
        if cache is not None and not all(callable(getattr(cache, m, None)) for m in ("get", "set", "clear")):
            raise GraphValidationError(f"cache must implement the cache protocol (get, set, clear), got {cache!r}")
        # True and False only mean something for a subgraph (see graph/_subgraph.py): True keeps
        # one history per thread, False persists nothing; as the saver, both are none.
        persistence = checkpointer if isinstance(checkpointer, bool) else None
        if checkpointer is not None and persistence is None:
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
            [(k.name, k.reducer, k.initial) for k in self.channels.values()],
            [(n, None) for n in self.nodes],
            list(self.edges),
            # A join into END waits for nothing that runs after it: LangGraph wires nothing for it.
            [(list(starts), end) for starts, end in self.joins if end != END],
            [(src, b.targets()) for src, branches in self.branches.items() for b in branches],
            [n for n, spec in self.nodes.items() if spec.defer],
        )
        from ferrograph.graph.pregel import CompiledStateGraph

        return CompiledStateGraph(
            self,
            core,
            name=name or "LangGraph",
            checkpointer=checkpointer,
            persistence=persistence,
            cache=cache,
            interrupt_before=tuple(interrupt_before or ()),
            interrupt_after=tuple(interrupt_after or ()),
            store=store,
            debug=debug,
            allowed_types=self._declared_classes(allowed_types),
            max_pending_bytes=max_pending_bytes,
            max_pending_steps=max_pending_steps,
        )

    def _declared_classes(self, extra: Sequence[type]) -> tuple[type, ...]:
        """The classes this graph's checkpoints may hold: those its schemas name, its
        subgraphs' (their values reach this graph's state), and `extra`."""
        from ferrograph.graph._subgraph import find_subgraphs
        from ferrograph.graph.schema import declared_classes

        schemas = [self.schema, self.input_schema, self.output_schema]
        schemas += [n.input_schema for n in self.nodes.values() if n.input_schema is not None]
        found = declared_classes(*(s.cls for s in schemas), self.context_schema)
        children = [t for child in find_subgraphs(self.nodes).values() for t in child.allowed_types]
        return tuple(dict.fromkeys([*found, *children, *extra]))
