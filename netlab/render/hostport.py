"""hostPort forwarding of ordinary pods, as the CNI portmap plugin programs it on a node. Pure.

The facts are portmap's (containernetworking/plugins, plugins/meta/portmap, its iptables backend with
snat on, the default): in the nat table
- PREROUTING and OUTPUT jump to CNI-HOSTPORT-DNAT for packets to a local address
  (`-m addrtype --dst-type LOCAL`);
- CNI-HOSTPORT-DNAT sends each pod's host ports (one rule per protocol, `-m multiport --dports`) to
  the pod's own chain CNI-DN-<hash> (portmap hashes the network name and the container ID; netlab the
  network name and the pod's namespace/name, so a pod keeps its chain name; 21 hex digits, a
  28-character chain name);
- CNI-DN-<hash>, per port: traffic from the pod itself (hairpin) and from 127.0.0.1 (localhost) jumps
  to CNI-HOSTPORT-SETMARK, then everything is DNATed to podIP:containerPort; a hostIP adds `-d
  hostIP/32` to the three rules (the port is opened on that address only);
- CNI-HOSTPORT-SETMARK sets mark bit 13 (0x2000/0x2000); POSTROUTING jumps to CNI-HOSTPORT-MASQ,
  which masquerades marked packets (so hairpin replies come back through the node and localhost
  traffic gets a routable source). localhost needs route_localnet on the pod side's interface: the
  node's sysctls already set net.ipv4.conf.all.route_localnet=1 (kube-proxy's), which covers cni0.

Differences, on purpose: the chains are rendered only on a node that has at least one pod with a
hostPort (portmap creates the top-level chains on first use and never deletes them; netlab keeps the
node's tables as netlab would have them without hostPort pods, so a lab without any is unchanged), and
they are netlab's like flannel's and kube-proxy's (applied by diff with the node's other chains,
stale ones removed: `dataplane.iptables.OWNED_CHAIN`).

Backend: portmap's default iptables backend (iptables-nft on a node in the nft flavour), in every
proxy mode: flannel's chains are iptables chains in every mode too, and a kind/flannel node's portmap
conflist does not choose the nftables backend (table `cni_hostport`).

hostNetwork pods get no rules (portmap is not called for them: their ports are the node's own).
"""
from __future__ import annotations

import hashlib

from ..model.objects import Cluster, Node, Pod
from .tables import TableState

DNAT_CHAIN = "CNI-HOSTPORT-DNAT"
SETMARK_CHAIN = "CNI-HOSTPORT-SETMARK"
MASQ_CHAIN = "CNI-HOSTPORT-MASQ"
MARK = "0x2000/0x2000"
NETWORK = "cbr0"      # the network name of kind's and flannel's CNI config (what the chain hash reads)
SEP_CHAIN_PREFIX = "CNI-DN-"


def dn_chain(pod: Pod) -> str:
    """The pod's CNI-DN-<hash> chain: 28 characters, as portmap's."""
    digest = hashlib.sha512(f"{NETWORK}{pod.namespace}/{pod.name}".encode()).hexdigest()
    return SEP_CHAIN_PREFIX + digest[:28 - len(SEP_CHAIN_PREFIX)]


def mapped_pods(cluster: Cluster, node: Node) -> list[Pod]:
    """Pods of `node` whose ports portmap forwards (a hostPort, not hostNetwork), in key order."""
    return sorted((p for p in cluster.pods_on(node.name) if not p.host_network and p.host_ports),
                  key=lambda p: p.key)


def basis(cluster: Cluster, node: Node) -> tuple:
    """What the rendered chains depend on (an incremental sync's cache key)."""
    return tuple((p.key, p.uid, str(p.ip), tuple(p.host_ports)) for p in mapped_pods(cluster, node))


def hostport_tables(cluster: Cluster, node: Node) -> dict[str, TableState]:
    """table -> TableState (chains and jumps from built-in chains) of portmap's rules on `node`; {} when
    no pod of the node has a hostPort."""
    pods = mapped_pods(cluster, node)
    if not pods:
        return {}
    ts = TableState()
    ts.jumps.extend([
        ("PREROUTING", f"-m addrtype --dst-type LOCAL -j {DNAT_CHAIN}"),
        ("OUTPUT", f"-m addrtype --dst-type LOCAL -j {DNAT_CHAIN}"),
        ("POSTROUTING", f'-m comment --comment "CNI portfwd requiring masquerade" -j {MASQ_CHAIN}'),
    ])
    ts.chains[DNAT_CHAIN] = []
    ts.chains[SETMARK_CHAIN] = [f'-A {SETMARK_CHAIN} -m comment --comment "CNI portfwd masquerade mark" '
                                f"-j MARK --set-xmark {MARK}"]
    ts.chains[MASQ_CHAIN] = [f"-A {MASQ_CHAIN} -m mark --mark {MARK} -j MASQUERADE"]
    for pod in pods:
        chain = dn_chain(pod)
        comment = f'-m comment --comment "dnat name: {NETWORK} id: {pod.namespace}/{pod.name}"'
        by_proto: dict[str, list[int]] = {}
        rules = []
        for host_port, proto, host_ip, port in sorted(pod.host_ports, key=lambda x: (x[1], x[0], x[2] or "")):
            if host_port not in by_proto.setdefault(proto, []):
                by_proto[proto].append(host_port)
            p = proto.lower()
            dst = f" -d {host_ip}/32" if host_ip else ""
            match = f"-p {p} -m {p} --dport {host_port}"
            rules.append(f"-A {chain} -s {pod.ip}/32{dst} {match} -j {SETMARK_CHAIN}")
            rules.append(f"-A {chain} -s 127.0.0.1/32{dst} {match} -j {SETMARK_CHAIN}")
            rules.append(f"-A {chain}{dst} {match} -j DNAT --to-destination {pod.ip}:{port}")
        for proto, ports in sorted(by_proto.items()):
            p = proto.lower()
            ts.chains[DNAT_CHAIN].append(f"-A {DNAT_CHAIN} -p {p} {comment} -m multiport --dports "
                                         f"{','.join(map(str, ports))} -j {chain}")
        ts.chains[chain] = rules
    return {"nat": ts}
