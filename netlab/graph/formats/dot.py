"""DOT (Graphviz's language), written here: every id and label quoted and escaped, each Kubernetes node a
cluster box holding its namespace, cni0, flannel.1 and pods; a highlighted path red, thick and numbered.

The SVG Graphviz makes of it carries the graph's ids: each element's and edge's `<g>` has `id` set to the
element's id (`pod:default/web`) and `class` to its kind (plus ` highlighted`)."""
from __future__ import annotations

from ..model import Edge, Element, Format, Graph, Path
from ..style import DOWN, EDGES, ELEMENTS, HIGHLIGHT, HIGHLIGHT_FILL, hop_marks, step_marks

FONT = "Helvetica"
# edges drawn against the way they were made, so Graphviz ranks services below their pods
DRAWN_REVERSED = {"endpoint"}
# edges that do not pull the elements they join onto different ranks (nodes side by side)
UNRANKED = {"tunnel", "route", "path"}


def escape(text: str) -> str:
    """`text` for inside a DOT double-quoted string: backslashes and quotes escaped (so none of Graphviz's
    `\\N`, `\\G` ... escapes can appear), control characters shown as escapes."""
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    if not out.isprintable():
        out = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii").replace("\\", "\\\\")
                      for c in out)
    return out


def quote(text: str) -> str:
    return f'"{escape(text)}"'


class Quoted(str):
    """A value already written as DOT (a label of several lines)."""


def label(lines: list[str]) -> Quoted:
    """A label of several lines, centred (DOT's `\\n` between them)."""
    return Quoted('"' + "\\n".join(escape(line) for line in lines) + '"')


def attrs(**kv) -> str:
    """`[k="v", ...]` of the attributes that are not None, every value quoted."""
    parts = [f"{k}={v if isinstance(v, Quoted) else quote(str(v))}" for k, v in kv.items() if v is not None]
    return "[" + ", ".join(parts) + "]"


def _element(e: Element, path: Path) -> str:
    look = ELEMENTS[e.kind]
    steps = path.element_steps(e.id)
    lines = e.lines()
    if steps:
        lines = [f"{step_marks(steps)} {lines[0]}", *lines[1:]]
    return f"  {quote(e.id)} " + attrs(
        id=e.id, label=label(lines), shape=look.shape, fillcolor=HIGHLIGHT_FILL if steps else look.fill,
        color=HIGHLIGHT if steps else "#666666", penwidth="3" if steps else None,
        **{"class": f"{e.kind} highlighted" if steps else e.kind},
        tooltip=f"{e.kind} {e.id}" + (f" {' '.join(e.addresses)}" if e.addresses else "")) + ";"


def _edge(edge: Edge, path: Path) -> str:
    line = EDGES[edge.kind]
    hops = path.edge_hops(edge.id)
    reverse = edge.kind in DRAWN_REVERSED
    a, b = (edge.target, edge.source) if reverse else (edge.source, edge.target)
    text = edge.label
    direction = "none"
    if hops:
        text = f"{hop_marks(hops)}  {text}".strip()
        forward = path.forward(edge)
        direction = "both" if forward is None else ("forward" if forward != reverse else "back")
    style = "dashed" if edge.down and line.style == "solid" else line.style
    return f"  {quote(a)} -> {quote(b)} " + attrs(
        id=edge.id, label=label(text.split("\n")) if text else None,
        color=HIGHLIGHT if hops else (DOWN if edge.down else line.colour),
        fontcolor=HIGHLIGHT if hops else None, style=style, penwidth="3" if hops else None, dir=direction,
        constraint="false" if edge.kind in UNRANKED else None,
        **{"class": f"{edge.kind} highlighted" if hops else edge.kind}) + ";"


def render(graph: Graph, path: Path) -> str:
    title = f"lab {graph.lab}: {graph.backend}, kube-proxy {graph.proxy_mode}"
    if path.steps:
        title += f"; path {path.steps[0]} \u2192 {path.steps[-1]} ({len(path.steps)} steps)"
    out = [f"digraph {quote('netlab ' + graph.lab)} {{",
           "  graph " + attrs(label=label([title]), labelloc="t", fontname=FONT, fontsize="14", newrank="true",
                              nodesep="0.35", ranksep="0.6") + ";",
           "  node " + attrs(fontname=FONT, fontsize="10", style="filled") + ";",
           "  edge " + attrs(fontname=FONT, fontsize="9", arrowsize="0.8") + ";"]
    for e in graph.elements:
        if e.node is None:
            out.append(_element(e, path))
    for i, node in enumerate(graph.groups):
        members = [e for e in graph.elements if e.node == node]
        out.append(f"  subgraph {quote(f'cluster_{i}')} {{")
        out.append("    graph " + attrs(id=f"group:{node}", label=label([f"node {node}"]), style="rounded,filled",
                                        fillcolor="#f5f9fd", color="#6fa8dc") + ";")
        out.extend("  " + _element(e, path) for e in members)
        out.append("  }")
    for edge in graph.edges + path.extra_edges():
        out.append(_edge(edge, path))
    out.append("}")
    return "\n".join(out) + "\n"


FORMAT = Format("dot", 10, render, (".dot", ".gv"), help="Graphviz DOT text")
