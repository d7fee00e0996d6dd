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
               the service CIDR
  firewall     firewall-check (before DNAT) looks the LB ip . proto . port up in @firewall-ips, which
               sends a Service with loadBalancerSourceRanges to its firewall-<H>-... chain:
               `ip saddr != { ranges [, the LB IP when a range holds the node IP] } drop`
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
  without_cache(script, desired)                    the same transaction in a form nft runs without
                                                    fetching every chain and set first (partial syncs)
  table_to_data(table) / table_from_data(data)      the table as JSON-able data (the dataplane's record)

This module renders; the table's data types are in render/nft_table.py, diff_script in render/nft_diff.py
and parse_nft_json in render/nft_json.py, all importable from here too. (A little over 500 lines, a fifth of them this
docstring: the renderer of one mode is kept whole, its helpers already live in those modules.)

A one-endpoint change on a node with 10,000 services: update_objects + scoped diff ~8 ms in Python, a
10-command transaction; `nft -f` of it ~165 ms, all fixed costs of the table's size - nft fetches every
chain before sending anything (~80 ms; `without_cache` writes the transaction so that it does not), and
the kernel re-validates the whole ruleset graph on a commit that adds a rule or a verdict (~85 ms).
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
from functools import lru_cache
from typing import Any, Iterable

from ..model.objects import Cluster, Endpoint, Node, Service
from .nft_diff import diff_script, without_cache  # noqa: F401 (without_cache re-exported)
from .nft_json import parse_nft_json  # noqa: F401 (re-exported: this module is the mode's API)
from .nft_table import FAMILY, TABLE, table_from_data, table_to_data  # noqa: F401 (re-exported)
from .nft_table import TABLE_REF as _T, Elem, NftSet, NftTable, Owned
from .services import (MASQ_MARK, PortInfo, categorize_endpoints, ep_string, is_proxied, port_info,
                       traffic_routes)

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
FIREWALL_PREFIX = "firewall-"             # loadBalancerSourceRanges: drops the other sources

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


SHARED_MAPS = (CLUSTER_IPS, SERVICE_IPS, SERVICE_NODEPORTS, NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS)


def owned_part(table: NftTable, services: Iterable[str]) -> NftTable:
    """What Services `services` own in a rendered table, as a rendered table of its own (their owners,
    chains, sets and elements, and the shared maps as containers): all that `diff_script(..., only=...)`
    reads of its `live` side, kept before `update_objects(..., in_place=True)` changes the table."""
    assert table.owners is not None
    v = NftTable(owners={})
    assert v.owners is not None
    for n in SHARED_MAPS:
        if n in table.sets:
            src = table.sets[n]
            v.sets[n] = NftSet(src.type, src.data, src.flags, src.timeout, src.comment, {}, src.dynamic)
    for k in services:
        o = table.owners.get(k)
        if o is None:
            continue
        v.owners[k] = o
        for c in o.chains:
            v.chains[c] = table.chains[c]
        for n in o.sets:
            v.sets[n] = table.sets[n]
        for n, key in o.elements:
            src = table.sets[n]
            if n not in v.sets:
                v.sets[n] = NftSet(src.type, src.data, src.flags, src.timeout, src.comment, {}, src.dynamic)
            v.sets[n].elements[key] = src.elements[key]
    return v


def update_objects(table: NftTable, cluster: Cluster, node: Node, services: Iterable[str],
                   in_place: bool = False) -> NftTable:
    """`table` (a rendered one) with the objects of `services` ("ns/name" keys) rendered again from `cluster`.

    A Service that is gone, or no longer proxied, loses its objects. The result equals
    `desired_objects(cluster, node)` as long as nothing but these Services changed (the node, the
    networking settings and the other Services are taken from `table`). `table` is not modified; the
    result shares the unchanged rule lists with it. ~7 ms with 10,000 Services (mostly copying the chain
    and map dicts) instead of ~0.3-0.5 s for a full render. `in_place`: change `table` itself and return it
    (no copies: for a caller that owns the table and kept `owned_part(table, services)` to diff against).
    """
    if table.owners is None:
        raise ValueError("update_objects needs a table from desired_objects, not a parsed one")
    keys = set(services)
    if in_place:
        t = table
    else:
        t = NftTable(chains=dict(table.chains), hooks=table.hooks, sets=dict(table.sets),
                     chain_comments=table.chain_comments, owners=dict(table.owners), options=table.options)
    copied: set[str] = set(SHARED_MAPS) if in_place else set()
    for key in keys:
        owned = t.owners.pop(key, None)
        if owned is None:
            continue
        for c in owned.chains:
            t.chains.pop(c, None)
        for n in owned.sets:
            t.sets.pop(n, None)
        for n, k in owned.elements:
            if n not in copied and n in t.sets and not in_place:
                old = t.sets[n]
                t.sets[n] = NftSet(old.type, old.data, old.flags, old.timeout, old.comment, dict(old.elements),
                                   old.dynamic)
                copied.add(n)
            if n in t.sets:
                t.sets[n].elements.pop(k, None)
    # Maps and sets that the new objects go into must be private copies too.
    for n in SHARED_MAPS:
        if n not in copied and n in t.sets:
            old = t.sets[n]
            t.sets[n] = NftSet(old.type, old.data, old.flags, old.timeout, old.comment, dict(old.elements), old.dynamic)
    names = {k.rsplit("/", 1)[-1] for k in keys}      # by name first: cheaper than every Service's key
    _render_services(t, cluster, node, [s for s in cluster.services
                                        if s.spec.name in names and s.key in keys and is_proxied(s)])
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
    firewall_chain = FIREWALL_PREFIX + base
    # unlike iptables mode, the firewall applies with or without endpoints (it runs before the
    # no-endpoint checks)
    uses_fw_chain = bool(info.lb_vips) and bool(info.source_ranges)
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

    # LoadBalancer ingress IPs; with loadBalancerSourceRanges, @firewall-ips sends them to the firewall chain
    for vip in info.lb_vips:
        if has_endpoints:
            put(SERVICE_IPS, f"{vip} . {proto} . {port}", (f"goto {external_chain}", None))
        if uses_fw_chain:
            put(FIREWALL_IPS, f"{vip} . {proto} . {port}", (f"goto {firewall_chain}", None))
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

    if uses_fw_chain:
        sources = list(info.source_ranges)
        if any(node.ip in ipaddress.IPv4Network(c) for c in info.source_ranges):
            sources += info.lb_vips        # the node's own requests to an LB IP bound on it come from that IP
        chains[firewall_chain] = [f"ip saddr != {_nft_set(sources)} drop"]

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

    # Chains in a stable, readable order: external, firewall, cluster, local, then the endpoints.
    for chain in [external_chain, firewall_chain, cluster_chain, local_chain] + [c for c in chains if c.startswith(ENDPOINT_PREFIX)]:
        if chain in chains:
            t.chains[chain] = chains[chain]
            owned.chains.append(chain)


def _nft_set(cidrs: list[str]) -> str:
    """An anonymous set of addresses and prefixes as `nft list` prints it back: the kernel keeps an interval
    set merged and sorted (overlapping and adjacent ranges become one), a /32 is printed as an address and
    a one-element set as that element alone."""
    nets = list(ipaddress.collapse_addresses(ipaddress.IPv4Network(c) for c in cidrs))
    shown = [str(n.network_address) if n.prefixlen == 32 else str(n) for n in nets]
    return shown[0] if len(shown) == 1 else "{ " + ", ".join(shown) + " }"


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

def nft_script(cluster: Cluster, node: Node, **options: Any) -> str:
    """The full sync as one self-contained `nft -f` transaction that works on any starting state.

    `add table` + `delete table` (the add makes the delete valid when there is no table yet), then the
    whole table is created from scratch - in one transaction, so packets see either the old table or
    the new one. Simplest correct choice for a first load or a recovery; it resets the ClientIP affinity
    sets, so the steady-state path is `diff_script(desired, live)`, which changes only what differs.
    """
    return f"add table {_T}\ndelete table {_T}\n" + diff_script(desired_objects(cluster, node, **options), None)


