"""JSON: the graph as data, stable (documented in README.md, "Drawing the lab: netlab graph").

    {"kind": "NetlabGraph", "version": 1, "lab", "backend", "proxyMode",
     "nodes": [{"id", "kind", "label", "addresses", "node", "details", "attributes", "steps"}],
     "edges": [{"id", "kind", "from", "to", "label", "down", "attributes", "hops"}],
     "path": ["<id of step 1>", ...]}

`nodes` are the graph's elements (of every kind: pod, node, bridge ...); `steps` (elements) and `hops`
(edges) number the highlighted path, empty without one; a hop between elements no edge joins is an edge of
kind "path". Keys are sorted, lists in the graph's order, so the same lab gives the same text."""
from __future__ import annotations

import json

from ..model import Format, Graph, Path

KIND = "NetlabGraph"
VERSION = 1


def to_dict(graph: Graph, path: Path) -> dict:
    return {
        "kind": KIND, "version": VERSION, "lab": graph.lab, "backend": graph.backend, "proxyMode": graph.proxy_mode,
        "nodes": [{"id": e.id, "kind": e.kind, "label": e.label, "addresses": list(e.addresses), "node": e.node,
                   "details": list(e.details), "attributes": e.attrs, "steps": path.element_steps(e.id)}
                  for e in graph.elements],
        "edges": [{"id": e.id, "kind": e.kind, "from": e.source, "to": e.target, "label": e.label, "down": e.down,
                   "attributes": e.attrs, "hops": path.edge_hops(e.id)}
                  for e in graph.edges + path.extra_edges()],
        "path": list(path.steps),
    }


def render(graph: Graph, path: Path) -> str:
    return json.dumps(to_dict(graph, path), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


FORMAT = Format("json", 60, render, (".json",), help="the graph as JSON data")
