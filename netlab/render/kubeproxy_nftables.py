"""kube-proxy's nftables mode (GA in Kubernetes 1.33), rendered per node as data and as `nft -f` scripts. Pure.

What a node's table `ip kube-proxy` holds when kube-proxy runs with `mode: nftables` and the settings a
kind/kubeadm cluster uses: `--cluster-cidr` = the pod subnet (local traffic detector `ip saddr <podSubnet>`),
masquerade bit 14 (mark 0x4000), `masqueradeAll: false`, `nodePortAddresses` unset, which nftables mode
turns into "primary" (NodePorts on the node's primary IP only, no localhost NodePorts), and one
ServiceCIDR (the service subnet) for the "unallocated ClusterIP" drop rule.

Layout, as pkg/proxy/nftables/proxier.go builds it in current 1.33 patch releases (see BASE_CHAINS):
  base chains  filter-prerouting-pre-dnat / filter-output-pre-dnat (dstnat-10 = -110, firewall check on
               the original destination), filter-input / -forward / -output (filter = 0, after DNAT),
               nat-prerouting / nat-output (dstnat = -100), nat-postrouting (srcnat = 100)
  dispatch     services: `ip daddr . meta l4proto . th dport vmap @service-ips` and
               `ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports`
  no endpoints service-endpoints-check / nodeport-endpoints-check look up @no-endpoint-services /
               @no-endpoint-nodeports (goto reject-chain, or drop when only the Local policy has none)
  ClusterIPs   cluster-ips-check: reject to @cluster-ips (a port the Service lacks), drop the rest of
               the service CIDR; firewall-check / @firewall-ips exist but stay empty (the model has no
               loadBalancerSourceRanges)
  masquerade   mark-for-masquerade sets 0x4000; masquerading (nat-postrouting) masquerades marked packets
  per service  service-<H>-ns/name/proto/port (Cluster policy), local-<H>-... (Local policy),
               external-<H>-... (NodePort / externalIP / LB entry), endpoint-<H>-...__ip/port (hairpin
               mark + DNAT), affinity-<H>-...__ip/port sets (ClientIP affinity, with the timeout)

Deviation, for load time: kube-proxy picks the endpoint with `numgen random mod N vmap { 0 : goto A,
1 : goto B, ... }`. Every such rule creates an anonymous set, and the kernel handles each new set with
scans over every set of the table and over the whole transaction (set-name allocation, set lookup by
name, anonymous-set binding), so the load time grows quadratically: 10,000 services take ~63 s, 61 s of
it in the kernel (benchmarks/nft_load.py, kernel 6.18, nft 1.0.6). The default `choice="ladder"`
writes the same uniform choice as a ladder of plain rules, `numgen random mod N 0 goto A`,
`numgen random mod N-1 0 goto B`, ..., `goto Z` (P = 1/N each, like iptables mode's statistic ladder),
which needs no set: the same load takes ~2.6 s. `choice="vmap"` renders kube-proxy's exact rule.
Everything else - names, chains, maps, sets, verdicts, rule text - is kube-proxy's.

Not rendered because kube-proxy's nftables mode does not have them: a `ct state invalid drop` rule and
the FORWARD accept rules (iptables mode's KUBE-FORWARD), localhost NodePorts.

Rule text is written the way `nft list` prints it back (`meta mark set meta mark | 0x00004000`, a
single-prefix `{ 10.96.0.0/16 }` as `10.96.0.0/16`, `numgen random mod 2 0 goto ...`), so the desired
state compares equal to the live one parsed from `nft -j list table ip kube-proxy` (`parse_nft_json`)
and an unchanged chain is never rewritten.

API (all pure):
  desired_objects(cluster, node) -> NftTable       what the table should hold
  nft_script(cluster, node) -> str                  full self-contained transaction (replaces the table)
  diff_script(desired, live) -> str                 one transaction taking `live` to `desired` ("" if equal);
                                                    live = None (no table), parse_nft_json(...) or the
                                                    previous desired state
  parse_nft_json(text) -> NftTable | None           `nft -j list table ip kube-proxy` output as a table
  changed_services(old_cluster, new_cluster)        keys of the Services that differ
  update_objects(table, cluster, node, keys)        `table` with only those Services rendered again
  diff_script(new, old, only=keys)                  kube-proxy's partial sync: compares only their objects

A one-endpoint change on a node with 10,000 services: update_objects + scoped diff ~8 ms in Python, a
10-command transaction; `nft -f` of it ~165 ms, all fixed costs of the table's size - nft fetches every
chain before sending anything (~80 ms), and the kernel re-validates the whole ruleset graph on a commit
that adds a jump or goto (~85 ms).
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

from ..model.objects import Cluster, Endpoint, Node, Service
from .services import (MASQ_MARK, PortInfo, categorize_endpoints, ep_string, is_proxied, port_info,
                       traffic_routes)

FAMILY = "ip"
TABLE = "kube-proxy"
TABLE_COMMENT = "rules for kube-proxy"
_T = f"{FAMILY} {TABLE}"

MARK = int(MASQ_MARK, 16)                 # 0x4000
_MARK_HEX = f"0x{MARK:08x}"              # as nft prints a mark value

# Names (pkg/proxy/nftables/proxier.go).
SERVICES = "services"
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NODEPORT_IPS = "nodeport-ips"
CLUSTER_IPS = "cluster-ips"
SERVICE_ENDPOINTS_CHECK = "service-endpoints-check"
NODEPORT_ENDPOINTS_CHECK = "nodeport-endpoints-check"
NO_ENDPOINT_SERVICES = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
REJECT_CHAIN = "reject-chain"
CLUSTER_IPS_CHECK = "cluster-ips-check"
FIREWALL_IPS = "firewall-ips"
FIREWALL_CHECK = "firewall-check"
MARK_MASQ = "mark-for-masquerade"
MASQUERADING = "masquerading"

SERVICE_PREFIX = "service-"               # Cluster traffic policy chain
LOCAL_PREFIX = "local-"                   # Local traffic policy chain
EXTERNAL_PREFIX = "external-"             # NodePort / externalIP / LoadBalancer entry chain
ENDPOINT_PREFIX = "endpoint-"             # one endpoint: hairpin mark + DNAT
AFFINITY_PREFIX = "affinity-"             # per-endpoint ClientIP affinity set
FIREWALL_PREFIX = "firewall-"             # loadBalancerSourceRanges (not in the model)

NAME_LENGTH_MAX = 256                     # knftables.NameLengthMax
CHAIN_NAME_PREFIX_MAX = 16                # longest prefix, with its trailing '-'
CHAIN_NAME_BASE_MAX = NAME_LENGTH_MAX - CHAIN_NAME_PREFIX_MAX

# Base chains: name -> (type, hook, priority), as in current 1.33 patch releases: kubernetes#132456
# (cherry-picked to release-1.33 as #133969, September 2025) replaced 1.31-1.33.4's filter-prerouting /
# -input / -forward / -output at dstnat-10 plus filter-output-post-dnat at dstnat+10 with this set. The
# old layout ran service-endpoints-check before DNAT on output, which dropped node/pod traffic to an
# externalTrafficPolicy: Local external IP without local endpoints (kubernetes#131765) instead of
# short-circuiting it to the cluster-wide endpoints. Priorities are written as numbers: knftables writes
# "dstnat - 10", nft 1.0.6 accepts names only for some hooks and lists numbers back for the others.
BASE_CHAINS: dict[str, tuple[str, str, int]] = {
    "filter-prerouting-pre-dnat": ("filter", "prerouting", -110),
    "filter-output-pre-dnat": ("filter", "output", -110),
    "filter-forward": ("filter", "forward", 0),
    "filter-input": ("filter", "input", 0),
    "filter-output": ("filter", "output", 0),
    "nat-prerouting": ("nat", "prerouting", -100),
    "nat-output": ("nat", "output", -100),
    "nat-postrouting": ("nat", "postrouting", 100),
}

# (destination chain, base chain, match) in kube-proxy's order (nftablesJumpChains): in filter-forward and
# filter-output the no-endpoint check comes before cluster-ips-check, so an internalTrafficPolicy: Local
# ClusterIP without local endpoints is dropped (as kube-proxy intends), not rejected.
BASE_JUMPS: list[tuple[str, str, str]] = [
    (NODEPORT_ENDPOINTS_CHECK, "filter-input", "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, "filter-input", "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, "filter-forward", "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, "filter-output", "ct state new"),
    (FIREWALL_CHECK, "filter-prerouting-pre-dnat", "ct state new"),
    (FIREWALL_CHECK, "filter-output-pre-dnat", "ct state new"),
    (SERVICES, "nat-output", ""),
    (SERVICES, "nat-prerouting", ""),
    (MASQUERADING, "nat-postrouting", ""),
    (CLUSTER_IPS_CHECK, "filter-forward", "ct state new"),
    (CLUSTER_IPS_CHECK, "filter-output", "ct state new"),
]

CHOICES = ("ladder", "vmap")
NODEPORT_ADDRESSES = ("primary", "all")

IPV4_KEY = "ipv4_addr . inet_proto . inet_service"
PORT_KEY = "inet_proto . inet_service"


# ---------------------------------------------------------------- names

@lru_cache(maxsize=1 << 17)
def hash_and_truncate(name: str) -> str:
    """kube-proxy's hashAndTruncate: 8 base32 characters of sha256(name), '-', the name; cut to 240 with '...'."""
    # 8 base32 characters are the first 5 bytes of the digest.
    out = base64.b32encode(hashlib.sha256(name.encode()).digest()[:5]).decode() + "-" + name
    if len(out) > CHAIN_NAME_BASE_MAX:
        out = out[:CHAIN_NAME_BASE_MAX - 3] + "..."
    return out


def service_chain_base(namespace: str, name: str, protocol: str, port_name: str | None) -> str:
    """servicePortChainNameBase: 'HASH-ns/name/proto/port' (an unnamed port leaves the last part empty)."""
    return hash_and_truncate(f"{namespace}/{name}/{protocol.lower()}/{port_name or ''}")


def endpoint_chain_base(namespace: str, name: str, protocol: str, port_name: str | None, ip: str, port: int) -> str:
    """servicePortEndpointChainNameBase: 'HASH-ns/name/proto/port__ip/port' (IPv6 ':' become '.')."""
    return hash_and_truncate(f"{namespace}/{name}/{protocol.lower()}/{port_name or ''}__{ip.replace(':', '.')}/{port}")


# ---------------------------------------------------------------- the data

Elem = tuple  # (value or None, comment or None)


@dataclass
class NftSet:
    """A named set or map. `data` is the map's value type ("verdict"), None for a set."""
    type: str
    data: str | None = None
    flags: tuple[str, ...] = ()
    timeout: int | None = None               # seconds
    comment: str | None = None
    elements: dict[str, Elem] = field(default_factory=dict)
    dynamic: bool = False                    # elements are the kernel's (affinity): never diffed

    @property
    def kind(self) -> str:
        return "map" if self.data else "set"

    def spec(self) -> tuple:
        """What cannot change without recreating the set (comments are left out: never compared)."""
        return (self.type, self.data, tuple(sorted(f for f in self.flags if f != "dynamic")), self.timeout)


@dataclass
class Owned:
    """What one Service contributes to the table: its chains, its affinity sets, its set/map elements."""
    chains: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    elements: list[tuple[str, str]] = field(default_factory=list)         # (set or map, key)


@dataclass
class NftTable:
    """The table as data: chains (name -> rules, as `nft list` prints them), base-chain hooks, sets/maps.

    A rendered table also records which Service ("ns/name") owns which objects (`owners`) and the
    options it was rendered with, for `update_objects` and `diff_script(..., only=...)`; a table parsed
    from nft has neither.
    """
    chains: dict[str, list[str]] = field(default_factory=dict)
    hooks: dict[str, tuple[str, str, int]] = field(default_factory=dict)   # base chain -> (type, hook, prio)
    sets: dict[str, NftSet] = field(default_factory=dict)
    chain_comments: dict[str, str] = field(default_factory=dict)           # written on creation only
    owners: dict[str, Owned] | None = None
    options: dict[str, str] = field(default_factory=dict)

    def rule_count(self) -> int:
        return sum(len(r) for r in self.chains.values())

    def content(self) -> tuple:
        """Everything that is compared with the kernel's state, independent of insertion order."""
        return ({n: list(r) for n, r in sorted(self.chains.items())}, dict(sorted(self.hooks.items())),
                {n: (s.spec(), None if s.dynamic else dict(sorted(s.elements.items())))
                 for n, s in sorted(self.sets.items())})


# ---------------------------------------------------------------- rendering

def desired_objects(cluster: Cluster, node: Node, *, choice: str = "ladder",
                    nodeport_addresses: str = "primary") -> NftTable:
    """Everything kube-proxy (nftables mode) puts in table `ip kube-proxy` on `node`.

    `choice`: "ladder" (default, see the module docstring) or "vmap" (kube-proxy's exact rule).
    `nodeport_addresses`: "primary" (nftables mode's default: NodePorts on the node IP, @nodeport-ips)
    or "all" (every local address but 127/8, via `fib daddr type local`).
    """
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {CHOICES}")
    if nodeport_addresses not in NODEPORT_ADDRESSES:
        raise ValueError(f"nodeport_addresses must be one of {NODEPORT_ADDRESSES}")
    t = NftTable(owners={}, options={"choice": choice, "nodeport_addresses": nodeport_addresses})
    _skeleton(t, node, str(cluster.networking.service_subnet), nodeport_addresses)
    _render_services(t, cluster, node, [s for s in cluster.services if is_proxied(s)])
    return t


def _render_services(t: NftTable, cluster: Cluster, node: Node, services: list[Service]) -> None:
    pod_net = str(cluster.networking.pod_subnet)
    choice = t.options["choice"]
    ports = [(svc, port) for svc in services for port in svc.ports]
    ports.sort(key=lambda sp: (sp[0].namespace, sp[0].name, sp[1].name or "", sp[1].protocol))
    assert t.owners is not None
    for svc, port in ports:
        owned = t.owners.setdefault(svc.key, Owned())
        _render_port(t, port_info(svc, port), node, pod_net, choice, owned)


def update_objects(table: NftTable, cluster: Cluster, node: Node, services: Iterable[str]) -> NftTable:
    """`table` (a rendered one) with the objects of `services` ("ns/name" keys) rendered again from `cluster`.

    A Service that is gone, or no longer proxied, loses its objects. The result equals
    `desired_objects(cluster, node)` as long as nothing but these Services changed (the node, the
    networking settings and the other Services are taken from `table`). `table` is not modified; the
    result shares the unchanged rule lists with it. ~7 ms with 10,000 Services (mostly copying the chain
    and map dicts) instead of ~0.3-0.5 s for a full render.
    """
    if table.owners is None:
        raise ValueError("update_objects needs a table from desired_objects, not a parsed one")
    keys = set(services)
    t = NftTable(chains=dict(table.chains), hooks=table.hooks, sets=dict(table.sets),
                 chain_comments=table.chain_comments, owners=dict(table.owners), options=table.options)
    copied: set[str] = set()
    for key in keys:
        owned = t.owners.pop(key, None)
        if owned is None:
            continue
        for c in owned.chains:
            t.chains.pop(c, None)
        for n in owned.sets:
            t.sets.pop(n, None)
        for n, k in owned.elements:
            if n not in copied and n in t.sets:
                old = t.sets[n]
                t.sets[n] = NftSet(old.type, old.data, old.flags, old.timeout, old.comment, dict(old.elements),
                                   old.dynamic)
                copied.add(n)
            if n in t.sets:
                t.sets[n].elements.pop(k, None)
    # Maps and sets that the new objects go into must be private copies too.
    for n in (CLUSTER_IPS, SERVICE_IPS, SERVICE_NODEPORTS, NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS):
        if n not in copied and n in t.sets:
            old = t.sets[n]
            t.sets[n] = NftSet(old.type, old.data, old.flags, old.timeout, old.comment, dict(old.elements), old.dynamic)
    _render_services(t, cluster, node, [s for s in cluster.services if s.key in keys and is_proxied(s)])
    return t


def changed_services(old: Cluster, new: Cluster) -> set[str]:
    """Keys ("ns/name") of the Services whose spec, ClusterIP, ports or endpoints differ between two models.

    Compares every Service (~75 ms for 10,000); a caller that already knows what changed should pass
    those keys to `update_objects` directly.
    """
    before = {s.key: s for s in old.services}
    after = {s.key: s for s in new.services}
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def _skeleton(t: NftTable, node: Node, service_cidr: str, nodeport_addresses: str) -> None:
    """setupNFTables: base chains, top-level chains, the maps and sets (empty), their lookup rules."""
    for name, hook in BASE_CHAINS.items():
        t.hooks[name] = hook
        t.chains[name] = []
    for dst, src, match in BASE_JUMPS:
        t.chains.setdefault(dst, [])
        t.chains[src].append(f"{match} jump {dst}" if match else f"jump {dst}")
    for name in (SERVICES, CLUSTER_IPS_CHECK, MASQUERADING, MARK_MASQ):
        t.chains.setdefault(name, [])

    t.chains[MARK_MASQ].append(f"meta mark set meta mark | {_MARK_HEX}")
    t.chains[MASQUERADING] += [
        f"meta mark & {_MARK_HEX} == 0x00000000 return",
        f"meta mark set meta mark ^ {_MARK_HEX}",
        "masquerade fully-random",
    ]

    t.sets[CLUSTER_IPS] = NftSet("ipv4_addr", comment="Active ClusterIPs")
    t.chains[CLUSTER_IPS_CHECK] += [
        f'ip daddr @{CLUSTER_IPS} reject comment "Reject traffic to invalid ports of ClusterIPs"',
        # kube-proxy writes `ip daddr { CIDR } drop`; nft stores a one-prefix set as a plain prefix match.
        f'ip daddr {service_cidr} drop comment "Drop traffic to unallocated ClusterIPs"',
    ]

    primary = nodeport_addresses == "primary"
    if primary:
        t.sets[NODEPORT_IPS] = NftSet("ipv4_addr", comment="IPs that accept NodePort traffic",
                                      elements={str(node.ip): (None, None)})

    t.sets[NO_ENDPOINT_SERVICES] = NftSet(IPV4_KEY, "verdict",
                                          comment="vmap to drop or reject packets to services with no endpoints")
    t.sets[NO_ENDPOINT_NODEPORTS] = NftSet(
        PORT_KEY, "verdict", comment="vmap to drop or reject packets to service nodeports with no endpoints")
    t.chains[REJECT_CHAIN] = ["reject"]
    t.chain_comments[REJECT_CHAIN] = "helper for @no-endpoint-services / @no-endpoint-nodeports"
    t.chains[SERVICE_ENDPOINTS_CHECK].append(f"ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}")
    if primary:
        t.chains[NODEPORT_ENDPOINTS_CHECK].append(
            f"ip daddr @{NODEPORT_IPS} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}")
    else:
        t.chains[NODEPORT_ENDPOINTS_CHECK].append(
            f"ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}")

    t.sets[FIREWALL_IPS] = NftSet(IPV4_KEY, "verdict",
                                  comment="destinations that are subject to LoadBalancerSourceRanges")
    t.chains[FIREWALL_CHECK].append(f"ip daddr . meta l4proto . th dport vmap @{FIREWALL_IPS}")

    t.sets[SERVICE_IPS] = NftSet(IPV4_KEY, "verdict", comment="ClusterIP, ExternalIP and LoadBalancer IP traffic")
    t.sets[SERVICE_NODEPORTS] = NftSet(PORT_KEY, "verdict", comment="NodePort traffic")
    t.chains[SERVICES].append(f"ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}")
    if primary:
        t.chains[SERVICES].append(f"ip daddr @{NODEPORT_IPS} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}")
    else:
        t.chains[SERVICES].append(
            f"fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{SERVICE_NODEPORTS}")


def _render_port(t: NftTable, info: PortInfo, node: Node, pod_net: str, choice: str, owned: Owned) -> None:
    """One service port: map elements, policy/external/endpoint chains, affinity sets (syncProxyRules' loop)."""
    svc, proto, name = info.svc, info.proto, info.name
    cluster_eps, local_eps, reachable, has_endpoints = categorize_endpoints(info, node)
    base = service_chain_base(svc.namespace, svc.name, proto, info.port.name)
    cluster_chain = SERVICE_PREFIX + base
    local_chain = LOCAL_PREFIX + base
    external_chain = EXTERNAL_PREFIX + base
    uses_cluster_chain = bool(cluster_eps)
    uses_local_chain = bool(local_eps)

    routes = traffic_routes(info, local_eps, has_endpoints)
    internal_chain = local_chain if routes.internal_local else cluster_chain
    external_policy_chain = local_chain if routes.external_local else cluster_chain
    has_internal, has_external = routes.has_internal, routes.has_external
    uses_external_chain = routes.uses_external_chain

    if not has_endpoints:
        internal_verdict = external_verdict = f"goto {REJECT_CHAIN}"
    else:
        internal_verdict = external_verdict = "drop"   # used only when the Local policy has no endpoint here

    port = info.port.port
    cip = info.cluster_ip

    def put(set_name: str, key: str, elem: Elem) -> None:
        t.sets[set_name].elements[key] = elem
        owned.elements.append((set_name, key))

    # ClusterIP
    put(CLUSTER_IPS, cip, (None, None))
    if has_internal:
        put(SERVICE_IPS, f"{cip} . {proto} . {port}", (f"goto {internal_chain}", None))
    else:
        put(NO_ENDPOINT_SERVICES, f"{cip} . {proto} . {port}", (internal_verdict, name))

    # externalIPs
    for eip in info.external_ips:
        if has_endpoints:
            put(SERVICE_IPS, f"{eip} . {proto} . {port}", (f"goto {external_chain}", None))
        if not has_external:
            put(NO_ENDPOINT_SERVICES, f"{eip} . {proto} . {port}", (external_verdict, name))

    # LoadBalancer ingress IPs (no loadBalancerSourceRanges in the model: no firewall chain, no @firewall-ips)
    for vip in info.lb_vips:
        if has_endpoints:
            put(SERVICE_IPS, f"{vip} . {proto} . {port}", (f"goto {external_chain}", None))
    if not has_external:
        for vip in info.lb_vips:
            put(NO_ENDPOINT_SERVICES, f"{vip} . {proto} . {port}", (external_verdict, name))

    # NodePort
    if info.node_port:
        if has_endpoints:
            put(SERVICE_NODEPORTS, f"{proto} . {info.node_port}", (f"goto {external_chain}", None))
        if not has_external:
            put(NO_ENDPOINT_NODEPORTS, f"{proto} . {info.node_port}", (external_verdict, name))

    chains: dict[str, list[str]] = {}

    # Internal traffic: masquerade what does not come from the pod network.
    if has_internal:
        chains.setdefault(internal_chain, []).append(
            f"ip daddr {cip} {proto} dport {port} ip saddr != {pod_net} jump {MARK_MASQ}")

    if uses_external_chain:
        ext = chains.setdefault(external_chain, [])
        if not info.etp_local:
            ext.append(f"jump {MARK_MASQ}")
        else:
            ext.append(f'ip saddr {pod_net} goto {cluster_chain} comment "short-circuit pod traffic"')
            ext.append(f'fib saddr type local jump {MARK_MASQ} comment "masquerade local traffic"')
            ext.append(f'fib saddr type local goto {cluster_chain} comment "short-circuit local traffic"')
        if has_external:
            ext.append(f"goto {external_policy_chain}")

    sticky = info.sticky_seconds
    ep_names = {id(ep): endpoint_chain_base(svc.namespace, svc.name, proto, info.port.name, str(ep.ip), ep.port)
                for ep in reachable}
    if sticky is not None:
        for ep in reachable:
            aff = AFFINITY_PREFIX + ep_names[id(ep)]
            t.sets[aff] = NftSet("ipv4_addr", flags=("dynamic", "timeout"), timeout=sticky, dynamic=True)
            owned.sets.append(aff)

    if uses_cluster_chain:
        chains.setdefault(cluster_chain, []).extend(_to_endpoints(cluster_eps, ep_names, sticky, choice))
    if uses_local_chain:
        chains.setdefault(local_chain, []).extend(_to_endpoints(local_eps, ep_names, sticky, choice))

    for ep in reachable:
        b = ep_names[id(ep)]
        rules = [f"ip saddr {ep.ip} jump {MARK_MASQ}"]                   # hairpin
        if sticky is not None:
            rules.append(f"update @{AFFINITY_PREFIX}{b} {{ ip saddr }}")
        rules.append(f"meta l4proto {proto} dnat to {ep_string(ep)}")
        chains[ENDPOINT_PREFIX + b] = rules

    # Chains in a stable, readable order: external, cluster, local, then the endpoints.
    for chain in [external_chain, cluster_chain, local_chain] + [c for c in chains if c.startswith(ENDPOINT_PREFIX)]:
        if chain in chains:
            t.chains[chain] = chains[chain]
            owned.chains.append(chain)


def _to_endpoints(endpoints: list[Endpoint], ep_names: dict[int, str], sticky: int | None, choice: str) -> list[str]:
    """writeServiceToEndpointRules: affinity lookups first, then the random choice among `endpoints`."""
    rules = []
    if sticky is not None:
        for ep in endpoints:
            b = ep_names[id(ep)]
            rules.append(f"ip saddr @{AFFINITY_PREFIX}{b} goto {ENDPOINT_PREFIX}{b}")
    targets = [ENDPOINT_PREFIX + ep_names[id(ep)] for ep in endpoints]
    n = len(targets)
    if choice == "vmap":
        rules.append(f"numgen random mod {n} vmap {{ " + ", ".join(f"{i} : goto {c}" for i, c in enumerate(targets))
                     + " }")
    else:
        for i, c in enumerate(targets):
            rules.append(f"numgen random mod {n - i} 0 goto {c}" if i < n - 1 else f"goto {c}")
    return rules


# ---------------------------------------------------------------- scripts

def _q(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def _chain_decl(name: str, t: NftTable) -> str:
    parts = []
    if name in t.hooks:
        typ, hook, prio = t.hooks[name]
        parts.append(f"type {typ} hook {hook} priority {prio} ;")
    if name in t.chain_comments:
        parts.append(f"comment {_q(t.chain_comments[name])} ;")
    return f"add chain {_T} {name}" + (" { " + " ".join(parts) + " }" if parts else "")


def _set_decl(name: str, s: NftSet) -> str:
    parts = [f"type {s.type}" + (f" : {s.data}" if s.data else "") + " ;"]
    if s.flags:
        parts.append(f"flags {','.join(s.flags)} ;")
    if s.timeout is not None:
        parts.append(f"timeout {s.timeout}s ;")
    if s.comment:
        parts.append(f"comment {_q(s.comment)} ;")
    return f"add {s.kind} {_T} {name} {{ " + " ".join(parts) + " }"


def _elem_text(key: str, elem: Elem) -> str:
    value, comment = elem
    out = key
    if comment:
        out += f" comment {_q(comment)}"
    if value:
        out += f" : {value}"
    return out


def _elements(verb: str, name: str, items: Iterable[str]) -> list[str]:
    items = list(items)
    return [f"{verb} element {_T} {name} {{ " + ", ".join(items) + " }"] if items else []


def nft_script(cluster: Cluster, node: Node, **options: Any) -> str:
    """The full sync as one self-contained `nft -f` transaction that works on any starting state.

    `add table` + `delete table` (the add makes the delete valid when there is no table yet), then the
    whole table is created from scratch - in one transaction, so packets see either the old table or
    the new one. Simplest correct choice for a first load or a recovery; it resets the ClientIP affinity
    sets, so the steady-state path is `diff_script(desired, live)`, which changes only what differs.
    """
    return f"add table {_T}\ndelete table {_T}\n" + diff_script(desired_objects(cluster, node, **options), None)


def diff_script(desired: NftTable, live: NftTable | None, *, only: Iterable[str] | None = None,
                delete_stale: bool = True) -> str:
    """One `nft -f` transaction that turns `live` into `desired`; "" when they are equal.

    `live` is the table parsed from `nft -j list table ip kube-proxy` (`parse_nft_json`), or the
    `desired` of the last successful sync (what kube-proxy itself keeps in memory: listing a table of
    10,000 services takes seconds), or None when the table does not exist (then: create everything).

    Commands run in an order the kernel accepts inside one transaction: flush the chains to rewrite,
    delete stale map elements, delete what must go (no reference is left to it by then), create sets and
    chains, refill the chains, add the elements. A chain whose rules differ is flushed and refilled, as
    kube-proxy does; unchanged chains are not touched. Elements of the affinity sets are the kernel's
    (client IPs with their expiry) and are never compared.

    `only` (Service keys, "ns/name"): compare just the objects those Services own in `desired` and
    `live` - kube-proxy's partial sync. Both tables must be rendered ones (`desired_objects` /
    `update_objects`), e.g. `diff_script(update_objects(prev, cluster, node, keys), prev, only=keys)`;
    the cost is then independent of the number of Services.

    `delete_stale=False` only flushes stale chains, for kernels older than 6.2, which notice a chain is
    no longer referenced by a deleted map element only some time after the commit (kube-proxy deletes
    such chains a second later); call again later with the default to delete them.
    """
    if only is not None:
        if live is None or desired.owners is None or live.owners is None:
            raise ValueError("diff_script(only=...) needs two rendered tables")
        desired, live = _views(desired, live, set(only))
    out: list[str] = []
    if live is None:
        out.append(f"add table {_T} {{ comment {_q(TABLE_COMMENT)} ; }}")
        live = NftTable()

    # --- what differs
    set_recreate = {n for n, s in desired.sets.items() if n in live.sets and live.sets[n].spec() != s.spec()}
    set_new = [n for n in desired.sets if n not in live.sets]
    set_stale = sorted(n for n in live.sets if n not in desired.sets)
    gone_sets = set(set_stale) | set_recreate

    hook_changed = {n for n, h in desired.hooks.items() if n in live.chains and live.hooks.get(n) != h}
    hook_changed |= {n for n in live.hooks if n in desired.chains and n not in desired.hooks}
    chain_new = [n for n in desired.chains if n not in live.chains or n in hook_changed]
    chain_stale = sorted(n for n in live.chains if n not in desired.chains)
    refs_gone = tuple("@" + n for n in gone_sets)
    chain_refill = [n for n, rules in desired.chains.items()
                    if n in live.chains and n not in hook_changed
                    and (live.chains[n] != rules or (refs_gone and any(r in x for x in rules for r in refs_gone)))]

    # --- 1. flush the chains that will be rewritten, recreated or deleted (drops their references)
    for n in chain_refill:
        if live.chains[n]:
            out.append(f"flush chain {_T} {n}")
    for n in sorted(hook_changed):
        if live.chains.get(n):
            out.append(f"flush chain {_T} {n}")
    for n in chain_stale:
        if live.chains[n]:
            out.append(f"flush chain {_T} {n}")

    # --- 2. stale or changed elements out
    adds: dict[str, list[str]] = {}
    for n, s in desired.sets.items():
        if s.dynamic:
            continue
        if n in set_new or n in set_recreate:
            if s.elements:
                adds[n] = [_elem_text(k, e) for k, e in s.elements.items()]
            continue
        old = live.sets[n].elements
        dels = [k for k in old if k not in s.elements or old[k] != s.elements[k]]
        out += _elements("delete", n, sorted(dels))
        new = [_elem_text(k, e) for k, e in s.elements.items() if old.get(k) != e]
        if new:
            adds[n] = new

    # --- 3. delete what goes: sets, base chains whose hook changed, stale chains
    for n in sorted(gone_sets):
        out.append(f"delete {live.sets[n].kind} {_T} {n}")
    for n in sorted(hook_changed):
        out.append(f"delete chain {_T} {n}")
    if delete_stale:
        for n in chain_stale:
            out.append(f"delete chain {_T} {n}")

    # --- 4. create sets and chains
    for n in set_new + sorted(set_recreate):
        out.append(_set_decl(n, desired.sets[n]))
    for n in chain_new:
        out.append(_chain_decl(n, desired))

    # --- 5. rules
    for n in chain_new + chain_refill:
        head = f"add rule {_T} {n} "
        out += [head + r for r in desired.chains[n]]

    # --- 6. elements
    for n, items in adds.items():
        out += _elements("add", n, items)
    return "\n".join(out) + "\n" if out else ""


def _views(a: NftTable, b: NftTable, keys: set[str]) -> tuple[NftTable, NftTable]:
    """The parts of two rendered tables that Services `keys` own; shared maps/sets appear in both views."""
    def view(t: NftTable) -> tuple[NftTable, set[str]]:
        v, containers = NftTable(), set()
        assert t.owners is not None
        for k in keys:
            o = t.owners.get(k)
            if o is None:
                continue
            for c in o.chains:
                v.chains[c] = t.chains[c]
            for n in o.sets:
                v.sets[n] = t.sets[n]
            for n, key in o.elements:
                src = t.sets[n]
                if n not in v.sets:
                    v.sets[n] = NftSet(src.type, src.data, src.flags, src.timeout, src.comment, {}, src.dynamic)
                    containers.add(n)
                v.sets[n].elements[key] = src.elements[key]
        return v, containers

    (va, ca), (vb, cb) = view(a), view(b)
    for n in ca | cb:
        for v, t in ((va, a), (vb, b)):
            if n not in v.sets and n in t.sets:
                src = t.sets[n]
                v.sets[n] = NftSet(src.type, src.data, src.flags, src.timeout, src.comment, {}, src.dynamic)
    return va, vb


# ---------------------------------------------------------------- a table as plain data

def table_to_data(t: NftTable) -> dict[str, Any]:
    """What diff_script compares, as JSON-able data (the record of the last table a sync applied)."""
    return {"chains": t.chains, "hooks": {n: list(h) for n, h in t.hooks.items()},
            "chain_comments": t.chain_comments, "options": t.options,
            "sets": {n: {"type": x.type, "data": x.data, "flags": list(x.flags), "timeout": x.timeout,
                         "comment": x.comment, "dynamic": x.dynamic,
                         "elements": {k: list(e) for k, e in x.elements.items()}} for n, x in t.sets.items()}}


def table_from_data(d: dict[str, Any]) -> NftTable:
    return NftTable(chains=d["chains"],
                    hooks={n: (h[0], h[1], int(h[2])) for n, h in d["hooks"].items()},
                    sets={n: NftSet(x["type"], x["data"], tuple(x["flags"]), x["timeout"], x["comment"],
                                    {k: tuple(e) for k, e in x["elements"].items()}, bool(x["dynamic"]))
                          for n, x in d["sets"].items()},
                    chain_comments=dict(d["chain_comments"]), options=dict(d["options"]))


# ---------------------------------------------------------------- the live table

def parse_nft_json(text: str, table: str = TABLE, family: str = FAMILY) -> NftTable | None:
    """The table in `nft -j list table ip kube-proxy` (or `nft -j list ruleset`) output; None if absent.

    Rules are printed back in `nft list`'s text form, which is how `desired_objects` writes them; an
    expression this printer does not know comes out as `?{json}`, so it never equals a desired rule and
    its chain is rewritten on the next sync.
    """
    data = json.loads(text) if text.strip() else {"nftables": []}
    t = NftTable()
    found = False
    for obj in data.get("nftables", []):
        if not isinstance(obj, dict) or len(obj) != 1:
            continue
        (kind, body), = obj.items()
        if not isinstance(body, dict) or body.get("family") != family:
            continue
        if kind == "table":
            found = found or body.get("name") == table
            continue
        if body.get("table") != table:
            continue
        if kind == "chain":
            t.chains.setdefault(body["name"], [])
            if "hook" in body:
                t.hooks[body["name"]] = (body.get("type", "filter"), body["hook"], int(body.get("prio", 0)))
            if body.get("comment"):
                t.chain_comments[body["name"]] = body["comment"]
        elif kind in ("set", "map"):
            t.sets[body["name"]] = _parse_set(body, kind)
        elif kind == "rule":
            text_ = " ".join(_stmt(e) for e in body.get("expr", []))
            if body.get("comment"):
                text_ += f" comment {_q(body['comment'])}"
            t.chains.setdefault(body["chain"], []).append(text_)
    return t if found else None


def _parse_set(body: dict, kind: str) -> NftSet:
    typ = body.get("type")
    typ = " . ".join(typ) if isinstance(typ, list) else str(typ)
    flags = body.get("flags", [])
    flags = tuple(flags) if isinstance(flags, list) else (flags,)
    s = NftSet(typ, body.get("map") if kind == "map" else None, flags, body.get("timeout"), body.get("comment"))
    s.dynamic = "timeout" in flags or "dynamic" in flags
    for item in body.get("elem", []) or []:
        if kind == "map":
            key, value = item
            value = _expr(value)
        else:
            key, value = item, None
        comment = None
        if isinstance(key, dict) and "elem" in key:
            comment = key["elem"].get("comment")
            key = key["elem"]["val"]
        s.elements[_expr(key)] = (value, comment)
    return s


_VERDICTS = ("accept", "drop", "return", "continue", "queue")


def _stmt(e: Any) -> str:
    """One statement of a rule's `expr` list, as `nft list` prints it."""
    if not isinstance(e, dict) or len(e) != 1:
        return "?" + json.dumps(e, sort_keys=True)
    (k, v), = e.items()
    if k == "match":
        left, right, op = v["left"], v["right"], v.get("op", "==")
        ls = _expr(left, None)
        rs = _expr(right, _hint(left))
        if op == "==" and isinstance(left, dict) and any(b in left for b in ("&", "|", "^")):
            return f"{ls} == {rs}"       # nft spells the operator out after a binary operation
        if op in ("==", "in"):
            return f"{ls} {rs}"
        return f"{ls} {op} {rs}"
    if k in ("jump", "goto"):
        return f"{k} {v['target']}"
    if k in _VERDICTS:
        return k
    if k == "reject":
        if not v or (v.get("type") == "icmp" and v.get("expr") == "port-unreachable"):
            return "reject"
        return "reject with " + " ".join(str(x) for x in (v.get("type"), v.get("expr")) if x)
    if k == "mangle":
        return f"{_expr(v['key'])} set {_expr(v['value'], _hint(v['key']))}"
    if k == "masquerade":
        flags = (v or {}).get("flags")
        flags = ",".join(flags) if isinstance(flags, list) else flags
        return "masquerade" + (f" {flags}" if flags else "")
    if k in ("dnat", "snat"):
        addr, port = v.get("addr"), v.get("port")
        target = _expr(addr) if addr is not None else ""
        if port is not None:
            target += f":{_expr(port)}"
        return f"{k} to {target}"
    if k == "vmap":
        return f"{_expr(v['key'])} vmap {_expr(v['data'])}"
    if k == "set":
        return f"{v['op']} {v['set']} {{ {_expr(v['elem'])} }}"
    if k == "counter":
        return "counter" if not v else f"counter packets {v.get('packets', 0)} bytes {v.get('bytes', 0)}"
    return "?" + json.dumps(e, sort_keys=True)


def _hint(left: Any) -> str | None:
    """'mark' when values compared with / assigned to `left` are marks (printed in hex)."""
    if isinstance(left, dict):
        if left.get("meta", {}).get("key") == "mark" or left.get("ct", {}).get("key") == "mark":
            return "mark"
        for op in ("&", "|", "^"):
            if op in left:
                return _hint(left[op][0])
    return None


def _expr(x: Any, hint: str | None = None) -> str:
    """An expression or value, as `nft list` prints it."""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return f"0x{x:08x}" if hint == "mark" else str(x)
    if isinstance(x, str):
        return x
    if isinstance(x, list):
        return ",".join(_expr(i, hint) for i in x)
    if not isinstance(x, dict) or len(x) != 1:
        return "?" + json.dumps(x, sort_keys=True)
    (k, v), = x.items()
    if k == "payload":
        return f"{v['protocol']} {v['field']}"
    if k == "meta":
        return f"meta {v['key']}"
    if k == "ct":
        return f"ct {v['key']}"
    if k == "fib":
        flags = v.get("flags", [])
        flags = " . ".join(flags) if isinstance(flags, list) else flags
        return f"fib {flags} {v['result']}"
    if k == "numgen":
        off = v.get("offset", 0)
        return f"numgen {v['mode']} mod {v['mod']}" + (f" offset {off}" if off else "")
    if k == "concat":
        return " . ".join(_expr(i) for i in v)
    if k in ("&", "|", "^"):
        a, b = v
        return f"{_expr(a)} {k} {_expr(b, _hint(a))}"
    if k == "prefix":
        return f"{v['addr']}/{v['len']}"
    if k == "range":
        return f"{_expr(v[0], hint)}-{_expr(v[1], hint)}"
    if k == "set":
        items = v if isinstance(v, list) else [v]
        return "{ " + ", ".join(_set_item(i, hint) for i in items) + " }"
    if k in ("jump", "goto"):
        return f"{k} {v['target']}"
    if k in _VERDICTS:
        return k
    if k == "elem":
        return _expr(v["val"], hint)
    return "?" + json.dumps(x, sort_keys=True)


def _set_item(i: Any, hint: str | None) -> str:
    if isinstance(i, list) and len(i) == 2:             # an anonymous map's key : value
        return f"{_expr(i[0], hint)} : {_expr(i[1])}"
    return _expr(i, hint)
