"""kube-proxy's IPVS mode, rendered per node as data, plus pure diffs against the live state. Pure.

What a node holds when kube-proxy (Kubernetes 1.31+, `mode: ipvs`, pkg/proxy/ipvs) runs on it with the
settings a kind/kubeadm cluster uses: `--cluster-cidr` = the pod subnet (local traffic detector
`! -s <podSubnet>`), masquerade bit 14 (mark 0x4000), `masqueradeAll: false`, `strictARP: false`,
`nodePortAddresses` unset, no `excludeCIDRs`, no IPVS timeouts, iptables with `--random-fully`.

  dummy device  `kube-ipvs0` (kube-proxy leaves it down) holding a /32 of every ClusterIP, and of every
                externalIP / LoadBalancer IP that is not already an address of another interface.
  IPVS          one virtual server per ClusterIP:port, externalIP:port, LB IP:port, and per node
                address:nodePort; scheduler `networking.ipvsScheduler`; sessionAffinity ClientIP ->
                persistent with the affinity timeout; scheduler `mh` -> flag `mh-port` (kube-proxy's
                FlagSourceHash, 0x10). Real servers: the endpoints, masquerading, weight 1.
  ipsets        all 17 of kube-proxy's sets, created on every sync even when empty (IPSET_INFO).
  iptables      nat: KUBE-SERVICES, KUBE-POSTROUTING, KUBE-NODE-PORT, KUBE-LOAD-BALANCER, KUBE-MARK-MASQ;
                filter: KUBE-FORWARD, KUBE-NODE-PORT, KUBE-PROXY-FIREWALL, KUBE-SOURCE-RANGES-FIREWALL,
                KUBE-IPVS-FILTER, KUBE-IPVS-OUT-FILTER; rules that match the sets (a rule whose set is empty
                is left out, as kube-proxy does), in iptables-save form like kubeproxy_iptables.
  sysctls       net/ipv4/vs/conntrack=1, expire_nodest_conn=1, expire_quiescent_template=1, ip_forward=1;
                vs/conn_reuse_mode=0 only on kernels in [4.1, 5.9) (newer ones are left as they are);
                conf/all/arp_ignore=1 and arp_announce=2 only with strictARP.

Endpoint choice (kube-proxy's syncEndpoint, with proxy.CategorizeEndpoints via `categorize_endpoints`,
the same function the iptables and nftables renderers use): a virtual server whose traffic policy is
Local (internalTrafficPolicy for the ClusterIP, externalTrafficPolicy for NodePorts, externalIPs and LB
IPs) gets the node's local endpoints *if there are any*, and otherwise the cluster-wide list
(kubernetes#97081: local pods can still reach the Service). That list is empty for an
internalTrafficPolicy: Local Service that is not externally accessible. Unlike iptables mode there is no
REJECT/DROP rule for a Service without endpoints: the virtual server exists with no real server, and
IPVS answers a new connection to it with ICMP port-unreachable itself (ip_vs_leave), so clients are
refused all the same. So, compared with iptables mode on the same node:
  - externalTrafficPolicy: Local without local endpoints: iptables mode drops external traffic, IPVS mode
    forwards it to remote endpoints without SNAT (the reply then bypasses the node and is lost);
  - internalTrafficPolicy: Local without local endpoints: iptables mode drops, IPVS mode refuses (no real
    server) - or, for a NodePort/LB Service, sends ClusterIP traffic to every endpoint.
KUBE-IPVS-FILTER (INPUT) rejects new connections to a kube-ipvs0 address that match no Service ip:port,
so a ClusterIP does *not* answer ping in current kube-proxy (it did before that chain existed).

NodePorts: with nodePortAddresses unset kube-proxy creates the virtual servers on every address of every
interface except kube-ipvs0 and loopback addresses. A netlab node has the node IP (eth0), the pod gateway
(cni0) and with VXLAN the flannel.1 /32, so a NodePort gets 2 or 3 virtual servers per node - as on a
real flannel node. The NodePort ipsets are bitmap:port (any local address), SCTP uses hash:ip,port with
the node addresses.

LoadBalancer Services: every LB ip:port is in KUBE-LOAD-BALANCER (and KUBE-LOAD-BALANCER-LOCAL with
externalTrafficPolicy Local); with loadBalancerSourceRanges also in KUBE-LOAD-BALANCER-FW, each range in
KUBE-LOAD-BALANCER-SOURCE-CIDR (ip,port,net), and - when a range holds the node IP - the LB IP itself as a
source in KUBE-LOAD-BALANCER-SOURCE-IP; otherwise KUBE-IPVS-OUT-FILTER drops the node's own connections
to that virtual server (kubernetes#119656). The filter chain KUBE-SOURCE-RANGES-FIREWALL returns what the
sets allow and drops the rest. A healthCheckNodePort goes into KUBE-HEALTH-CHECK-NODE-PORT (accepted by
KUBE-NODE-PORT and KUBE-IPVS-FILTER).

Not rendered: terminating endpoints and graceful deletion (kube-proxy sets a removed real server's weight
to 0 and deletes it when its connections are gone; here it is deleted at once - expire_nodest_conn=1 then
expires its connections on their next packet).

Order: kube-proxy walks Go maps; here virtual servers are sorted by (address, port, protocol), real
servers by their "ip:port" string (like the endpoint lists), ipset entries naturally (numbers as numbers).
Neither ipvsadm nor ipset guarantee an order, so the parsers (render/ipvs_text.py) sort the same way and
the diffs compare sets.

API (all pure):
  ipvs_state(cluster, node) -> IpvsState            what the node should hold
  node_ipvs_tables(cluster, node) -> {table: TableState}   the iptables part (render.iptables.node_rules
                                                      merges it, through netlab.proxymodes.ipvs)
  ipvsadm_save_text(vss) / parse_ipvsadm_save(text)   `ipvsadm -Sn` text, both ways
  ipvs_diff(desired, live) -> [op]                    add/edit/del service/real; op.restore_line()
  ipvsadm_restore_text(ops)                           `ipvsadm-restore` payload of those ops
  ipset_restore_text(state) / parse_ipset_save(text) / ipset_diff(state, live_save_text)
  ipset_destroy_text(live_save_text)                  destroy kube-proxy's sets (mode switch)
  address_diff(state, live_addresses) -> (add, remove)
  describe_ipvs(cluster, node)                        all but the iptables payload, as text (golden files,
                                                      `netlab render`, which prints the payload before it)

This module renders. The objects (VirtualServer, RealServer, IpSet, IpvsState) and kube-proxy's ipset
list are in render/ipvs_objects.py; the ipvsadm and ipset text and the diffs in render/ipvs_text.py;
all importable from here too.
"""
from __future__ import annotations

import ipaddress

from ..model.objects import Cluster, Endpoint, Node
from .fabric import node_local_ips
from .ipvs_objects import (BITMAP_PORT, CLUSTER_IP, DEFAULT_SCHEDULER, DUMMY_DEVICE, EXTERNAL_IP,  # noqa: F401
                           EXTERNAL_IP_LOCAL, HEALTH_CHECK_NODE_PORT, IPSET_INFO, IPSET_NAMES, IPVS_IPS, LOAD_BALANCER,
                           LOAD_BALANCER_FW, LOAD_BALANCER_LOCAL, LOAD_BALANCER_SOURCE_CIDR, LOAD_BALANCER_SOURCE_IP,
                           LOOP_BACK, NODE_PORT_LOCAL_SCTP, NODE_PORT_LOCAL_TCP, NODE_PORT_LOCAL_UDP, NODE_PORT_SCTP,
                           NODE_PORT_TCP, NODE_PORT_UDP, IpSet, IpvsState, RealServer, VirtualServer, ip_key,
                           natural)
# the text of ipvsadm and ipset, both ways, and the diffs: re-exported, as callers use them through this module
from .ipvs_text import (AddReal, AddService, DelReal, DelService, EditReal, EditService, IpvsOp,  # noqa: F401
                        address_diff, ipset_destroy_text, ipset_diff, ipset_restore_text, ipvs_diff,
                        ipvsadm_restore_text, ipvsadm_save_text, parse_ipset_save, parse_ipvsadm_save)
from .services import MASQ_MARK, PortInfo, categorize_endpoints, is_proxied, port_info
from .tables import TableState

# (set, table, chain, match type, protocol match, target) - kube-proxy's ipsetWithIptablesChain, in order.
# A rule is written only when its set is not empty.
IPSET_RULES: list[tuple[str, str, str, str, str | None, str]] = [
    (LOOP_BACK, "nat", "KUBE-POSTROUTING", "dst,dst,src", None, "MASQUERADE"),
    (LOAD_BALANCER, "nat", "KUBE-SERVICES", "dst,dst", None, "KUBE-LOAD-BALANCER"),
    (LOAD_BALANCER_LOCAL, "nat", "KUBE-LOAD-BALANCER", "dst,dst", None, "RETURN"),
    (NODE_PORT_LOCAL_TCP, "nat", "KUBE-NODE-PORT", "dst", "tcp", "RETURN"),
    (NODE_PORT_TCP, "nat", "KUBE-NODE-PORT", "dst", "tcp", "KUBE-MARK-MASQ"),
    (NODE_PORT_LOCAL_UDP, "nat", "KUBE-NODE-PORT", "dst", "udp", "RETURN"),
    (NODE_PORT_UDP, "nat", "KUBE-NODE-PORT", "dst", "udp", "KUBE-MARK-MASQ"),
    (NODE_PORT_LOCAL_SCTP, "nat", "KUBE-NODE-PORT", "dst,dst", "sctp", "RETURN"),
    (NODE_PORT_SCTP, "nat", "KUBE-NODE-PORT", "dst,dst", "sctp", "KUBE-MARK-MASQ"),
    (LOAD_BALANCER_FW, "filter", "KUBE-PROXY-FIREWALL", "dst,dst", None, "KUBE-SOURCE-RANGES-FIREWALL"),
    (LOAD_BALANCER_SOURCE_CIDR, "filter", "KUBE-SOURCE-RANGES-FIREWALL", "dst,dst,src", None, "RETURN"),
    (LOAD_BALANCER_SOURCE_IP, "filter", "KUBE-SOURCE-RANGES-FIREWALL", "dst,dst,src", None, "RETURN"),
]

# ---------------------------------------------------------------- iptables (pkg/proxy/ipvs/proxier.go)

NAT_CHAINS = ("KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-NODE-PORT", "KUBE-LOAD-BALANCER", "KUBE-MARK-MASQ")
FILTER_CHAINS = ("KUBE-FORWARD", "KUBE-NODE-PORT", "KUBE-PROXY-FIREWALL", "KUBE-SOURCE-RANGES-FIREWALL",
                 "KUBE-IPVS-FILTER", "KUBE-IPVS-OUT-FILTER")

# Jumps from built-in chains in the order they end up in: kube-proxy prepends each of its
# iptablesJumpChain entries (nat OUTPUT, PREROUTING, POSTROUTING; filter FORWARD->KUBE-FORWARD,
# INPUT->KUBE-NODE-PORT, INPUT/FORWARD->KUBE-PROXY-FIREWALL, INPUT->KUBE-IPVS-FILTER,
# OUTPUT->KUBE-IPVS-OUT-FILTER), so a later entry ends up above an earlier one in the same chain.
NAT_JUMPS = [
    ("PREROUTING", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    ("OUTPUT", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    ("POSTROUTING", '-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'),
]
FILTER_JUMPS = [
    ("INPUT", '-m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER'),
    ("INPUT", '-m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL'),
    ("INPUT", '-m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT'),
    ("FORWARD", '-m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL'),
    ("FORWARD", '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD'),
    ("OUTPUT", '-m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER'),
]

IP_PROTO = {"tcp": 6, "udp": 17, "sctp": 132}

# ---------------------------------------------------------------- sysctls

SYSCTLS = {
    "net/ipv4/vs/conntrack": "1",
    "net/ipv4/vs/expire_nodest_conn": "1",
    "net/ipv4/vs/expire_quiescent_template": "1",
    "net/ipv4/ip_forward": "1",
}
CONN_REUSE_MODE = "net/ipv4/vs/conn_reuse_mode"
CONN_REUSE_MIN_KERNEL = (4, 1)        # utilkernel.IPVSConnReuseModeMinSupportedKernelVersion
CONN_REUSE_FIXED_KERNEL = (5, 9)      # utilkernel.IPVSConnReuseModeFixedKernelVersion (kubernetes#93297)
STRICT_ARP_SYSCTLS = {"net/ipv4/conf/all/arp_ignore": "1", "net/ipv4/conf/all/arp_announce": "2"}

# scheduler flag names as ipvsadm prints them (`-b`), for kube-proxy's FlagSourceHash (0x10 = SCHED2)
SOURCE_HASH_FLAG = {"mh": "mh-port", "sh": "sh-port"}

# ---------------------------------------------------------------- the renderer

def node_addresses(cluster: Cluster, node: Node) -> list[str]:
    """Every non-loopback address of the node's interfaces other than kube-ipvs0 (kube-proxy's
    GetAllLocalAddressesExcept): node IP on eth0, the pod gateway on cni0, flannel.1's /32 with VXLAN."""
    return list(node_local_ips(cluster, node))


def _vs_endpoints(cluster_eps: list[Endpoint], local_eps: list[Endpoint], only_local: bool) -> list[Endpoint]:
    """syncEndpoint's choice: the local endpoints for a Local policy when there are any, else the cluster ones."""
    if only_local and local_eps:
        return local_eps
    return cluster_eps


def ipvs_state(cluster: Cluster, node: Node, *, kernel: tuple[int, int] | None = None,
               strict_arp: bool | None = None) -> IpvsState:
    """kube-proxy's IPVS-mode state on `node`.

    kernel: the (major, minor) of the node's kernel, for vs/conn_reuse_mode (None: a current kernel,
    >= 5.9, where kube-proxy leaves it alone). strict_arp: kube-proxy's ipvs.strictARP (None: the Cluster
    document's networking.ipvsStrictARP, default false). With it, arp_ignore=1 and arp_announce=2 for all
    interfaces, so a node answers ARP only for addresses of the interface asked on: not for the VIPs of
    kube-ipvs0 (MetalLB's layer-2 speaker answers for the LB IPs it announces). Without it every node
    answers ARP for every LB IP on kube-ipvs0: the trap MetalLB's docs warn of. As kube-proxy, nothing
    puts the sysctls back when it is turned off again.
    """
    if strict_arp is None:
        strict_arp = cluster.networking.ipvs_strict_arp
    scheduler = cluster.networking.ipvs_scheduler or DEFAULT_SCHEDULER
    flags = (SOURCE_HASH_FLAG[scheduler],) if scheduler == "mh" else ()
    local_addrs = node_addresses(cluster, node)
    local_set = set(local_addrs)
    sets = {name: IpSet(name, typ, [], comment) for name, typ, comment in IPSET_INFO}
    entries: dict[str, set[str]] = {name: set() for name in IPSET_NAMES}
    bound: set[str] = set()
    no_node_access: list[tuple[str, str, int]] = []     # (LB IP, protocol, port) the node may not reach
    vss: dict[tuple, VirtualServer] = {}

    ports = [(svc, port) for svc in cluster.services if is_proxied(svc) for port in svc.ports]
    ports.sort(key=lambda sp: (sp[0].namespace, sp[0].name, sp[1].name or "", sp[1].protocol))
    has_node_port = any(port_info(svc, port).node_port for svc, port in ports)
    node_ips = local_addrs if has_node_port else []

    for svc, port in ports:
        info: PortInfo = port_info(svc, port)
        proto = info.proto
        cluster_eps, local_eps, _, _ = categorize_endpoints(info, node)

        def add_vs(address: str, vport: int, only_local: bool, what: str) -> None:
            vs = VirtualServer(port.protocol, address, vport, scheduler, info.sticky_seconds, flags,
                               [RealServer(str(e.ip), e.port) for e in
                                _vs_endpoints(cluster_eps, local_eps, only_local)],
                               comment=f"{info.name} {what}")
            vss.setdefault(vs.key, vs)           # two Services claiming one ip:port: the first wins

        # hairpin: every endpoint of this node (ready or not), dst ip:port and src ip
        for ep in svc.endpoints.get(port.name or "", []):
            if ep.node == node.name:
                entries[LOOP_BACK].add(f"{ep.ip},{proto}:{ep.port},{ep.ip}")

        entries[CLUSTER_IP].add(f"{info.cluster_ip},{proto}:{port.port}")
        add_vs(info.cluster_ip, port.port, info.itp_local, "cluster IP")
        bound.add(info.cluster_ip)

        for eip in info.external_ips:
            entries[EXTERNAL_IP_LOCAL if info.etp_local else EXTERNAL_IP].add(f"{eip},{proto}:{port.port}")
            add_vs(eip, port.port, info.etp_local, "external IP")
            if eip not in local_set:             # not bound when another interface has it
                bound.add(eip)

        for vip in info.lb_vips:
            entries[LOAD_BALANCER].add(f"{vip},{proto}:{port.port}")
            if info.etp_local:
                entries[LOAD_BALANCER_LOCAL].add(f"{vip},{proto}:{port.port}")
            if info.source_ranges:
                entries[LOAD_BALANCER_FW].add(f"{vip},{proto}:{port.port}")
                for cidr in info.source_ranges:      # ipset prints a /32 net as the bare address
                    entries[LOAD_BALANCER_SOURCE_CIDR].add(f"{vip},{proto}:{port.port},{cidr.removesuffix('/32')}")
                if any(node.ip in ipaddress.IPv4Network(c) for c in info.source_ranges):
                    entries[LOAD_BALANCER_SOURCE_IP].add(f"{vip},{proto}:{port.port},{vip}")
                else:
                    no_node_access.append((vip, proto, port.port))
            add_vs(vip, port.port, info.etp_local, "load balancer IP")
            if vip not in local_set:
                bound.add(vip)

        if info.health_check_node_port:
            entries[HEALTH_CHECK_NODE_PORT].add(str(info.health_check_node_port))

        if info.node_port:
            np = info.node_port
            if proto == "sctp":
                np_entries = [(NODE_PORT_SCTP, NODE_PORT_LOCAL_SCTP, f"{ip},sctp:{np}") for ip in node_ips]
            else:
                tcp = proto == "tcp"
                np_entries = [(NODE_PORT_TCP if tcp else NODE_PORT_UDP,
                               NODE_PORT_LOCAL_TCP if tcp else NODE_PORT_LOCAL_UDP, str(np))]
            for all_set, local_set_name, entry in np_entries:
                entries[all_set].add(entry)
                if info.etp_local:
                    entries[local_set_name].add(entry)
            for ip in node_ips:                  # not bound: they are the node's own addresses
                add_vs(ip, np, info.etp_local, "node port")

    entries[IPVS_IPS] = set(bound)
    for name, s in sets.items():
        s.entries = sorted(entries[name], key=natural)

    sysctls = dict(SYSCTLS)
    if kernel is not None and CONN_REUSE_MIN_KERNEL <= kernel < CONN_REUSE_FIXED_KERNEL:
        sysctls[CONN_REUSE_MODE] = "0"
    if strict_arp:
        sysctls.update(STRICT_ARP_SYSCTLS)

    return IpvsState(
        node=node.name,
        addresses=[f"{a}/32" for a in sorted(bound, key=ip_key)],
        virtual_servers=sorted(vss.values(), key=lambda v: v.sort_key),
        ipsets=sets,
        iptables=_tables(sets, str(cluster.networking.pod_subnet), no_node_access),
        sysctls=sysctls,
    )


def node_ipvs_tables(cluster: Cluster, node: Node) -> dict[str, TableState]:
    """The IPVS-mode iptables chains of `node` (what `render.iptables.node_rules` merges with flannel's)."""
    return ipvs_state(cluster, node).iptables


# ---------------------------------------------------------------- iptables rules

def _rule(chain: str, *parts: str | None, target: str, src: str | None = None, proto: str | None = None) -> str:
    """One rule as iptables-save prints it: -s, -p, then the matches in the order given, then -j."""
    out = ["-A", chain]
    if src:
        out += ["!", "-s", src[1:]] if src.startswith("!") else ["-s", src]
    if proto:
        out += ["-p", proto]
    out += [p for p in parts if p]
    out += ["-j", target]
    return " ".join(out)


def _comment(text: str) -> str:
    return f'-m comment --comment "{text}"'


def _match_set(name: str, how: str) -> str:
    return f"-m set --match-set {name} {how}"


def _tables(sets: dict[str, IpSet], pod_net: str, no_node_access: list[tuple[str, str, int]] = ()
            ) -> dict[str, TableState]:
    """writeIptablesRules: the rules follow what the sets hold (a set's rule only when it is not empty).
    `no_node_access`: the LB ip:ports whose source ranges leave the node out (KUBE-IPVS-OUT-FILTER)."""
    nat = TableState(chains={c: [] for c in NAT_CHAINS}, jumps=list(NAT_JUMPS))
    flt = TableState(chains={c: [] for c in FILTER_CHAINS}, jumps=list(FILTER_JUMPS))
    tables = {"nat": nat, "filter": flt}
    full = {name: bool(s.entries) for name, s in sets.items()}
    comment = {name: _comment(s.comment) for name, s in sets.items()}
    svcs = nat.chains["KUBE-SERVICES"]

    # connections from localhost are not proxied (no localhost NodePorts in IPVS mode)
    svcs.append(_rule("KUBE-SERVICES", target="RETURN", src="127.0.0.0/8"))

    for name, table, chain, how, proto, target in IPSET_RULES:
        if full[name]:
            tables[table].chains[chain].append(
                _rule(chain, comment[name], _match_set(name, how), target=target, proto=proto))

    if full[CLUSTER_IP]:
        # off-cluster traffic to a ClusterIP (a route to the service range via a node) is masqueraded
        svcs.append(_rule("KUBE-SERVICES", comment[CLUSTER_IP], _match_set(CLUSTER_IP, "dst,dst"),
                          target="KUBE-MARK-MASQ", src=f"!{pod_net}"))

    def external_ip_rules(name: str) -> None:
        base = (comment[name], _match_set(name, "dst,dst"))
        # from off the machine (not bridged from a pod, not sent by the node), and to local addresses
        svcs.append(_rule("KUBE-SERVICES", *base, "-m physdev ! --physdev-is-in", "-m addrtype ! --src-type LOCAL",
                          target="ACCEPT"))
        svcs.append(_rule("KUBE-SERVICES", *base, "-m addrtype --dst-type LOCAL", target="ACCEPT"))

    if full[EXTERNAL_IP]:
        svcs.append(_rule("KUBE-SERVICES", comment[EXTERNAL_IP], _match_set(EXTERNAL_IP, "dst,dst"),
                          target="KUBE-MARK-MASQ"))
        external_ip_rules(EXTERNAL_IP)
    if full[EXTERNAL_IP_LOCAL]:
        external_ip_rules(EXTERNAL_IP_LOCAL)

    svcs.append(_rule("KUBE-SERVICES", "-m addrtype --dst-type LOCAL", target="KUBE-NODE-PORT"))
    nat.chains["KUBE-LOAD-BALANCER"].append(_rule("KUBE-LOAD-BALANCER", target="KUBE-MARK-MASQ"))
    flt.chains["KUBE-SOURCE-RANGES-FIREWALL"].append(_rule("KUBE-SOURCE-RANGES-FIREWALL", target="DROP"))
    # the node's own connection to an LB IP bound on kube-ipvs0 has that IP as its source: dropped when the
    # Service's source ranges leave the node out (the ipvs match as iptables-save prints it: protocol number)
    for vip, proto, port in no_node_access:
        flt.chains["KUBE-IPVS-OUT-FILTER"].append(_rule(
            "KUBE-IPVS-OUT-FILTER", f"-m ipvs --vproto {IP_PROTO[proto]} --vaddr {vip}/32 --vport {port}",
            target="DROP", src=f"{vip}/32"))

    # accept what IPVS will take, whatever other rules in the table might do (acceptIPVSTraffic)
    for name in (CLUSTER_IP, LOAD_BALANCER):
        if full[name]:
            svcs.append(_rule("KUBE-SERVICES", _match_set(name, "dst,dst"), target="ACCEPT"))

    flt.chains["KUBE-FORWARD"] += [
        _rule("KUBE-FORWARD", _comment("kubernetes forwarding rules"), f"-m mark --mark {MASQ_MARK}/{MASQ_MARK}",
              target="ACCEPT"),
        _rule("KUBE-FORWARD", _comment("kubernetes forwarding conntrack rule"),
              "-m conntrack --ctstate RELATED,ESTABLISHED", target="ACCEPT"),
    ]
    flt.chains["KUBE-NODE-PORT"].append(
        _rule("KUBE-NODE-PORT", comment[HEALTH_CHECK_NODE_PORT], _match_set(HEALTH_CHECK_NODE_PORT, "dst"),
              target="ACCEPT"))

    # kubernetes#72236: a VIP reaches only its Service ports, not whatever listens on the node
    ipvs_filter = flt.chains["KUBE-IPVS-FILTER"]
    for name, how in ((LOAD_BALANCER, "dst,dst"), (CLUSTER_IP, "dst,dst"), (EXTERNAL_IP, "dst,dst"),
                      (EXTERNAL_IP_LOCAL, "dst,dst"), (HEALTH_CHECK_NODE_PORT, "dst")):
        ipvs_filter.append(_rule("KUBE-IPVS-FILTER", _match_set(name, how), target="RETURN"))
    ipvs_filter.append(_rule("KUBE-IPVS-FILTER", "-m conntrack --ctstate NEW", _match_set(IPVS_IPS, "dst"),
                             target="REJECT --reject-with icmp-port-unreachable"))

    nat.chains["KUBE-POSTROUTING"] += [
        _rule("KUBE-POSTROUTING", f"-m mark ! --mark {MASQ_MARK}/{MASQ_MARK}", target="RETURN"),
        _rule("KUBE-POSTROUTING", target=f"MARK --set-xmark {MASQ_MARK}/0x0"),          # --xor-mark
        _rule("KUBE-POSTROUTING", _comment("kubernetes service traffic requiring SNAT"),
              target="MASQUERADE --random-fully"),
    ]
    nat.chains["KUBE-MARK-MASQ"].append(_rule("KUBE-MARK-MASQ", target=f"MARK --set-xmark {MASQ_MARK}/{MASQ_MARK}"))
    return tables


# ---------------------------------------------------------------- text

def describe_ipvs(cluster: Cluster, node: Node) -> str:
    """What IPVS mode programs on `node` besides the iptables rules: sysctls, kube-ipvs0's addresses, the
    ipsets and the virtual servers (`netlab render` prints this after the iptables payload)."""
    st = ipvs_state(cluster, node)
    out = [f"# node {node.name}: kube-proxy IPVS mode (scheduler {cluster.networking.ipvs_scheduler})"]
    out.append("## sysctls")
    out += [f"sysctl -w {k.replace('/', '.')}={v}" for k, v in st.sysctls.items()]
    out.append(f"## ip link add {st.dummy_device} type dummy")
    out += [f"ip addr add {a} dev {st.dummy_device}" for a in st.addresses]
    out.append("## ipset restore")
    out += ipset_restore_text(st).splitlines()
    out.append("## ipvsadm-restore")
    for vs in st.virtual_servers:
        out.append(f"# {vs.comment}")
        out += ipvsadm_save_text([vs]).splitlines()
    return "\n".join(out) + "\n"
