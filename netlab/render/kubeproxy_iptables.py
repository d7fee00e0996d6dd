"""kube-proxy's iptables mode, rendered per node as data. Pure: no root, no kernel, golden-testable.

What a node's nat and filter tables hold when kube-proxy (Kubernetes ~1.33, `mode: iptables`) runs on it
with the settings a kind/kubeadm cluster uses: `--cluster-cidr` = the pod subnet (so the "local traffic
detector" is `-s <podSubnet>`), masquerade bit 14 (mark 0x4000), `masqueradeAll: false`,
`nodePortAddresses` unset (NodePorts on every local address), `localhostNodePorts: true`, iptables with
`--random-fully`, no nfacct counters, `nf_conntrack_tcp_be_liberal=0`.

Rule text is written the way `iptables-save` prints it back, not the way kube-proxy happens to order
its arguments: address and protocol matches first, then the `-m` modules in kube-proxy's order, `-d`/`-s`
as CIDRs, `MARK --set-xmark`, `REJECT --reject-with icmp-port-unreachable`, `recent` with its implicit
`--mask`/`--rsource`, and the statistic probability as the kernel stores it. The kernel state is exactly
what kube-proxy creates; the text is what `iptables-save` (legacy and nft) shows on a real node, which is
also what the apply layer compares the live tables with, so an unchanged chain is never rewritten.

kube-proxy walks its service map (a Go map) in random order; here service ports are sorted by
(namespace, name, port name, protocol) so that the output is deterministic. Endpoints are sorted by their
"ip:port" string, as kube-proxy's endpoints map sorts them.
"""
from __future__ import annotations

import ipaddress
import math
from typing import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from ..model.objects import Cluster, Endpoint, Node, Service
from .services import MASQ_MARK, PortInfo, categorize_endpoints, ep_string, is_proxied, port_info, traffic_routes
from .service_memo import ServiceMemo, service_content
from .tables import TableState, hash16

# Chain prefixes (pkg/proxy/iptables).
SVC_PREFIX = "KUBE-SVC-"                  # Cluster traffic policy: every usable endpoint
SVL_PREFIX = "KUBE-SVL-"                  # Local traffic policy: this node's endpoints only
EXT_PREFIX = "KUBE-EXT-"                  # NodePort / externalIP / LoadBalancer entry
FW_PREFIX = "KUBE-FW-"                    # loadBalancerSourceRanges: allowed sources go on to KUBE-EXT
SEP_PREFIX = "KUBE-SEP-"                  # one endpoint: hairpin masquerade + DNAT

NAT_BASE_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")
FILTER_BASE_CHAINS = ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS",
                      "KUBE-PROXY-FIREWALL")
KUBELET_FIREWALL = "KUBE-FIREWALL"        # kube-proxy keeps its own copy of kubelet's anti-martian chain

NODEPORTS_COMMENT = "kubernetes service nodeports; NOTE: this must be the last rule in this chain"


# ---------------------------------------------------------------- names



def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """kube-proxy's hash for per-service-port chains: of 'ns/name:port' + lowercase protocol."""
    return hash16(service_port_name + protocol.lower())


def svc_chain(service_port_name: str, protocol: str) -> str:
    return SVC_PREFIX + port_proto_hash(service_port_name, protocol)


def svl_chain(service_port_name: str, protocol: str) -> str:
    return SVL_PREFIX + port_proto_hash(service_port_name, protocol)


def ext_chain(service_port_name: str, protocol: str) -> str:
    return EXT_PREFIX + port_proto_hash(service_port_name, protocol)


def fw_chain(service_port_name: str, protocol: str) -> str:
    return FW_PREFIX + port_proto_hash(service_port_name, protocol)


def sep_chain(service_port_name: str, protocol: str, endpoint: str) -> str:
    """Endpoint chain: hash of 'ns/name:port' + lowercase protocol + 'ip:port'."""
    return SEP_PREFIX + hash16(service_port_name + protocol.lower() + endpoint)


def probability(n: int) -> str:
    """The `--probability` of a 1-in-n rule as iptables-save prints it.

    kube-proxy writes 1/n with ten decimals ("%0.10f"); libxt_statistic stores lround(p * 2^31) and
    prints that back divided by 2^31 with eleven decimals (1/3 -> 0.3333333333 -> 0.33333333349).
    """
    written = float(f"{1.0 / n:0.10f}")
    stored = math.floor(written * 0x80000000 + 0.5)
    return f"{stored / 0x80000000:.11f}"


# ---------------------------------------------------------------- rule text

@lru_cache(maxsize=1 << 17)
def _cidr(addr: str) -> str:
    return str(ipaddress.ip_network(addr, strict=False))


def _addr(flag: str, value: str | None) -> list[str]:
    if value is None:
        return []
    if value.startswith("!"):
        return ["!", flag, _cidr(value[1:])]
    return [flag, _cidr(value)]


def _comment(text: str) -> str:
    return f'-m comment --comment "{text}"'


def _rule(chain: str, *matches: str, target: str, src: str | None = None, dst: str | None = None,
          proto: str | None = None) -> str:
    """One rule in iptables-save order: -s, -d, -p, then the modules in the order given, then -j."""
    parts = ["-A", chain, *_addr("-s", src), *_addr("-d", dst)]
    if proto:
        parts += ["-p", proto]
    parts += [m for m in matches if m]
    parts += ["-j", target]
    return " ".join(parts)


def _dport(proto: str, port: int) -> str:
    return f"-m {proto} --dport {port}"


MARK_MASQ = f"MARK --set-xmark {MASQ_MARK}/{MASQ_MARK}"        # kube-proxy: --or-mark 0x4000
MARK_CLEAR = f"MARK --set-xmark {MASQ_MARK}/0x0"               # kube-proxy: --xor-mark 0x4000
REJECT = "REJECT --reject-with icmp-port-unreachable"


# ---------------------------------------------------------------- the renderer

def _jumps() -> dict[str, list[tuple[str, str]]]:
    """Jumps from the built-in chains, in the order they end up in: kube-proxy prepends each one."""
    new = "-m conntrack --ctstate NEW"
    fw = f'{new} {_comment("kubernetes load balancer firewall")} -j KUBE-PROXY-FIREWALL'
    ext = f'{new} {_comment("kubernetes externally-visible service portals")} -j KUBE-EXTERNAL-SERVICES'
    svc = f'{new} {_comment("kubernetes service portals")} -j KUBE-SERVICES'
    kubelet_fw = [f"-j {KUBELET_FIREWALL}"]      # ensured on every full sync, whatever the settings
    filter_jumps = (
        [("INPUT", j) for j in kubelet_fw]
        + [("INPUT", fw),
           ("INPUT", f'{_comment("kubernetes health check service ports")} -j KUBE-NODEPORTS'),
           ("INPUT", ext),
           ("FORWARD", fw),
           ("FORWARD", f'{_comment("kubernetes forwarding rules")} -j KUBE-FORWARD'),
           ("FORWARD", svc),
           ("FORWARD", ext)]
        + [("OUTPUT", j) for j in kubelet_fw]
        + [("OUTPUT", fw),
           ("OUTPUT", svc)]
    )
    portals = f'{_comment("kubernetes service portals")} -j KUBE-SERVICES'
    nat_jumps = [
        ("PREROUTING", portals),
        ("OUTPUT", portals),
        ("POSTROUTING", f'{_comment("kubernetes postrouting rules")} -j KUBE-POSTROUTING'),
    ]
    return {"nat": nat_jumps, "filter": filter_jumps}


def kube_proxy_tables(cluster: Cluster, node: Node, *, localhost_nodeports: bool = True,
                      memo: ServiceMemo[ServicePiece] | None = None,
                      changed: set[str] | None = None,
                      pieces: list[ServicePiece] | None = None) -> dict[str, TableState]:
    """kube-proxy's nat and filter state on `node` (iptables mode), as TableStates.

    Assembled from one `ServicePiece` per proxied Service (`service_pieces`); with a `memo` kept by the
    caller across calls, only the Services whose content changed since are rendered again, and the
    result is the same as without one (`changed`: see ServiceMemo.pieces). `pieces`: what
    `service_pieces(cluster, node, memo, changed)` returned already (then memo and changed are unused)."""
    nat = TableState(chains={c: [] for c in NAT_BASE_CHAINS})
    flt = TableState(chains={c: [] for c in FILTER_BASE_CHAINS})
    flt.chains[KUBELET_FIREWALL] = []
    jumps = _jumps()
    nat.jumps.extend(jumps["nat"])
    flt.jumps.extend(jumps["filter"])

    nat.chains["KUBE-POSTROUTING"] += [
        _rule("KUBE-POSTROUTING", f"-m mark ! --mark {MASQ_MARK}/{MASQ_MARK}", target="RETURN"),
        _rule("KUBE-POSTROUTING", target=MARK_CLEAR),
        _rule("KUBE-POSTROUTING", _comment("kubernetes service traffic requiring SNAT"),
              target="MASQUERADE --random-fully"),
    ]
    nat.chains["KUBE-MARK-MASQ"].append(_rule("KUBE-MARK-MASQ", target=MARK_MASQ))
    if localhost_nodeports:
        # route_localnet=1 exposes NodePorts on 127.0.0.1; this blocks martians sent to 127/8 from outside.
        flt.chains[KUBELET_FIREWALL].append(_rule(
            KUBELET_FIREWALL, _comment("block incoming localnet connections"),
            "-m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT", target="DROP",
            src="!127.0.0.0/8", dst="127.0.0.0/8"))

    for piece in (service_pieces(cluster, node, memo, changed) if pieces is None else pieces):
        nat.chains["KUBE-SERVICES"] += piece.nat_services
        flt.chains["KUBE-SERVICES"] += piece.filter_services
        flt.chains["KUBE-EXTERNAL-SERVICES"] += piece.external_services
        flt.chains["KUBE-PROXY-FIREWALL"] += piece.proxy_firewall
        flt.chains["KUBE-NODEPORTS"] += piece.health_checks
        nat.chains["KUBE-NODEPORTS"] += piece.nodeports
        nat.chains.update(piece.chains)

    # Always last, even with no NodePort Service (nodePortAddresses unset: every local address).
    nodeports_dst = None if localhost_nodeports else "!127.0.0.0/8"
    nat.chains["KUBE-SERVICES"].append(_rule(
        "KUBE-SERVICES", _comment(NODEPORTS_COMMENT), "-m addrtype --dst-type LOCAL",
        target="KUBE-NODEPORTS", dst=nodeports_dst))

    flt.chains["KUBE-FORWARD"] += [
        _rule("KUBE-FORWARD", "-m conntrack --ctstate INVALID", target="DROP"),
        _rule("KUBE-FORWARD", _comment("kubernetes forwarding rules"), f"-m mark --mark {MASQ_MARK}/{MASQ_MARK}",
              target="ACCEPT"),
        _rule("KUBE-FORWARD", _comment("kubernetes forwarding conntrack rule"),
              "-m conntrack --ctstate RELATED,ESTABLISHED", target="ACCEPT"),
    ]
    return {"nat": nat, "filter": flt}


@dataclass
class ServicePiece:
    """What one Service adds to a node's tables: its rules in the shared chains (in port order) and its own
    nat chains (KUBE-EXT/FW/SVC/SVL/SEP, in declaration order). A pure function of the Service and the
    node's name and pod network; shared by every assembled result, so never modified once made."""
    nat_services: list[str] = field(default_factory=list)         # nat KUBE-SERVICES
    filter_services: list[str] = field(default_factory=list)      # filter KUBE-SERVICES
    external_services: list[str] = field(default_factory=list)    # filter KUBE-EXTERNAL-SERVICES
    proxy_firewall: list[str] = field(default_factory=list)       # filter KUBE-PROXY-FIREWALL
    health_checks: list[str] = field(default_factory=list)        # filter KUBE-NODEPORTS
    nodeports: list[str] = field(default_factory=list)            # nat KUBE-NODEPORTS
    chains: dict[str, list[str]] = field(default_factory=dict)


# kube-proxy's "large cluster mode": above this many endpoints in all (every Service port's, the node's
# whole view), the rules of the KUBE-SVC/SVL chains that pick an endpoint and the rules of the KUBE-SEP
# chains carry no `-m comment` (kubernetes PR 65755: the comments were ~40% of the tables' size). Here it
# also halves what iptables-legacy-restore copies in and out of the kernel at every sync (one comment
# match is 288 bytes of a ~600-byte rule): ~0.5 s of a one-endpoint change at 10,000 Services.
LARGE_CLUSTER_ENDPOINTS = 1000


def endpoint_total(services: Iterable[Service]) -> int:
    """Endpoints of these Services, every port's: kube-proxy's count for large cluster mode."""
    total = 0
    for svc in services:
        for eps in svc.endpoints.values():
            total += len(eps)
    return total


def large_cluster(services: list[Service]) -> bool:
    """Whether kube-proxy runs in large cluster mode for these (proxied) Services."""
    return endpoint_total(services) > LARGE_CLUSTER_ENDPOINTS


def service_piece(svc: Service, node: Node, pod_net: str, large: bool = False) -> ServicePiece:
    """One Service's piece on `node`: its ports sorted by (port name, protocol), as kube_proxy_tables orders
    them. `large`: kube-proxy's large cluster mode (see LARGE_CLUSTER_ENDPOINTS)."""
    piece = ServicePiece()
    for port in sorted(svc.ports, key=lambda p: (p.name or "", p.protocol)):
        _render_port(port_info(svc, port), node, pod_net, piece, large)
    return piece


def service_pieces(cluster: Cluster, node: Node, memo: ServiceMemo[ServicePiece] | None = None,
                   changed: set[str] | None = None) -> list[ServicePiece]:
    """The pieces of every proxied Service, sorted by (namespace, name): with the ports sorted inside each,
    that is kube-proxy-order (namespace, name, port name, protocol) over all service ports. `memo`/`changed`:
    see ServiceMemo.pieces."""
    pod_net = str(cluster.networking.pod_subnet)        # --cluster-cidr: the local traffic detector
    if memo is not None and changed is not None:
        hinted = _hinted_pieces(cluster, node, pod_net, memo, set(changed))
        if hinted is not None:
            return hinted
    services = sorted((s for s in cluster.services if is_proxied(s)), key=lambda s: (s.namespace, s.name))
    total = endpoint_total(services)
    large = total > LARGE_CLUSTER_ENDPOINTS
    if memo is None:
        return [service_piece(s, node, pod_net, large) for s in services]
    memo.reset(("iptables", node.name, pod_net, large))
    out = memo.pieces(services, lambda s: service_piece(s, node, pod_net, large), changed)
    memo.total = total                                 # the memo's figure: all proxied Services' endpoints
    memo.seen_services = len(cluster.services)
    return out


def _hinted_pieces(cluster: Cluster, node: Node, pod_net: str, memo: ServiceMemo[ServicePiece],
                   only: set[str]) -> list[ServicePiece] | None:
    """service_pieces when the caller named what changed and no Service came, went, or stopped or started
    being proxied: only the named Services are looked at (found by name first, their content compared,
    rendered again if it differs), and the memo's last order is kept - no filtering and sorting of every
    Service. None when that does not hold (the caller then takes the general path)."""
    if memo.order is None or memo.seen_services != len(cluster.services):
        return None
    names = {k.rsplit("/", 1)[-1] for k in only}
    found = {}
    for svc in cluster.services:
        if svc.spec.name in names:
            key = svc.key
            if key in only:
                found[key] = svc
    entries = memo.entries
    if len(found) != len(only) or any(k not in entries or not is_proxied(s) for k, s in found.items()):
        return None                                    # one went (and another came), or changed its kind
    total = memo.total
    for key, svc in found.items():
        total += sum(len(eps) for eps in svc.endpoints.values()) - sum(len(e) for _, e in entries[key][0][-1])
    large = total > LARGE_CLUSTER_ENDPOINTS
    if memo.context != ("iptables", node.name, pod_net, large):
        return None                                    # large cluster mode switched: everything again
    memo.rendered = 0
    for key, svc in found.items():
        content = service_content(svc)
        if content != entries[key][0]:
            entries[key] = (content, service_piece(svc, node, pod_net, large))
            memo.rendered += 1
    memo.total = total
    return [entries[k][1] for k in memo.order]


def changed_chains(before: dict[str, tuple], after: dict[str, tuple]) -> set[str]:
    """The chains, old and new, of the Services whose ServiceMemo entry changed between two snapshots of
    `memo.entries` (rendered again, added or removed): what an incremental sync must compare."""
    out: set[str] = set()
    for key, entry in after.items():
        old = before.get(key)
        if old is not entry:
            out.update(entry[1].chains)
            if old is not None:
                out.update(old[1].chains)
    if len(before) != len(after) or out:
        for key, old in before.items():
            if key not in after:
                out.update(old[1].chains)
    return out


def _render_port(info: PortInfo, node: Node, pod_net: str, piece: ServicePiece, large: bool = False) -> None:
    name, proto = info.name, info.proto
    cluster_eps, local_eps, reachable, has_endpoints = categorize_endpoints(info, node)

    cluster_chain = svc_chain(name, proto)
    local_chain = svl_chain(name, proto)
    external_chain = ext_chain(name, proto)
    firewall_chain = fw_chain(name, proto)
    # loadBalancerSourceRanges: LB traffic goes through KUBE-FW first (only while there are endpoints:
    # without any, KUBE-EXTERNAL-SERVICES rejects it whatever its source)
    uses_fw_chain = has_endpoints and bool(info.lb_vips) and bool(info.source_ranges)
    lb_chain = firewall_chain if uses_fw_chain else external_chain
    uses_cluster_chain = bool(cluster_eps)
    uses_local_chain = bool(local_eps)

    routes = traffic_routes(info, local_eps, has_endpoints)
    internal_chain = local_chain if routes.internal_local else cluster_chain
    external_policy_chain = local_chain if routes.external_local else cluster_chain
    has_internal, has_external = routes.has_internal, routes.has_external
    uses_external_chain = routes.uses_external_chain

    # Filter-table verdict for traffic that has nowhere to go: REJECT when the Service has no endpoints
    # at all, DROP when only the Local policy lacks endpoints on this node.
    if not has_endpoints:
        filter_target, filter_comment = REJECT, f"{name} has no endpoints"
    else:
        filter_target, filter_comment = "DROP", f"{name} has no local endpoints"

    svcs_nat, svcs_flt = piece.nat_services, piece.filter_services
    ext_flt = piece.external_services
    dport = _dport(proto, info.port.port)
    cip = info.cluster_ip

    # ClusterIP
    if has_internal:
        svcs_nat.append(_rule("KUBE-SERVICES", _comment(f"{name} cluster IP"), dport, target=internal_chain,
                              dst=cip, proto=proto))
    else:
        svcs_flt.append(_rule("KUBE-SERVICES", _comment(filter_comment), dport, target=filter_target,
                              dst=cip, proto=proto))

    # externalIPs
    for eip in info.external_ips:
        if has_endpoints:
            svcs_nat.append(_rule("KUBE-SERVICES", _comment(f"{name} external IP"), dport, target=external_chain,
                                  dst=eip, proto=proto))
        if not has_external:
            ext_flt.append(_rule("KUBE-EXTERNAL-SERVICES", _comment(filter_comment), dport, target=filter_target,
                                 dst=eip, proto=proto))

    # LoadBalancer ingress IPs; with source ranges, what KUBE-FW does not send on (not DNATed, so still to
    # the LB IP) is dropped by the filter table's KUBE-PROXY-FIREWALL
    for vip in info.lb_vips:
        if has_endpoints:
            svcs_nat.append(_rule("KUBE-SERVICES", _comment(f"{name} loadbalancer IP"), dport,
                                  target=lb_chain, dst=vip, proto=proto))
        if uses_fw_chain:
            piece.proxy_firewall.append(_rule("KUBE-PROXY-FIREWALL",
                                              _comment(f"{name} traffic not accepted by {firewall_chain}"), dport,
                                              target="DROP", dst=vip, proto=proto))
    if not has_external:
        for vip in info.lb_vips:
            ext_flt.append(_rule("KUBE-EXTERNAL-SERVICES", _comment(filter_comment), dport, target=filter_target,
                                 dst=vip, proto=proto))

    # NodePort
    if info.node_port:
        np_dport = _dport(proto, info.node_port)
        if has_endpoints:
            piece.nodeports.append(_rule("KUBE-NODEPORTS", _comment(name), np_dport,
                                                      target=external_chain, proto=proto))
        if not has_external:
            ext_flt.append(_rule("KUBE-EXTERNAL-SERVICES", _comment(filter_comment),
                                 "-m addrtype --dst-type LOCAL", np_dport, target=filter_target, proto=proto))

    # healthCheckNodePort: accepted whether or not this node has endpoints (kube-proxy's health server answers)
    if info.health_check_node_port:
        piece.health_checks.append(_rule("KUBE-NODEPORTS", _comment(f"{name} health check node port"),
                                         _dport("tcp", info.health_check_node_port), target="ACCEPT", proto="tcp"))

    chains: dict[str, list[str]] = {}

    # Internal traffic: masquerade what comes from outside the pod network (a route to the service
    # range via some node), since the chosen endpoint may be on another node.
    if has_internal:
        chains.setdefault(internal_chain, []).append(_rule(
            internal_chain, _comment(f"{name} cluster IP"), dport, target="KUBE-MARK-MASQ",
            src=f"!{pod_net}", dst=cip, proto=proto))

    if uses_external_chain:
        ext = chains.setdefault(external_chain, [])
        if not info.etp_local:
            ext.append(_rule(external_chain, _comment(f"masquerade traffic for {name} external destinations"),
                             target="KUBE-MARK-MASQ"))
        else:
            # Pods on this node and the node itself are short-circuited to the cluster-wide chain.
            ext.append(_rule(external_chain, _comment(f"pod traffic for {name} external destinations"),
                             target=cluster_chain, src=pod_net))
            ext.append(_rule(external_chain, _comment(f"masquerade LOCAL traffic for {name} external destinations"),
                             "-m addrtype --src-type LOCAL", target="KUBE-MARK-MASQ"))
            ext.append(_rule(external_chain, _comment(f"route LOCAL traffic for {name} external destinations"),
                             "-m addrtype --src-type LOCAL", target=cluster_chain))
        if has_external:
            ext.append(_rule(external_chain, target=external_policy_chain))

    if uses_fw_chain:
        fw = chains.setdefault(firewall_chain, [])
        for cidr in info.source_ranges:
            fw.append(_rule(firewall_chain, _comment(f"{name} loadbalancer IP"), target=external_chain, src=cidr))
        # an LB IP bound on the node: the node's own requests to it come from the LB IP itself
        if any(ipaddress.ip_address(node.ip) in ipaddress.ip_network(c) for c in info.source_ranges):
            for vip in info.lb_vips:
                fw.append(_rule(firewall_chain, _comment(f"{name} loadbalancer IP"), target=external_chain, src=vip))
        fw.append(f'-A {firewall_chain} {_comment(f"other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL")}')

    if uses_cluster_chain:
        chains.setdefault(cluster_chain, []).extend(_to_endpoints(info, cluster_chain, cluster_eps, large))
    if uses_local_chain:
        chains.setdefault(local_chain, []).extend(_to_endpoints(info, local_chain, local_eps, large))

    for ep in reachable:
        chain = sep_chain(name, proto, ep_string(ep))
        affinity = f"-m recent --set --name {chain} --mask 255.255.255.255 --rsource" \
            if info.sticky_seconds is not None else None
        comment = None if large else _comment(name)
        chains[chain] = [
            _rule(chain, comment, target="KUBE-MARK-MASQ", src=str(ep.ip)),          # hairpin
            _rule(chain, comment, affinity, f"-m {proto}", target=f"DNAT --to-destination {ep_string(ep)}",
                  proto=proto),
        ]

    # Declare in kube-proxy's order (EXT, FW, SVC, SVL, then the endpoints) whatever is used.
    order = [external_chain, firewall_chain, cluster_chain, local_chain]
    for chain in order + [c for c in chains if c not in order]:
        if chain in chains:
            piece.chains[chain] = chains[chain]


def _to_endpoints(info: PortInfo, chain: str, endpoints: list[Endpoint], large: bool = False) -> list[str]:
    """Affinity checks first (one per endpoint), then the random ladder: 1/n, 1/(n-1), ..., then the last.
    `large`: without comments (kube-proxy's large cluster mode)."""
    rules = []
    if info.sticky_seconds is not None:
        for ep in endpoints:
            sep = sep_chain(info.name, info.proto, ep_string(ep))
            rules.append(_rule(chain, None if large else _comment(f"{info.name} -> {ep_string(ep)}"),
                               f"-m recent --rcheck --seconds {info.sticky_seconds} --reap --name {sep} "
                               f"--mask 255.255.255.255 --rsource", target=sep))
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        sep = sep_chain(info.name, info.proto, ep_string(ep))
        stat = f"-m statistic --mode random --probability {probability(n - i)}" if i < n - 1 else None
        rules.append(_rule(chain, None if large else _comment(f"{info.name} -> {ep_string(ep)}"), stat, target=sep))
    return rules
