"""`netlab graph`: the lab drawn as a graph (pure: no root; Graphviz's `dot` for the svg, png and html formats).

    build(cluster) -> Graph                     the elements and edges of a lab (netlab/graph/build.py)
    render(graph, fmt, highlight=()) -> str | bytes
                                                the picture in format `fmt` (one of FORMATS), with the path
                                                `highlight` (element ids in order, e.g. a trace's hops) drawn
                                                over it: emphasised and numbered

Element ids: `external`, `underlay`, `node:<node>`, `bridge:<node>` (cni0), `vtep:<node>` (flannel.1),
`tunl:<node>` (tunl0, backend ipip), `pod:<ns>/<name>`, `svc:<ns>/<name>`, `addr:<ip>` (an endpoint that is
no pod); edges `edge:<id1>--<id2>`.
"""
from __future__ import annotations

from ..errors import UsageError
from .build import build
from .formats import FORMATS
from .model import EDGE_KINDS, ELEMENT_KINDS, Edge, Element, Format, Graph, Path

__all__ = ["build", "render", "format_for", "FORMATS", "Graph", "Element", "Edge", "Path", "Format",
           "ELEMENT_KINDS", "EDGE_KINDS"]


def format_for(fmt: str) -> Format:
    """The format named `fmt`; any other name is a usage error (exit 2) listing the supported ones."""
    found = FORMATS.get(fmt.lower() if isinstance(fmt, str) else fmt)
    if found is None:
        raise UsageError(f"graph format {fmt!r} is not supported; use one of: {', '.join(FORMATS)}")
    return found


def render(graph: Graph, fmt: str, highlight: list[str] | tuple[str, ...] = ()) -> str | bytes:
    """`graph` in format `fmt`, with the path `highlight` (element ids in order) drawn over it."""
    return format_for(fmt).render(graph, graph.path(list(highlight)))
