"""A compiled graph's shape (nodes, edges, conditional edges) and its Mermaid text."""

from __future__ import annotations

from typing import NamedTuple

from ferrograph.graph.state import END, START, StateGraph

__all__ = ["DrawableGraph", "Edge"]


class Edge(NamedTuple):
    source: str
    target: str
    conditional: bool


class DrawableGraph:
    def __init__(self, nodes: list[str], edges: list[Edge]) -> None:
        self.nodes = nodes
        self.edges = edges

    @classmethod
    def from_builder(cls, builder: StateGraph) -> "DrawableGraph":
        nodes = [START, *builder.nodes, END]
        edges = [Edge(s, t, False) for s, t in builder.edges]
        for starts, end in builder.joins:
            edges.extend(Edge(s, end, False) for s in starts)
        for source, branches in builder.branches.items():
            for branch in branches:
                # A branch that does not declare its targets may go to any node or END.
                targets = branch.targets() or [n for n in nodes if n != START]
                edges.extend(Edge(source, t, True) for t in targets)
        unique = list(dict.fromkeys(edges))  # first occurrences, in order
        return cls(nodes, unique)

    def draw_mermaid(self) -> str:
        """Mermaid flowchart text: solid arrows for edges, dotted ones for conditional edges."""
        lines = ["graph TD;"]
        for node in self.nodes:
            if node == START:
                lines.append(f"\t{node}([<p>{node}</p>]):::first")
            elif node == END:
                lines.append(f"\t{node}([<p>{node}</p>]):::last")
            else:
                lines.append(f"\t{_mermaid_id(node)}({node})")
        for edge in self.edges:
            arrow = "-.->" if edge.conditional else "-->"
            lines.append(f"\t{_mermaid_id(edge.source)} {arrow} {_mermaid_id(edge.target)};")
        lines.append("\tclassDef default fill:#f2f0ff,line-height:1.2")
        lines.append("\tclassDef first fill-opacity:0")
        lines.append("\tclassDef last fill:#bfb6fc")
        return "\n".join(lines) + "\n"


def _mermaid_id(name: str) -> str:
    """Mermaid ids cannot hold spaces or punctuation; keep names readable where possible."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)
