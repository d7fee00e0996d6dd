"""How each kind of element and edge is drawn, shared by the formats (DOT, Mermaid, the HTML legend)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Look:
    fill: str                  # background colour (#rrggbb)
    shape: str                 # Graphviz shape
    meaning: str               # what the legend says


@dataclass(frozen=True)
class Line:
    colour: str
    style: str                 # Graphviz style: solid, dashed, dotted, bold
    meaning: str


ELEMENTS = {
    "external": Look("#f2f2f2", "house", "the external host (a client outside the cluster)"),
    "underlay": Look("#d9d9d9", "cylinder", "the underlay: the bridge joining the nodes (the nodes' LAN)"),
    "node": Look("#cfe2f3", "box3d", "a node's network namespace (eth0, its routes and kube-proxy's rules)"),
    "bridge": Look("#d9ead3", "box", "cni0: the node's bridge, gateway of its pods"),
    "vtep": Look("#fff2cc", "octagon", "flannel.1 (VXLAN VTEP) or tunl0 (IP-in-IP): the node's tunnel device"),
    "pod": Look("#ffffff", "ellipse", "a pod's network namespace (eth0)"),
    "service": Look("#ead1dc", "hexagon", "a Service (its ClusterIP, ports and type)"),
    "address": Look("#eeeeee", "note", "an endpoint address that is no pod of the lab"),
}

EDGES = {
    "veth": Line("#444444", "solid", "a veth pair between two namespaces"),
    "device": Line("#444444", "bold", "a device of the node (cni0, flannel.1, tunl0)"),
    "tunnel": Line("#b45f06", "dashed", "a VXLAN or IP-in-IP tunnel over the underlay (and the route through it)"),
    "route": Line("#b45f06", "dashed", "host-gw (or CrossSubnet, one subnet): a route to the other node's podCIDR via its address"),
    "hostnet": Line("#444444", "dotted", "a hostNetwork pod: it shares its node's namespace"),
    "endpoint": Line("#741b47", "dotted", "a Service's endpoint (port/protocol)"),
    "path": Line("#cc0000", "dashed", "a hop of the path between elements no link joins directly"),
}

HIGHLIGHT = "#cc0000"          # the colour of a highlighted path
HIGHLIGHT_FILL = "#f4cccc"
DOWN = "#999999"               # a link that is down


def step_marks(steps: list[int]) -> str:
    """`[1]` or `[2, 5]`: the numbers of the path's steps at an element."""
    return "[" + ", ".join(str(s) for s in steps) + "]" if steps else ""


def hop_marks(hops: list[int]) -> str:
    """`1→2` (hop 1 goes from step 1 to step 2), several comma separated."""
    return ", ".join(f"{h}\u2192{h + 1}" for h in hops)
