"""Issue 12: well-known test images run as themselves, and a pod that is not ready is never an endpoint
and says why (real namespaces, a real control loop, curl and agnhost connect from pods).

One lab: agnhost serve-hostname / porter / connect, hashicorp/http-echo, nginx and hello-app answer as
those programs do, whatever their command says; a pod whose command never listens stays READY 0/1 and
out of its Service's endpoints; containers that end show their reason (Completed, Error,
CrashLoopBackOff) in `get pods`, `describe pod` (containerStatuses' state) and `get events`.
"""
from __future__ import annotations

import json
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
    events = kubectl(lab, "get", "events").stdout
    assert any(line.split()[1:4] == ["Warning", "BackOff", "pod/crashy"] for line in events.splitlines()), events
    assert any(line.split()[1:4] == ["Normal", "Started", "pod/deaf"] for line in events.splitlines()), events
