"""SVG: Graphviz's `dot -Tsvg` of the DOT format (each element's `<g>` has the element's id)."""
from __future__ import annotations

from ..graphviz import run_dot
from ..model import Format, Graph, Path
from . import dot


def render(graph: Graph, path: Path) -> str:
    return run_dot(dot.render(graph, path), "svg").decode()


FORMAT = Format("svg", 20, render, (".svg",), help="SVG picture (Graphviz)")
