"""The Cluster document: netlab's own (netlab.dev/v1alpha1) or a kind config (kind.x-k8s.io/v1alpha4).

Its name, nodes and networking; the `expectations` that `netlab probe` checks.
"""
from __future__ import annotations

import ipaddress
import re

from ...errors import SpecError
from ..fields import Fields, check_name, shown
from ..limits import CLUSTER_API_VERSIONS, CONTROL_PLANE_TAINT, EXPECT_OUTCOMES, MAX_LAB_NAME
from ..capacity import BR_MAX_PORTS
from ..types import (AS_TRANS, BACKENDS, DNS_POD_MODES, HOST_MODES, HOST_STORES, HOSTS_SEGMENT, HOSTS_VXLAN_OVERHEAD,
                     HOSTS_VXLAN_PORT, HOSTS_VXLAN_VNI, IPTABLES_FLAVOURS, IPVS_SCHEDULERS, NFT_CHOICES,
                     POLICY_RENDERERS, PROXY_MODES, TUNNEL_MODES, BgpConfig, DnsConfig, ExpectSpec, HostsConfig,
                     HostSpec, IngressConfig, Networking, NodeSpec)
from . import Context, ObjectDoc, register

KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"


@register("Cluster", *CLUSTER_API_VERSIONS, order=0, cluster=True)
def parse_cluster(doc: ObjectDoc, ctx: Context) -> None:
    ctx.name, ctx.nodes, ctx.networking, ctx.expectations = _parse_cluster(doc.data, doc.where, ctx)


def _parse_cluster(doc: dict, where: str, ctx: Context):
    ignored = ctx.ignored
    top = Fields(doc, where, "", ignored, "Cluster", ctx.problems)
    top.skip("kind")
    api = top.str("apiVersion")
    if api is not None and api not in CLUSTER_API_VERSIONS:
        raise top.error("apiVersion", f"{shown(api)} is not a Cluster API version",
                        f"use {CLUSTER_API_VERSIONS[0]}")
    name = top.str("name", "netlab")
    if len(name) > MAX_LAB_NAME or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name):
        raise top.error("name", f"{shown(name)} is not a valid lab name",
                        f"use at most {MAX_LAB_NAME} lowercase letters, digits and '-'")
    if top.has("metadata"):  # tolerate a metadata.name for the lab, as some tools write it
        meta = top.map("metadata")
        meta_name = meta.str("name")
        meta.done()
        if meta_name and top.data.get("name") is None:
            name = meta_name
            check_name(name, where, "metadata.name", max_len=MAX_LAB_NAME)

    net = top.map("networking")
    pod_subnet = net.network("podSubnet", "10.244.0.0/16", 8, 28)
    service_subnet = net.network("serviceSubnet", "10.96.0.0/16", 8, 28)
    node_subnet = net.network("nodeSubnet", "172.18.0.0/16", 8, 29)
    mask = net.int("nodeCIDRMaskSize", 24, lo=pod_subnet.prefixlen, hi=29)
    backend = net.choice("backend", BACKENDS, "vxlan")
    proxy_mode = net.choice("kubeProxyMode", PROXY_MODES, "iptables")
    flavour = net.choice("iptablesFlavour", IPTABLES_FLAVOURS, "auto")
    scheduler = net.choice("ipvsScheduler", IPVS_SCHEDULERS, "rr")
    strict_arp = net.bool("ipvsStrictARP", False)   # kube-proxy's ipvs.strictARP
    nft_choice = net.choice("nftablesEndpointChoice", NFT_CHOICES, "vmap")
    policy_renderer = net.choice("networkPolicyRenderer", POLICY_RENDERERS, POLICY_RENDERERS[0])
    domain = net.str("dnsDomain", "cluster.local")
    check_name(domain, where, "networking.dnsDomain", subdomain=True)
    if any(len(label) > 63 for label in domain.split(".")):   # a DNS label: at most 63 octets
        raise net.error("dnsDomain", f"{shown(domain)} has a label longer than 63 characters",
                        "shorten it: each dot-separated part of a DNS name has at most 63")
    hosts = _parse_hosts(top, nets_of=(pod_subnet, service_subnet, node_subnet))
    if hosts is None:
        mtu = net.int("mtu", 1500, lo=1280, hi=9000)
    else:   # the nodes' eth0 is inside the underlay's VXLAN between the hosts: it holds the NIC's MTU less 50
        fits = hosts.mtu - HOSTS_VXLAN_OVERHEAD
        mtu = net.int("mtu", fits, lo=1280, hi=9000)
        if mtu > fits:
            raise net.error("mtu", f"{mtu} does not fit in the hosts' NIC MTU {hosts.mtu} less the "
                            f"{HOSTS_VXLAN_OVERHEAD} bytes of the underlay's VXLAN between the hosts",
                            f"use at most {fits} (or leave it out), or raise hostNetwork.mtu")
    npr = net.str("serviceNodePortRange", "30000-32767")
    m = re.match(r"^(\d+)-(\d+)$", npr or "")
    if not m or not (1 <= int(m.group(1)) <= int(m.group(2)) <= 65535):
        raise net.error("serviceNodePortRange", f"{shown(npr)} is not a port range", "write it like 30000-32767")
    tunnel_mode = _tunnel_mode(net, backend)
    bgp = None
    if net.has("bgp") or backend == "bgp":
        bgp = _parse_bgp(net.map("bgp"), backend, node_subnet)
    ipfam = net.str("ipFamily", "ipv4")
    if ipfam != "ipv4":
        raise net.error("ipFamily", f"{shown(ipfam)} is not supported", "netlab emulates IPv4 clusters: use ipv4")
    net.done()  # kind's disableDefaultCNI, apiServerAddress, apiServerPort, dnsSearch: reported as ignored

    nets = {"networking.podSubnet": pod_subnet, "networking.serviceSubnet": service_subnet,
            "networking.nodeSubnet": node_subnet}
    items = list(nets.items())
    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            if items[a][1].overlaps(items[b][1]):
                raise SpecError(where, f"{items[b][0]} {items[b][1]} overlaps {items[a][0]} {items[a][1]}",
                                "give the pod, service and node networks separate ranges")
    for key, subnet in nets.items():
        if subnet.overlaps(ipaddress.ip_network("127.0.0.0/8")) or subnet.overlaps(ipaddress.ip_network("224.0.0.0/3")):
            raise SpecError(where, f"{key} {subnet} overlaps loopback or multicast space", "use a private range")

    nodes: list[NodeSpec] = []
    counters = {"control-plane": 0, "worker": 0}
    node_docs = list(top.maps("nodes")) if top.has("nodes") else None
    if node_docs is not None and not node_docs:
        raise top.error("nodes", "is empty", "list at least one node, e.g. '- role: control-plane'")
    if node_docs is None and api == KIND_API_VERSION:  # kind: one control-plane node, which takes pods
        node_docs = [Fields({"role": "control-plane"}, where, "nodes[0]", ignored)]
    elif node_docs is None:
        node_docs = [Fields({"role": "control-plane"}, where, "nodes[0]", ignored),
                     Fields({"role": "worker"}, where, "nodes[1]", ignored)]
    from ..capacity import MachineLimits, Readings
    over = (ctx.limits or MachineLimits(Readings())).nodes_over(name, len(node_docs))
    if over is not None:
        raise top.error("nodes", f"lists {len(node_docs)} nodes, but {over.text('nodes')}", over.fix)
    first_ignored = len(ignored)
    for nd in node_docs:
        role = nd.choice("role", ("control-plane", "worker"), "control-plane")
        node_name = nd.name("name", required=False)
        if node_name is None:  # kind-like: <lab>-worker, <lab>-worker2, ... counting only unnamed nodes
            counters[role] += 1
            node_name = f"{name}-{role}" + (str(counters[role]) if counters[role] > 1 else "")
        labels = nd.strmap("labels")
        subnet = nd.network("subnet", None, 8, 29) if nd.has("subnet") else None
        host = nd.str("host")
        if host is not None and hosts is None:
            raise nd.error("host", f"'{host}' names a host but the Cluster lists no hosts",
                           "list the lab's hosts under hosts:, or remove the node's host")
        nd.done()  # kind's image, extraMounts, extraPortMappings, kubeadmConfigPatches...: reported as ignored
        if any(n.name == node_name for n in nodes):
            raise nd.error("name", f"'{node_name}' is used by two nodes", "give each node its own name")
        nodes.append(NodeSpec(node_name, role, labels, subnet=subnet, host=host))
    # a kind config repeats its dropped fields on every node: each is reported once, as nodes[*].FIELD
    per_node = [re.sub(r": nodes\[\d+\]\.", ": nodes[*].", item, count=1) for item in ignored[first_ignored:]]
    ignored[first_ignored:] = list(dict.fromkeys(per_node))
    if hosts is not None:
        _place(nodes, hosts, where)
    has_workers = any(n.role == "worker" for n in nodes)
    for n in nodes:
        n.labels.setdefault("kubernetes.io/hostname", n.name)
        n.labels.setdefault("kubernetes.io/os", "linux")
        if n.role == "control-plane":
            n.labels.setdefault(CONTROL_PLANE_TAINT, "")
            n.schedulable = not has_workers

    _check_node_subnets(nodes, nets, backend, where)
    cidrs = 2 ** (mask - pod_subnet.prefixlen)
    if len(nodes) > cidrs:
        raise SpecError(where, f"networking.podSubnet {pod_subnet} holds {cidrs} /{mask} node ranges "
                        f"but the cluster has {len(nodes)} nodes", "use a larger podSubnet or a longer nodeCIDRMaskSize")
    # nodes, the gateway (.1), the external host's two, the BGP router's own address if it has one
    if len(nodes) + 3 + bool(bgp and bgp.external_address) > node_subnet.num_addresses - 2:
        raise SpecError(where, f"networking.nodeSubnet {node_subnet} is too small for {len(nodes)} nodes, "
                        "its gateway and the external host", "use a larger nodeSubnet")
    if service_subnet.num_addresses < 16:
        raise SpecError(where, f"networking.serviceSubnet {service_subnet} is too small", "use at least a /28")

    expectations = []
    for ex in top.maps("expectations"):
        src = ex.str("from", required=True)
        dst = ex.str("to", required=True)
        outcome = ex.choice("expect", EXPECT_OUTCOMES, "reachable")
        backends = ex.raw("backends")
        if backends is not None and backends != "all" and (isinstance(backends, bool) or not isinstance(backends, int)):
            raise ex.error("backends", f"{shown(backends)} is not 'all' or a number", "use backends: all")
        proto = ex.choice("protocol", ("TCP", "UDP", "ICMP"), None)
        ex.done()
        expectations.append(ExpectSpec(src, dst, outcome, backends, proto))
    # the control loop's periods (netlab/live/sync.py reads them): Kubernetes' are 40 s (50 s since 1.32)
    # and 300 s; a lab's defaults are short so that a node failure plays out in seconds
    cp = top.map("controlPlane")
    cp.int("nodeMonitorGracePeriod", 10, lo=1, hi=3600)
    cp.int("defaultTolerationSeconds", 10, lo=0, hi=86400)
    cp.done()
    dns = _parse_dns(top.map("dns"))
    from ...lb.shorthand import load_balancer
    ctx.generated.extend(load_balancer(top.map("loadBalancer")))
    ingress = _parse_ingress(top.map("ingress"), (int(m.group(1)), int(m.group(2)))) if top.has("ingress") else None
    top.done()
    networking = Networking(pod_subnet, service_subnet, node_subnet, mask, backend, proxy_mode, flavour,
                            scheduler, domain, (int(m.group(1)), int(m.group(2))), mtu, nft_choice=nft_choice,
                            dns=dns, ipvs_strict_arp=strict_arp, ingress=ingress,
                            policy_renderer=policy_renderer, bgp=bgp, tunnel_mode=tunnel_mode, hosts=hosts)
    return name, nodes, networking, expectations


def _parse_hosts(top: Fields, nets_of: tuple) -> HostsConfig | None:
    """`hosts` (the lab's hosts: name, address on the hosts' segment, NIC, node count) and `hostNetwork`
    (emulated or real hosts, the segment, the NICs' MTU, the underlay's VXLAN between the hosts)."""
    if not top.has("hosts"):
        if top.has("hostNetwork"):
            raise top.error("hostNetwork", "is set but the Cluster lists no hosts",
                            "list the lab's hosts under hosts:, or remove hostNetwork")
        return None
    hn = top.map("hostNetwork")
    mode = hn.choice("mode", HOST_MODES, "emulated")
    if mode == "real" and not hn.has("segment"):
        raise hn.missing("segment", "is required with mode real",
                         "set it to the network of the hosts' NICs, e.g. 192.168.56.0/24")
    segment = hn.network("segment", HOSTS_SEGMENT, 8, 29)
    for other in nets_of:
        if segment.overlaps(other):
            raise hn.error("segment", f"{segment} overlaps the cluster's network {other}",
                           "give the hosts' segment a range of its own")
    nic_mtu = hn.int("mtu", 1500, lo=1280 + HOSTS_VXLAN_OVERHEAD, hi=9000)
    vni = hn.int("vni", HOSTS_VXLAN_VNI, lo=1, hi=16777215)
    port = hn.int("port", HOSTS_VXLAN_PORT, lo=1, hi=65535)
    if port == 8472:
        raise hn.error("port", "8472 is flannel.1's port (the nodes' VXLAN inside the underlay)",
                       f"use another port for the underlay between the hosts, e.g. {HOSTS_VXLAN_PORT}")
    store = hn.choice("store", HOST_STORES, "sqlite")
    if store == "etcd" and mode == "real":
        raise hn.error("store", "etcd runs one member inside each emulated host; real hosts do not have it",
                       "leave store out with mode real and give an etcd cluster of your own: netlab up --etcd URLS")
    hn.done()
    docs = list(top.maps("hosts"))
    if not docs:
        raise top.error("hosts", "is empty", "list at least one host, e.g. '- name: a'")
    usable = list(segment.hosts())
    auto = usable[1:] if len(usable) > len(docs) else usable   # the first address left for a router on the segment
    if len(docs) > len(usable):
        raise top.error("hosts", f"lists {len(docs)} hosts but hostNetwork.segment {segment} holds {len(usable)}",
                        "use a larger segment")
    hosts: list[HostSpec] = []
    taken: set = set()
    for i, h in enumerate(docs):
        name = h.name("name")
        if any(x.name == name for x in hosts):
            raise h.error("name", f"'{name}' is used by two hosts", "give each host its own name")
        if len(name) > 40:
            raise h.error("name", f"'{name}' is longer than 40 characters", "use a shorter host name")
        address = h.str("address", required=(mode == "real"))
        if address is None:
            ip = next(a for a in auto if a not in taken and a not in
                      {ipaddress.IPv4Address(d.data["address"]) for d in docs if _ip_or_none(d.data.get("address"))})
        else:
            ip = _ip_or_none(address)
            if ip is None:
                raise h.error("address", f"{shown(address)} is not an IPv4 address", "write it like 192.168.240.2")
            if ip not in usable:
                raise h.error("address", f"{ip} is not a host address of hostNetwork.segment {segment}",
                              "give the host an address of the segment")
        if ip in taken:
            raise h.error("address", f"{ip} is another host's address", "give each host its own address")
        taken.add(ip)
        interface = h.str("interface")
        if mode == "emulated" and interface is not None:
            raise h.error("interface", "is set but hostNetwork.mode is emulated (an emulated host's NIC is eth0)",
                          "remove it, or set hostNetwork.mode: real")
        if mode == "real" and interface is None:
            raise h.missing("interface", "is required with hostNetwork.mode real",
                            f"name the host's NIC on {segment}, e.g. interface: eth1")
        count = h.int("nodes", None, lo=0, hi=BR_MAX_PORTS)
        h.done()
        hosts.append(HostSpec(name, ip, interface or "eth0", count))
    return HostsConfig(mode, segment, nic_mtu, vni, port, hosts, store)


def _ip_or_none(text) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _place(nodes: list[NodeSpec], hosts: HostsConfig, where: str) -> None:
    """Each node's host (named, or spread: netlab/model/placement.py), recorded as its label netlab.dev/host."""
    from ...model.placement import HOST_LABEL, PlacementError, place
    try:
        placed = place([(n.name, n.host) for n in nodes], [(h.name, h.nodes) for h in hosts.hosts])
    except PlacementError as e:
        raise SpecError(where, f"{e.path} {e.problem}", e.fix) from None
    for n in nodes:
        n.host = placed[n.name]
        n.labels[HOST_LABEL] = n.host


def _tunnel_mode(net: Fields, backend: str) -> str:
    """`ipipMode` (backend ipip) or `vxlanMode` (backend vxlan), as Calico's IPPool spells them: Always, or
    CrossSubnet (encapsulate only toward nodes in another underlay subnet; flannel's DirectRouting)."""
    mode = "Always"
    for key, owner in (("ipipMode", "ipip"), ("vxlanMode", "vxlan")):
        if not net.has(key):
            continue
        value = net.str(key)
        if value == "Never":
            raise net.error(key, "Never means no encapsulation", "use networking.backend: host-gw for that")
        if value not in TUNNEL_MODES:
            raise net.error(key, f"{shown(value)} is not an {key}", f"use one of: {', '.join(TUNNEL_MODES)}")
        if backend != owner:
            raise net.error(key, f"is set but networking.backend is {backend}",
                            f"set networking.backend: {owner}, or remove networking.{key}")
        mode = value
    return mode


def _check_node_subnets(nodes: list[NodeSpec], nets: dict, backend: str, where: str) -> None:
    """`nodes[].subnet`: a node in an underlay subnet of its own, which the underlay's gateway routes to
    and from networking.nodeSubnet (two racks behind one router). Only the tunnelling backends can reach a
    node there: host-gw's and BGP's next hop must be on the node's own link."""
    seen: list = []
    for i, n in enumerate(nodes):
        if n.subnet is None or n.subnet in seen:
            continue
        for key, other in list(nets.items()) + [("another node's subnet", s) for s in seen]:
            if n.subnet.overlaps(other):
                raise SpecError(where, f"nodes[{i}].subnet {n.subnet} overlaps {key} {other}",
                                "give each underlay subnet its own range, outside the pod, service and node networks")
        seen.append(n.subnet)
        count = sum(m.subnet == n.subnet for m in nodes)
        if count + 1 > n.subnet.num_addresses - 2:
            raise SpecError(where, f"nodes[{i}].subnet {n.subnet} is too small for its {count} nodes and its gateway",
                            "use a larger subnet")
    if seen and backend not in ("vxlan", "ipip"):
        raise SpecError(where, f"nodes[].subnet puts nodes in another underlay subnet, which backend {backend} "
                        "cannot reach (its next hop must be on the node's own link)",
                        "use networking.backend: vxlan or ipip (with CrossSubnet to route directly where it can)")
    if seen and all(n.subnet is not None for n in nodes):
        raise SpecError(where, "every node has a nodes[].subnet: none is in networking.nodeSubnet",
                        "leave at least one node (e.g. the first) in networking.nodeSubnet")


MAX_AS = 4294967295   # a 4-byte AS number (RFC 6793)


def _as_number(d: Fields, key: str, default: int) -> int:
    value = d.int(key, default, lo=1, hi=MAX_AS)
    if value == AS_TRANS:
        raise d.error(key, f"{AS_TRANS} is AS_TRANS, reserved for 2-byte speakers (RFC 6793)",
                      "use another number, e.g. a private one from 64512 to 65534")
    return value


def _parse_bgp(d: Fields, backend: str, node_subnet: ipaddress.IPv4Network) -> BgpConfig:
    """The `networking.bgp:` map: the BGP backend's speakers (netlab/bgp/)."""
    if backend != "bgp" and d.data:
        raise SpecError(d.where, f"networking.bgp is set but networking.backend is {backend}",
                        "set networking.backend: bgp, or remove networking.bgp")
    cfg = BgpConfig()
    cfg.as_number = _as_number(d, "asNumber", cfg.as_number)
    cfg.route_reflector = d.bool("routeReflector", False)
    cfg.nat_outgoing = d.bool("natOutgoing", False)
    cfg.hold_time = d.int("holdTime", cfg.hold_time, lo=3, hi=65535)
    cfg.keepalive_time = d.int("keepaliveTime", cfg.keepalive_time, lo=1, hi=21845)
    if cfg.keepalive_time * 3 > cfg.hold_time:
        raise d.error("keepaliveTime", f"{cfg.keepalive_time} is more than a third of holdTime {cfg.hold_time}",
                      f"use at most {cfg.hold_time // 3} (a session survives two lost keepalives)")
    ext = d.map("externalRouter")
    cfg.external_as = _as_number(ext, "asNumber", cfg.external_as)
    address = ext.str("address")
    if address is not None:
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            raise ext.error("address", f"{shown(address)} is not an IPv4 address",
                            "write it like 172.18.0.250") from None
        if ip not in node_subnet or ip in (node_subnet.network_address, node_subnet.broadcast_address):
            raise ext.error("address", f"{ip} is outside the underlay {node_subnet} (networking.nodeSubnet)",
                            "give the external router an address of the node subnet")
        if ip == node_subnet.network_address + 1:
            raise ext.error("address", f"{ip} is the underlay's gateway", "use another address of the node subnet")
        cfg.external_address = None if ip == node_subnet.broadcast_address - 1 else str(ip)
    ext.done()
    d.done()
    return cfg



MAX_UPSTREAMS = 3   # resolv.conf's MAXNS: as many as a resolver would use


def _parse_dns(d: Fields) -> DnsConfig:
    """The `dns:` map: the lab's cluster DNS (netlab/dns/; the domain is networking.dnsDomain)."""
    pods = d.choice("pods", DNS_POD_MODES, "insecure")
    ttl = d.int("ttl", 30, lo=0, hi=3600)
    replicas = d.int("replicas", 2, lo=0, hi=10)
    upstreams = None
    d.raw("upstreamNameservers")   # (null: the default)
    if d.has("upstreamNameservers"):
        found = d.strlist("upstreamNameservers")
        if len(found) > MAX_UPSTREAMS:
            raise d.error("upstreamNameservers", f"lists {len(found)} nameservers, more than {MAX_UPSTREAMS}",
                          f"keep at most {MAX_UPSTREAMS}")
        for i, text in enumerate(found):
            try:
                ip = ipaddress.IPv4Address(text)
            except ValueError:
                raise d.error(f"upstreamNameservers[{i}]", f"{shown(text)} is not an IPv4 address",
                              "write it like 192.0.2.53") from None
            if ip.is_unspecified or ip.is_multicast:
                raise d.error(f"upstreamNameservers[{i}]", f"{ip} cannot be a nameserver", "use a unicast address")
        upstreams = tuple(found)
    d.done()
    return DnsConfig(pods, ttl, upstreams, replicas)


def _parse_ingress(d: Fields, node_ports: tuple[int, int]) -> IngressConfig:
    """The `ingress:` map: the ingress-nginx add-on (netlab/ingress/addon.py) and its controller Service."""
    cls = d.str("className", "nginx")
    check_name(cls, d.where, d.at("className"), subdomain=True)
    default = d.bool("defaultClass")
    stype = d.choice("serviceType", ("NodePort", "LoadBalancer"), "NodePort")
    ports = []
    for key in ("httpNodePort", "httpsNodePort"):
        ports.append(d.int(key, None, lo=node_ports[0], hi=node_ports[1]))
    if ports[0] is not None and ports[0] == ports[1]:
        raise d.error("httpsNodePort", f"{ports[1]} is httpNodePort too", "give the two node ports different numbers")
    replicas = d.int("replicas", 1, lo=0, hi=10)
    etp = d.choice("externalTrafficPolicy", ("Cluster", "Local"), "Cluster")
    lb_ip = d.str("loadBalancerIP")
    if lb_ip is not None:
        try:
            ipaddress.IPv4Address(lb_ip)
        except ValueError:
            raise d.error("loadBalancerIP", f"{shown(lb_ip)} is not an IPv4 address", "write it like 172.18.255.200") from None
        if stype != "LoadBalancer":
            raise d.error("loadBalancerIP", "is set but serviceType is NodePort", "set serviceType: LoadBalancer")
    d.done()
    return IngressConfig(cls, default, stype, ports[0], ports[1], replicas, etp, lb_ip)
