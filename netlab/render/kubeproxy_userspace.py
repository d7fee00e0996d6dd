"""kube-proxy's userspace mode (removed from kube-proxy in 1.26), rendered per node as data. Pure.

In userspace mode the Service's packets are not translated to an endpoint by the kernel: each Service
port gets a listener of a proxy process on the node (netlab.workload.userspace_proxy), and iptables
rules in the node's nat table send the Service's traffic to that listener:

  PREROUTING -> KUBE-PORTALS-CONTAINER   ClusterIP, externalIPs, LB IPs, from pods and from outside:
                                         REDIRECT to the listener's port (the incoming interface's address)
  PREROUTING -> KUBE-NODEPORT-CONTAINER  a NodePort on a local address: REDIRECT likewise
  OUTPUT     -> KUBE-PORTALS-HOST        the same from the node itself: DNAT to <node IP>:<listener port>
  OUTPUT     -> KUBE-NODEPORT-HOST       (REDIRECT in OUTPUT would go to 127.0.0.1)

The proxy accepts the connection and opens its own to an endpoint, round-robin, trying the next endpoint
when a connect fails; the endpoint sees the node's address as the client. sessionAffinity ClientIP is
honoured by the proxy; the traffic policies are not (kube-proxy's userspace mode never had them: every
usable endpoint of the cluster takes every entry's traffic).

kube-proxy took a random free port per Service port; netlab derives it from the Service port's name
(`listener_ports`), so a render is a function of the model and a Service keeps its port while others
come and go. Rule text is written as iptables-save prints it back (see render.kubeproxy_iptables).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ..model.objects import Cluster, Node
from .services import PortInfo, ep_string, is_proxied, port_info
from .tables import Desired, TableState

PORTALS_CONTAINER = "KUBE-PORTALS-CONTAINER"
PORTALS_HOST = "KUBE-PORTALS-HOST"
NODEPORT_CONTAINER = "KUBE-NODEPORT-CONTAINER"
NODEPORT_HOST = "KUBE-NODEPORT-HOST"
CHAINS = (PORTALS_CONTAINER, PORTALS_HOST, NODEPORT_CONTAINER, NODEPORT_HOST)

# The listeners' ports: below the node port range and the kernel's ephemeral ports (32768-60999), so
# that neither a NodePort nor a connection of the node's own takes one.
PORT_BASE = 20000
PORT_SPAN = 10000

PROTOCOLS = ("TCP", "UDP")          # kube-proxy's userspace mode never proxied SCTP
UDP_IDLE_SECONDS = 0.25             # kube-proxy's --udp-timeout default: a UDP session's idle lifetime
CONFIG_VERSION = 1

_COMMENT_PORTALS = "handle ClusterIPs; NOTE: this must be before the NodePort rules"
_COMMENT_NODEPORTS = "handle service NodePorts; NOTE: this must be the last rule in the chain"
JUMPS = [("PREROUTING", f'-m comment --comment "{_COMMENT_PORTALS}" -j {PORTALS_CONTAINER}'),
         ("PREROUTING", f'-m addrtype --dst-type LOCAL -m comment --comment "{_COMMENT_NODEPORTS}" '
                        f"-j {NODEPORT_CONTAINER}"),
         ("OUTPUT", f'-m comment --comment "{_COMMENT_PORTALS}" -j {PORTALS_HOST}'),
         ("OUTPUT", f'-m addrtype --dst-type LOCAL -m comment --comment "{_COMMENT_NODEPORTS}" -j {NODEPORT_HOST}')]


@dataclass(frozen=True)
class Listener:
    """One Service port's proxy listener on a node."""
    info: PortInfo
    port: int                       # where the proxy listens (every address of the node)
    endpoints: tuple[str, ...]      # "ip:port", sorted: the proxy's round-robin order

    @property
    def protocol(self) -> str:
        return self.info.port.protocol

    @property
    def portal_ips(self) -> list[str]:
        """The addresses that reach the listener on the Service port: ClusterIP, externalIPs, LB IPs."""
        return [self.info.cluster_ip, *self.info.external_ips, *self.info.lb_vips]


def _usable(info: PortInfo) -> tuple[str, ...]:
    """The ready endpoints, else the serving terminating ones (kube-proxy's fallback), sorted by "ip:port"."""
    eps = info.svc.endpoints.get(info.port.name or "", [])
    ready = [e for e in eps if e.ready] or [e for e in eps if not e.ready and e.serving and e.terminating]
    return tuple(sorted(ep_string(e) for e in ready))


def taken_ports(cluster: Cluster, node: Node) -> set[tuple[str, int]]:
    """(protocol, port) that something else listens on in the node's namespace: hostNetwork pods' ports."""
    out = set()
    for p in cluster.pods_on(node.name):
        if p.host_network:
            out |= {(c.protocol, c.port) for ctr in p.containers for c in ctr.ports}
            out |= {(proto, port) for port, proto in p.builtin_ports}
    return out


def listener_ports(names: list[tuple[str, str]],
                   taken: set[tuple[str, int]] = frozenset()) -> dict[tuple[str, str], int]:
    """(service port name, protocol) -> its listener's port: PORT_BASE + a hash of the name, the next free
    one on a collision (names taken in sorted order, so the result is the same whatever the input order)."""
    used = set(taken)
    out = {}
    for name, proto in sorted(names):
        start = int(hashlib.sha256(f"{name}/{proto.lower()}".encode()).hexdigest()[:8], 16) % PORT_SPAN
        for i in range(PORT_SPAN):
            port = PORT_BASE + (start + i) % PORT_SPAN
            if (proto, port) not in used:
                break
        else:
            raise ValueError("no free port left for the userspace proxy's listeners")
        used.add((proto, port))
        out[(name, proto)] = port
    return out


def listeners(cluster: Cluster, node: Node) -> list[Listener]:
    """The node's proxy listeners, one per proxied TCP/UDP Service port, sorted by (name, protocol)."""
    infos = [port_info(svc, p) for svc in cluster.services if is_proxied(svc)
             for p in svc.ports if p.protocol in PROTOCOLS]
    ports = listener_ports([(i.name, i.port.protocol) for i in infos], taken_ports(cluster, node))
    out = [Listener(i, ports[(i.name, i.port.protocol)], _usable(i)) for i in infos]
    return sorted(out, key=lambda ln: (ln.info.name, ln.protocol))


def _rule(chain: str, proto: str, name: str, dport: int, target: str, dst: str | None = None) -> str:
    """A rule as iptables-save prints it: -d, -p, the comment, the port match, the target."""
    where = f" -d {dst}/32" if dst else ""
    return f'-A {chain}{where} -p {proto} -m comment --comment "{name}" -m {proto} --dport {dport} -j {target}'


def userspace_tables(cluster: Cluster, node: Node) -> Desired:
    """The node's nat chains of userspace mode (see the module docstring)."""
    chains: dict[str, list[str]] = {c: [] for c in CHAINS}
    for ln in listeners(cluster, node):
        proto, name = ln.info.proto, ln.info.name
        redirect = f"REDIRECT --to-ports {ln.port}"
        dnat = f"DNAT --to-destination {node.ip}:{ln.port}"
        for ip in ln.portal_ips:
            chains[PORTALS_CONTAINER].append(_rule(PORTALS_CONTAINER, proto, name, ln.info.port.port, redirect, ip))
            chains[PORTALS_HOST].append(_rule(PORTALS_HOST, proto, name, ln.info.port.port, dnat, ip))
        if ln.info.node_port:
            chains[NODEPORT_CONTAINER].append(_rule(NODEPORT_CONTAINER, proto, name, ln.info.node_port, redirect))
            chains[NODEPORT_HOST].append(_rule(NODEPORT_HOST, proto, name, ln.info.node_port, dnat))
    return {"nat": TableState(chains=chains, jumps=list(JUMPS))}


def proxy_config(cluster: Cluster, node: Node) -> dict:
    """What the node's proxy process serves (netlab.workload.userspace_proxy reads it as JSON)."""
    return {"version": CONFIG_VERSION, "node": node.name, "udpIdleSeconds": UDP_IDLE_SECONDS,
            "listeners": [{"service": ln.info.name, "protocol": ln.protocol, "port": ln.port,
                           "endpoints": list(ln.endpoints), "affinitySeconds": ln.info.sticky_seconds}
                          for ln in listeners(cluster, node)]}


def config_text(cluster: Cluster, node: Node) -> str:
    return json.dumps(proxy_config(cluster, node), indent=1, sort_keys=True) + "\n"


def describe(cluster: Cluster, node: Node) -> str:
    """`netlab render`'s text after the iptables payload: the listeners, then the proxy's config file."""
    lines = [f"# userspace mode: the proxy process of node {node.name} (netlab.workload.userspace_proxy)"]
    for ln in listeners(cluster, node):
        entries = [f"{ip}:{ln.info.port.port}" for ip in ln.portal_ips]
        if ln.info.node_port:
            entries.append(f"NodePort {ln.info.node_port}")
        eps = ", ".join(ln.endpoints) or "no endpoints: not listening, refused"
        sticky = f" (ClientIP affinity {ln.info.sticky_seconds} s)" if ln.info.sticky_seconds else ""
        lines.append(f"#   {ln.protocol.lower()} :{ln.port} {ln.info.name} <- {', '.join(entries)} -> {eps}{sticky}")
    return "\n".join(lines) + "\n" + config_text(cluster, node)
