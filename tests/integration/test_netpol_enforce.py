"""NetworkPolicy enforced in the nodes' iptables filter tables (netlab/netpol/renderers/iptables.py), on real
namespaces, in iptables and nftables proxy modes, with real clients in the pods' namespaces.

x/server (node n1) serves TCP and UDP 80; x/near is on the same node (bridged through cni0), y/far on the
other worker. A default-deny-ingress policy in x rejects both with ICMP "communication administratively
prohibited" (a TCP or connected UDP socket sees EHOSTUNREACH, curl fails at once; tcpdump names it); allowing namespace
y lets far in; then, live (the control loop's passes, `netlab apply -f` / `netlab delete -f`): namespace y
relabelled and back, an egress default deny in y, a policy allowing pods labelled role=friend, x/near re-applied with and without that
label, the policies deleted.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import pytest

from .conftest import kubectl, until

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: npe
networking: {kubeProxyMode: MODE}
nodes: [{name: cp, role: control-plane}, {name: n1}, {name: n2}]
---
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {ns: x}}
---
apiVersion: v1
kind: Namespace
metadata: {name: y, labels: {ns: y}}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: x, labels: {pod: server}}
spec:
  nodeName: n1
  containers:
  - name: app
    image: busybox
    ports: [{name: serve-80-tcp, containerPort: 80}, {name: serve-80-udp, containerPort: 80, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: x}
spec:
  selector: {pod: server}
  ports: [{port: 8000, targetPort: serve-80-tcp}]
"""

NEAR = """---
apiVersion: v1
kind: Pod
metadata: {name: near, namespace: x, labels: {pod: near LABEL}}
spec:
  nodeName: n1
  containers:
  - {name: app, image: busybox, ports: [{containerPort: 8080}]}
"""

FAR = """---
apiVersion: v1
kind: Pod
metadata: {name: far, namespace: y, labels: {pod: far}}
spec:
  nodeName: n2
  containers:
  - {name: app, image: busybox, ports: [{containerPort: 8080}]}
"""

DENY = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""

FROM_Y = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: server}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: y}}}]
    ports: [{port: serve-80-tcp}, {port: 80, protocol: UDP}]
"""

FRIENDS = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-friends, namespace: x}
spec:
  podSelector: {matchLabels: {pod: server}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: friend}}}]
"""

EGRESS_DENY = """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: no-egress, namespace: y}
spec:
  podSelector: {}
  policyTypes: [Egress]
"""

# one TCP connect and one UDP exchange on a connected socket (so an ICMP error is reported to it)
CLIENT = r"""
import errno, socket, sys
ip, proto, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.settimeout(3)
try:
    s.connect((ip, port))
    if proto == "udp":
        s.send(b"hostname")
        s.recv(1000)
    print("ok")
except socket.timeout:
    print("timeout")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
"""


def reach(lab, pod: str, ns: str, proto: str = "tcp", service: bool = False) -> str:
    """'ok', 'EHOSTUNREACH' (ICMP 3/13: a policy rejected it), 'ECONNREFUSED', 'timeout' ... for x/server's
    port 80 (`service`: through the Service's ClusterIP, port 8000)."""
    p = lab.cluster.pod(ns, pod)
    if service:
        svc = next(s for s in lab.cluster.services if s.key == "x/server")
        ip, port = str(svc.cluster_ip), "8000"
    else:
        ip, port = str(lab.cluster.pod("x", "server").ip), "80"
    r = lab.ns_exec(p.netns, [sys.executable, "-c", CLIENT, ip, proto, port])
    return r.stdout.strip() or r.stderr.strip()


def apply(lab, *docs: str, verb: str = "apply"):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("".join(docs))
    try:
        kubectl(lab, verb, "-f", f.name)
    finally:
        os.unlink(f.name)


def settle(lab, what: str, want: dict, timeout: float = 30):
    """Wait until every (pod, ns, proto) -> outcome of `want` holds (the control loop's pass applies it)."""
    got = {}

    def check():
        got.update({k: reach(lab, *k) for k in want})
        return got == want
    try:
        until(what, check, timeout=timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}: {got}") from None
    return got


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_default_deny_then_allow_from_namespace_and_live_changes(lab, mode):
    text = SCENARIO.replace("MODE", mode) + NEAR.replace(" LABEL", "") + FAR + DENY + FROM_Y
    lab.up(text)
    server = lab.cluster.pod("x", "server")
    # the rendered rules are exactly what iptables-save reads back (else every sync would rewrite them)
    from netlab.dataplane.iptables import parse_save
    from netlab.render.iptables import node_rules
    for node in ("n1", "n2"):
        saved = parse_save(lab.node_exec(node, ["iptables-save", "-t", "filter"]).stdout)["filter"]
        want = node_rules(lab.cluster, lab.node(node))["filter"].chains
        mine = [c for c in want if c.startswith(("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-"))]
        assert all(saved.get(c) == want[c] for c in mine), (node, mine)
        assert node == "n2" or len(mine) > 2, mine        # n1: x/near's and x/server's ingress chains
    # enforced by the first pass: far (namespace y) allowed on its port, near (x, same node) rejected
    assert reach(lab, "far", "y") == "ok"
    assert reach(lab, "far", "y", "udp") == "ok"
    assert reach(lab, "near", "x") == "EHOSTUNREACH"
    assert reach(lab, "near", "x", "udp") == "EHOSTUNREACH"
    # through the Service: the policies see the endpoint's address (DNAT comes first)
    assert reach(lab, "far", "y", service=True) == "ok"
    assert reach(lab, "near", "x", service=True) == "EHOSTUNREACH"
    # the node itself (the kubelet's probes) is always allowed
    r = lab.node_exec("n1", [sys.executable, "-c", CLIENT, str(server.ip), "tcp", "80"])
    assert r.stdout.strip() == "ok", r
    # curl's view, and the ICMP on the wire: type 3 code 13
    near = lab.cluster.pod("x", "near")
    dump = subprocess.Popen(["ip", "netns", "exec", near.netns, "tcpdump", "-l", "-n", "-i", "eth0", "-c", "1",
                             "icmp"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(1.0)
        r = lab.ns_exec(near.netns, ["curl", "-sS", "--max-time", "5", f"http://{server.ip}:80/hostname"])
        # (curl 7, "Couldn't connect" or "No route to host" as versions word it; at once, not a timeout)
        assert r.returncode == 7, r
        out, _ = dump.communicate(timeout=10)
    finally:
        if dump.poll() is None:
            dump.kill()
            dump.wait()
    assert "admin prohibited filter" in out, out
    # the rules are netlab's: the jump into the policies comes first in FORWARD
    save = lab.node_exec("n1", ["iptables-save", "-t", "filter"]).stdout
    forward = [line for line in save.splitlines() if line.startswith("-A FORWARD")]
    assert forward[0].endswith("-j KUBE-ROUTER-FORWARD"), forward
    assert "--reject-with icmp-admin-prohibited" in save

    # live: namespace y relabelled (no longer ns=y): far rejected; labelled back: allowed again
    apply(lab, "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: y, labels: {ns: other}}\n")
    settle(lab, "far rejected once its namespace lost the label", {("far", "y", "tcp"): "EHOSTUNREACH"})
    apply(lab, "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: y, labels: {ns: y}}\n")
    settle(lab, "far allowed once its namespace has the label again", {("far", "y", "tcp"): "ok"})
    # live: egress of namespace y denied (enforced on far's own node, n2): far rejected; policy deleted: allowed
    apply(lab, EGRESS_DENY)
    settle(lab, "far's egress rejected", {("far", "y", "tcp"): "EHOSTUNREACH", ("far", "y", "udp"): "EHOSTUNREACH"})
    save = lab.node_exec("n2", ["iptables-save", "-t", "filter"]).stdout
    assert '"egress of pod y/far"' in save
    apply(lab, EGRESS_DENY, verb="delete")
    settle(lab, "far's egress allowed again", {("far", "y", "tcp"): "ok"})
    # live: a policy allowing pods labelled role=friend; near is not one yet
    apply(lab, FRIENDS)
    time.sleep(1.5)
    assert reach(lab, "near", "x") == "EHOSTUNREACH"
    # near re-applied with the label: allowed (every port and protocol: the rule has no ports)
    apply(lab, NEAR.replace(" LABEL", ", role: friend"))
    settle(lab, "near allowed once labelled a friend",
           {("near", "x", "tcp"): "ok", ("near", "x", "udp"): "ok", ("far", "y", "tcp"): "ok"})
    # near without the label again: rejected again
    apply(lab, NEAR.replace(" LABEL", ""))
    settle(lab, "near rejected once the label is gone", {("near", "x", "tcp"): "EHOSTUNREACH"})
    # every allowing policy deleted: far rejected too (the deny policy stays)
    apply(lab, FROM_Y, verb="delete")
    apply(lab, FRIENDS, verb="delete")
    settle(lab, "far rejected once allow-from-y is deleted",
           {("far", "y", "tcp"): "EHOSTUNREACH", ("near", "x", "tcp"): "EHOSTUNREACH"})
    # the deny policy deleted: nothing isolates the server any more
    apply(lab, DENY, verb="delete")
    settle(lab, "everyone allowed once the deny policy is deleted",
           {("far", "y", "tcp"): "ok", ("near", "x", "tcp"): "ok", ("near", "x", "udp"): "ok"})
    save = lab.node_exec("n1", ["iptables-save", "-t", "filter"]).stdout
    assert "KUBE-POD-FW-" not in save and "KUBE-NWPLCY-" not in save
    assert ":KUBE-ROUTER-FORWARD" in save
