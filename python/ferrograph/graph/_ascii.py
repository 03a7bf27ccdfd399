"""ASCII art of a drawn graph, as LangGraph's `draw_ascii()` prints it: grandalf's Sugiyama
layout places a box per node (its name padded by a space each side) and routes the edges as
straight segments; edges are drawn first, '*' for plain and '.' for conditional ones, then
the boxes over them."""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

_BOX_HEIGHT = 3  # top border, the name, bottom border


class _BoxView:
    """What grandalf's layout reads of a node: its size (and where it puts its centre-top)."""

    def __init__(self, text: str) -> None:
        self.w = len(text) + 2
        self.h = _BOX_HEIGHT
        self.xy: tuple[float, float] = (0.0, 0.0)


class _EdgeView:
    """Where grandalf's router puts an edge's points."""

    def __init__(self) -> None:
        self.pts: list[tuple[float, float]] = []

    def setpath(self, pts: list[tuple[float, float]]) -> None:
        self.pts = pts


def _layout(names: Mapping[str, str], edges: Sequence[Any]) -> Any:
    try:
        from grandalf.graphs import Edge, Graph, Vertex
        from grandalf.layouts import SugiyamaLayout
        from grandalf.routing import route_with_lines
    except ImportError:
        raise ImportError("Install grandalf to draw graphs: `pip install grandalf`.") from None
    vertices = {key: Vertex(f" {name} ") for key, name in names.items()}
    links = [Edge(vertices[e.source], vertices[e.target], data=e.conditional) for e in edges]
    for vertex in vertices.values():
        vertex.view = _BoxView(vertex.data)
    for link in links:
        link.view = _EdgeView()
    # Like LangGraph, only the first connected part is laid out (and drawn).
    part = Graph(list(vertices.values()), links).C[0]
    layout = SugiyamaLayout(part)
    layout.init_all(roots=[v for v in part.sV if not v.e_in()], optimize=True)
    layout.yspace = _BOX_HEIGHT
    layout.xspace = min(v.view.w for v in vertices.values())
    layout.route_edge = route_with_lines
    layout.draw()
    return layout


class _Canvas:
    def __init__(self, cols: int, lines: int) -> None:
        if cols <= 1 or lines <= 1:
            raise ValueError("Canvas dimensions should be > 1")
        self.cols, self.lines = cols, lines
        self.cells = [[" "] * cols for _ in range(lines)]

    def point(self, x: int, y: int, char: str) -> None:
        if not (0 <= x < self.cols and 0 <= y < self.lines):
            raise ValueError(f"point ({x}, {y}) is outside the {self.cols}x{self.lines} canvas")
        self.cells[y][x] = char

    def line(self, x0: int, y0: int, x1: int, y1: int, char: str) -> None:
        """A straight line stepping along its longer axis, rounding the other coordinate."""
        if x0 > x1:
            x0, y0, x1, y1 = x1, y1, x0, y0
        dx, dy = x1 - x0, y1 - y0
        if dx == 0 and dy == 0:
            self.point(x0, y0, char)
        elif abs(dx) >= abs(dy):
            for x in range(x0, x1 + 1):
                self.point(x, y0 + round((x - x0) * dy / float(dx)), char)
        elif y0 < y1:
            for y in range(y0, y1 + 1):
                self.point(x0 + round((y - y0) * dx / float(dy)), y, char)
        else:
            for y in range(y1, y0 + 1):
                self.point(x1 + round((y - y1) * dx / float(dy)), y, char)

    def box(self, x0: int, y0: int, width: int, height: int, text: str) -> None:
        right, bottom = x0 + width - 1, y0 + height - 1
        for x in range(x0, right):
            self.point(x, y0, "-")
            self.point(x, bottom, "-")
        for y in range(y0, bottom):
            self.point(x0, y, "|")
            self.point(right, y, "|")
        for x, y in ((x0, y0), (right, y0), (x0, bottom), (right, bottom)):
            self.point(x, y, "+")
        for i, char in enumerate(text):
            self.point(x0 + 1 + i, y0 + 1, char)

    def text(self) -> str:
        return os.linesep.join("".join(row) for row in self.cells)


def ascii_art(names: Mapping[str, str], edges: Sequence[Any]) -> str:
    """The picture of nodes `names` (id to name) joined by `edges`."""
    layout = _layout(names, edges)
    xs: list[float] = []
    ys: list[float] = []
    for vertex in layout.g.sV:
        (x, y), view = vertex.view.xy, vertex.view
        xs.extend((x - view.w / 2.0, x + view.w / 2.0))
        ys.extend((y, y + view.h))
    for link in layout.g.sE:
        for x, y in link.view.pts:
            xs.append(x)
            ys.append(y)
    minx, miny = min(xs), min(ys)
    canvas = _Canvas(math.ceil(math.ceil(max(xs)) - math.floor(minx)) + 1, round(max(ys) - miny))
    for link in layout.g.sE:
        pts = link.view.pts
        if len(pts) <= 1:
            raise ValueError("Not enough points to draw an edge")
        for (sx, sy), (ex, ey) in zip(pts, pts[1:]):
            start_x, start_y, end_x, end_y = round(sx - minx), round(sy - miny), round(ex - minx), round(ey - miny)
            if min(start_x, start_y, end_x, end_y) < 0:
                raise ValueError(
                    f"Invalid edge coordinates: start_x={start_x}, start_y={start_y}, end_x={end_x}, end_y={end_y}"
                )
            canvas.line(start_x, start_y, end_x, end_y, "." if link.data else "*")
    for vertex in layout.g.sV:
        left = vertex.view.xy[0] - vertex.view.w / 2.0
        canvas.box(round(left - minx), round(vertex.view.xy[1] - miny), vertex.view.w, vertex.view.h, vertex.data)
    return canvas.text()
