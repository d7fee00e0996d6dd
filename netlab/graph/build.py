"""`build(cluster) -> Graph`: the elements and edges of a lab, read from its model (pure, no root).

What is drawn is what netlab builds (netlab/render/fabric.py, netlab/dataplane/fabric.py): the external host
and every node joined by a veth to the underlay bridge; in each node cni0 with a veth to every pod, and
flannel.1 (VXLAN: a tunnel to every other node's flannel.1), tunl0 (IP-in-IP) or host-gw's routes to the other
nodes' podCIDRs (CrossSubnet: routes to the nodes of the same subnet, tunnels to the others);
Services with an edge to each endpoint.
"""
from __future__ import annotations

from ..model.objects import Cluster, Node
from ..render.fabric import (BRIDGE, IPIP_DEV, UNDERLAY_BRIDGE, VXLAN_DEV, VXLAN_PORT, VXLAN_VNI, pod_mtu,
                             tunnelled)
from .model import Edge, Element, Graph, edge_id


def build(cluster: Cluster) -> Graph:
    net = cluster.networking
    plen = net.node_subnet.prefixlen
    g = Graph(cluster.name, net.backend, net.proxy_mode, groups=[n.name for n in cluster.nodes])
    add = g.elements.append

    def join(a: str, b: str, kind: str, label: str = "", down: bool = False, **attrs) -> None:
        g.edges.append(Edge(edge_id(a, b), kind, a, b, label, attrs, down))

    add(Element("external", "external", "external host", [f"{cluster.external_ip}/{plen}",
                                                           f"{cluster.external_ip2}/{plen}"],
                attrs={"netns": cluster.external_netns, "interface": "eth0"}))
    extra = cluster.extra_subnets()   # nodes[].subnet: routed by the gateway
    hosts = [] if net.hosts is None else \
        [f"spans hosts by VXLAN {net.hosts.vni}/{net.hosts.port} over {net.hosts.segment}"] + \
        [f"host {h.name} {h.address}: {', '.join(n.name for n in cluster.nodes_on_host(h.name)) or '-'}"
         for h in net.hosts.hosts]   # a lab over several hosts: one L2 underlay, each host's part on its own
    add(Element("underlay", "underlay", f"underlay ({UNDERLAY_BRIDGE})", [str(net.node_subnet), *map(str, extra)],
                details=[f"gateway {cluster.gateway_ip}" + "".join(f", {s.network_address + 1}" for s in extra)]
                + hosts,
                attrs={"netns": cluster.underlay_netns, "bridge": UNDERLAY_BRIDGE, "gateway": str(cluster.gateway_ip)}))
    join("external", "underlay", "veth", "eth0 \u2194 external", interfaces=["eth0", "external"])
    for n in cluster.nodes:
        _node(g, cluster, n, join, plen)
    how = " proto bird" if net.backend == "bgp" else ""   # bgp: host-gw's routes, learned from BGP
    for i, a in enumerate(cluster.nodes):
        for b in cluster.nodes[i + 1:]:
            down = a.partitioned or b.partitioned
            if net.backend == "vxlan" and tunnelled(cluster, a, b):
                join(f"vtep:{a.name}", f"vtep:{b.name}", "tunnel", f"VXLAN {VXLAN_VNI}, UDP {VXLAN_PORT}",
                     down=down, vni=VXLAN_VNI, port=VXLAN_PORT,
                     routes=[f"{a.name}: {b.pod_cidr} via {b.vtep_ip} dev {VXLAN_DEV} onlink",
                             f"{b.name}: {a.pod_cidr} via {a.vtep_ip} dev {VXLAN_DEV} onlink"],
                     underlay=[str(a.ip), str(b.ip)])
            elif net.backend == "ipip" and tunnelled(cluster, a, b):
                join(f"tunl:{a.name}", f"tunl:{b.name}", "tunnel", "IP-in-IP (IP protocol 4)", down=down,
                     routes=[f"{a.name}: {b.pod_cidr} via {b.ip} dev {IPIP_DEV} onlink",
                             f"{b.name}: {a.pod_cidr} via {a.ip} dev {IPIP_DEV} onlink"],
                     underlay=[str(a.ip), str(b.ip)])
            else:   # host-gw, bgp, and CrossSubnet between nodes of one subnet
                routes = [f"{a.name}: {b.pod_cidr} via {b.ip}{how}", f"{b.name}: {a.pod_cidr} via {a.ip}{how}"]
                join(f"node:{a.name}", f"node:{b.name}", "route", "\n".join(routes), down=down, routes=routes)
    pods = {p.key: p for p in cluster.pods}
    for s in cluster.services:
        _service(g, cluster, s, pods, join)
    return g


def _node(g: Graph, cluster: Cluster, n: Node, join, plen: int) -> None:
    add = g.elements.append
    nid, bid = f"node:{n.name}", f"bridge:{n.name}"
    add(Element(nid, "node", n.name, [f"{n.ip}/{cluster.node_subnet(n).prefixlen}"],
                n.name, [f"{n.role}, podCIDR {n.pod_cidr}"] + (["stopped (uplink down)"] if n.partitioned else []),
                {"netns": n.netns, "role": n.role, "podCIDR": str(n.pod_cidr), "interface": "eth0",
                 "partitioned": n.partitioned}))
    join("underlay", nid, "veth", f"{n.underlay_veth} \u2194 eth0", down=n.partitioned,
         interfaces=[n.underlay_veth, "eth0"])
    add(Element(bid, "bridge", BRIDGE, [f"{n.gateway}/{n.pod_cidr.prefixlen}"], n.name,
                attrs={"netns": n.netns, "device": BRIDGE, "mtu": pod_mtu(cluster)}))
    join(nid, bid, "device", BRIDGE, device=BRIDGE)
    if cluster.networking.backend == "vxlan":
        vid = f"vtep:{n.name}"
        add(Element(vid, "vtep", VXLAN_DEV, [f"{n.vtep_ip}/32"], n.name, [f"MAC {n.vtep_mac}"],
                    {"netns": n.netns, "device": VXLAN_DEV, "mac": n.vtep_mac, "vni": VXLAN_VNI, "port": VXLAN_PORT}))
        join(nid, vid, "device", VXLAN_DEV, device=VXLAN_DEV)
    if cluster.networking.backend == "ipip":
        tid = f"tunl:{n.name}"
        add(Element(tid, "vtep", IPIP_DEV, [f"{n.vtep_ip}/32"], n.name, ["IP-in-IP"],
                    {"netns": n.netns, "device": IPIP_DEV, "mtu": pod_mtu(cluster)}))
        join(nid, tid, "device", IPIP_DEV, device=IPIP_DEV)
    for p in cluster.pods_on(n.name):
        pid = f"pod:{p.key}"
        attrs = {"namespace": p.namespace, "name": p.name, "netns": p.netns, "hostNetwork": p.host_network,
                 "ready": p.ready}
        if p.host_network:
            add(Element(pid, "pod", p.key, [str(p.ip)], n.name, ["hostNetwork"], attrs))
            join(nid, pid, "hostnet", "hostNetwork")
            continue
        attrs.update(interface="eth0", hostVeth=p.host_veth)
        add(Element(pid, "pod", p.key, [f"{p.ip}/{n.pod_cidr.prefixlen}"], n.name, [], attrs))
        join(bid, pid, "veth", f"{p.host_veth} \u2194 eth0", interfaces=[p.host_veth, "eth0"])


def _service(g: Graph, cluster: Cluster, s, pods: dict, join) -> None:
    ports = [{"name": p.name, "port": p.port, "protocol": p.protocol, "targetPort": p.target_port,
              "nodePort": p.node_port} for p in s.ports]
    shown = [f"{p.port}/{p.protocol}" + (f" node {p.node_port}" if p.node_port else "") for p in s.ports]
    cip = "None" if s.headless else (str(s.cluster_ip) if s.cluster_ip else "")
    sid = f"svc:{s.key}"
    g.elements.append(Element(sid, "service", s.key, [cip] if cip and cip != "None" else [],
                              None, [f"{s.type}" + (" (headless)" if s.headless else ""), ", ".join(shown)],
                              {"namespace": s.namespace, "name": s.name, "type": s.type, "clusterIP": cip or None,
                               "ports": ports}))
    by_target: dict[str, list] = {}    # endpoint target id -> [(port, protocol, ready)]
    protocol = {(p.name or ""): p.protocol for p in s.ports}
    for port_name, eps in sorted(s.endpoints.items()):
        for ep in eps:
            target = f"pod:{ep.namespace}/{ep.pod}" if ep.pod and f"{ep.namespace}/{ep.pod}" in pods else None
            if target is None:
                target = next((f"node:{n.name}" for n in cluster.nodes if n.ip == ep.ip), None) or f"addr:{ep.ip}"
                if target.startswith("addr:") and g.element(target) is None:
                    g.elements.append(Element(target, "address", str(ep.ip), attrs={"ip": str(ep.ip)}))
            by_target.setdefault(target, []).append((ep.port, protocol.get(port_name, "TCP"), ep.ready))
    for target, eps in by_target.items():
        ready = all(r for _, _, r in eps)
        label = ", ".join(sorted({f"{port}/{proto}" for port, proto, _ in eps})) + ("" if ready else " (not ready)")
        join(sid, target, "endpoint", label, down=not ready,
             ports=[{"port": port, "protocol": proto} for port, proto in sorted({(a, b) for a, b, _ in eps})],
             ready=ready)
