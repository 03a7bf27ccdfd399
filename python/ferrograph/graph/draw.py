"""A compiled graph's shape as LangGraph draws it: `get_graph()` returns a `Graph` of `Node`s
and `Edge`s (langchain_core's shapes), which prints as Mermaid text or ASCII art.

LangGraph does not draw the edges as declared: it runs the graph once without calling any
node, following the triggers a step's writes set off, and draws an edge from each writer to
each node it triggered (see `_DryRun`). So a join shows as plain edges from each start, a
branch or a `Command` as dotted edges to the destinations it declares, an edge-less node as a
lone box, and a node whose route is unknown as a dotted edge to the end. This module repeats
that walk on the builder's own declarations, so the drawing is LangGraph's, edge for edge.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Hashable, NamedTuple, Optional, Union

from ferrograph.graph.state import END, START

if TYPE_CHECKING:
    from ferrograph.graph.pregel import CompiledStateGraph

__all__ = ["Graph", "Node", "Edge", "CurveStyle", "NodeStyles", "MermaidDrawMethod"]


class Node(NamedTuple):
    """A node of a drawn graph: `data` is the node's function (None for START and END)."""

    id: str
    name: str
    data: Any
    metadata: Optional[dict[str, Any]]


class Edge(NamedTuple):
    """An edge of a drawn graph: `data` is its label, `conditional` draws it dotted."""

    source: str
    target: str
    data: Any = None
    conditional: bool = False


class CurveStyle(enum.Enum):
    """Mermaid's edge curves (langchain_core's `CurveStyle` is accepted as well)."""

    BASIS = "basis"
    BUMP_X = "bumpX"
    BUMP_Y = "bumpY"
    CARDINAL = "cardinal"
    CATMULL_ROM = "catmullRom"
    LINEAR = "linear"
    MONOTONE_X = "monotoneX"
    MONOTONE_Y = "monotoneY"
    NATURAL = "natural"
    STEP = "step"
    STEP_AFTER = "stepAfter"
    STEP_BEFORE = "stepBefore"


@dataclasses.dataclass
class NodeStyles:
    """Mermaid class styles of ordinary, first and last nodes."""

    default: str = "fill:#f2f0ff,line-height:1.2"
    first: str = "fill-opacity:0"
    last: str = "fill:#bfb6fc"


class MermaidDrawMethod(enum.Enum):
    """How LangGraph renders Mermaid to PNG; both need the network (see `draw_mermaid_png`)."""

    PYPPETEER = "pyppeteer"
    API = "api"


class Graph:
    """Nodes (by id, in LangGraph's order) and edges (in LangGraph's order) of a graph."""

    def __init__(self, nodes: Optional[dict[str, Node]] = None, edges: Optional[list[Edge]] = None) -> None:
        self.nodes: dict[str, Node] = nodes if nodes is not None else {}
        self.edges: list[Edge] = edges if edges is not None else []

    def __repr__(self) -> str:
        return f"Graph(nodes={self.nodes!r}, edges={self.edges!r})"

    def __bool__(self) -> bool:
        return bool(self.nodes)

    def add_node(self, data: Any, id: str, *, metadata: Optional[dict[str, Any]] = None) -> Node:
        if id in self.nodes:
            raise ValueError(f"Node with id {id} already exists")
        node = Node(id, id, data, metadata)
        self.nodes[id] = node
        return node

    def add_edge(self, source: Node, target: Node, data: Any = None, conditional: bool = False) -> Edge:
        for node, role in ((source, "Source"), (target, "Target")):
            if node.id not in self.nodes:
                raise ValueError(f"{role} node {node.id} not in graph")
        edge = Edge(source.id, target.id, data, conditional)
        self.edges.append(edge)
        return edge

    def first_node(self, exclude: tuple[str, ...] = ()) -> Optional[Node]:
        """The one node no edge points to, if there is exactly one (leaving out the nodes in
        `exclude` and their edges)."""
        targets = {e.target for e in self.edges if e.source not in exclude}
        found = [n for n in self.nodes.values() if n.id not in exclude and n.id not in targets]
        return found[0] if len(found) == 1 else None

    def last_node(self, exclude: tuple[str, ...] = ()) -> Optional[Node]:
        """The one node no edge leaves, if there is exactly one (leaving out the nodes in
        `exclude` and their edges)."""
        sources = {e.source for e in self.edges if e.target not in exclude}
        found = [n for n in self.nodes.values() if n.id not in exclude and n.id not in sources]
        return found[0] if len(found) == 1 else None

    def _remove(self, node_id: str) -> None:
        del self.nodes[node_id]
        self.edges = [e for e in self.edges if node_id not in (e.source, e.target)]

    def _expand(self, name: str, sub: "Graph") -> None:
        """Draw node `name` as the graph `sub` (an expanded subgraph, see `build`): its nodes
        and edges under ids `name:<id>`, its START and END left out when the picture keeps one
        way in and out without them, and the edges of `name` moved to its first and last."""
        first, last = sub.first_node(), sub.last_node()
        if len(sub.nodes) <= 1 or name not in self.nodes or first is None or last is None:
            return
        if sub.first_node((first.id,)) and sum(1 for e in sub.edges if e.source == first.id) == 1:
            sub._remove(first.id)
        last = sub.last_node()
        if last is not None and sub.last_node((last.id,)) and sum(1 for e in sub.edges if e.target == last.id) == 1:
            sub._remove(last.id)
        del self.nodes[name]
        for node in sub.nodes.values():
            self.nodes[f"{name}:{node.id}"] = node._replace(id=f"{name}:{node.id}")
        self.edges.extend(e._replace(source=f"{name}:{e.source}", target=f"{name}:{e.target}") for e in sub.edges)
        first, last = sub.first_node(), sub.last_node()
        entry = f"{name}:{first.id}" if first is not None else name
        exit_ = f"{name}:{last.id}" if last is not None else name
        self.edges = [
            e._replace(source=exit_ if e.source == name else e.source, target=entry if e.target == name else e.target)
            for e in self.edges
        ]

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """Nodes and edges as plain data, in LangGraph's layout (a node's `data.id` names
        its function's module and qualified name)."""
        nodes: list[dict[str, Any]] = []
        for node in self.nodes.values():
            entry: dict[str, Any] = {"id": node.id}
            if node.data is not None:
                fn = node.data
                path = [*str(getattr(fn, "__module__", "") or "").split("."), _qualname(fn)]
                entry["type"] = "runnable"
                entry["data"] = {"id": [p for p in path if p], "name": node.name}
            if node.metadata is not None:
                entry["metadata"] = node.metadata
            nodes.append(entry)
        edges: list[dict[str, Any]] = []
        for edge in self.edges:
            item: dict[str, Any] = {"source": edge.source, "target": edge.target}
            if edge.data is not None:
                item["data"] = edge.data
            if edge.conditional:
                item["conditional"] = True
            edges.append(item)
        return {"nodes": nodes, "edges": edges}

    def draw_mermaid(
        self,
        *,
        with_styles: bool = True,
        curve_style: Any = CurveStyle.LINEAR,
        node_colors: Optional[Any] = None,
        wrap_label_n_words: int = 9,
        frontmatter_config: Optional[dict[str, Any]] = None,
    ) -> str:
        """Mermaid flowchart text, exactly as LangGraph prints it for the same graph."""
        from ferrograph.graph._mermaid import mermaid_text

        first, last = self.first_node(), self.last_node()
        return mermaid_text(
            self.nodes,
            self.edges,
            first=first.id if first else None,
            last=last.id if last else None,
            with_styles=with_styles,
            curve=str(getattr(curve_style, "value", curve_style)),
            styles=dataclasses.asdict(node_colors) if node_colors is not None else dataclasses.asdict(NodeStyles()),
            wrap_label_n_words=wrap_label_n_words,
            frontmatter_config=frontmatter_config,
        )

    def draw_mermaid_png(
        self,
        *,
        curve_style: Any = CurveStyle.LINEAR,
        node_colors: Optional[Any] = None,
        wrap_label_n_words: int = 9,
        output_file_path: Optional[str] = None,
        draw_method: Any = MermaidDrawMethod.API,
        background_color: str = "white",
        padding: int = 10,
        max_retries: int = 1,
        retry_delay: float = 1.0,
        frontmatter_config: Optional[dict[str, Any]] = None,
        base_url: Optional[str] = None,
        proxies: Optional[dict[str, str]] = None,
    ) -> bytes:
        """Refused: each of LangGraph's ways to render Mermaid as PNG fetches from the network
        (the mermaid.ink service, or Mermaid's script from a CDN into a browser), and
        ferrograph makes no network calls. Render `draw_mermaid()`'s text with a local
        Mermaid tool instead (e.g. `mmdc` of @mermaid-js/mermaid-cli)."""
        method = str(getattr(draw_method, "value", draw_method))
        if method not in ("api", "pyppeteer"):
            raise ValueError(f"Invalid draw method: {draw_method}. Supported draw methods are: api, pyppeteer")
        where = "the mermaid.ink API" if method == "api" else "Mermaid's script from a CDN, in a browser run by pyppeteer"
        raise ValueError(
            f"draw_mermaid_png(draw_method={method!r}) would render through {where}, which needs the network; "
            "ferrograph does not make network calls. Render the text of get_graph().draw_mermaid() "
            "with a local Mermaid renderer (for example `mmdc` of @mermaid-js/mermaid-cli)."
        )

    def draw_ascii(self) -> str:
        """The graph as ASCII art, as LangGraph draws it (needs the grandalf package)."""
        from ferrograph.graph._ascii import ascii_art

        return ascii_art({node.id: node.name for node in self.nodes.values()}, self.edges)

    def print_ascii(self) -> None:
        print(self.draw_ascii())  # noqa: T201


def _qualname(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


class _Trigger(NamedTuple):
    """A channel a node wrote in the dry run, whether by a declared (conditional) route, and
    that route's label."""

    channel: str
    conditional: bool
    label: Optional[str]


class _Channel:
    """What the dry run needs of a trigger channel: holding a value that is `available`,
    `update` with a step's writes, `consume` by the node it triggered, `finish` at the end.
    Each returns whether the channel changed (its version then moves on)."""

    def __init__(self, barrier: Optional[frozenset[str]] = None, *, deferred: bool = False) -> None:
        self.barrier = barrier  # a join: the starts that must all have written
        self.deferred = deferred  # it triggers only once nothing else is left to run
        self.value: Any = _EMPTY
        self.seen: set[str] = set()
        self.finished = False

    def available(self) -> bool:
        full = self.seen == self.barrier if self.barrier is not None else self.value is not _EMPTY
        return full and (self.finished or not self.deferred)

    def update(self, values: list[Any]) -> bool:
        if self.barrier is not None:
            fresh = {v for v in values if v not in self.seen}
            self.seen |= fresh
            return bool(fresh)
        if not values:
            if self.deferred or self.value is _EMPTY:
                return False
            self.value = _EMPTY  # an edge's trigger lasts one step
            return True
        self.value = values[-1]
        self.finished = False
        return True

    def consume(self) -> bool:
        if self.barrier is not None:
            if self.seen == self.barrier and (self.finished or not self.deferred):
                self.seen = set()
                self.finished = False
                return True
            return False
        if self.deferred and self.finished:
            self.value = _EMPTY
            self.finished = False
            return True
        return False

    def finish(self) -> bool:
        full = self.seen == self.barrier if self.barrier is not None else self.value is not _EMPTY
        if self.deferred and not self.finished and full:
            self.finished = True
            return True
        return False


_EMPTY = object()


class _Writer(NamedTuple):
    """What a node writes after it runs: `writes` every time, `declared` (channel, label)
    routes once, the first time the node runs (as LangGraph's static analysis does)."""

    writes: tuple[tuple[str, Any], ...]
    declared: Optional[tuple[tuple[str, Optional[str]], ...]]


def _to(node: str) -> str:
    return node if node == END else f"branch:to:{node}"


def _declared(ends: Union[tuple[str, ...], dict[str, str], dict[Hashable, str]], *, labels_are_keys: bool) -> tuple:
    """Routes a node or branch declares: (channel, label). A branch's path_map labels its
    edges with its keys; a node's `destinations` dict maps a name to its label."""
    if isinstance(ends, dict):
        if labels_are_keys:
            return tuple((_to(target), str(key)) for key, target in ends.items())
        return tuple((_to(str(target)), label) for target, label in ends.items())
    return tuple((_to(target), None) for target in ends)


class _DryRun:
    """LangGraph's drawing walk (see the module docstring) over a builder's declarations."""

    LIMIT = 250

    def __init__(self, graph: "CompiledStateGraph") -> None:
        builder = graph.builder
        self.order = [START, *builder.nodes]
        self.deferred = {name for name, spec in builder.nodes.items() if getattr(spec, "defer", False)}
        self.channels: dict[str, _Channel] = {START: _Channel()}
        self.triggers: dict[str, list[str]] = {START: [START]}
        self.writers: dict[str, list[_Writer]] = {name: [] for name in self.order}
        for name, spec in builder.nodes.items():
            self.channels[_to(name)] = _Channel(deferred=name in self.deferred)
            self.triggers[name] = [_to(name)]
            ends = spec.ends
            self.writers[name].append(_Writer((), _declared(ends, labels_are_keys=False) if ends else None))
        for start, end in builder.edges:
            if end != END:
                self.writers[start].append(_Writer(((_to(end), None),), None))
        for starts, end in builder.joins:
            if end == END:
                continue
            channel = f"join:{'+'.join(starts)}:{end}"
            self.channels[channel] = _Channel(frozenset(starts), deferred=end in self.deferred)
            self.triggers[end].append(channel)
            for start in starts:
                self.writers[start].append(_Writer(((channel, start),), None))
        for source, branches in builder.branches.items():
            for branch in branches:
                path_ends = branch.ends()
                declared = _declared(path_ends, labels_are_keys=True) if path_ends else None
                self.writers[source].append(_Writer((), declared))
        self.triggered_by: dict[str, list[str]] = defaultdict(list)
        for name in self.order:
            for channel in self.triggers[name]:
                self.triggered_by[channel].append(name)
        self.versions: dict[str, int] = {}
        self.seen: dict[str, dict[str, int]] = defaultdict(dict)

    def _due(self, updated: set[str]) -> list[str]:
        if updated:
            candidates: list[str] = sorted({n for c in updated for n in self.triggered_by.get(c, ())})
        elif not self.versions:
            candidates = []
        else:
            candidates = self.order
        return [
            name
            for name in candidates
            if any(
                self.channels[c].available() and self.versions.get(c, 0) > self.seen[name].get(c, 0)
                for c in self.triggers[name]
            )
        ]

    def _apply(self, tasks: list[str], writes: dict[str, list[tuple[str, Any]]]) -> set[str]:
        for name in tasks:
            self.seen[name].update({c: self.versions[c] for c in self.triggers[name] if c in self.versions})
        version = max(self.versions.values(), default=0) + 1
        for channel in {c for name in tasks for c in self.triggers[name]}:
            if self.channels[channel].consume():
                self.versions[channel] = version
        grouped: dict[str, list[Any]] = defaultdict(list)
        for name in tasks:
            for channel, value in writes[name]:
                grouped[channel].append(value)
        updated: set[str] = set()
        for channel, values in grouped.items():
            if self.channels[channel].update(values):
                self.versions[channel] = version
                if self.channels[channel].available():
                    updated.add(channel)
        for channel, state in self.channels.items():
            if state.available() and channel not in updated and state.update([]):
                self.versions[channel] = version
                if state.available():
                    updated.add(channel)
        if updated.isdisjoint(self.triggered_by):
            for channel, state in self.channels.items():
                if state.finish():
                    self.versions[channel] = version
        return updated

    def edges(self) -> tuple[set[tuple[str, str, bool, Optional[str]]], dict[str, set[_Trigger]]]:
        """Every edge found (source, target, conditional, label), and the sources of the last
        step (the run's end when nothing says where it ends)."""
        edges: set[tuple[str, str, bool, Optional[str]]] = set()
        self.channels[START].update([{}])
        self.versions[START] = 1
        tasks = self._due({START})
        announced: set[tuple[str, int]] = set()
        sources: dict[str, set[_Trigger]] = {}
        declared_by: dict[str, set[_Trigger]] = defaultdict(set)
        step_sources: dict[str, set[_Trigger]] = {}
        for _step in range(-1, self.LIMIT):
            if not tasks:
                break
            conditionals: dict[tuple[str, str, Any], Optional[str]] = {}
            writes: dict[str, list[tuple[str, Any]]] = {name: [] for name in tasks}
            for name in tasks:
                for index, writer in enumerate(self.writers[name]):
                    writes[name].extend(writer.writes)
                    if writer.declared is None or (name, index) in announced:
                        continue
                    announced.add((name, index))
                    for channel, label in writer.declared:
                        if channel == END:
                            edges.add((name, END, True, label))
                            continue
                        conditionals[(name, channel, None)] = label
                        declared_by[name].add(_Trigger(channel, True, label))
                        writes[name].append((channel, None))
            step_sources = {}
            for name in tasks:
                found = {
                    _Trigger(channel, (name, channel, value or None) in conditionals, conditionals.get((name, channel, value or None)))
                    for channel, value in writes[name]
                }
                step_sources[name] = found | declared_by.get(name, set())
            sources.update(step_sources)
            by_trigger: dict[str, set[tuple[str, bool, Optional[str]]]] = defaultdict(set)
            for source, triggers in sources.items():
                for trigger in triggers:
                    by_trigger[trigger.channel].add((source, trigger.conditional, trigger.label))
            tasks = self._due(self._apply(tasks, writes))
            for name in tasks:
                from_this_step = False
                for channel in sorted(self.triggers[name]):
                    for source, conditional, label in by_trigger[channel]:
                        edges.add((source, name, conditional, label))
                        if _Trigger(channel, conditional, label) in step_sources.get(source, set()):
                            from_this_step = True
                        else:
                            sources[source].discard(_Trigger(channel, conditional, label))
                if not from_this_step:
                    for source in step_sources:
                        edges.add((source, name, True, None))
        return edges, step_sources


def build(graph: "CompiledStateGraph", xray: Union[int, bool] = False) -> Graph:
    """The drawable graph of a compiled graph, as LangGraph's `get_graph()` builds it. With
    `xray`, subgraph nodes are drawn as their graphs (True: all the way down; a number: that
    many levels)."""
    walk = _DryRun(graph)
    found, last_sources = walk.edges()
    drawn = Graph()
    builder = graph.builder
    before, after = graph.interrupt_before, graph.interrupt_after
    for name in walk.order:
        spec = builder.nodes.get(name)
        metadata = dict(getattr(spec, "metadata", None) or {})
        if name in walk.deferred:
            metadata["defer"] = True
        if name in before and name in after:
            metadata["__interrupt"] = "before,after"
        elif name in before:
            metadata["__interrupt"] = "before"
        elif name in after:
            metadata["__interrupt"] = "after"
        # A tool node (anything with a `tools_by_name` mapping) lists its tools.
        tools = getattr(spec.fn, "tools_by_name", None) if spec is not None else None
        if isinstance(tools, Mapping) and tools:
            metadata["__tools"] = list(tools)
        drawn.add_node(spec.fn if spec is not None else None, name, metadata=metadata or None)

    def connect(source: str, target: str, label: Optional[str] = None, conditional: bool = False) -> None:
        if any(e.source == source and e.target == target for e in drawn.edges):
            return
        if target == END and END not in drawn.nodes:
            drawn.add_node(None, END)
        drawn.add_edge(drawn.nodes[source], drawn.nodes[target], label, conditional)

    # LangGraph sorts the edge tuples; a label sorts after no label (it cannot compare them).
    for source, target, conditional, label in sorted(found, key=lambda e: (e[0], e[1], e[2], e[3] is not None, e[3] or "")):
        connect(source, target, label if label != target else None, conditional)
    termini = {t for _, t, _, _ in found if t != END} - {s for s, _, _, _ in found}
    if termini:
        for source in sorted(termini):
            connect(source, END)
    elif len(last_sources) == 1 and not any(t == END for _, t, _, _ in found):
        for source in sorted(last_sources):
            connect(source, END, conditional=True)
    if xray:
        deeper = xray if isinstance(xray, bool) or xray <= 0 else xray - 1
        for name, child in graph.subgraphs.items():
            drawn._expand(name, build(child, deeper))
    return drawn
