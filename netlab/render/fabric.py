"""The desired L2/L3 state of every namespace of a lab, as data. Pure: no root, golden-testable.

The overlay backends live in a small registry (`OVERLAYS`); each one adds, per node, what that node
needs to reach every *other* node's podCIDR, the way flannel's backends do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..model.objects import Cluster, Node, Pod, short_hash
from ..spec.types import HOSTS_VXLAN_OVERHEAD

UNDERLAY_BRIDGE = "underlay0"
VXLAN_DEV = "flannel.1"
VXLAN_VNI = 1
VXLAN_PORT = 8472
VXLAN_OVERHEAD = 50
IPIP_DEV = "tunl0"                 # the ipip module's fallback device, in every namespace, as Calico uses it
IPIP_OVERHEAD = 20                 # the outer IPv4 header
BGP_PORT = 179                     # backend bgp: each node's BIRD listens there
BRIDGE = "cni0"


@dataclass(frozen=True)
class Route:
    dst: str                       # CIDR, "default" for 0.0.0.0/0
    gateway: str | None = None
    dev: str | None = None
    onlink: bool = False


@dataclass(frozen=True)
class Neigh:
    dst: str
    lladdr: str
    dev: str


@dataclass(frozen=True)
class Fdb:
    lladdr: str
    dst: str
    dev: str


@dataclass(frozen=True)
class Vxlan:
    name: str
    vni: int
    port: int
    local: str
    dev: str                       # underlay device
    mac: str
    mtu: int
    address: str                   # CIDR


@dataclass(frozen=True)
class Ipip:
    """tunl0: no local or remote address (each route's gateway is the outer destination), up, one /32."""
    name: str
    mtu: int
    address: str                   # CIDR


@dataclass
class NodeFabric:
    node: str
    netns: str
    eth0_address: str              # CIDR
    eth0_mtu: int
    gateway: str
    bridge_address: str            # CIDR on cni0
    pod_mtu: int
    vxlan: Vxlan | None = None
    ipip: Ipip | None = None
    routes: list[Route] = field(default_factory=list)
    neighbours: list[Neigh] = field(default_factory=list)
    fdb: list[Fdb] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)


@dataclass
class PodFabric:
    key: str
    netns: str
    hostname: str
    host_veth: str
    address: str                   # CIDR on eth0
    gateway: str
    mtu: int


OVERHEAD = {"vxlan": VXLAN_OVERHEAD, "ipip": IPIP_OVERHEAD}


def pod_mtu(cluster: Cluster) -> int:
    """The pods' (and the tunnel device's) MTU: the underlay's less the encapsulation's headers, whether or
    not CrossSubnet routes some peers directly (as Calico and flannel size them: one MTU per cluster)."""
    return cluster.networking.mtu - OVERHEAD.get(cluster.networking.backend, 0)


def tunnelled(cluster: Cluster, node: Node, peer: Node) -> bool:
    """Whether `node` encapsulates its traffic to `peer`'s pods: always with mode Always; with CrossSubnet
    only when the peer's underlay address is in another subnet (else a direct route, as host-gw's)."""
    return cluster.networking.tunnel_mode != "CrossSubnet" or not cluster.same_subnet(node, peer)


def _vxlan(cluster: Cluster, node: Node, nf: NodeFabric) -> None:
    nf.vxlan = Vxlan(VXLAN_DEV, VXLAN_VNI, VXLAN_PORT, str(node.ip), "eth0", node.vtep_mac,
                     cluster.networking.mtu - VXLAN_OVERHEAD, f"{node.vtep_ip}/32")
    for peer in cluster.nodes:
        if peer.name == node.name:
            continue
        if not tunnelled(cluster, node, peer):   # vxlanMode CrossSubnet (flannel's DirectRouting)
            nf.routes.append(Route(str(peer.pod_cidr), str(peer.ip), "eth0"))
            continue
        nf.neighbours.append(Neigh(str(peer.vtep_ip), peer.vtep_mac, VXLAN_DEV))
        nf.fdb.append(Fdb(peer.vtep_mac, str(peer.ip), VXLAN_DEV))
        nf.routes.append(Route(str(peer.pod_cidr), str(peer.vtep_ip), VXLAN_DEV, onlink=True))


def _host_gw(cluster: Cluster, node: Node, nf: NodeFabric) -> None:
    for peer in cluster.nodes:
        if peer.name != node.name:
            nf.routes.append(Route(str(peer.pod_cidr), str(peer.ip), "eth0"))


def _ipip(cluster: Cluster, node: Node, nf: NodeFabric) -> None:
    """Calico's IP-in-IP: tunl0 up with an address of the node's podCIDR, and per peer node its podCIDR via
    the peer's underlay address, onlink, through tunl0 (the route's gateway becomes the outer destination;
    the outer source is eth0's address). ipipMode CrossSubnet: peers in the same subnet get host-gw's route."""
    nf.ipip = Ipip(IPIP_DEV, cluster.networking.mtu - IPIP_OVERHEAD, f"{node.vtep_ip}/32")
    for peer in cluster.nodes:
        if peer.name == node.name:
            continue
        if tunnelled(cluster, node, peer):
            nf.routes.append(Route(str(peer.pod_cidr), str(peer.ip), IPIP_DEV, onlink=True))
        else:
            nf.routes.append(Route(str(peer.pod_cidr), str(peer.ip), "eth0"))


def _bgp(cluster: Cluster, node: Node, nf: NodeFabric) -> None:
    """No route of its own: the node's BGP speaker (netlab/bgp/) learns the other nodes' podCIDRs from
    its peers and installs them (`proto bird`), routed to each node's underlay address as host-gw's are."""


OVERLAYS: dict[str, Callable[[Cluster, Node, NodeFabric], None]] = {"vxlan": _vxlan, "host-gw": _host_gw,
                                                                    "bgp": _bgp, "ipip": _ipip}


def nat_outgoing(cluster: Cluster) -> bool:
    """Whether pod traffic leaving the pod network is masqueraded to the node's address: always with the
    overlays (nothing outside routes back to a pod IP); with BGP as `bgp.natOutgoing` says (Calico's
    IPPool field; default false: the pod network is routable, the external router knows it)."""
    bgp = cluster.networking.bgp
    return not (cluster.networking.backend == "bgp" and bgp is not None and not bgp.nat_outgoing)

# NO_IPV6: netlab's clusters are IPv4 single-stack, so the interfaces it makes in a lab's namespaces carry no
# IPv6 (written before they are made: a namespace's `default` is what its new interfaces start with; `all`
# is left alone, so every lo keeps ::1 and a server listening on [::] still works). Kubernetes' pods would
# have a link-local address on eth0; each one joins its multicast groups and solicits routers, and cni0
# floods every such packet to every other pod on the node: with 100 pods a node, IPv6 was 30% of the time the
# C floor (benchmarks/floor.c) took to bring up 10,000 pods here, 38.7 s with it and 27.1 s without.
NO_IPV6 = {"net/ipv6/conf/default/disable_ipv6": "1"}
NODE_SYSCTLS = {
    "net/ipv4/ip_forward": "1",
    "net/bridge/bridge-nf-call-iptables": "1",
    "net/ipv4/conf/all/rp_filter": "0",
    "net/ipv4/conf/default/rp_filter": "0",
    # kube-proxy sets this so NodePorts answer on 127.0.0.1 (DNAT of localhost traffic)
    "net/ipv4/conf/all/route_localnet": "1",
    # answer every probe with its ICMP error (REJECT, closed port) instead of rate-limiting them
    "net/ipv4/icmp_ratelimit": "0",
    **NO_IPV6,
}
# pods answer closed UDP ports with ICMP port-unreachable; bulk probes must not hit the rate limit
POD_SYSCTLS = {"net/ipv4/icmp_ratelimit": "0", **NO_IPV6}
# on the pod's interface: arp_notify, as the CNI bridge plugin (flannel's delegate) sets it, and IPv6 off
# (NO_IPV6: the namespace's default already says so for a new eth0; this also turns it off in a lab made by an
# earlier netlab, whose pods had it; the CNI plugin's accept_dad=0 is moot then)
# what a new pod writes on its eth0: the veth's peer is made in the pod's namespace, whose default already says
# disable_ipv6=1 (written first), so eth0 starts with it (a pod checked later is given the whole set)
POD_NEW_ETH0_SYSCTLS = {"net/ipv4/conf/eth0/arp_notify": "1"}
POD_ETH0_SYSCTLS = {"net/ipv6/conf/eth0/disable_ipv6": "1", **POD_NEW_ETH0_SYSCTLS}


def node_fabric(cluster: Cluster, node: Node) -> NodeFabric:
    net = cluster.networking
    nf = NodeFabric(node=node.name, netns=node.netns,
                    eth0_address=f"{node.ip}/{cluster.node_subnet(node).prefixlen}", eth0_mtu=net.mtu,
                    gateway=str(cluster.node_gateway(node)),
                    bridge_address=f"{node.gateway}/{node.pod_cidr.prefixlen}", pod_mtu=pod_mtu(cluster),
                    sysctls=dict(NODE_SYSCTLS))
    nf.routes.append(Route("default", nf.gateway, "eth0"))
    overlay = OVERLAYS.get(net.backend)
    if overlay is None:
        raise ValueError(f"unknown overlay backend {net.backend!r}; valid: {', '.join(OVERLAYS)}")
    overlay(cluster, node, nf)
    return nf


def pod_fabric(cluster: Cluster, pod: Pod) -> PodFabric:
    node = cluster.node(pod.node)
    return PodFabric(pod.key, pod.netns, pod.uts_hostname, pod.host_veth, f"{pod.ip}/{node.pod_cidr.prefixlen}",
                     str(node.gateway), pod_mtu(cluster))


# ---------------------------------------------------------------- a lab spread over hosts
SEGMENT_BRIDGE = "segment0"        # in nl.<lab>.segment: the switch between the emulated hosts' NICs
HOST_VXLAN_DEV = "underlay.vx"     # in each host: the underlay's VXLAN to the other hosts, a port of underlay0
ZERO_MAC = "00:00:00:00:00:00"     # an FDB entry for it floods (broadcast, unknown unicast) to its dst


@dataclass
class HostFabric:
    """One host of a lab spread over hosts: its NIC on the hosts' segment, and its underlay bridge (the
    nodes placed on it hang off it) joined to the other hosts' by a VXLAN over the NIC, flooding to each."""
    host: str
    netns: str
    nic: str                       # the NIC (emulated: eth0 in the host's namespace)
    nic_address: str               # CIDR on the hosts' segment
    nic_mtu: int
    segment_veth: str              # emulated: the NIC's peer on the segment's bridge
    underlay_mtu: int              # underlay0, the VXLAN device and the nodes' eth0
    vxlan: Vxlan
    fdb: list[Fdb] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    home: bool = False             # the first host: the underlay's gateway and the external host are here


def segment_veth(host: str) -> str:
    """The segment side of an emulated host's NIC (15 bytes at most, as every link name)."""
    return "host" + short_hash(host, n=8)


def host_fabric(cluster: Cluster, host: str) -> HostFabric:
    """The desired state of one host (the Cluster document's `hosts`): what decides it is the hosts'
    segment, the host's address and which nodes are placed on it (`Cluster.nodes_on_host`)."""
    hc = cluster.networking.hosts
    if hc is None:
        raise ValueError(f"lab {cluster.name} is not spread over hosts")
    spec = hc.host(host)
    mac = bytes.fromhex(short_hash(cluster.name, host, "underlay-vtep", n=12))
    mac_text = ":".join(f"{b:02x}" for b in bytes([(mac[0] & 0xFE) | 0x02]) + mac[1:])
    mtu = underlay_mtu(cluster)
    vx = Vxlan(HOST_VXLAN_DEV, hc.vni, hc.port, str(spec.address), spec.interface, mac_text, mtu, "")
    peers = [Fdb(ZERO_MAC, str(h.address), HOST_VXLAN_DEV) for h in hc.hosts if h.name != host]
    return HostFabric(host, cluster.host_netns(host), spec.interface, f"{spec.address}/{hc.segment.prefixlen}",
                      hc.mtu, segment_veth(host), mtu, vx, peers, [n.name for n in cluster.nodes_on_host(host)],
                      home=hc.home.name == host)


def underlay_mtu(cluster: Cluster) -> int:
    """The nodes' eth0 MTU (networking.mtu): on a lab spread over hosts, at most the hosts' NIC MTU less
    the underlay VXLAN's 50 bytes (the parser makes that the default and refuses more)."""
    return cluster.networking.mtu


def mtu_layers(cluster: Cluster) -> list[tuple[str, int]]:
    """Each encapsulation layer and the MTU inside it, outermost first: (hosts' NIC, ) underlay (the nodes'
    eth0), pods (less flannel.1's or tunl0's headers)."""
    layers = []
    hc = cluster.networking.hosts
    if hc is not None:
        layers.append(("hosts' NIC", hc.mtu))
        layers.append((f"underlay VXLAN between hosts (-{HOSTS_VXLAN_OVERHEAD}): nodes' eth0", underlay_mtu(cluster)))
    else:
        layers.append(("underlay: nodes' eth0", underlay_mtu(cluster)))
    overhead = OVERHEAD.get(cluster.networking.backend, 0)
    dev = {"vxlan": VXLAN_DEV, "ipip": IPIP_DEV}.get(cluster.networking.backend)
    layers.append((f"{dev} (-{overhead}): pods" if dev else "pods", pod_mtu(cluster)))
    return layers


def max_ping_payload(mtu: int) -> int:
    """The largest ICMP echo payload (`ping -s`) that fits an MTU unfragmented: less IPv4's 20 and ICMP's 8."""
    return mtu - 28


def describe_hosts(cluster: Cluster) -> str:
    """`ip`-command-like text of the hosts, the segment and the MTU of each layer (for `netlab render
    --fabric` and golden tests)."""
    hc = cluster.networking.hosts
    if hc is None:
        return ""
    lines = [f"# hosts ({hc.mode}): segment {hc.segment}, underlay VXLAN vni {hc.vni} port {hc.port}"]
    lines.append("# MTU: " + " > ".join(f"{name} {mtu}" for name, mtu in mtu_layers(cluster)))
    if hc.mode == "emulated":
        lines.append(f"# netns {cluster.segment_netns}: ip link add {SEGMENT_BRIDGE} type bridge; "
                     f"ip link set {SEGMENT_BRIDGE} mtu {hc.mtu} up")
    for h in hc.hosts:
        hf = host_fabric(cluster, h.name)
        v = hf.vxlan
        lines.append(f"# host {h.name} (netns {hf.netns}){' home: gateway and external host' if hf.home else ''}: "
                     f"nodes {', '.join(hf.nodes) or '-'}")
        if hc.mode == "emulated":
            lines.append(f"ip link add {hf.segment_veth} type veth peer {hf.nic}; "
                         f"ip link set {hf.segment_veth} master {SEGMENT_BRIDGE}  # in {cluster.segment_netns}")
        if hc.mode == "emulated":
            lines.append(f"ip link set {hf.nic} mtu {hf.nic_mtu} up; ip addr add {hf.nic_address} dev {hf.nic}")
        else:
            lines.append(f"# {hf.nic} {hf.nic_address} mtu {hf.nic_mtu}: the machine's own NIC, not changed by netlab")
        lines.append(f"ip link add {UNDERLAY_BRIDGE} type bridge; "
                     f"ip link set {UNDERLAY_BRIDGE} mtu {hf.underlay_mtu} up")
        if hc.mode == "emulated":
            lines.append(f"ip link add {v.name} type vxlan id {v.vni} local {v.local} dev {v.dev} dstport {v.port}; "
                         f"ip link set {v.name} address {v.mac} mtu {v.mtu} master {UNDERLAY_BRIDGE} up")
        else:   # made from the machine's root namespace (its NIC is there), straight into the host's
            lines.append(f"ip link add {v.name} address {v.mac} mtu {v.mtu} netns {hf.netns} type vxlan id {v.vni} "
                         f"local {v.local} dev {v.dev} dstport {v.port}  # run in the machine's root namespace; "
                         f"its UDP socket stays there")
            lines.append(f"ip link set {v.name} master {UNDERLAY_BRIDGE} up")
        for f in hf.fdb:
            lines.append(f"bridge fdb append {f.lladdr} dev {f.dev} dst {f.dst} self permanent")
    return "\n".join(lines) + "\n"


def node_local_ips(cluster: Cluster, node: Node) -> list[str]:
    """The node's own addresses: what `-m addrtype --dst-type LOCAL` matches in its namespace (the packet
    tracer's LOCAL), and where IPVS mode puts NodePorts (every address but kube-ipvs0's and loopback)."""
    ips = [str(node.ip), str(node.gateway)]
    if cluster.networking.backend in ("vxlan", "ipip"):   # flannel.1's or tunl0's /32
        ips.append(str(node.vtep_ip))
    return ips


def describe(cluster: Cluster, node: Node) -> str:
    """`ip`-command-like text of a node's desired fabric (for `netlab render --fabric` and golden tests)."""
    nf = node_fabric(cluster, node)
    lines = [f"# node {node.name} (netns {nf.netns})"]
    for k, v in nf.sysctls.items():
        lines.append(f"sysctl -w {k.replace('/', '.')}={v}")
    lines.append(f"ip link set eth0 mtu {nf.eth0_mtu} up; ip addr add {nf.eth0_address} dev eth0")
    lines.append(f"ip link add {BRIDGE} type bridge; ip addr add {nf.bridge_address} dev {BRIDGE}; "
                 f"ip link set {BRIDGE} up")
    if nf.vxlan:
        v = nf.vxlan
        lines.append(f"ip link add {v.name} type vxlan id {v.vni} local {v.local} dev {v.dev} dstport {v.port} "
                     f"nolearning; ip link set {v.name} address {v.mac} mtu {v.mtu} up; "
                     f"ip addr add {v.address} dev {v.name}")
    if nf.ipip:
        t = nf.ipip
        lines.append(f"modprobe ipip  # {t.name} appears in every namespace; ip link set {t.name} mtu {t.mtu} up; "
                     f"ip addr add {t.address} dev {t.name}")
    for n in nf.neighbours:
        lines.append(f"ip neigh replace {n.dst} lladdr {n.lladdr} dev {n.dev} nud permanent")
    for f in nf.fdb:
        lines.append(f"bridge fdb append {f.lladdr} dev {f.dev} dst {f.dst} self permanent")
    for r in nf.routes:
        via = f" via {r.gateway}" if r.gateway else ""
        dev = f" dev {r.dev}" if r.dev else ""
        lines.append(f"ip route replace {r.dst}{via}{dev}{' onlink' if r.onlink else ''}")
    for pod in cluster.pods_on(node.name):
        if pod.host_network:
            lines.append(f"# pod {pod.key}: hostNetwork, in {node.netns} with address {node.ip}")
            continue
        pf = pod_fabric(cluster, pod)
        lines.append(f"# pod {pod.key}: netns {pf.netns}, {pf.host_veth} <-> eth0 {pf.address} "
                     f"mtu {pf.mtu}, default via {pf.gateway}")
    return "\n".join(lines) + "\n"


def iptables_flannel(cluster: Cluster, node: Node) -> dict[str, list[str]]:
    """flannel's masquerade and forward chains for one node, as iptables-restore lines per table.

    Pod-to-pod traffic is never NATed; traffic from pods to anything outside the pod network is
    masqueraded to the node's address (unless `nat_outgoing` says the pod network is routable).
    """
    pod_net = str(cluster.networking.pod_subnet)
    cidr = str(node.pod_cidr)
    masq = '-m comment --comment "flanneld masq"'
    fwd = '-m comment --comment "flanneld forward"'
    nat = [
        f"-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 {masq} -j RETURN",
        f"-A FLANNEL-POSTRTG -s {cidr} -d {pod_net} {masq} -j RETURN",
        f"-A FLANNEL-POSTRTG -s {pod_net} -d {cidr} {masq} -j RETURN",
        f"-A FLANNEL-POSTRTG ! -s {pod_net} -d {cidr} {masq} -j RETURN",
        f"-A FLANNEL-POSTRTG -s {pod_net} ! -d 224.0.0.0/4 {masq} -j MASQUERADE --random-fully",
        f"-A FLANNEL-POSTRTG ! -s {pod_net} -d {pod_net} {masq} -j MASQUERADE --random-fully",
    ]
    if not nat_outgoing(cluster):   # a routable pod network (BGP, natOutgoing false): pods keep their address
        nat.remove(f"-A FLANNEL-POSTRTG -s {pod_net} ! -d 224.0.0.0/4 {masq} -j MASQUERADE --random-fully")
    flt = [
        f"-A FLANNEL-FWD -s {pod_net} {fwd} -j ACCEPT",
        f"-A FLANNEL-FWD -d {pod_net} {fwd} -j ACCEPT",
    ]
    return {"nat": nat, "filter": flt}


FLANNEL_JUMPS = {
    "nat": [("POSTROUTING", '-m comment --comment "flanneld masq" -j FLANNEL-POSTRTG')],
    "filter": [("FORWARD", '-m comment --comment "flanneld forward" -j FLANNEL-FWD')],
}
FLANNEL_CHAINS = {"nat": ["FLANNEL-POSTRTG"], "filter": ["FLANNEL-FWD"]}
