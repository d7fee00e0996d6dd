"""BIRD 2 configurations of a BGP lab, as text: a pure function of the model (no root, golden-tested).

A node's speaker (router id: its underlay address, AS `bgp.asNumber`):
- announces its podCIDR: a static blackhole route in protocol `pods` (as Calico's block route), sent
  to its peers through the filter `announced` (which names every protocol whose routes are announced:
  MetalLB's BGP mode's LoadBalancer prefixes are one more, `lb_ips`, whose static routes carry their
  advertisement's localPref and communities);
- peers with every other node (iBGP full mesh) or, with `routeReflector: true`, only with the first
  node, which reflects for the others (`rr client`), keeping the originator's next hop;
- peers with the external router (eBGP by default: the router is in AS `externalRouter.asNumber`,
  64513; iBGP when that is the cluster's own number), to which it announces the same routes and from
  which it takes none;
- takes from its node peers only prefixes inside the pod network (filter `learned`) and installs them
  in the node's routing table (protocol kernel: `ip route` shows them as `proto bird`), so pod traffic
  to another node's podCIDR is routed straight to that node's underlay address, unencapsulated.

The external router (the lab's external host, AS 64513) peers with every node, announces nothing and
installs what it learns into its kernel table (`merge paths`: equal routes from several nodes become
one ECMP route: MetalLB's BGP mode's LB IPs spread over the nodes announcing them).

MetalLB's BGP mode (`plan`: netlab/lb/bgpmode.py's published sessions and routes) with another backend:
a node a BGPPeer selects runs a speaker with that one session to the router (local AS myASN, the
BGPPeer's timers) and its `lb_ips`, nothing else; the router peers with those nodes only and takes the
pools' CIDRs from them.

Sessions are direct (every speaker is on the underlay's L2) with short timers (hold 6 s, keepalive
2 s by default; reconnect after 1 s), so a stopped node's routes are gone from its peers within the
hold time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..lb.bgpmode import Plan, Route
from ..model.objects import Cluster, Node
from ..spec.types import BgpConfig

ANNOUNCED = ("pods", "lb_ips")  # the protocols whose routes a node announces
LB_PROTOCOL = "lb_ips"          # MetalLB's BGP mode: the LoadBalancer prefixes a node announces
EXTERNAL_PROTOCOL = "dc_router"   # a node's session to the external router (the data centre's)


@dataclass(frozen=True)
class Peer:
    protocol: str     # the BIRD protocol name
    address: str
    asn: int
    description: str
    rr_client: bool = False   # this speaker reflects the peer's routes to its other clients
    hold_time: int | None = None        # a BGPPeer's timers (None: the template's, networking.bgp's)
    keepalive_time: int | None = None


def config_of(cluster: Cluster) -> BgpConfig:
    return cluster.networking.bgp or BgpConfig()


def router_address(cluster: Cluster) -> str:
    """The external router's address on the underlay: its own if `externalRouter.address` is set, else
    the external host's."""
    return config_of(cluster).external_address or str(cluster.external_ip)


def protocol_names(nodes: list[Node]) -> dict[str, str]:
    """node name -> the BIRD protocol name of a session to it: `node_` and the name with every character
    BIRD does not take in a symbol made `_` (and a number added when two names end up the same)."""
    out, used = {}, {EXTERNAL_PROTOCOL}
    for n in nodes:
        base = "node_" + re.sub(r"[^A-Za-z0-9_]", "_", n.name)
        name, i = base, 2
        while name in used:
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        out[n.name] = name
    return out


def reflector(cluster: Cluster) -> Node | None:
    """The route reflector (the first node) when `routeReflector` is set."""
    return cluster.nodes[0] if config_of(cluster).route_reflector and cluster.nodes else None


def is_bgp(cluster: Cluster) -> bool:
    return cluster.networking.backend == "bgp"


def has_speaker(cluster: Cluster, node: Node, lb: Plan | None) -> bool:
    """Whether a node runs BIRD: every node with the BGP backend; with another, a node MetalLB's BGP mode
    gives a session (a BGPPeer selecting it)."""
    return is_bgp(cluster) or (lb is not None and lb.session(node.name) is not None)


def router_runs(cluster: Cluster, lb: Plan | None) -> bool:
    return is_bgp(cluster) or (lb is not None and bool(lb.sessions))


def node_peers(cluster: Cluster, node: Node, lb: Plan | None = None) -> list[Peer]:
    """The sessions of a node's speaker: its node peers (BGP backend), then the external router."""
    cfg = config_of(cluster)
    session = lb.session(node.name) if lb is not None else None
    hold, keep = (session.hold_time, session.keepalive_time) if session is not None else (None, None)
    if not is_bgp(cluster):
        return [Peer(EXTERNAL_PROTOCOL, session.address, session.peer_asn, f"external router (BGPPeer {session.peer})",
                     hold_time=hold, keepalive_time=keep)] if session is not None else []
    names = protocol_names(cluster.nodes)
    rr = reflector(cluster)
    out = []
    for peer in cluster.nodes:
        if peer.name == node.name:
            continue
        if rr is not None and node.name != rr.name and peer.name != rr.name:
            continue   # a client talks to the reflector only
        out.append(Peer(names[peer.name], str(peer.ip), cfg.as_number, f"node {peer.name}",
                        rr_client=rr is not None and node.name == rr.name))
    out.append(Peer(EXTERNAL_PROTOCOL, router_address(cluster), cfg.external_as, "external router",
                    hold_time=hold, keepalive_time=keep))
    return out


def router_peers(cluster: Cluster, lb: Plan | None = None) -> list[Peer]:
    """The external router's sessions: one per node (BGP backend), or one per node with a MetalLB session."""
    cfg = config_of(cluster)
    names = protocol_names(cluster.nodes)
    out = []
    for n in cluster.nodes:
        session = lb.session(n.name) if lb is not None else None
        if not is_bgp(cluster) and session is None:
            continue
        hold, keep = (session.hold_time, session.keepalive_time) if session is not None else (None, None)
        asn = cfg.as_number if is_bgp(cluster) else session.my_asn
        out.append(Peer(names[n.name], str(n.ip), asn, f"node {n.name}", hold_time=hold, keepalive_time=keep))
    return out


def _timers(hold: int, keepalive: int, connect: bool = True) -> list[str]:
    out = [f"hold time {hold};", f"startup hold time {hold};", f"keepalive time {keepalive};"]
    return out + ["connect delay time 1;", "connect retry time 1;", "error wait time 1, 5;"] if connect else out


def _block(head: str, body: list[str], indent: str = "") -> list[str]:
    return [f"{indent}{head} {{"] + [f"{indent}  {line}" for line in body] + [f"{indent}}}"]


def _session(peer: Peer, template: str) -> list[str]:
    body = [f'description "{peer.description}";', f"neighbor {peer.address} as {peer.asn};"]
    if peer.hold_time is not None or peer.keepalive_time is not None:   # a BGPPeer's own timers
        body += _timers(peer.hold_time or 3 * peer.keepalive_time, peer.keepalive_time or max(1, peer.hold_time // 3),
                        connect=False)
    if peer.rr_client:
        body.append("rr client;")
        body.append("ipv4 { import filter learned; export filter reflected; };")
    return _block(f"protocol bgp {peer.protocol} from {template}", body)


def _head(what: str, router_id: str) -> list[str]:
    return [f"# {what}: written by netlab from the lab's model (netlab/bgp/bird.py); do not edit",
            "log stderr all;", f"router id {router_id};", "",
            *_block("protocol device", ["scan time 10;"]), ""]


def _kernel() -> list[str]:
    # BGP's routes go to the kernel table; nothing is learned from it; ECMP when several peers offer a route
    return _block("protocol kernel", ["ipv4 { import none; export where source = RTS_BGP; };", "merge paths yes;"])


def _lb_routes(lb: Plan | None, node: Node) -> list[str]:
    """MetalLB's BGP mode: the static protocol of the LoadBalancer prefixes a node announces, each route
    carrying its BGPAdvertisement's localPref and communities from its first announcement (set by the export
    filter, a reload announced a new prefix bare first: docs/design.md, MetalLB's BGP mode)."""
    routes = lb.routes_of(node.name) if lb is not None else []
    return ["# the LoadBalancer prefixes this node announces (MetalLB's BGP mode: BGPPeer, BGPAdvertisement),",
            "# with their advertisement's localPref and communities",
            *_block(f"protocol static {LB_PROTOCOL}", ["ipv4;"] + [_lb_route(r) for r in routes]), ""]


def _lb_route(r: Route) -> str:
    sets = [f"bgp_local_pref = {r.local_pref};"] if r.local_pref is not None else []
    for c in r.communities:
        sets.append(f"bgp_community.add(({c[0]},{c[1]}));" if len(c) == 2 else
                    f"bgp_large_community.add(({c[0]},{c[1]},{c[2]}));")
    return f"route {r.prefix} blackhole" + (f" {{ {' '.join(sets)} }};" if sets else ";")


def _announced(protocols: tuple[str, ...]) -> list[str]:
    return ["# what is announced to every peer: the routes of these protocols",
            *_block("filter announced", [f'if proto = "{p}" then accept;' for p in protocols] + ["reject;"]), ""]


def node_config(cluster: Cluster, node: Node, lb: Plan | None = None) -> str:
    """bird.conf of one node's speaker. `lb`: MetalLB's BGP mode's sessions and routes (its published
    file, netlab/lb/bgpmode.py); with a backend other than bgp the speaker has only MetalLB's session."""
    cfg = config_of(cluster)
    if not is_bgp(cluster):
        return _lb_node_config(cluster, node, lb)
    pod_net = cluster.networking.pod_subnet
    lines = _head(f"BGP speaker of node {node.name} (lab {cluster.name})", str(node.ip))
    lines += ["# the routes this node announces: its podCIDR", *_block("protocol static pods", [
        "ipv4;", f"route {node.pod_cidr} blackhole;"]), ""]
    if lb is not None:   # MetalLB's BGP mode in this lab
        lines += _lb_routes(lb, node)
    lines += _announced(ANNOUNCED if lb is not None else ("pods",))
    rr = reflector(cluster)
    if rr is not None and rr.name == node.name:
        lines += ["# what the reflector sends its clients: its own routes and those it learned",
                  *_block("filter reflected", ['if proto = "pods" then accept;']
                          + ["if source = RTS_BGP then accept;", "reject;"]), ""]
    lines += [f"# what is taken from the other nodes: routes inside the pod network {pod_net}",
              *_block("filter learned", [f"if net ~ [ {pod_net}+ ] then accept;", "reject;"]), ""]
    lines += _kernel() + [""]
    timers = _timers(cfg.hold_time, cfg.keepalive_time)
    lines += _block("template bgp nodes", [f"local {node.ip} as {cfg.as_number};", "direct;", *timers,
                                           "ipv4 { import filter learned; export filter announced; };"]) + [""]
    lines += _block("template bgp uplink", [f"local {node.ip} as {cfg.as_number};", "direct;", *timers,
                                            "ipv4 { import none; export filter announced; };"]) + [""]
    for peer in node_peers(cluster, node, lb):
        lines += _session(peer, "uplink" if peer.protocol == EXTERNAL_PROTOCOL else "nodes")
    return "\n".join(lines) + "\n"


def _lb_node_config(cluster: Cluster, node: Node, lb: Plan | None) -> str:
    """A node's speaker when the pod network is not BGP's: MetalLB's session to the router, nothing else
    (no kernel protocol: the node learns nothing)."""
    cfg = config_of(cluster)
    session = lb.session(node.name) if lb is not None else None
    if session is None:
        return ""
    lines = _head(f"MetalLB BGP speaker of node {node.name} (lab {cluster.name})", str(node.ip))
    lines += _lb_routes(lb, node)
    lines += _announced((LB_PROTOCOL,))
    lines += _block("template bgp uplink", [f"local {node.ip} as {session.my_asn};", "direct;",
                                            *_timers(cfg.hold_time, cfg.keepalive_time),
                                            "ipv4 { import none; export filter announced; };"]) + [""]
    for peer in node_peers(cluster, node, lb):
        lines += _session(peer, "uplink")
    return "\n".join(lines) + "\n"


def router_config(cluster: Cluster, lb: Plan | None = None) -> str:
    """bird.conf of the external router: every node a peer (BGP backend; else the nodes with a MetalLB
    session), their routes into the kernel table, equal ones merged into one ECMP route."""
    cfg = config_of(cluster)
    addr = router_address(cluster)
    nets = [f"{cluster.networking.pod_subnet}+"] if is_bgp(cluster) else []
    nets += [f"{p}+" for p in (lb.accept if lb is not None else ())]
    what = ([f"the pod network {cluster.networking.pod_subnet}"] if is_bgp(cluster) else []) + \
        (["the LoadBalancer pools' prefixes"] if lb is not None and lb.accept else [])
    lines = _head(f"external router of lab {cluster.name}", addr)
    lines += [f"# what is taken from the nodes: routes inside {' and '.join(what) or 'nothing'}",
              *_block("filter learned", ([f"if net ~ [ {', '.join(nets)} ] then accept;"] if nets else [])
                      + ["reject;"]), ""]
    lines += _kernel() + [""]
    lines += _block("template bgp nodes", [f"local {addr} as {cfg.external_as};", "direct;",
                                           *_timers(cfg.hold_time, cfg.keepalive_time),
                                           "ipv4 { import filter learned; export none; };"]) + [""]
    for peer in router_peers(cluster, lb):
        lines += _session(peer, "nodes")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- reading birdc

@dataclass(frozen=True)
class Protocol:
    name: str
    proto: str        # BGP, Static, Kernel, Device
    state: str        # up, down, start
    info: str         # for BGP: Established, Active, Connect... and the last error

    @property
    def established(self) -> bool:
        return self.proto == "BGP" and self.info.split(" ")[0] == "Established"


def parse_protocols(text: str) -> dict[str, Protocol]:
    """`birdc show protocols`' table: name -> Protocol (the banner and the header skipped)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[0] in ("BIRD", "Name") or line.startswith(" "):
            continue
        name, proto, _table, state = parts[:4]
        # Since is a time ("10:00:01.123") or a date and a time; Info follows
        rest = parts[4:]
        while rest and re.match(r"^[0-9][0-9:.\-]*$", rest[0]):
            rest = rest[1:]
        out[name] = Protocol(name, proto, state, " ".join(rest))
    return out


def bgp_summary(protocols: dict[str, Protocol], expected: list[str]) -> str:
    """`established/expected` sessions, as `get nodes -o wide` shows them."""
    up = sum(1 for name in expected if name in protocols and protocols[name].established)
    return f"{up}/{len(expected)}"

