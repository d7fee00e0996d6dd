"""NetworkPolicy on a live lab, what a user relies on between changes:

- the kubelet's probes are allowed whatever the policies: a pod with an HTTP readinessProbe behind a
  default-deny-ingress policy stays Ready and stays its Service's endpoint;
- no window: while the allowing policy is switched back and forth between two peers many times (each
  apply is one control-loop pass and one iptables-restore per node), a client that BOTH versions deny
  keeps connecting, every attempt counted, and not one connection gets through; the two peers the
  versions allow do get through, each in its turn.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from netlab.dataplane import lab as labmod

from .conftest import kubectl, until

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: npl
nodes: [{name: cp, role: control-plane}, {name: n1}, {name: n2}]
---
apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: server}}
spec:
  nodeName: n1
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.47
    args: [netexec, --http-port=8080]
    ports: [{containerPort: 8080}]
    readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: server}
spec:
  selector: {app: server}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {role: a}}
spec:
  nodeName: n2
  containers: [{name: c, ports: [{containerPort: 9000}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {role: b}}
spec:
  nodeName: n1
  containers: [{name: c, ports: [{containerPort: 9000}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: watcher, labels: {role: watcher}}
spec:
  nodeName: n2
  containers: [{name: c, ports: [{containerPort: 9000}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""

ALLOW = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: allow-one}}
spec:
  podSelector: {{matchLabels: {{app: server}}}}
  ingress:
  - from: [{{podSelector: {{matchLabels: {{role: {role}}}}}}}]
    ports: [{{port: 8080}}]
"""

# new TCP connections one after another for `seconds`; prints the count of each outcome as JSON
LOOP = r"""
import errno, json, socket, sys, time
ip, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
out = {}
end = time.monotonic() + seconds
while time.monotonic() < end:
    s = socket.socket()
    s.settimeout(1.0)
    try:
        s.connect((ip, port))
        k = "ok"
    except socket.timeout:
        k = "timeout"
    except OSError as e:
        k = errno.errorcode.get(e.errno, str(e.errno))
    finally:
        s.close()
    out[k] = out.get(k, 0) + 1
    time.sleep(0.01)
print(json.dumps(out))
"""

CONNECT = r"""
import errno, socket, sys
s = socket.socket(); s.settimeout(2)
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, "timeout"))
"""


def connect(lab, pod: str, ip, port: int) -> str:
    return lab.ns_exec(lab.pod(pod).netns, [sys.executable, "-c", CONNECT, str(ip), str(port)]).stdout.strip()


def apply_text(lab, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        kubectl(lab, "apply", "-f", f.name)
    finally:
        os.unlink(f.name)


def test_kubelet_probes_pass_default_deny_and_policy_changes_leave_no_window(lab):
    lab.up(SCENARIO)
    server = lab.pod("server")
    # default deny: the watcher is rejected, yet the readiness probe (from the node) keeps the pod Ready
    assert connect(lab, "watcher", server.ip, 8080) == "EHOSTUNREACH"
    time.sleep(3)   # several probe periods under the policy
    pod = json.loads(kubectl(lab, "get", "pod", "server", "-o", "json").stdout)
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == "True", pod["status"]
    eps = json.loads(kubectl(lab, "get", "endpointslices", "-l", "kubernetes.io/service-name=server",
                             "-o", "json").stdout)["items"]
    addrs = [(e["addresses"], (e.get("conditions") or {}).get("ready")) for s in eps for e in s.get("endpoints") or []]
    assert addrs == [([str(server.ip)], True)], addrs

    # the allowing policy switched between role=a and role=b while the watcher (denied by both) connects
    apply_text(lab, ALLOW.format(role="a"))
    until("a allowed", lambda: connect(lab, "a", server.ip, 8080) == "ok", timeout=30)
    watcher = lab.pod("watcher")
    loop = subprocess.Popen(labmod.netns_exec_argv(watcher.netns, [sys.executable, "-c", LOOP, str(server.ip),
                                                                     "8080", "25"]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        turns = []
        for i in range(6):
            role = "b" if i % 2 == 0 else "a"
            other = "a" if role == "b" else "b"
            apply_text(lab, ALLOW.format(role=role))
            until(f"{role} allowed (turn {i})", lambda: connect(lab, role, server.ip, 8080) == "ok", timeout=30)
            turns.append((role, connect(lab, other, server.ip, 8080)))
        out, err = loop.communicate(timeout=60)
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()
    counts = json.loads(out)
    # the peer of the previous version is rejected once the new one is in
    assert all(got == "EHOSTUNREACH" for _, got in turns), turns
    # every attempt was counted and answered by the policy's REJECT; none got through
    assert counts.get("ok", 0) == 0, counts
    assert counts.get("EHOSTUNREACH", 0) >= 100 and set(counts) == {"EHOSTUNREACH"}, counts
