"""What the NetworkPolicies say a check must see: the addresses a probe's connection has where each policy
is enforced, and netlab.netpol.evaluate's verdict on them. Pure (model only, no kernel).

Where the addresses are looked at (the enforcement contract: netlab's policy rules are in each node's
filter FORWARD chain (and OUTPUT in IPVS mode), ingress on the destination pod's node, egress on the
source pod's node):

* egress: on the source pod's node, after a DNAT made on that node (a ClusterIP, or a NodePort / external
  IP / LoadBalancer IP the pod's own node captures), before any SNAT; to a NodePort of another node, the
  destination is that node's address.
* ingress: on the endpoint's node, after the DNAT; the source is
  - the client pod's address (pods are never NATed among themselves, a ClusterIP's traffic from a pod is
    not masqueraded);
  - a node's own traffic: that node's address on the path (cni0's on its own node, which evaluate always
    allows; flannel.1's (vxlan) or its underlay address (host-gw) toward another node);
  - traffic kube-proxy masquerades (a NodePort / external IP / LoadBalancer IP with
    externalTrafficPolicy Cluster, a ClusterIP reached from a node or from outside): unchanged when the
    endpoint is on the node that made the DNAT (FORWARD runs before POSTROUTING's masquerade), else the
    address of that node toward the endpoint's node;
  - a pod's traffic to another node's address leaves its node masqueraded to that node's underlay address
    (flannel's rule), so a NodePort of another node sees the client's node.
  (This is iptables' and nftables' order of hooks. With IPVS, ip_vs makes the DNAT in INPUT and sends
  the connection on from LOCAL_OUT, where the policy rules are hooked too (OUTPUT): the same addresses.)

A Service check whose endpoints are partly allowed and partly denied expects `reachable-or-denied`: each
connection is either answered by an allowed endpoint or denied (which one depends on kube-proxy's random
choice); an answer from a denied endpoint fails the check. `Check.denied_by` lists every denial
(endpoint, direction, pod, policies) for `-v` and the JSON output.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from ..netpol.evaluate import Verdict, egress, pod_by_ip, verdict

MIXED = "reachable-or-denied"


@dataclass(frozen=True)
class Denial:
    """One denied path of a check: the pod whose `direction` isolation denied it and the policies
    that select that pod there (none of them allows the connection)."""
    direction: str                 # "ingress" | "egress"
    pod: str                       # ns/name of the isolated pod
    policies: tuple[str, ...]      # ns/name of the policies
    src: str                       # addresses as the enforcing node sees them
    dst: str
    port: int | None
    protocol: str
    endpoint: str | None = None    # ns/name of the Service endpoint this path reached (None: a direct probe)

    def text(self) -> str:
        where = f" (endpoint {self.endpoint})" if self.endpoint else ""
        return f"denied by {self.direction} of {self.pod}: {', '.join(self.policies)}{where}"

    def as_json(self) -> dict:
        return {"direction": self.direction, "pod": self.pod, "policies": list(self.policies), "src": self.src,
                "dst": self.dst, "port": self.port, "protocol": self.protocol, "endpoint": self.endpoint}


def has_policies(cluster) -> bool:
    return bool(getattr(cluster, "policies", None))


def address_toward(cluster, node, dst_node: str) -> ipaddress.IPv4Address:
    """The address a node's own (or masqueraded) traffic has on its way to a pod on `dst_node`."""
    if node.name == dst_node:
        return node.gateway                    # out through cni0
    if cluster.networking.backend not in ("vxlan", "ipip"):
        return node.ip
    from ..render.fabric import tunnelled
    # through flannel.1 or tunl0 the source is the tunnel device's /32; CrossSubnet's direct routes: eth0's
    return node.vtep_ip if tunnelled(cluster, node, cluster.node(dst_node)) else node.ip


def _denial(cluster, v: Verdict, src_pod_key: str | None, src, dst, port, protocol, endpoint=None) -> Denial:
    if v.direction == "egress":
        pod = src_pod_key or "?"
    else:
        p = pod_by_ip(cluster, ipaddress.ip_address(dst))
        pod = p.key if p is not None else str(dst)
    return Denial(v.direction or "?", pod, v.policies, str(src), str(dst), port or None, protocol, endpoint)


def _as_seen(cluster, src):
    """A hostNetwork pod's traffic is its node's (same namespace, same addresses, not selected)."""
    if src.kind == "pod":
        ns, _, name = src.name.partition("/")
        p = cluster.pod(ns, name) if hasattr(cluster, "pod") else None
        if p is not None and getattr(p, "host_network", False):
            return replace(src, kind="node", name=p.node, node=p.node)
    return src


def _proto(kind_or_proto: str) -> str:
    return "ICMP" if kind_or_proto.lower() == "icmp" else kind_or_proto.upper()


def direct(cluster, src, dst_ip, port: int | None, protocol: str) -> list[Denial] | None:
    """A probe straight to an address (a pod, a node, any IP; no Service in between) from a plan Source:
    None when the policies allow it, else its denial."""
    if not has_policies(cluster):
        return None
    src = _as_seen(cluster, src)
    dst_ip = ipaddress.ip_address(str(dst_ip))
    protocol = _proto(protocol)
    dst_pod = pod_by_ip(cluster, dst_ip)
    if src.kind == "node":
        if dst_pod is None:
            return None
        seen = address_toward(cluster, cluster.node(src.node), dst_pod.node)
    else:
        seen = ipaddress.ip_address(src.ip)
    v = verdict(cluster, seen, dst_ip, port or 0, protocol)
    if v.allowed:
        return None
    return [_denial(cluster, v, src.name if src.kind == "pod" else None, seen, dst_ip, port, protocol)]


def service_path(cluster, src, entry: str | None, dst_addr: str, ep, masq: bool, port: int,
                 protocol: str) -> tuple[Verdict, str, str]:
    """The verdict on one way a Service connection may go, with the (source, destination) addresses of the
    side that decided: from plan Source `src`, to `dst_addr` (the ClusterIP, a node's address, an external
    or LB IP) DNATed on node `entry` (None: the source's own node) to endpoint `ep` (model Endpoint);
    `masq`: kube-proxy marks it for masquerading."""
    nodes = {n.name: n for n in cluster.nodes}
    src = _as_seen(cluster, src)
    ep_ip = ipaddress.ip_address(str(ep.ip))
    src_node = src.node if src.kind in ("pod", "node") else None
    entry = entry or src_node
    pod, egress_dst, local = None, None, False
    if src.kind == "pod":
        pod = pod_by_ip(cluster, ipaddress.ip_address(src.ip))
        if entry in (None, src_node):
            arrive, egress_dst = ipaddress.ip_address(src.ip), ep_ip
        else:   # to another node's address: masqueraded by flannel on the way out
            arrive, egress_dst = nodes[src_node].ip, ipaddress.ip_address(dst_addr)
    elif src.kind == "node":
        local = entry in (None, src.node)
        arrive = None if local else nodes[src.node].ip
    else:
        arrive = ipaddress.ip_address(src.ip)
    if entry is None or entry not in nodes:   # no node known to take it: judge as if at the endpoint's
        entry = ep.node
    if local or (masq and ep.node != entry):
        seen = address_toward(cluster, nodes[entry], ep.node)
    else:                                     # FORWARD runs before POSTROUTING's masquerade
        seen = arrive
    if pod is not None and (egress_dst != ep_ip or seen != ipaddress.ip_address(src.ip)):
        out = egress(cluster, pod, egress_dst, port, protocol)
        if not out.allowed:
            return out, src.ip, str(egress_dst)
        # egress judged: the ingress side alone (its source is a node's address, never a pod's)
    return verdict(cluster, seen, ep_ip, port, protocol), str(seen), str(ep_ip)


def service_expectation(cluster, src, svc, port, pods: set[str], entries: list[str | None], dst_addr: str,
                        masq: bool) -> tuple[str, set[str], list[Denial]]:
    """For a Service check expected reachable with `pods` as the endpoints that may answer: the outcome the
    policies leave ("reachable", "denied" or MIXED), the pods that may still answer and the denials.
    `entries`: the nodes that may make the DNAT (several when the model cannot tell which, e.g. the
    node announcing a LoadBalancer IP); an endpoint allowed through one of them may answer."""
    if not has_policies(cluster):
        return "reachable", pods, []
    protocol = port.protocol
    eps = [e for e in svc.endpoints.get(port.name or "", []) if e.pod in pods]
    allowed: set[str] = set()
    denials: list[Denial] = []
    for e in eps:
        ok = False
        for entry in entries or [None]:
            v, a, b = service_path(cluster, src, entry, dst_addr, e, masq, e.port, protocol)
            if v.allowed:
                ok = True
            else:
                d = _denial(cluster, v, src.name if src.kind == "pod" else None, a, b, e.port, protocol,
                            f"{e.namespace}/{e.pod}")
                if d not in denials:
                    denials.append(d)
        if ok:
            allowed.add(e.pod)
    if not denials:
        return "reachable", pods, []
    if not allowed:
        return "denied", set(), denials
    return MIXED, allowed, denials
