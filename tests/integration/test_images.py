"""Issue 12: well-known test images run as themselves, and a pod that is not ready is never an endpoint
and says why (real namespaces, a real control loop, curl and agnhost connect from pods).

One lab: agnhost serve-hostname / porter / connect, hashicorp/http-echo, nginx and hello-app answer as
those programs do, whatever their command says; a pod whose command never listens stays READY 0/1 and
out of its Service's endpoints; containers that end show their reason (Completed, Error,
CrashLoopBackOff) in `get pods`, `describe pod` (containerStatuses' state) and `get events`.
"""
from __future__ import annotations

import json
import re
import sys

from .conftest import UDP_CLIENT, kubectl, netlab_cli, pods_table, until

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.39"
VIP = "10.96.100.100"

LAB = f"""apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: NAME
nodes: [{{name: n1, role: control-plane}}, {{name: n2}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec: {{containers: [{{name: c, image: busybox}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: good, labels: {{app: web}}}}
spec:
  containers:
  - {{name: app, image: "{AGNHOST}", command: [/agnhost, serve-hostname, --port=8080]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: deaf, labels: {{app: web}}}}
spec:
  containers:
  - {{name: app, image: busybox, command: [sleep, "3600"], ports: [{{containerPort: 8080}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{clusterIP: {VIP}, selector: {{app: web}}, ports: [{{port: 80, targetPort: 8080}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: echo}}
spec:
  containers:
  - {{name: app, image: "hashicorp/http-echo:0.2.3", args: ["-text=foo", "-listen=:5000"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web-nginx}}
spec:
  containers:
  - {{name: nginx, image: "nginx:1.14.2", ports: [{{containerPort: 80}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: hello}}
spec:
  containers:
  - {{name: app, image: "gcr.io/google-samples/hello-app:2.0"}}
---
apiVersion: v1
kind: Pod
metadata: {{name: porter}}
spec:
  containers:
  - name: app
    image: "{AGNHOST}"
    args: [porter]
    env: [{{name: SERVE_PORT_9001, value: foo}}, {{name: SERVE_UDP_PORT_9002, value: bar}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: raw}}
spec:
  containers:
  - {{name: app, image: "{AGNHOST}", command: [/agnhost, serve-hostname, --tcp, --http=false, --port, "9376"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: reaches}}
spec:
  restartPolicy: Never
  containers:
  - {{name: app, image: "{AGNHOST}", args: [connect, "{VIP}:80", --timeout=5s]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: refused}}
spec:
  restartPolicy: Never
  containers:
  - {{name: app, image: "{AGNHOST}", args: [connect, "{VIP}:81", --timeout=2s]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: crashy}}
spec:
  containers:
  - {{name: app, image: busybox, command: [sh, -c, "exit 1"]}}
"""


def _exec(lab, *argv: str):
    return netlab_cli("exec", "--lab", lab.name, "client", "--", *argv)


def _ip(lab, pod: str) -> str:
    return json.loads(kubectl(lab, "get", "pod", pod, "-o", "json").stdout)["status"]["podIP"]


def test_images_answer_as_themselves_and_unready_pods_say_why(lab, tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text(LAB.replace("NAME", lab.name))
    v = netlab_cli("validate", "-f", str(f))
    assert v.returncode == 0, v.stderr
    r = netlab_cli("up", "-f", str(f), "--lab", lab.name, timeout=240)
    assert r.returncode == 0, r.stderr

    # --- each image answers as its program does
    def curl(ip, port, path="/"):
        c = _exec(lab, "curl", "-sS", "--max-time", "3", f"http://{ip}:{port}{path}")
        return c.stdout if c.returncode == 0 else None
    assert until("http-echo", lambda: curl(_ip(lab, "echo"), 5000, "/anything")) == "foo\n"
    assert curl(_ip(lab, "echo"), 5000, "/health") == '{"status":"ok"}\n'
    assert "<title>Welcome to nginx!</title>" in until("nginx", lambda: curl(_ip(lab, "web-nginx"), 80))
    assert "404 Not Found" in curl(_ip(lab, "web-nginx"), 80, "/hostname")
    assert until("hello-app", lambda: curl(_ip(lab, "hello"), 8080)) == "Hello, world!\nVersion: 2.0.0\nHostname: hello\n"
    assert until("porter", lambda: curl(_ip(lab, "porter"), 9001)) == "foo"
    udp = _exec(lab, sys.executable, "-c", UDP_CLIENT, _ip(lab, "porter"), "9002", "x")
    assert udp.stdout.strip() == "bar", udp
    raw = _exec(lab, sys.executable, "-c", "import socket, sys; s = socket.create_connection((sys.argv[1], 9376), 3); "
                "print(s.recv(100).decode(), end='')", _ip(lab, "raw"))
    assert raw.stdout == "raw", raw

    # --- the pod that never listens: Running, 0/1, not an endpoint; the Service answers from `good` only
    table = until("deaf and good listed", lambda: (lambda t: t if {"deaf", "good"} <= set(t) else None)(
        pods_table(lab.name)))
    assert table["deaf"][1:3] == ["0/1", "Running"], table["deaf"]
    assert table["good"][1:3] == ["1/1", "Running"], table["good"]
    slices = json.loads(kubectl(lab, "get", "endpointslices", "-o", "json").stdout)["items"]
    ready = {e["addresses"][0]: e["conditions"]["ready"] for s in slices
             if s["metadata"]["labels"].get("kubernetes.io/service-name") == "web" for e in s["endpoints"]}
    assert ready == {_ip(lab, "good"): True, _ip(lab, "deaf"): False}, ready
    assert {curl(VIP, 80) for _ in range(8)} == {"good"}
    describe = kubectl(lab, "describe", "pod", "deaf").stdout
    assert "State:            Running" in describe and "Ready:            False" in describe, describe
    conds = json.loads(kubectl(lab, "get", "pod", "deaf", "-o", "json").stdout)["status"]["conditions"]
    assert {c["type"]: c["status"] for c in conds}["Ready"] == "False"

    # --- agnhost connect: a client container that exits 0 when it connects, 1 when refused
    def statuses():
        t = pods_table(lab.name)
        return t if t.get("reaches", [""] * 3)[2] == "Completed" and t.get("refused", [""] * 3)[2] == "Error" \
            and t.get("crashy", [""] * 3)[2] == "CrashLoopBackOff" else None
    until("reaches Completed, refused Error, crashy CrashLoopBackOff", statuses, timeout=90)
    refused = kubectl(lab, "describe", "pod", "refused").stdout
    assert "State:            Terminated" in refused and "Reason:         Error" in refused \
        and "Exit Code:      1" in refused, refused
    reaches = kubectl(lab, "describe", "pod", "reaches").stdout
    assert "Reason:         Completed" in reaches and "Exit Code:      0" in reaches, reaches

    # --- the crash-looping container: waiting with its last termination, and the kubelet's BackOff event
    crashy = until("crashy described as CrashLoopBackOff", lambda: (lambda d: d if "Reason:         CrashLoopBackOff"
                                                                   in d else None)(
        kubectl(lab, "describe", "pod", "crashy").stdout))
    assert "State:            Waiting" in crashy and "Last State:       Terminated" in crashy, crashy
    # LAST SEEN may read "9s (x3 over 43s)" (spaces inside the column), so the row is matched by its columns' text
    def has(events: str, typ: str, reason: str, obj: str) -> bool:
        return re.search(rf"\s{typ}\s+{reason}\s+{re.escape(obj)}\s", events) is not None
    events = until("the BackOff event of crashy", lambda: (lambda e: e if has(e, "Warning", "BackOff", "pod/crashy")
                                                           else None)(kubectl(lab, "get", "events").stdout))
    assert has(events, "Normal", "Started", "pod/deaf"), events


ONE = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: NAME
nodes: [{name: n1, role: control-plane}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, image: busybox}]}
"""


def test_apply_refuses_what_up_and_validate_refuse_with_the_same_line(lab, tmp_path):
    """A pod whose program is not on this machine: `validate`, `up` and `apply` refuse it with one line,
    the same one, exit 2, and nothing is written (before, `apply` stored it and the lab's control loop
    then failed every pass on it); a well-known image's pod applied next comes up and answers."""
    base = tmp_path / "base.yaml"
    base.write_text(ONE.replace("NAME", lab.name))
    assert netlab_cli("up", "-f", str(base), "--lab", lab.name, timeout=120).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\n"
                   "spec: {containers: [{name: c, image: busybox, command: [no-such-program-xyz]}]}\n")
    v = netlab_cli("validate", "-f", str(bad))
    a = kubectl(lab, "apply", "-f", str(bad), check=False)
    both = tmp_path / "both.yaml"
    both.write_text(base.read_text() + "---\n" + bad.read_text())
    u = netlab_cli("up", "-f", str(both), "--lab", lab.name, timeout=120)
    line = ("error: Pod default/bad: container c runs 'no-such-program-xyz', which is not installed on this "
            "machine (netlab runs commands from the host's filesystem); install it or drop command and args "
            "to get the built-in test server")
    assert (v.returncode, a.returncode, u.returncode) == (2, 2, 2), (v, a, u)
    assert v.stderr.strip() == a.stderr.strip() == u.stderr.strip() == line, (v.stderr, a.stderr, u.stderr)
    assert "bad" not in pods_table(lab.name)

    echo = tmp_path / "echo.yaml"
    echo.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: echo}\n"
                    "spec: {containers: [{name: c, image: 'hashicorp/http-echo:0.2.3', args: ['-text=foo']}]}\n")
    assert kubectl(lab, "apply", "-f", str(echo)).stdout.strip() == "pod/echo created"
    ip = until("echo's IP", lambda: json.loads(kubectl(lab, "get", "pod", "echo", "-o", "json").stdout)
               .get("status", {}).get("podIP"))
    got = until("http-echo answers", lambda: (lambda c: c.stdout if c.returncode == 0 else None)(
        _exec(lab, "curl", "-sS", "--max-time", "3", f"http://{ip}:5678/")))
    assert got == "foo\n"
