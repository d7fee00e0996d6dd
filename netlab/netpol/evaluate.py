"""What the NetworkPolicies of a cluster allow: a pure function of the model (`Cluster.policies`, the pods'
labels, `Cluster.namespace_labels`), used by the probe's expectations and by the renderers' tests.

The semantics (networking.k8s.io/v1):
- A pod is isolated for ingress (egress) when at least one policy of its namespace selects it and has
  Ingress (Egress) in its effective policyTypes. A pod that is not isolated in a direction allows all
  traffic in that direction.
- An isolated pod allows a connection when at least one rule of at least one of the policies that
  select it allows it (policies combine as a union; order does not matter).
- A connection from pod A to pod B needs both A's egress and B's ingress to allow it.
- A rule allows when one of its peers matches the other end (no peers: any) and one of its ports matches
  the destination port (no ports: any). A named port is the destination pod's container port of that name
  and protocol (for an egress rule to an address that is not a pod, a named port matches nothing).
- Peers: podSelector alone = pods of the policy's namespace; namespaceSelector alone = every pod of the
  matching namespaces; both = matching pods in matching namespaces; ipBlock = addresses in the CIDR but not
  in an `except` (pods' addresses included, as every common implementation does).
- Stateful: replies of an allowed connection pass (not modelled here: the question is about connections).
- Always allowed, whatever the policies (Kubernetes documents these, implementations agree): traffic between
  a pod and the node it runs on (the kubelet's probes; netlab: the node's underlay address, its cni0 and
  flannel.1 addresses), and a pod's traffic to itself. hostNetwork pods are not selected (their traffic is
  their node's).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .policy import NAMESPACE_NAME_LABEL, NetworkPolicy, Peer, PolicyPort, Rule

Address = ipaddress.IPv4Address


@dataclass(frozen=True)
class Verdict:
    """allowed; when denied, the direction that denied ("egress" of the source pod, or "ingress" of the
    destination pod) and the policies that isolate that pod there (none of them allows the connection);
    when allowed, the keys ("ns/name") of the policies whose rules allowed it (empty when neither end is
    isolated) and why, when it is one of the always-allowed cases ("node", "self")."""
    allowed: bool
    direction: str | None = None
    policies: tuple[str, ...] = ()
    reason: str = ""


def namespace_labels(cluster, namespace: str) -> dict[str, str]:
    """A namespace's labels as the API server keeps them (kubernetes.io/metadata.name always set)."""
    labels = dict((getattr(cluster, "namespace_labels", None) or {}).get(namespace) or {})
    labels[NAMESPACE_NAME_LABEL] = namespace
    return labels


def pod_by_ip(cluster, ip: Address):
    """The pod (not hostNetwork) that has address `ip`, or None."""
    for p in cluster.pods:
        if not getattr(p, "host_network", False) and p.ip == ip:
            return p
    return None


def node_addresses(node) -> set[Address]:
    """The addresses a node's own traffic to its pods may come from: its underlay address, cni0's, flannel.1's."""
    return {node.ip, node.gateway, node.pod_cidr.network_address}


def selecting(cluster, pod, direction: str) -> list[NetworkPolicy]:
    """The policies that isolate `pod` for `direction` ("ingress" or "egress"), in the cluster's order."""
    if pod is None or getattr(pod, "host_network", False):
        return []
    want = direction.capitalize()
    return [p for p in getattr(cluster, "policies", None) or []
            if p.namespace == pod.namespace and want in p.policy_types and p.pod_selector.matches(pod.labels)]


def peer_matches(cluster, policy: NetworkPolicy, peer: Peer, ip: Address) -> bool:
    if peer.ip_block is not None:
        return peer.ip_block.contains(ip)
    pod = pod_by_ip(cluster, ip)
    if pod is None:
        return False
    if peer.namespace_selector is None:
        ns_ok = pod.namespace == policy.namespace
    else:
        ns_ok = peer.namespace_selector.matches(namespace_labels(cluster, pod.namespace))
    pod_ok = peer.pod_selector is None or peer.pod_selector.matches(pod.labels)
    return ns_ok and pod_ok


def port_matches(pp: PolicyPort, dst_pod, port: int, protocol: str) -> bool:
    if pp.protocol != protocol:
        return False
    if pp.port is None:
        return True
    if isinstance(pp.port, str):
        return dst_pod is not None and dst_pod.port_named(pp.port, protocol) == port
    if pp.end_port is not None:
        return pp.port <= port <= pp.end_port
    return pp.port == port


def rule_allows(cluster, policy: NetworkPolicy, rule: Rule, peer_ip: Address, dst_pod, port: int,
                protocol: str) -> bool:
    if rule.ports and not any(port_matches(pp, dst_pod, port, protocol) for pp in rule.ports):
        return False
    return not rule.peers or any(peer_matches(cluster, policy, pe, peer_ip) for pe in rule.peers)


def _side(cluster, pod, direction: str, peer_ip: Address, dst_pod, port: int, protocol: str) -> Verdict:
    pols = selecting(cluster, pod, direction)
    if not pols:
        return Verdict(True)
    allowing = tuple(p.key for p in pols
                     if any(rule_allows(cluster, p, r, peer_ip, dst_pod, port, protocol)
                            for r in (p.ingress if direction == "ingress" else p.egress)))
    if allowing:
        return Verdict(True, policies=allowing)
    return Verdict(False, direction, tuple(p.key for p in pols))


def egress(cluster, src_pod, dst_ip, port: int, protocol: str = "TCP") -> Verdict:
    """The source pod's side alone: its egress policies on a connection to `dst_ip` (as the source's node
    sees it, after a DNAT there), with what is always allowed (itself, its own node)."""
    dst_ip = ipaddress.ip_address(dst_ip)
    dst = pod_by_ip(cluster, dst_ip)
    if dst is not None and dst is src_pod:
        return Verdict(True, reason="self")
    node = next((n for n in cluster.nodes if n.name == src_pod.node), None)
    if node is not None and dst_ip in node_addresses(node):
        return Verdict(True, reason="node")
    return _side(cluster, src_pod, "egress", dst_ip, dst, port, protocol)


def verdict(cluster, src_ip, dst_ip, port: int, protocol: str = "TCP") -> Verdict:
    """Whether a connection from `src_ip` to `dst_ip`:`port`/`protocol` is allowed by the policies, the
    addresses being those the destination pod's node sees (after a Service's DNAT, before any SNAT made
    on the destination's node; a NodePort's masquerade on another node shows that node's address)."""
    src_ip, dst_ip = ipaddress.ip_address(src_ip), ipaddress.ip_address(dst_ip)
    src, dst = pod_by_ip(cluster, src_ip), pod_by_ip(cluster, dst_ip)
    out = Verdict(True)
    if src is not None:
        out = egress(cluster, src, dst_ip, port, protocol)
        if not out.allowed or out.reason:
            return out
    elif dst is not None:
        node = next((n for n in cluster.nodes if n.name == dst.node), None)
        if node is not None and src_ip in node_addresses(node):
            return Verdict(True, reason="node")
    inn = _side(cluster, dst, "ingress", src_ip, dst, port, protocol)
    if not inn.allowed:
        return inn
    return Verdict(True, policies=tuple(dict.fromkeys(out.policies + inn.policies)))
