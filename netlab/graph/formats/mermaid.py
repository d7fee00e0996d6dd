"""Mermaid flowchart text (what GitHub, GitLab and many wikis draw from a ```mermaid block).

Mermaid ids are `n<i>` (the graph's ids hold `/` and `:`, which Mermaid does not take as ids); each element's
first label line is the graph's label and a `%%` comment maps `n<i>` to the graph's id. Every character
of a label that Mermaid could read as syntax is written as an entity code (`#34;`)."""
from __future__ import annotations

from ..model import Edge, Format, Graph, Path
from ..style import DOWN, EDGES, ELEMENTS, HIGHLIGHT, HIGHLIGHT_FILL, hop_marks, step_marks

SHAPES = {   # (opening, closing) of each kind's node shape
    "external": (">", "]"), "underlay": ("[(", ")]"), "node": ("[", "]"), "bridge": ("[[", "]]"),
    "vtep": ("{{", "}}"), "pod": ("([", "])"), "service": ("[/", "/]"), "address": ("[\\", "\\]"),
}
LINKS = {"solid": "---", "bold": "===", "dashed": "-.-", "dotted": "-.-"}
SAFE = set(" .,:/_-=+@*'")


def text(s: str) -> str:
    """`s` for inside a Mermaid label: letters, digits and a few harmless characters as they are, every
    other ASCII character as an entity code, line breaks as <br/>."""
    return "<br/>".join("".join(c if c.isalnum() or c in SAFE or ord(c) > 127 else f"#{ord(c)};" for c in line)
                        for line in s.split("\n"))


def _node(i: int, graph: Graph, path: Path) -> str:
    e = graph.elements[i]
    lines = e.lines()
    steps = path.element_steps(e.id)
    if steps:
        lines = [f"{step_marks(steps)} {lines[0]}", *lines[1:]]
    a, b = SHAPES[e.kind]
    return f'n{i}{a}"{text(chr(10).join(lines))}"{b}'


def _link(edge: Edge, ids: dict[str, str], path: Path) -> str:
    hops = path.edge_hops(edge.id)
    a, b = ids[edge.source], ids[edge.target]
    label = edge.label
    if hops:
        label = f"{hop_marks(hops)}  {label}".strip()
        if path.forward(edge) is False:
            a, b = b, a
        arrow = "==>" if path.forward(edge) is not None else "<==>"
    else:
        arrow = LINKS[EDGES[edge.kind].style]
    return f"{a} {arrow}|{text(label)}| {b}" if label else f"{a} {arrow} {b}"


def render(graph: Graph, path: Path) -> str:
    ids = {e.id: f"n{i}" for i, e in enumerate(graph.elements)}
    out = ["flowchart TB", f"  %% lab {graph.lab}: {graph.backend}, kube-proxy {graph.proxy_mode}"]
    out += [f"  %% {ids[e.id]} = {e.id}" for e in graph.elements]
    for i, e in enumerate(graph.elements):
        if e.node is None:
            out.append("  " + _node(i, graph, path))
    for g, node in enumerate(graph.groups):
        out.append(f'  subgraph g{g}["{text("node " + node)}"]')
        out += ["    " + _node(i, graph, path) for i, e in enumerate(graph.elements) if e.node == node]
        out.append("  end")
    edges = graph.edges + path.extra_edges()
    out += ["  " + _link(edge, ids, path) for edge in edges]
    for kind, look in ELEMENTS.items():
        out.append(f"  classDef {kind} fill:{look.fill},stroke:#666666,color:#000000")
    for kind in ELEMENTS:
        members = [ids[e.id] for e in graph.elements if e.kind == kind]
        if members:
            out.append(f"  class {','.join(members)} {kind}")
    for e in graph.elements:
        if path.element_steps(e.id):
            out.append(f"  style {ids[e.id]} fill:{HIGHLIGHT_FILL},stroke:{HIGHLIGHT},stroke-width:3px")
    for n, edge in enumerate(edges):
        if path.edge_hops(edge.id):
            out.append(f"  linkStyle {n} stroke:{HIGHLIGHT},stroke-width:3px,color:{HIGHLIGHT}")
        elif edge.down:
            out.append(f"  linkStyle {n} stroke:{DOWN},stroke-dasharray:4 4")
        else:
            out.append(f"  linkStyle {n} stroke:{EDGES[edge.kind].colour}")
    return "\n".join(out) + "\n"


FORMAT = Format("mermaid", 40, render, (".mmd", ".mermaid"), help="Mermaid flowchart text")
