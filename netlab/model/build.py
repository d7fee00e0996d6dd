"""Scenario -> Cluster: expand Deployments, schedule pods, allocate node and pod addresses (host-local
style), ClusterIPs and NodePorts, and compute endpoints. Pure: the previous allocation is passed in
(from the lab's state) so that a reconcile keeps every address that is still valid.
"""
from __future__ import annotations

import hashlib
import heapq
import ipaddress
import json
import secrets
from typing import Any

from ..errors import SpecError
from ..spec.types import PodSpec, PodTemplate, Scenario
from ..names import node_netns, pod_netns
from .objects import Cluster, Endpoint, Node, Pod, Service, ServicePort, short_hash

# Kubernetes' "safe" alphabet for generated names (no vowels, no confusable digits).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _safe_encode(data: bytes, n: int) -> str:
    value = int.from_bytes(hashlib.sha256(data).digest(), "big")
    out = []
    for _ in range(n):
        value, r = divmod(value, len(SAFE_ALPHABET))
        out.append(SAFE_ALPHABET[r])
    return "".join(out)


def template_hash(template: PodTemplate) -> str:
    """Stands in for pod-template-hash: changes exactly when the pod template changes."""
    doc = {"labels": template.labels, "nodeName": template.node_name, "nodeSelector": template.node_selector,
           "tolerateControlPlane": template.tolerate_control_plane,
           **({"hostNetwork": True} if template.host_network else {}),
           "containers": [[c.name, c.image, c.command, c.args,
                           [[p.port, p.protocol, p.name] + ([p.host_port, p.host_ip] if p.host_port else [])
                            for p in c.ports],
                           sorted(c.env.items()), c.working_dir] + ([c.apps] if c.apps else [])
                          for c in template.containers]}
    return _safe_encode(json.dumps(doc, sort_keys=True).encode(), 10)


def expand(scenario: Scenario) -> list[PodSpec]:
    """Bare pods plus the pods of every Deployment, named <deploy>-<template-hash>-<5 chars>, and of
    every standalone ReplicaSet, named <replicaset>-<5 chars>, and of every StatefulSet, <name>-<ordinal>."""
    pods = list(scenario.pods)
    bare = {(p.namespace, p.name) for p in pods}
    names = set(bare)
    for d in scenario.deployments:
        h = template_hash(d.template)
        for i in range(d.replicas):
            seed = f"{d.namespace}/{d.name}/{h}/{i}"
            name = f"{d.name}-{h}-{_safe_encode(seed.encode(), 5)}"
            if (d.namespace, name) in bare:
                raise SpecError(f"Deployment {d.namespace}/{d.name}", f"pod name {name} is taken by another Pod",
                                "rename that Pod")
            attempt = 0
            while (d.namespace, name) in names:  # two replicas drew the same suffix (27^5 of them): draw again
                attempt += 1
                name = f"{d.name}-{h}-{_safe_encode(f'{seed}/{attempt}'.encode(), 5)}"
            names.add((d.namespace, name))
            labels = dict(d.template.labels)
            labels["pod-template-hash"] = h
            tmpl = PodTemplate(labels, d.template.node_name, d.template.node_selector, d.template.containers,
                               d.template.tolerate_control_plane, d.template.restart_policy,
                               d.template.hostname, d.template.host_network, d.template.volumes, d.template.dns)
            pods.append(PodSpec(d.namespace, name, tmpl, owner=f"Deployment/{d.name}"))
    for r in getattr(scenario, "replicasets", []):  # a standalone ReplicaSet's pods: <rs>-<5 chars>
        for i in range(r.replicas):
            seed, attempt = f"{r.namespace}/{r.name}/rs/{i}", 0
            name = f"{r.name}-{_safe_encode(seed.encode(), 5)}"
            while (r.namespace, name) in names:
                attempt += 1
                name = f"{r.name}-{_safe_encode(f'{seed}/{attempt}'.encode(), 5)}"
            names.add((r.namespace, name))
            pods.append(PodSpec(r.namespace, name, r.template, owner=f"ReplicaSet/{r.name}"))
    for s in getattr(scenario, "statefulsets", []):  # a StatefulSet's pods: <sts>-<ordinal>
        for o in range(s.start, s.start + s.replicas):
            name = f"{s.name}-{o}"
            if (s.namespace, name) in names:
                raise SpecError(f"StatefulSet {s.namespace}/{s.name}", f"pod name {name} is taken by another pod",
                                "rename that Pod or the StatefulSet")
            names.add((s.namespace, name))
            pods.append(PodSpec(s.namespace, name, s.template, owner=f"StatefulSet/{s.name}"))
    return pods


def _pick_node(pod: PodSpec, nodes: list[Node], load: dict[str, int]) -> Node:
    t = pod.template
    if t.node_name is not None:  # nodeName bypasses the scheduler, as in Kubernetes
        return next(n for n in nodes if n.name == t.node_name)
    return min(_fitting(pod, nodes), key=lambda n: (load[n.name], n.index))


def _fitting(pod: PodSpec, nodes: list[Node]) -> list[Node]:
    """The nodes the scheduler may put the pod on (its nodeSelector, the control plane's taint); a SpecError
    naming the pod's document when there is none."""
    t = pod.template
    where = f"Pod {pod.namespace}/{pod.name}" if pod.owner is None else \
        f"{pod.owner.replace('/', ' ' + pod.namespace + '/')}"
    selected = [n for n in nodes if all(n.labels.get(k) == v for k, v in t.node_selector.items())]
    fits = [n for n in selected if n.schedulable or t.tolerate_control_plane]
    if not fits:
        path = "spec.nodeSelector" if pod.owner is None else "spec.template.spec.nodeSelector"
        sel = ",".join(f"{k}={v}" for k, v in t.node_selector.items()) or "(none)"
        if selected:
            raise SpecError(where, f"{path} {sel} only matches the tainted control-plane node "
                            f"{', '.join(n.name for n in selected)}",
                            "add a toleration for node-role.kubernetes.io/control-plane or change the nodeSelector")
        raise SpecError(where, f"{path} {sel} matches no node",
                        "label a node in the Cluster document (nodes[].labels) or change the nodeSelector")
    return fits


class _Placer:
    """`_pick_node`'s choice for each pod in turn (the least loaded node that fits it, the first of them in the
    nodes' order on a tie), without a look at every node for every pod: the nodes that fit a pod depend only on
    its template's nodeSelector and toleration, so each such kind of pod has a heap of them by (load, order).
    Loads only grow, so an entry whose load is behind is put back with its node's load when it comes up
    (10,000 pods over 100 nodes: 0.02 s where the scan took 0.4 s)."""

    def __init__(self, nodes: list[Node], load: dict[str, int]):
        self.nodes, self.load = nodes, load
        self.heaps: dict[tuple, list] = {}

    def pick(self, pod: PodSpec) -> Node:
        t = pod.template
        if t.node_name is not None:
            return _pick_node(pod, self.nodes, self.load)
        key = (tuple(sorted(t.node_selector.items())), bool(t.tolerate_control_plane))
        heap = self.heaps.get(key)
        if heap is None:   # (what fits no node is refused by _fitting)
            heap = self.heaps[key] = [(self.load[n.name], n.index, n) for n in _fitting(pod, self.nodes)]
            heapq.heapify(heap)
        while True:
            load, index, node = heap[0]
            now = self.load[node.name]
            if now == load:
                return node
            heapq.heapreplace(heap, (now, index, node))


def build(scenario: Scenario, previous: dict[str, Any] | None = None, pods: list[PodSpec] | None = None) -> Cluster:
    """`pods`: the pods to run, when something else decided them (a live lab's store, where the
    controllers made them); by default the scenario's pods and its Deployments' replicas."""
    prev = previous if isinstance(previous, dict) else {}
    pods_given = pods

    def table(key: str) -> dict[str, dict]:
        """A mapping from the previous state, keeping only well-formed entries (the file is a hint)."""
        value = prev.get(key)
        if not isinstance(value, dict):
            return {}
        return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, (dict, str))}
    prev_nodes = {k: v for k, v in table("nodes").items() if isinstance(v, dict)}
    prev_pods = {k: v for k, v in table("pods").items() if isinstance(v, dict)}
    prev_ipam = {k: v for k, v in table("ipam").items() if isinstance(v, str)}
    net = scenario.networking
    lab = scenario.name

    # ---- nodes: IPs .2 upward in the node subnet, podCIDRs in order; both kept across reconciles
    node_hosts = net.node_subnet.hosts()
    gateway_ip = next(node_hosts)
    external_ip = net.node_subnet.broadcast_address - 1
    # the gateway, the external host's two addresses and (BGP backend) an external router address of its own
    reserved = {gateway_ip, external_ip, external_ip - 1}
    if net.bgp is not None and net.bgp.external_address:
        reserved.add(ipaddress.IPv4Address(net.bgp.external_address))
    cidrs = list(net.pod_subnet.subnets(new_prefix=net.node_cidr_mask)) \
        if 2 ** (net.node_cidr_mask - net.pod_subnet.prefixlen) <= 4096 else None
    used_ips, used_cidrs = set(), set()
    kept: dict[str, tuple[ipaddress.IPv4Address, ipaddress.IPv4Network]] = {}
    for spec in scenario.nodes:
        old = prev_nodes.get(spec.name)
        if not old:
            continue
        try:
            ip, cidr = ipaddress.IPv4Address(old["ip"]), ipaddress.IPv4Network(old["podCIDR"])
        except (KeyError, ValueError):
            continue
        own = spec.subnet or net.node_subnet
        if ip in own and ip not in reserved and ip != own.network_address + 1 and ip not in used_ips and \
                cidr.subnet_of(net.pod_subnet) and cidr.prefixlen == net.node_cidr_mask and cidr not in used_cidrs:
            kept[spec.name] = (ip, cidr)
            used_ips.add(ip)
            used_cidrs.add(cidr)
    nodes: list[Node] = []
    free_ips = {None: (h for h in net.node_subnet.hosts() if h not in used_ips and h not in reserved)}
    for s in dict.fromkeys(spec.subnet for spec in scenario.nodes if spec.subnet is not None):
        # a node's own underlay subnet (nodes[].subnet): its first address is the underlay's gateway there
        free_ips[s] = (h for h in s.hosts() if h not in used_ips and h != s.network_address + 1)
    free_cidrs = (c for c in (cidrs or net.pod_subnet.subnets(new_prefix=net.node_cidr_mask)) if c not in used_cidrs)
    for i, spec in enumerate(scenario.nodes):
        ip, cidr = kept.get(spec.name) or (next(free_ips[spec.subnet]), next(free_cidrs))
        mac_bytes = bytes.fromhex(short_hash(lab, spec.name, "vtep", n=12))
        mac = ":".join(f"{b:02x}" for b in bytes([(mac_bytes[0] & 0xFE) | 0x02]) + mac_bytes[1:])
        nodes.append(Node(spec.name, spec.role, i, dict(spec.labels), spec.schedulable, ip, cidr,
                          node_netns(lab, spec.name), mac, subnet=spec.subnet, host=spec.host))
    by_name = {n.name: n for n in nodes}
    from ..lb.pools import check_node_addresses
    check_node_addresses(scenario.documents, nodes)   # MetalLB's pools stay off the nodes' addresses

    # ---- pods: keep the node and IP of pods that already exist, schedule the rest
    specs = expand(scenario) if pods is None else list(pods)
    load = {n.name: 0 for n in nodes}
    placed: dict[str, Node] = {}
    for ps in specs:
        key = f"{ps.namespace}/{ps.name}"
        old = prev_pods.get(key)
        if old and old.get("node") in by_name:
            node = by_name[old["node"]]
            t = ps.template
            ok = (t.node_name in (None, node.name)) and \
                all(node.labels.get(k) == v for k, v in t.node_selector.items())
            if ok:
                placed[key] = node
                load[node.name] += 1
    placer = _Placer(nodes, load)
    for ps in specs:
        key = f"{ps.namespace}/{ps.name}"
        if key not in placed:
            node = placer.pick(ps)
            placed[key] = node
            load[node.name] += 1

    from ..spec.capacity import pods_per_node
    for n in nodes:
        most = pods_per_node(n.pod_cidr.num_addresses)
        if load[n.name] > most.value:
            raise SpecError(f"node {n.name}", f"{load[n.name]} pods are scheduled on it, but {most.source} "
                            f"(podCIDR {n.pod_cidr})", f"use fewer replicas or {most.fix}")

    # host-local IPAM: .2 upward, gateway .1, continuing after the last reserved address
    used: dict[str, set] = {n.name: set() for n in nodes}
    ips: dict[str, ipaddress.IPv4Address] = {}
    uids: dict[str, str] = {}
    for ps in specs:
        key = f"{ps.namespace}/{ps.name}"
        old = prev_pods.get(key)
        node = placed[key]
        if ps.template.host_network:   # no address of its own: its node's (and no podCIDR address)
            ips[key] = node.ip
            if old and old.get("node") == node.name:
                uids[key] = str(old.get("uid") or "")
            continue
        if old and old.get("node") == node.name:
            try:
                ip = ipaddress.IPv4Address(old.get("ip"))
            except ValueError:
                continue
            if ip in node.pod_cidr and ip not in used[node.name] and \
                    node.pod_cidr.network_address + 2 <= ip < node.pod_cidr.broadcast_address:
                ips[key] = ip
                used[node.name].add(ip)
                uids[key] = str(old.get("uid") or "")
    last = {}
    for n in nodes:
        try:
            last_ip = ipaddress.IPv4Address(prev_ipam.get(n.name, ""))
            last[n.name] = last_ip if last_ip in n.pod_cidr else None
        except ValueError:
            last[n.name] = None
    for ps in specs:
        key = f"{ps.namespace}/{ps.name}"
        if key in ips:
            continue
        node = placed[key]
        first = int(node.pod_cidr.network_address) + 2
        end = int(node.pod_cidr.broadcast_address) - 1
        start = int(last[node.name]) + 1 if last[node.name] is not None else first
        size = end - first + 1
        for k in range(size):
            cand = ipaddress.IPv4Address(first + ((start - first + k) % size))
            if cand not in used[node.name]:
                break
        ips[key] = cand
        used[node.name].add(cand)
        last[node.name] = cand
    pods = []
    for ps in specs:
        key = f"{ps.namespace}/{ps.name}"
        uid = uids.get(key) or secrets.token_hex(8)
        ready = (prev_pods.get(key) or {}).get("ready") is not False  # as `up` last observed it
        host = ps.template.host_network
        pods.append(Pod(ps.namespace, ps.name, dict(ps.template.labels), placed[key].name, ips[key], uid,
                        ps.template.containers, ps.owner,
                        placed[key].netns if host else pod_netns(lab, ps.namespace, ps.name), ready,
                        ps.template.restart_policy, hostname=ps.template.hostname, host_network=host,
                        dns=ps.template.dns))

    # a still picture (no live store): the add-on Services `up` writes with the scenario's (netlab/dns/addon.py)
    extra = addon_services(scenario) if pods_given is None else []
    services = _services(scenario, {k: v for k, v in table("services").items() if isinstance(v, dict)}, pods, nodes,
                         extra)
    from ..dns.addon import SERVICES as ADDONS   # the scenario's Services first, as written; the add-ons after
    services = [s for s in services if s.key not in ADDONS] + [s for s in services if s.key in ADDONS]
    return Cluster(lab, net, nodes, ["default", "kube-system", "kube-public", "kube-node-lease"]
                   + [ns for ns in scenario.namespaces if ns not in ("default", "kube-system", "kube-public",
                                                                      "kube-node-lease")],
                   pods, services, gateway_ip, external_ip, scenario.source,
                   {k: str(v) for k, v in last.items() if v is not None}, list(scenario.expectations),
                   templates=list(scenario.templates), policies=list(scenario.policies),
                   namespace_labels={k: dict(v) for k, v in scenario.namespace_labels.items()})


def addon_services(scenario: Scenario) -> list:
    """The add-on Services (default/kubernetes, kube-system/kube-dns: netlab/dns/addon.py) the scenario
    does not write itself, parsed as a scenario's are."""
    from ..dns import addon
    from ..spec.kinds import REGISTRY, Context, ObjectDoc
    have = {(s.namespace, s.name) for s in scenario.services}
    ctx = Context(ignored=[], networking=scenario.networking, namespaces=list(scenario.namespaces))
    subnet = scenario.networking.service_subnet
    for doc in (addon.kubernetes_service(subnet), addon.dns_service(subnet)):
        md = doc["metadata"]
        if (md["namespace"], md["name"]) not in have:
            REGISTRY["Service"].parse(ObjectDoc(doc, f"Service {md['namespace']}/{md['name']}", -1), ctx)
    return ctx.services


def _services(scenario: Scenario, prev: dict[str, Any], pods: list[Pod], nodes: list[Node],
              extra: list = ()) -> list[Service]:
    net = scenario.networking
    subnet = net.service_subnet
    from ..dns.addon import reserved_owner
    # .1 and .10 belong to default/kubernetes and kube-system/kube-dns (kubeadm's): no other Service
    # may take them, and those two get them when they name no clusterIP
    owners = reserved_owner(subnet)
    reserved = {ip: what for ip, (_, what) in owners.items()}
    own = {key: ip for ip, (key, _) in owners.items()}
    taken: dict[ipaddress.IPv4Address, str] = {}
    specs = [s for s in scenario.services] + list(extra)
    ips: dict[str, ipaddress.IPv4Address | None] = {}
    for s in specs:
        where = f"Service {s.namespace}/{s.name}"
        if s.cluster_ip in (None, "None") or s.type == "ExternalName":
            if s.cluster_ip is None and s.type != "ExternalName" and f"{s.namespace}/{s.name}" in own:
                ip = own[f"{s.namespace}/{s.name}"]
                taken[ip] = f"{s.namespace}/{s.name}"
                ips[f"{s.namespace}/{s.name}"] = ip
            continue
        ip = ipaddress.IPv4Address(s.cluster_ip)
        if ip in reserved and own.get(f"{s.namespace}/{s.name}") != ip:
            raise SpecError(where, f"spec.clusterIP {ip} is reserved for {reserved[ip]}", "pick another address")
        if ip in taken:
            raise SpecError(where, f"spec.clusterIP {ip} is taken by Service {taken[ip]}", "pick another address")
        taken[ip] = f"{s.namespace}/{s.name}"
        ips[f"{s.namespace}/{s.name}"] = ip
    wanted = [s for s in specs if f"{s.namespace}/{s.name}" not in ips and s.cluster_ip != "None"
              and s.type != "ExternalName"]
    for s in wanted:  # first keep the previous addresses, so a new service cannot take one by hash
        key = f"{s.namespace}/{s.name}"
        old = (prev.get(key) or {}).get("clusterIP")
        try:
            cand = ipaddress.IPv4Address(old) if isinstance(old, str) else None
        except ValueError:
            cand = None
        if cand is not None and cand in subnet and cand not in taken and cand not in reserved \
                and cand not in (subnet.network_address, subnet.broadcast_address):
            taken[cand] = key
            ips[key] = cand
    for s in wanted:
        key = f"{s.namespace}/{s.name}"
        if key in ips:
            continue
        cand = free_cluster_ip(key, subnet, lambda c: c in taken or c in reserved)
        taken[cand] = key
        ips[key] = cand

    lo, hi = net.nodeport_range
    used_np: dict[tuple[int, str], str] = {}
    for s in specs:
        key = f"{s.namespace}/{s.name}"
        for i, p in enumerate(s.ports):
            if p.node_port is not None:
                k = (p.node_port, p.protocol)
                if k in used_np:
                    other = "another port of this Service" if used_np[k] == key else f"Service {used_np[k]}"
                    raise SpecError(f"Service {key}", f"spec.ports[{i}].nodePort {p.node_port}/{p.protocol} "
                                    f"is also used by {other}", "pick another nodePort or leave it out")
                used_np[k] = key
        if s.health_check_node_port is not None:
            k = (s.health_check_node_port, "TCP")
            if k in used_np:
                other = "a nodePort of this Service" if used_np[k] == key else f"Service {used_np[k]}"
                raise SpecError(f"Service {key}", f"spec.healthCheckNodePort {s.health_check_node_port} is also "
                                f"used by {other}", "pick another port or leave healthCheckNodePort out")
            used_np[k] = key
    # then the node ports the services had before, so a new service cannot take one by hash
    kept_np: dict[tuple[str, int], int] = {}
    kept_hc: dict[str, int] = {}
    for s in specs:
        key = f"{s.namespace}/{s.name}"
        old_hc = (prev.get(key) or {}).get("healthCheckNodePort")
        if needs_health_check(s) and s.health_check_node_port is None and isinstance(old_hc, int) \
                and not isinstance(old_hc, bool) and lo <= old_hc <= hi and (old_hc, "TCP") not in used_np:
            kept_hc[key] = old_hc
            used_np[(old_hc, "TCP")] = key
        old_np = (prev.get(key) or {}).get("nodePorts") or {}
        if not allocates_node_ports(s) or not isinstance(old_np, dict):
            continue
        for i, p in enumerate(s.ports):
            cand = old_np.get(f"{p.name or ''}/{p.protocol}")
            if p.node_port is None and isinstance(cand, int) and not isinstance(cand, bool) and lo <= cand <= hi \
                    and (cand, p.protocol) not in used_np:
                kept_np[(key, i)] = cand
                used_np[(cand, p.protocol)] = key
    out = []
    for s in specs:
        key = f"{s.namespace}/{s.name}"
        ports = []
        for i, p in enumerate(s.ports):
            np = p.node_port
            if np is None and allocates_node_ports(s):
                np = kept_np.get((key, i)) or free_port(key, f"{p.name or ''}/{p.protocol}", p.protocol, used_np, lo, hi)
                used_np[(np, p.protocol)] = key
            ports.append(ServicePort(p.name, p.port, p.protocol, p.target_port, np))
        svc = Service(s, ips.get(key), ports)
        if needs_health_check(s):
            hc = s.health_check_node_port or kept_hc.get(key) or free_port(key, "healthcheck", "TCP", used_np, lo, hi)
            used_np[(hc, "TCP")] = key
            svc.health_check_node_port = hc
        if s.selector is None:
            svc.slices = manual_slices(scenario.slices, s.namespace, s.name)
        svc.endpoints = endpoints_for(svc, pods)
        out.append(svc)
    return out


def allocates_node_ports(s) -> bool:
    """The API server gives this Service's ports node ports: NodePort, and LoadBalancer unless
    allocateLoadBalancerNodePorts is false (then only the nodePorts written in the spec exist)."""
    return s.type == "NodePort" or (s.type == "LoadBalancer" and s.allocate_lb_node_ports)


def needs_health_check(s) -> bool:
    """apiservice.NeedsHealthCheck: a LoadBalancer Service with externalTrafficPolicy Local has a
    healthCheckNodePort (kube-proxy's health server answers it on every node)."""
    return s.type == "LoadBalancer" and s.external_traffic_policy == "Local"


def free_cluster_ip(key: str, subnet: ipaddress.IPv4Network, busy) -> ipaddress.IPv4Address:
    """Service `key`'s ClusterIP: the first address of the service subnet from a hash of its name on for which
    `busy(address)` is false (the network and broadcast addresses never)."""
    first, last = int(subnet.network_address) + 1, int(subnet.broadcast_address) - 1
    size = last - first + 1
    start = int(short_hash(key, "clusterip", n=8), 16) % size
    for k in range(size):
        c = ipaddress.IPv4Address(first + (start + k) % size)
        if not busy(c):
            return c
    raise SpecError(f"Service {key}", f"the service subnet {subnet} is full", "use a larger serviceSubnet")


def free_port(key: str, what: str, protocol: str, used, lo: int, hi: int) -> int:
    """A free port of the node port range for `key`'s `what`, the first free one from a hash of both."""
    span = hi - lo + 1
    start = int(short_hash(key, what, "nodeport", n=8), 16) % span
    for k in range(span):
        c = lo + (start + k) % span
        if (c, protocol) not in used:
            return c
    raise SpecError(f"Service {key}", "the node port range is full", "widen serviceNodePortRange")


def endpoints_for(svc: Service, pods: list[Pod]) -> dict[str, list[Endpoint]]:
    """Kubernetes' endpoints controller: ready pods selected by the service, per service port (a pod that
    is not ready is not an endpoint, unless the Service sets publishNotReadyAddresses: then every
    selected pod is, as ready, the way the controller publishes it). A pod being deleted (`terminating`)
    is a terminating endpoint, not ready, serving while it passes its readiness (EndpointSlice
    conditions; the proxies use those only when a Service port has no ready endpoint)."""
    s = svc.spec
    result: dict[str, list[Endpoint]] = {}
    if s.type == "ExternalName":
        return result
    if s.selector is None:   # endpoints of the slices written for it, if any
        return manual_endpoints(svc, pods) if svc.slices else result
    selected = [p for p in pods if p.namespace == s.namespace and s.selector and
                all(p.labels.get(k) == v for k, v in s.selector.items())]
    for port in svc.ports:
        eps = []
        for p in selected:
            if isinstance(port.target_port, str):
                # a pod that does not define the named port (yet) is no endpoint of it, as in Kubernetes:
                # a port no selected pod names has no endpoints (traffic to it is rejected), not an error
                num = p.port_named(port.target_port, port.protocol)
                if num is None:
                    continue
            else:
                num = port.target_port
            if p.terminating:
                # EndpointSlice conditions of a pod being deleted: serving while it still passes its
                # readiness, never ready (unless publishNotReadyAddresses); one that no longer serves is
                # of no use to any proxy and is left out
                if p.ready or s.publish_not_ready:
                    eps.append(Endpoint(p.ip, num, p.node, p.name, p.namespace, ready=s.publish_not_ready,
                                        serving=p.ready, terminating=True))
            elif p.ready or s.publish_not_ready:
                eps.append(Endpoint(p.ip, num, p.node, p.name, p.namespace))
        eps.sort(key=lambda e: (int(e.ip), e.port))
        result[port.name or ""] = eps
    return result


def manual_slices(slices: list, namespace: str, name: str) -> list:
    """The hand-written EndpointSlices of a Service without a selector (those labelled with its name),
    else its Endpoints object's subsets (Kubernetes mirrors those into slices only when there is none)."""
    mine = [sl for sl in slices if sl.namespace == namespace and sl.service == name]
    own = [sl for sl in mine if sl.kind == "EndpointSlice"]
    return own or [sl for sl in mine if sl.kind == "Endpoints"]


def manual_endpoints(svc: Service, pods: list[Pod]) -> dict[str, list[Endpoint]]:
    """A selectorless Service's endpoints, from its slices: per service port, the addresses of every
    slice that has a port of that name and protocol, at that slice port's number. As kube-proxy reads
    them: a ready endpoint is used, one that is not ready only as a terminating one still serving (the
    fallback when no endpoint is ready); others are left out. An address of a pod is that pod's
    endpoint (its node and name); any other address is a host outside the pods (node and pod '')."""
    by_ip = {p.ip: p for p in pods}
    result: dict[str, list[Endpoint]] = {}
    for port in svc.ports:
        eps: dict[tuple, Endpoint] = {}
        for sl in svc.slices:
            num = next((sp.port for sp in sl.ports
                        if (sp.name or "") == (port.name or "") and sp.protocol == port.protocol), None)
            if num is None:
                continue
            for e in sl.endpoints:
                ip = ipaddress.IPv4Address(e.ip)
                if not e.ready and not (e.serving and e.terminating):
                    continue
                pod = by_ip.get(ip)
                ep = Endpoint(ip, num, pod.node if pod else "", pod.name if pod else "",
                              pod.namespace if pod else svc.namespace, ready=e.ready, serving=e.serving,
                              terminating=e.terminating)
                eps.setdefault((ip, num), ep)
        result[port.name or ""] = sorted(eps.values(), key=lambda e: (int(e.ip), e.port))
    return result


def refresh_endpoints(cluster: Cluster) -> None:
    """Compute every Service's endpoints again (after pods' readiness changed)."""
    for svc in cluster.services:
        svc.endpoints = endpoints_for(svc, cluster.pods)
