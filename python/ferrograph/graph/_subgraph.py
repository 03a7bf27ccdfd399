"""Subgraphs: a compiled graph run as a node (`add_node("child", compiled)`) or invoked from
inside a node (`inner.invoke(...)` in a node's body) is a child run of the task that runs it.

A child run finds its parent through the task the engine marks as current (`_CURRENT`), as
LangGraph finds it through the config it passes down; nothing needs passing by hand. From the
parent it takes, as LangGraph does:

- the checkpointer: the parent's, unless the child was compiled with `checkpointer=False`
  (no persistence at all); a child's own saver is not used under a parent;
- its namespace in the parent's thread: `node:task_id` under the parent's (`|`-separated),
  with `|1`, `|2`... for the second, third... call from the same task; a child compiled with
  `checkpointer=True` drops the task ids (`node`, `node|1`), so it keeps one history per
  thread across the parent's runs, where a default child starts afresh in each task;
- the parent's checkpoint ids by namespace (its checkpoints' `parents` metadata);
- the run's config (thread, recursion limit, configurable keys) and durability;
- with `stream(..., subgraphs=True)` somewhere above it, where its chunks go: each is handed
  up with its namespace, as `(namespace, chunk)` (or `(namespace, mode, chunk)`).

Runs that have no subgraph never reach this module beyond one context-variable read.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any, Optional, Sequence, overload

from ferrograph import serde
from ferrograph.config import _CURRENT

if TYPE_CHECKING:
    from ferrograph.graph._loop import RunLoop
    from ferrograph.graph.pregel import CompiledStateGraph

__all__ = [
    "Nesting", "Forward", "SubgraphNode", "nesting", "resolve", "subgraph_task_state", "task_ns", "with_checkpoint_map", "NS_SEP"
]

#: Between the levels of a namespace, as LangGraph writes it.
NS_SEP = "|"
#: Between a node's name and its task id in a namespace level.
NS_END = ":"
#: The load of a child of a time-travelling run: its latest checkpoint before the parent's.
LOAD_BEFORE = "list_before"


class Replay:
    """A root run's time travel, as its children see it: each child namespace (task ids
    left out, so a child run again in a loop counts once), the first time it runs, starts from
    its latest checkpoint older than `checkpoint_id` (the parent's checkpoint travelled to, or
    for a fork or update, the one before it) and takes its input again, as in LangGraph. A
    default child of a re-run task has a new namespace and so starts afresh; a child compiled
    with `checkpointer=True` goes back to its state as of then, not its latest."""

    __slots__ = ("checkpoint_id", "visited")

    def __init__(self, checkpoint_id: str) -> None:
        self.checkpoint_id = checkpoint_id
        self.visited: set[str] = set()

    def first_visit(self, ns: str) -> bool:
        stable = ns.rsplit(NS_END, 1)[0]
        if stable in self.visited:
            return False
        self.visited.add(stable)
        return True


def _before(config: dict, checkpoint_id: str) -> dict:
    return {"configurable": {**config["configurable"], "checkpoint_id": checkpoint_id}}


def load_before(saver: Any, config: dict, checkpoint_id: str) -> Any:
    """The latest checkpoint of `config`'s namespace older than `checkpoint_id` (see `Replay`)."""
    for saved in saver.list(config, before=_before(config, checkpoint_id), limit=1):
        return saved
    return None


async def aload_before(saver: Any, config: dict, checkpoint_id: str) -> Any:
    """The async twin of `load_before`."""
    async for saved in saver.alist(config, before=_before(config, checkpoint_id), limit=1):
        return saved
    return None


class Forward:
    """Where a child run hands its stream chunks: the parent run's queue of nested chunks,
    with the child's namespace and the modes the parent streams."""

    __slots__ = ("queue", "ns", "modes")

    def __init__(self, queue: collections.deque, ns: tuple[str, ...], modes: tuple[str, ...]) -> None:
        self.queue = queue
        self.ns = ns
        self.modes = modes

    def put(self, item: tuple) -> None:
        """A (mode, chunk) of the child itself, or a (mode, chunk, ns) it got from its own
        children, handed up with its namespace."""
        self.queue.append(item if len(item) == 3 else (item[0], item[1], self.ns))


class Nesting:
    """What a child run takes from the task that runs it (see the module's doc)."""

    __slots__ = (
        "saver", "codec", "ns", "parents", "durability", "forward", "resuming", "answers", "replay", "messages", "shown"
    )

    def __init__(
        self,
        saver: Any,
        codec: serde.Serializer,
        ns: str,
        parents: dict,
        durability: str = "async",
        forward: Optional[Forward] = None,
        resuming: bool = False,
        answers: Sequence[Any] = (),
        replay: Optional[Replay] = None,
        messages: Any = None,
        shown: bool = False,
    ) -> None:
        self.saver = saver
        self.codec = codec
        #: The child's checkpoint namespace.
        self.ns = ns
        #: Namespace -> checkpoint id of each run above it (the checkpoint it runs under).
        self.parents = parents
        self.durability = durability
        self.forward = forward
        #: Whether the parent resumes the task: the child then goes on from its checkpoint...
        self.resuming = resuming
        #: ...with the resume values the task was given and has not used itself.
        self.answers = tuple(answers)
        self.replay = replay
        #: The parent's "messages" stream, whose sent messages the child's shares when its
        #: chunks are shown (`shown`: the caller streams subgraphs); otherwise the parent's
        #: task streams the messages it returns itself, as in LangGraph.
        self.messages = messages
        self.shown = shown

    def resume_input(self) -> Any:
        """The input of a resuming child run that has a checkpoint: the task's latest answer
        as a `Command(resume=...)` (each resume of the parent re-runs the task once, and
        the child's earlier answers are saved with its own paused tasks), or None."""
        if not self.answers:
            return None
        from ferrograph.types import Command

        return Command(resume=self.answers[-1])


def nesting(graph: "CompiledStateGraph", config: Optional[dict]) -> Optional[tuple[dict, Nesting]]:
    """When `graph` is run from inside a node of a ferrograph run: the child run's config and
    what it takes from the parent. None for a run of its own."""
    task = _CURRENT.get()
    if task is None:
        return None
    parent: "RunLoop" = task._loop
    ns = task_ns(parent, task._name, task._task_id)
    if parent.child_runs is None:
        parent.child_runs = {}
    calls = parent.child_runs.get(task._task_id, 0)
    parent.child_runs[task._task_id] = calls + 1
    if calls:
        ns = f"{ns}{NS_SEP}{calls}"
    if graph.persistence is True:
        ns = NS_SEP.join(part.split(NS_END)[0] for part in ns.split(NS_SEP))
    saver = None if graph.persistence is False else parent.saver
    parents = dict(parent.parents)
    if (checkpoint_id := parent.checkpoint_id()) is not None:
        parents[parent.ns] = checkpoint_id
    # The run's config (as LangGraph merges the parent's into the child's), the caller's keys
    # over it, in the child's namespace and never at a checkpoint id of the parent's.
    given = config or {}
    configurable = {**(parent.config.get("configurable") or {}), **(given.get("configurable") or {})}
    configurable.pop("checkpoint_id", None)
    configurable["checkpoint_ns"] = ns
    child_config = {**parent.config, **given, "configurable": configurable}
    forward = None
    if parent.nested is not None:
        forward = Forward(parent.nested, tuple(ns.split(NS_SEP)), parent.child_modes)
    codec = graph.serializer.over(parent.codec)
    pad = task.scratchpad
    answers = pad.resume[pad.calls :] if pad is not None else ()
    resuming = parent.resume_step == parent.run.step or bool(answers)
    return child_config, Nesting(
        saver, codec, ns, parents, parent.durability, forward, resuming, answers, parent.replay,
        parent.messages if parent.children_shown else None, parent.children_shown,
    )


def at_root(config: Optional[dict]) -> Optional[dict]:
    """The config of a run of its own given a child's config (as a snapshot shows it): the
    run starts in the root namespace, from the root checkpoint its `checkpoint_map` names (the
    latest without one), as LangGraph does; the map stays in the config, and becomes the
    `parents` metadata of the run's checkpoints."""
    configurable = (config or {}).get("configurable") or {}
    if not configurable.get("checkpoint_ns"):
        return config
    assert config is not None, "a namespace comes in a config"
    root = {**configurable, "checkpoint_ns": ""}
    root.pop("checkpoint_id", None)
    if (configurable.get("checkpoint_map") or {}).get(""):
        root["checkpoint_id"] = configurable["checkpoint_map"][""]
    return {**config, "configurable": root}


def resolve(
    graph: "CompiledStateGraph", config: dict, *, for_update: bool = False
) -> tuple["CompiledStateGraph", Optional[Nesting], dict]:
    """The graph whose checkpoints a state method's `config` names (its `checkpoint_ns`), as
    LangGraph finds it: following the subgraphs (`find_subgraphs`) by node name (task ids and
    call numbers left out); the graph itself (None) for its own namespace, or when the
    namespace names no subgraph (its checkpoints are then read with this graph's keys, as
    LangGraph reads them; writing there is refused). Also the config to read with: a
    `checkpointer=True` child's namespace has no task ids (see `nesting`)."""
    ns = (config.get("configurable") or {}).get("checkpoint_ns") or ""
    if not ns:
        return graph, None, config
    target = graph
    for part in ns.split(NS_SEP):
        name = part.split(NS_END)[0]
        if name.isdigit():
            continue
        child = target.subgraphs.get(name)
        if child is None:
            if for_update:
                from ferrograph.errors import GraphValidationError

                raise GraphValidationError(f"Subgraph {_recast(ns)} not found")
            return graph, None, config
        target = child
    if target.persistence is True:
        ns = NS_SEP.join(part.split(NS_END)[0] for part in ns.split(NS_SEP))
        config = {**config, "configurable": {**config["configurable"], "checkpoint_ns": ns}}
    # The runs above it, as a snapshot's config names them (LangGraph's `checkpoint_map`).
    parents = {k: v for k, v in ((config.get("configurable") or {}).get("checkpoint_map") or {}).items() if k != ns}
    return target, Nesting(graph.checkpointer, target.serializer.over(graph._codec), ns, parents), config


def _recast(ns: str) -> str:
    """A namespace without task ids and call numbers, as LangGraph names a subgraph."""
    return NS_SEP.join(p.split(NS_END)[0] for p in ns.split(NS_SEP) if not p.isdigit())


def with_children(snapshot: Any, children: dict) -> Any:
    """`snapshot` with its subgraph tasks' states replaced by the children's snapshots."""
    if not children:
        return snapshot
    tasks = tuple(t._replace(state=children[t.id]) if t.id in children else t for t in snapshot.tasks)
    return snapshot._replace(tasks=tasks)


@overload
def with_checkpoint_map(config: dict, metadata: Optional[dict]) -> dict: ...


@overload
def with_checkpoint_map(config: None, metadata: Optional[dict]) -> None: ...


def with_checkpoint_map(config: Optional[dict], metadata: Optional[dict]) -> Optional[dict]:
    """A child's checkpoint config as LangGraph shows it in snapshots: with `checkpoint_map`,
    the checkpoint ids of the runs above it and its own, by namespace."""
    parents = (metadata or {}).get("parents") if config is not None else None
    if not parents:
        return config
    assert config is not None, "only a config has a checkpoint map"
    conf = config["configurable"]
    return {**config, "configurable": {**conf, "checkpoint_map": {**parents, conf["checkpoint_ns"]: conf["checkpoint_id"]}}}


def task_ns(loop: "RunLoop", name: str, task_id: str) -> str:
    """The namespace of a child run of task `task_id` (node `name`) of `loop`'s run."""
    own = f"{name}{NS_END}{task_id}"
    return f"{loop.ns}{NS_SEP}{own}" if loop.ns else own


def subgraph_task_state(loop: "RunLoop", name: str, task_id: str, config: dict) -> dict:
    """A snapshot's `tasks[i].state` of a subgraph node's task: the config of the child's
    checkpoints (LangGraph's, without `subgraphs=True`)."""
    thread_id = config["configurable"]["thread_id"]
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": task_ns(loop, name, task_id)}}


def find_subgraphs(nodes: dict) -> dict[str, "CompiledStateGraph"]:
    """The subgraph of each node that has one, as LangGraph detects them: a compiled graph
    added as the node, or one its function reaches through its closure or the globals it
    names (also of the functions defined inside it); the first one found. A graph compiled
    with `checkpointer=False` keeps no state and does not count."""
    from ferrograph.graph.pregel import CompiledStateGraph

    found = {}
    for name, spec in nodes.items():
        fn = spec.fn
        candidates = [fn.graph] if type(fn) is SubgraphNode else list(_reachable(fn))
        for value in candidates:
            if isinstance(value, CompiledStateGraph) and value.persistence is not False:
                found[name] = value
                break
    return found


def _reachable(fn: Any) -> Any:
    """The values a function's code can reach by name: its closure cells and the globals its
    code (and the code of functions defined in it) names."""
    owner = getattr(fn, "__self__", None)
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        call = getattr(type(fn), "__call__", None)
        if call is None or getattr(call, "__code__", None) is None:
            return
        yield from (v for v in vars(fn).values()) if hasattr(fn, "__dict__") else ()
        fn, code = call, call.__code__
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            yield cell.cell_contents
        except ValueError:  # an empty cell
            continue
    names: list[str] = []
    stack = [code]
    while stack:
        current = stack.pop()
        names.extend(current.co_names)
        stack.extend(c for c in current.co_consts if hasattr(c, "co_names"))
    globals_ = getattr(fn, "__globals__", {})
    for name in dict.fromkeys(names):
        if name in globals_:
            yield globals_[name]
        elif owner is not None and name in getattr(owner, "__dict__", {}):
            yield vars(owner)[name]  # `self.<name>` in a method


class SubgraphNode:
    """A compiled graph added as a node: it runs as a child run on the node's input (the
    parent's state), and its output's keys that the parent has are the node's update."""

    __slots__ = ("graph", "keys", "__name__")

    def __init__(self, graph: "CompiledStateGraph", keys: Any) -> None:
        self.graph = graph
        #: The parent's keys (filled in when the parent compiles).
        self.keys = keys
        self.__name__ = graph.name

    def _update(self, output: Any) -> Any:
        if not isinstance(output, dict):
            return output
        keys = self.keys
        return {k: v for k, v in output.items() if k in keys}

    def __call__(self, state: Any) -> Any:
        return self._update(self.graph.invoke(state))

    async def acall(self, state: Any) -> Any:
        return self._update(await self.graph.ainvoke(state))
