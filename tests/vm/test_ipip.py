"""backend ipip (Calico's tunl0 way) on a kernel that has the ipip module (inside the VM of scripts/vm-run;
this machine's kernel has none, and `up` refuses it there: tests/integration/test_ipip_refused.py).

One lab of three nodes, brought up once (Python is slow in the emulated VM): a1 and a2 in nodeSubnet, b1 in
a subnet of its own (nodes[].subnet) that the underlay's gateway routes to. With ipipMode CrossSubnet a1
reaches b1's pods through tunl0 (IP protocol 4 on a1's eth0, the outer header from a1's to b1's address)
and a2's directly (plain ICMP on eth0, no protocol 4); the tunnel's MTU is eth0's less 20, and a full-size
packet with DF set crosses while one byte more does not; `netlab probe`'s default matrix passes; `netlab
trace` shows the tunnel. Then the same lab with ipipMode Always: a1 -> a2 is encapsulated too.
tests/integration/test_vm.py runs tests/vm.
"""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time

import pytest

if os.environ.get("NETLAB_IN_VM") != "1":
    pytest.skip("runs inside the test VM only (tests/integration/test_vm.py starts it)", allow_module_level=True)

from netlab import lab_spec  # noqa: E402
from netlab.dataplane import lab as labmod  # noqa: E402
from netlab.dataplane import nsfs  # noqa: E402
from netlab.spec.parse import load_text  # noqa: E402

SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes:
- {role: control-plane, name: a1}
- {role: worker, name: a2}
- {role: worker, name: b1, subnet: 172.19.0.0/24}
networking: {backend: ipip, ipipMode: MODE}
dns: {replicas: 0}            # fewer Python processes in the slow VM: the test resolves no name
---
apiVersion: v1
kind: Pod
metadata: {name: pa1}
spec: {nodeName: a1, containers: [{name: c, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: pa2}
spec: {nodeName: a2, containers: [{name: c, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: pb1}
spec: {nodeName: b1, containers: [{name: c, ports: [{containerPort: 8080}]}]}
"""


def up(name: str, mode: str):
    text = SCENARIO.replace("MODE", mode)
    sc = load_text(text)
    sc.name = name
    return lab_spec.up(sc, text, control_loop=False).cluster


@pytest.fixture(scope="module")
def lab():
    name = f"t-{secrets.token_hex(3)}"
    try:
        yield name, up(name, "CrossSubnet")
    finally:
        labmod.down(name)


def run(netns: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={nsfs.netns_path(netns)}", "--", *argv], capture_output=True,
                          text=True, timeout=timeout)


def pod(cluster, name: str):
    return next(p for p in cluster.pods if p.name == name)


def ping(cluster, src: str, dst: str, size: int = 56, count: int = 2) -> subprocess.CompletedProcess:
    return run(pod(cluster, src).netns, "ping", "-n", "-c", str(count), "-W", "2", "-M", "do", "-s", str(size),
               str(pod(cluster, dst).ip))


def captured(netns: str, bpf: str, action) -> list[str]:
    """The packets tcpdump sees on `netns`'s eth0 matching `bpf` while `action()` runs."""
    p = subprocess.Popen(["nsenter", f"--net={nsfs.netns_path(netns)}", "--", "tcpdump", "-n", "-l", "-i", "eth0",
                          bpf], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        said = ""
        while "listening on" not in said:   # "listening on eth0, ...": the capture is armed
            line = p.stderr.readline()
            assert line, said             # tcpdump ended without capturing
            said += line
        action()
        time.sleep(1.0)
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=30)
    return [line for line in out.splitlines() if line.strip()]


def test_tunl0_and_its_mtu(lab):
    from netlab.dataplane import state
    name, cluster = lab
    # the read-back (`get nodes`, the control loop) finds the nodes as built: tunl0, its address, the routes
    assert labmod.node_problems(cluster, state.load(name)) == {n.name: [] for n in cluster.nodes}
    for n in cluster.nodes:
        eth0 = run(n.netns, "ip", "-o", "link", "show", "eth0").stdout
        tunl0 = run(n.netns, "ip", "-d", "-o", "link", "show", "tunl0").stdout
        mtu = int(re.search(r" mtu (\d+)", eth0).group(1))
        assert f" mtu {mtu - 20} " in tunl0 and ",UP" in tunl0 and "ipip" in tunl0, tunl0
        assert f"inet {n.pod_cidr.network_address}/32" in run(n.netns, "ip", "-o", "addr", "show", "tunl0").stdout


def test_cross_subnet_peer_is_encapsulated_same_subnet_peer_is_not(lab):
    _, cluster = lab
    a1, a2, b1 = (cluster.node(n) for n in ("a1", "a2", "b1"))
    routes = run(a1.netns, "ip", "route").stdout
    assert re.search(rf"{b1.pod_cidr} via {b1.ip} dev tunl0 .*onlink", routes), routes
    assert re.search(rf"{a2.pod_cidr} via {a2.ip} dev eth0", routes), routes

    results = []
    lines = captured(a1.netns, "ip proto 4", lambda: results.append(ping(cluster, "pa1", "pb1")))
    assert results[0].returncode == 0, results[0].stdout + results[0].stderr
    inner = f"{pod(cluster, 'pa1').ip} > {pod(cluster, 'pb1').ip}: ICMP echo request"
    assert any(f"{a1.ip} > {b1.ip}: IP {inner}" in line for line in lines), lines

    results.clear()
    lines = captured(a1.netns, "ip proto 4", lambda: results.append(ping(cluster, "pa1", "pa2")))
    assert results[0].returncode == 0, results[0].stdout + results[0].stderr
    assert lines == []                                      # same subnet: no IP-in-IP
    plain = captured(a1.netns, f"icmp and host {pod(cluster, 'pa2').ip}", lambda: ping(cluster, "pa1", "pa2"))
    assert any(f"{pod(cluster, 'pa1').ip} > {pod(cluster, 'pa2').ip}: ICMP echo request" in line
               for line in plain), plain


def test_full_size_packet_crosses_the_tunnel_one_byte_more_does_not(lab):
    _, cluster = lab
    mtu = cluster.networking.mtu - 20
    ok = ping(cluster, "pa1", "pb1", size=mtu - 28)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    too_big = ping(cluster, "pa1", "pb1", size=mtu - 27, count=1)
    assert too_big.returncode != 0 and "1 received" not in too_big.stdout, too_big.stdout


def test_probe_matrix_passes(lab):
    """`netlab probe`'s default matrix (what the command runs with no TARGET), in this process: node<->pod,
    pod<->pod on one node and across nodes for every node pair, every pod to the kubernetes Service."""
    _, cluster = lab
    from netlab.probe import plan, run as probe_run
    for p in cluster.pods:   # each node's built-in server answers once first: its first answer in the slow VM
        if p.namespace == "default":   # can take longer than the probe's 1 s
            r = run(cluster.node(p.node).netns, "curl", "-sS", "--max-time", "60", f"http://{p.ip}:8080/hostname")
            assert r.stdout.strip() == p.name, r.stderr
    checks = plan.plan_checks(cluster, [], None, 1)
    # the VM is emulated (TCG, one vCPU, shared with the host's other tests): a built-in server's answer can
    # take more than the probe's 1 s there, so the checks that must answer get 10 s, and run 4 at a time
    for c in checks:
        if c.expect == "reachable":
            for p in c.probes:
                p.timeout = 10.0
    results, _, _ = probe_run.run_checks(checks, concurrency=4)
    failed = [f"{r.check.source.label} -> {r.check.target}: {r.outcome} {r.why}" for r in results if not r.ok]
    assert results and not failed, failed


def test_trace_shows_the_tunnel(lab):
    """`netlab trace` across the tunnel: tunl0's encapsulation on a1, its decapsulation on b1, the pod answering."""
    import json
    name, cluster = lab
    exe = os.path.join(os.path.dirname(sys.executable), "netlab")
    # the answer may take longer than the default 3 s in the emulated VM (as test_trace_ipvs's)
    r = subprocess.run([exe, "trace", "pod/pa1", f"{pod(cluster, 'pb1').ip}:8080", "--lab", name, "-o", "json",
                        "--timeout", "20"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    assert doc["outcome"] == "reachable", doc
    texts = [h["text"] for h in doc["hops"]]
    assert any("node a1: tunl0 encapsulates it in IP-in-IP" in t and "(node b1)" in t for t in texts), texts
    assert any("node b1: in through tunl0: IP-in-IP decapsulated" in t for t in texts), texts


def test_always_encapsulates_the_same_subnet_peer_too(lab):
    name, _ = lab
    cluster = up(name, "Always")
    a1, a2 = cluster.node("a1"), cluster.node("a2")
    assert re.search(rf"{a2.pod_cidr} via {a2.ip} dev tunl0 .*onlink", run(a1.netns, "ip", "route").stdout)
    results = []
    lines = captured(a1.netns, "ip proto 4", lambda: results.append(ping(cluster, "pa1", "pa2")))
    assert results[0].returncode == 0, results[0].stdout + results[0].stderr
    inner = f"{pod(cluster, 'pa1').ip} > {pod(cluster, 'pa2').ip}: ICMP echo request"
    assert any(f"{a1.ip} > {a2.ip}: IP {inner}" in line for line in lines), lines
