"""The lab as a graph: elements (namespaces and devices) and the edges between them, and a path drawn over it.

Pure data. `netlab.graph.build` makes a `Graph` of a `Cluster`; the formats (netlab/graph/formats/) draw it.
Element ids are stable strings (`external`, `underlay`, `node:<node>`, `bridge:<node>`, `vtep:<node>`,
`tunl:<node>`, `pod:<ns>/<name>`, `svc:<ns>/<name>`, `addr:<ip>`); an edge's id is `edge:<id1>--<id2>`, in the order
`build` joined them (`Graph.edge_between` finds it either way).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import SpecError

# element kinds, in the order the legend lists them
ELEMENT_KINDS = ("external", "underlay", "node", "bridge", "vtep", "pod", "service", "address")
# edge kinds: a veth pair between two namespaces, a device of a node (cni0, flannel.1), a VXLAN tunnel,
# a host-gw route, a hostNetwork pod sharing its node's namespace, a Service's endpoint, and `path`: two
# consecutive ids of a highlighted path that no edge of the lab joins
EDGE_KINDS = ("veth", "device", "tunnel", "route", "hostnet", "endpoint", "path")


def edge_id(a: str, b: str) -> str:
    return f"edge:{a}--{b}"


@dataclass
class Element:
    id: str
    kind: str                  # one of ELEMENT_KINDS
    label: str                 # the short name drawn first (the pod's name, "cni0", ...)
    addresses: list[str] = field(default_factory=list)   # CIDRs or plain addresses, primary first
    node: str | None = None    # the Kubernetes node it lives in (drawn inside that node's box)
    details: list[str] = field(default_factory=list)     # further lines drawn under the label
    attrs: dict[str, Any] = field(default_factory=dict)  # the rest, for -o json (netns, interfaces ...)

    def lines(self) -> list[str]:
        """What a picture writes in the element's box: the label, its addresses, the details."""
        return [self.label, *self.addresses, *self.details]


@dataclass
class Edge:
    id: str
    kind: str                  # one of EDGE_KINDS
    source: str
    target: str
    label: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)
    down: bool = False         # the link is cut (a stopped node's uplink): drawn dashed


@dataclass
class Graph:
    lab: str
    backend: str               # vxlan | host-gw
    proxy_mode: str
    elements: list[Element] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)      # the Kubernetes nodes, in the lab's order

    def element(self, id: str) -> Element | None:
        return next((e for e in self.elements if e.id == id), None)

    def edge_between(self, a: str, b: str) -> Edge | None:
        """The edge joining `a` and `b`, whichever way it was made."""
        return next((e for e in self.edges if {e.source, e.target} == {a, b} and a != b), None)

    def by_netns(self, netns: str) -> str | None:
        """The id of the element that is network namespace `netns` (a pod, a node, the underlay, the external
        host), or None; a hostNetwork pod's namespace is its node's."""
        for e in self.elements:
            if e.attrs.get("netns") == netns and not e.attrs.get("hostNetwork"):
                return e.id
        return None

    def path(self, highlight: list[str] | tuple[str, ...]) -> Path:
        """The path `highlight` (element ids in order; repeats in a row count once) as steps over this graph."""
        steps: list[str] = []
        for id in highlight:
            if self.element(id) is None:
                known = ", ".join(e.id for e in self.elements[:6])
                raise SpecError("highlight", f"{id!r} is not an element of lab {self.lab}'s graph",
                                f"use the ids `netlab graph -o json` lists (e.g. {known})")
            if not steps or steps[-1] != id:
                steps.append(id)
        return Path(self, steps)


@dataclass
class Path:
    """A highlighted path: step i (from 1) is `steps[i-1]`; hop i joins step i and step i+1."""
    graph: Graph
    steps: list[str]

    def element_steps(self, id: str) -> list[int]:
        return [i for i, s in enumerate(self.steps, 1) if s == id]

    def hops(self) -> list[tuple[int, str, str, Edge]]:
        """(hop number, from id, to id, the edge) of every hop; a pair no edge joins gets a new `path` edge."""
        out = []
        for i, (a, b) in enumerate(zip(self.steps, self.steps[1:]), 1):
            edge = self.graph.edge_between(a, b) or Edge(f"edge:{a}--{b}#path{i}", "path", a, b)
            out.append((i, a, b, edge))
        return out

    def edge_hops(self, edge_id: str) -> list[int]:
        return [i for i, _, _, e in self.hops() if e.id == edge_id]

    def extra_edges(self) -> list[Edge]:
        """The `path` edges: hops between elements the lab does not join directly."""
        return [e for _, _, _, e in self.hops() if e.kind == "path"]

    def forward(self, edge: Edge) -> bool | None:
        """Whether the path crosses `edge` from its source to its target (True), the other way (False), both
        ways (None), or not at all (None)."""
        ways = {a == edge.source for _, a, _, e in self.hops() if e.id == edge.id}
        return ways.pop() if len(ways) == 1 else None


@dataclass(frozen=True)
class Format:
    """One output format of `netlab graph`: `render(graph, path) -> str | bytes`; `suffixes`: the file names
    `--output-file` infers it from; `binary`: bytes, not text."""
    name: str
    order: int
    render: Callable[[Graph, Path], str | bytes]
    suffixes: tuple[str, ...]
    binary: bool = False
    help: str = ""
