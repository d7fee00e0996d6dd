"""One lab over three emulated hosts (namespaces nl.<lab>.host.<h>, their NICs on nl.<lab>.segment), the
nodes' underlay spanning the hosts by VXLAN between them: the probe matrix passes across hosts with
flannel's vxlan and host-gw; the packets on a host's NIC are what the layering says (vxlan: the nodes'
flannel.1 VXLAN inside the hosts' VXLAN; host-gw: the pod packet inside the hosts' VXLAN); the largest
DF ping of each layer crosses the hosts and one byte more does not; a host cut off (its eth0 down) loses
its nodes for the other hosts, and heals when it comes back.
"""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from netlab import names
from netlab.dataplane import nsfs
from netlab.render.fabric import max_ping_payload, mtu_layers
from netlab.spec.parse import load_text

from ..builders import container, deployment, pod, service, text
from .conftest import netlab_cli

NODES = [{"role": "control-plane", "name": "n1"}] + [{"role": "worker", "name": f"n{i}"} for i in range(2, 7)]
PLACED = {"n1": "a", "n2": "b", "n3": "c", "n4": "a", "n5": "b", "n6": "c"}   # round-robin over a, b, c


def scenario(backend: str, hosts: str = "abc") -> str:
    doc = {"apiVersion": "netlab.dev/v1alpha1", "kind": "Cluster", "nodes": NODES,
           "hosts": [{"name": h} for h in hosts], "networking": {"backend": backend}}
    pods = [pod(f"p{n}", containers=[container("c", [8080])], nodeName=n) for n in ("n4", "n5", "n6", "n3")]
    return text(doc, *pods, deployment("web", 5, containers=[container("c", [8080])]),
                service("web", [{"port": 80, "targetPort": 8080}]))


def in_ns(netns: str, argv: list[str], timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={nsfs.netns_path(netns)}", "--", *argv], capture_output=True,
                          text=True, timeout=timeout)


def df_ping(netns: str, ip, size: int) -> bool:
    return in_ns(netns, ["ping", "-c", "1", "-W", "2", "-M", "do", "-s", str(size), str(ip)]).returncode == 0


def captured(netns: str, bpf: str, action, *flags: str) -> list[str]:
    """What tcpdump prints for the packets on `netns`'s eth0 matching `bpf` while `action()` runs."""
    p = subprocess.Popen(["nsenter", f"--net={nsfs.netns_path(netns)}", "--", "tcpdump", "-n", "-l", "-i", "eth0",
                          *flags, bpf], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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


def check_layout(lab) -> None:
    c = lab.cluster
    assert {n.name: n.host for n in c.nodes} == PLACED
    have = set(nsfs.list_netns())
    assert {names.segment_netns(lab.name), *(names.host_netns(lab.name, h) for h in "abc")} <= have
    assert names.underlay_netns(lab.name) not in have    # the gateway and the external host live on host a
    r = netlab_cli("get", "nodes", "-o", "wide", "--lab", lab.name)
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()]
    assert rows[0][-1] == "HOST" and {row[0]: row[-1] for row in rows[1:]} == PLACED, r.stdout
    for h, ip in zip("abc", ("192.168.240.2", "192.168.240.3", "192.168.240.4")):
        addrs = in_ns(names.host_netns(lab.name, h), ["ip", "-br", "addr", "show", "eth0"]).stdout
        assert f"{ip}/24" in addrs, addrs


def _failures(out: str) -> str:
    """The probe lines that failed, with their explanation lines, and the summary."""
    lines = out.splitlines()
    keep = [line for i, line in enumerate(lines) if line.rstrip().endswith(" FAIL") or
            (line.startswith("  -> ") and i and lines[i - 1].rstrip().endswith(" FAIL"))]
    return "\n".join(keep + lines[-1:])


def _underlay_view(lab) -> str:
    """What a failing probe needs to be understood: each node's eth0 and neighbours, each host's bridge."""
    out = []
    for n in lab.cluster.nodes:
        out.append(f"# {n.name} ({n.host}): " + in_ns(n.netns, ["ip", "-br", "link", "show", "eth0"]).stdout.strip())
        out.append(in_ns(n.netns, ["ip", "neigh", "show", "dev", "eth0"]).stdout.strip())
    for h in "abc":
        ns = names.host_netns(lab.name, h)
        out.append(f"# host {h}: " + in_ns(ns, ["bridge", "fdb", "show", "br", "underlay0"]).stdout.strip())
    return "\n" + "\n".join(out)


def _host_of(lab, ref: str) -> str | None:
    """The host of a probe's source or target (`pod/[ns/]name[:port/proto]`, `node/name`); None for others."""
    kind, _, rest = ref.partition("/")
    rest = rest.split(":")[0]
    c = lab.cluster
    if kind == "node":
        return c.node(rest).host
    if kind == "pod":
        ns, _, name = rest.rpartition("/")
        p = c.pod(ns or "default", name)
        return c.node(p.node).host if p is not None else None
    return None


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_probe_matrix_and_encapsulation_across_hosts(lab, backend):
    lab.control_loop = False   # each `up` runs its passes itself: the probes below see exactly what it built
    lab.up(scenario(backend))
    check_layout(lab)
    c = lab.cluster
    r = netlab_cli("probe", "--lab", lab.name, timeout=300)
    assert r.returncode == 0, _failures(r.stdout) + r.stderr + _underlay_view(lab)
    pa, pb, pc = (lab.pod(f"p{n}") for n in ("n4", "n5", "n6"))
    assert lab.http(("pod", "pn4"), pc.ip, 8080, "/hostname") == "pn6"
    assert lab.ping(("ext", ""), c.node("n6").ip)    # the external host (on host a) reaches a node on host c

    # on host a's NIC: the hosts' VXLAN (UDP 4789, VNI 4242) between the hosts' addresses, and inside it
    # flannel.1's VXLAN (UDP 8472) between the nodes (vxlan) or the pod's own packet (host-gw)
    ha = names.host_netns(lab.name, "a")
    ok = []
    seen = captured(ha, "udp port 4789", lambda: ok.append(lab.ping(("pod", "pn4"), pc.ip)))
    assert ok == [True]
    outer = [i for i, line in enumerate(seen) if re.search(r"IP 192\.168\.240\.2\.\d+ > 192\.168\.240\.4\.4789: "
                                                           r"VXLAN.* vni 4242", line)]
    assert outer, seen
    inner = "\n".join(seen[i + 1] for i in outer if i + 1 < len(seen))
    n4, n6 = c.node("n4"), c.node("n6")
    if backend == "vxlan":
        assert re.search(rf"IP {n4.ip}\.\d+ > {n6.ip}\.8472: ", inner), seen
    else:
        assert f"IP {pa.ip} > {pc.ip}: ICMP echo request" in inner and ".8472:" not in inner, seen

    # MTU: each layer's largest DF ping crosses from host a to host c; one byte more does not leave
    layers = dict(mtu_layers(c))
    assert layers["hosts' NIC"] == 1500
    nic, underlay, pods = (m for _, m in mtu_layers(c))
    assert (underlay, pods) == ((1450, 1400) if backend == "vxlan" else (1450, 1450))
    hc = names.host_netns(lab.name, "c")
    for netns, dst, mtu in ((ha, "192.168.240.4", nic), (n4.netns, n6.ip, underlay), (pa.netns, pc.ip, pods)):
        assert df_ping(netns, dst, max_ping_payload(mtu)), (netns, dst, mtu)
        assert not df_ping(netns, dst, max_ping_payload(mtu) + 1), (netns, dst, mtu)
    # ... and the largest pod packet fills the hosts' NIC exactly: outer IPv4 packets of 1500, unfragmented
    ok.clear()
    seen = captured(ha, "udp port 4789 and src host 192.168.240.2",
                    lambda: ok.append(df_ping(pa.netns, pc.ip, max_ping_payload(pods))), "-v")
    headers = [line for line in seen if "proto UDP (17)" in line]
    assert ok == [True] and headers, seen
    assert any(line.rstrip().endswith(f"length {nic})") for line in headers), headers
    assert not any("offset 0, flags [+]" in line or re.search(r"offset [1-9]", line) for line in headers), headers

    # host c cut off: its nodes' pods are lost to the other hosts, not to each other; back, all is back
    pc2 = lab.pod("pn3")
    assert in_ns(hc, ["ip", "link", "set", "eth0", "down"]).returncode == 0
    try:
        assert not lab.ping(("pod", "pn4"), pc.ip) and not lab.ping(("pod", "pn5"), pc2.ip)

        assert lab.ping(("pod", "pn4"), pb.ip)          # a <-> b still joined
        assert lab.ping(("pod", "pn6"), pc2.ip)         # inside host c: its own underlay bridge
        r = netlab_cli("probe", "--lab", lab.name, timeout=600)
        assert r.returncode != 0, r.stdout[-3000:]
        failed = [line.split()[:2] for line in r.stdout.splitlines() if line.rstrip().endswith(" FAIL")]
        assert failed, r.stdout[-3000:] + r.stderr
        # what fails crosses to or from host c (a Service's probe: through a backend there); nothing else
        for src, dst in failed:
            hosts = {_host_of(lab, src), _host_of(lab, dst)}
            assert "c" in hosts or (dst.startswith("svc/") and "c" not in hosts), (src, dst, _failures(r.stdout))
            assert hosts != {"c"}, (src, dst, _failures(r.stdout))    # host c's own traffic stays inside it
    finally:
        assert in_ns(hc, ["ip", "link", "set", "eth0", "up"]).returncode == 0
    deadline = time.monotonic() + 20
    while not lab.ping(("pod", "pn4"), pc.ip):
        assert time.monotonic() < deadline, "host c did not heal"
    assert lab.ping(("pod", "pn5"), pc2.ip)
    r = netlab_cli("probe", "--lab", lab.name, timeout=300)
    assert r.returncode == 0, _failures(r.stdout) + r.stderr

    # host c leaves the lab: its namespace goes, its nodes move to a and b (new eth0, announced at once)
    lab.up(scenario(backend, hosts="ab"))
    assert {n.name: n.host for n in lab.cluster.nodes} == {"n1": "a", "n2": "b", "n3": "a", "n4": "b", "n5": "a",
                                                            "n6": "b"}
    assert names.host_netns(lab.name, "c") not in nsfs.list_netns()
    r = netlab_cli("probe", "--lab", lab.name, timeout=300)
    assert r.returncode == 0, _failures(r.stdout) + r.stderr


def test_one_host_at_a_time(lab):
    """What a host's agent builds (`Fabric(..., host=H)`): that host, its NIC on the segment and the nodes placed
    on it; the gateway and the external host only on the first host. Built host by host, the nodes' underlay
    spans the hosts as one `up` makes it: flannel.1 between nodes on different hosts answers."""
    from netlab import lab_spec
    from netlab.dataplane.changes import Changes
    from netlab.dataplane.fabric import Fabric
    sc = load_text(scenario("vxlan"), "<test>")
    sc.name = lab.name
    c = lab_spec.desired(sc, {})
    ours = lambda: {n for n in nsfs.list_netns() if names.is_lab_netns(n, lab.name)}   # noqa: E731
    Fabric(c, Changes(), host="b").apply([], [])
    assert ours() == {names.segment_netns(lab.name), names.host_netns(lab.name, "b"),
                      *(c.node(n).netns for n, h in PLACED.items() if h == "b")}
    Fabric(c, Changes(), host="a").apply([], [])
    assert c.external_netns in ours() and names.host_netns(lab.name, "c") not in ours()
    Fabric(c, Changes(), host="c").apply([], [])
    n1, n2, n3 = (c.node(n) for n in ("n1", "n2", "n3"))     # on hosts a, b, c
    for src, dst in ((n1, n2), (n2, n3), (n3, n1)):
        assert in_ns(src.netns, ["ping", "-c", "1", "-W", "2", str(dst.vtep_ip)]).returncode == 0, (src.name, dst.name)
    assert in_ns(c.external_netns, ["ping", "-c", "1", "-W", "2", str(n3.ip)]).returncode == 0
    # a host's NIC is a cable: a reconcile (its agent's pass, `up`) does not plug it back in
    hb = names.host_netns(lab.name, "b")
    assert in_ns(hb, ["ip", "link", "set", "eth0", "down"]).returncode == 0
    Fabric(c, Changes(), host="b").apply([], [])
    assert "state DOWN" in in_ns(hb, ["ip", "link", "show", "eth0"]).stdout
    assert in_ns(n1.netns, ["ping", "-c", "1", "-W", "2", str(n2.vtep_ip)]).returncode != 0
    assert in_ns(hb, ["ip", "link", "set", "eth0", "up"]).returncode == 0
    assert in_ns(n1.netns, ["ping", "-c", "1", "-W", "3", str(n2.vtep_ip)]).returncode == 0
    with pytest.raises(ValueError):
        Fabric(c, Changes(), host="d")
