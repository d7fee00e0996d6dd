"""UDP flows after endpoint changes: stale conntrack entries are deleted, as kube-proxy deletes them.

A UDP client that keeps its source port keeps its conntrack entry (and the translation made for its
first datagram) as long as it keeps sending. Each datagram here is sent by a new socket bound to the
same fixed source port: the same flow (5-tuple), so the same conntrack entry, as one long-lived socket.
"""
from __future__ import annotations

import sys

import pytest

SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: ct
nodes: [{role: worker, name: n1}, {role: worker, name: n2}]
networking: {kubeProxyMode: MODE}
---
apiVersion: v1
kind: Service
metadata: {name: u}
spec:
  type: NodePort
  selector: {app: u}
  ports: [{port: 81, targetPort: 8081, protocol: UDP, nodePort: 30081}]
---
apiVersion: v1
kind: Service
metadata: {name: late}
spec:
  selector: {app: late}
  ports: [{port: 82, targetPort: 8081, protocol: UDP}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n2
  containers: [{name: c, ports: [{containerPort: 8080}]}]
"""


def backend(name: str, app: str) -> str:
    return f"""---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {app}}}}}
spec:
  nodeName: n1
  containers: [{{name: c, ports: [{{containerPort: 8081, protocol: UDP}}]}}]
"""


FIXED_PORT_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[3])))
s.settimeout(2.0)
s.sendto(b"hostname", (sys.argv[1], int(sys.argv[2])))
try:
    print(s.recvfrom(65535)[0].decode())
except OSError as e:
    print("NO ANSWER", type(e).__name__)
"""

MODES = ["iptables", "nftables"]


def ask(lab, where, ip, port: int, sport: int) -> str:
    r = lab._run(where, [sys.executable, "-c", FIXED_PORT_CLIENT, str(ip), str(port), str(sport)])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def svc_ip(lab, name):
    return next(s.cluster_ip for s in lab.cluster.services if s.name == name)


def udp_entries(lab, node: str, port: int) -> str:
    return lab.node_exec(node, ["conntrack", "-L", "-p", "udp", "--orig-port-dst", str(port)]).stdout


@pytest.mark.parametrize("mode", MODES)
def test_removed_endpoint_flow_moves_to_remaining_backend(lab, mode):
    base = SCENARIO.replace("MODE", mode)
    lab.up(base + backend("a", "u") + backend("b", "u"))
    vip = svc_ip(lab, "u")
    first = ask(lab, ("pod", "client"), vip, 81, 40001)
    assert first in ("a", "b"), first
    # the same flow sticks to the backend it got first
    assert [ask(lab, ("pod", "client"), vip, 81, 40001) for _ in range(3)] == [first] * 3
    gone_ip = str(lab.pod(first).ip)
    assert f"src={gone_ip}" in udp_entries(lab, "n2", 81)
    # the count the cleanup reads before it lists a node's table (an empty one is not listed): n2 has the
    # flow, as many entries as conntrack counts there; a namespace no packet went through has none
    import subprocess
    from netlab.dataplane.conntrack import entry_count
    assert entry_count(lab.node("n2").netns) >= 1
    empty = f"{lab.name}-ctcount"   # (the lab's name: the leak check knows whose it would be)
    subprocess.run(["ip", "netns", "add", empty], check=True)
    try:
        assert entry_count(empty) == 0
    finally:
        subprocess.run(["ip", "netns", "del", empty], check=True)
    remaining = "b" if first == "a" else "a"
    lab.up(base + backend(remaining, "u"))
    assert f"src={gone_ip}" not in udp_entries(lab, "n2", 81)
    assert ask(lab, ("pod", "client"), vip, 81, 40001) == remaining


@pytest.mark.parametrize("mode", MODES)
def test_removed_endpoint_nodeport_flow_moves(lab, mode):
    """The external host's flow to a NodePort: the entry lives in the node it was sent to."""
    base = SCENARIO.replace("MODE", mode)
    lab.up(base + backend("a", "u") + backend("b", "u"))
    n2 = lab.node("n2").ip
    first = ask(lab, ("external", ""), n2, 30081, 40002)
    assert first in ("a", "b"), first
    remaining = "b" if first == "a" else "a"
    lab.up(base + backend(remaining, "u"))
    assert ask(lab, ("external", ""), n2, 30081, 40002) == remaining


@pytest.mark.parametrize("mode", MODES)
def test_flow_made_without_endpoints_reaches_the_first_endpoint(lab, mode):
    base = SCENARIO.replace("MODE", mode)
    lab.up(base)
    vip = svc_ip(lab, "late")
    assert ask(lab, ("pod", "client"), vip, 82, 40003).startswith("NO ANSWER")
    # In these modes the REJECT of a Service without endpoints drops the datagram before its conntrack
    # entry is confirmed; in IPVS mode (no REJECT: the VIP is local and answers ICMP) the flow keeps an
    # untranslated entry. Make that entry here, as the client's node would hold it.
    client = str(lab.pod("client").ip)
    made = lab.node_exec("n2", ["conntrack", "-I", "-p", "udp", "-s", client, "-d", str(vip), "--sport", "40003",
                                "--dport", "82", "-r", str(vip), "-q", client, "--reply-port-src", "82",
                                "--reply-port-dst", "40003", "-t", "120", "-u", "SEEN_REPLY"])
    assert made.returncode == 0, made.stderr
    assert f"src={vip}" in udp_entries(lab, "n2", 82)
    lab.up(base + backend("late1", "late"))
    assert f"src={vip}" not in udp_entries(lab, "n2", 82)
    assert ask(lab, ("pod", "client"), vip, 82, 40003) == "late1"
