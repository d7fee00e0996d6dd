"""PNG: Graphviz's `dot -Tpng` of the DOT format (bytes: written to a file, or to a stdout that is no terminal)."""
from __future__ import annotations

from ..graphviz import run_dot
from ..model import Format, Graph, Path
from . import dot


def render(graph: Graph, path: Path) -> bytes:
    return run_dot(dot.render(graph, path), "png")


FORMAT = Format("png", 30, render, (".png",), binary=True, help="PNG picture (Graphviz)")
