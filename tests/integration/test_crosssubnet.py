"""vxlanMode CrossSubnet (flannel's DirectRouting) over nodes[].subnet, on real namespaces (this kernel has
VXLAN; IP-in-IP's CrossSubnet is the VM's: tests/vm/test_ipip.py).

a1 and a2 are in nodeSubnet, b1 in a subnet of its own that the underlay's gateway routes to. a1 reaches
b1's pods through flannel.1 (UDP 8472 on its eth0, outer header a1 -> b1 through the router) and a2's by a
direct route (plain ICMP on eth0, no VXLAN); the external host reaches b1 through the gateway; `netlab
probe`'s default matrix passes.
"""
from __future__ import annotations

import re
import subprocess
import time

from netlab.dataplane import nsfs

from ..builders import cluster, container, pod, text
from .conftest import netlab_cli

NODES = [{"role": "control-plane", "name": "a1"}, {"role": "worker", "name": "a2"},
         {"role": "worker", "name": "b1", "subnet": "172.19.0.0/24"}]
SCENARIO = text(cluster(None, NODES, backend="vxlan", vxlanMode="CrossSubnet"),
                *(pod(f"p{n['name']}", containers=[container("c", [8080])], nodeName=n["name"]) for n in NODES))


def captured(netns: str, bpf: str, action) -> list[str]:
    """The packets tcpdump sees on `netns`'s eth0 matching `bpf` while `action()` runs."""
    p = subprocess.Popen(["nsenter", f"--net={nsfs.netns_path(netns)}", "--", "tcpdump", "-n", "-l", "-i", "eth0",
                          bpf], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        said = ""
        while "listening on" not in said:
            line = p.stderr.readline()
            assert line, said
            said += line
        action()
        time.sleep(0.5)
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=30)
    return [line for line in out.splitlines() if line.strip()]


def test_vxlan_cross_subnet(lab):
    lab.up(SCENARIO)
    c = lab.cluster
    a1, a2, b1 = (c.node(n) for n in ("a1", "a2", "b1"))
    pa1, pa2, pb1 = (lab.pod(n) for n in ("pa1", "pa2", "pb1"))
    assert str(b1.ip) == "172.19.0.2"
    routes = lab.node_exec("a1", ["ip", "route"]).stdout
    assert re.search(rf"{b1.pod_cidr} via {b1.pod_cidr.network_address} dev flannel.1 .*onlink", routes), routes
    assert re.search(rf"{a2.pod_cidr} via {a2.ip} dev eth0", routes), routes
    assert "default via 172.19.0.1 dev eth0" in lab.node_exec("b1", ["ip", "route"]).stdout

    ok = []
    vx = captured(a1.netns, "udp port 8472", lambda: ok.append(lab.ping(("pod", "pa1"), pb1.ip)))
    assert ok == [True]
    assert any(f"IP {a1.ip}." in line and f"> {b1.ip}.8472: " in line for line in vx), vx   # (tcpdump: "OTV")

    ok.clear()
    vx = captured(a1.netns, "udp port 8472", lambda: ok.append(lab.ping(("pod", "pa1"), pa2.ip)))
    assert ok == [True] and vx == []                  # same subnet: routed directly, not encapsulated
    plain = captured(a1.netns, f"icmp and host {pa2.ip}", lambda: lab.ping(("pod", "pa1"), pa2.ip))
    assert any(f"{pa1.ip} > {pa2.ip}: ICMP echo request" in line for line in plain), plain

    assert lab.ping(("ext", ""), b1.ip)              # through the underlay's router
    assert lab.http(("pod", "pa1"), pb1.ip, 8080, "/hostname") == "pb1"
    r = netlab_cli("probe", "--lab", lab.name, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
