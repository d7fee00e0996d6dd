"""Pods' containers through their lifecycle on a real lab: a built-in-server pod that exits (agnhost's
/exit), a client pod with no command and no port, a pod whose namespace someone deleted by hand.
Real clients only (curl, ss), and the CLI as a user runs it."""
from __future__ import annotations

import os
import subprocess
import time

from netlab.dataplane import procs, state

from .conftest import netlab_cli, pods_json, pods_table

EXITING = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: n1}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers: [{name: agnhost, image: registry.k8s.io/e2e-test-images/agnhost:2.53,
                args: [netexec, --http-port=8080, --udp-port=8081]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers: [{name: c, command: [sleep, "1000"]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
"""


def _pods(lab) -> dict[str, list[str]]:
    return pods_table(lab.name)


def _pod_json(lab, name: str) -> dict:
    return pods_json(lab.name)[name]


def _ready(obj: dict) -> str:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")["status"]


def _curl(lab, pod: str, url: str):
    r = lab.pod_exec(pod, ["curl", "-sS", "--max-time", "5", url], timeout=20)
    return r.returncode, r.stdout.strip()


def _listening(lab, pod: str) -> str:
    r = lab.pod_exec(pod, ["ss", "-Hlntu"])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _endpoints(lab, svc: str) -> str:
    return netlab_cli("get", "ep", svc, "--lab", lab.name, check=True).stdout


def test_a_builtin_pod_that_exits_is_not_ready_and_up_restarts_it(lab):
    """agnhost's /exit: the pod's ports close; get pods shows the container terminated with the code
    (Error, then Completed for code 0), not Ready; `up` restarts it by reloading the node's server,
    counts the restart, and it serves again behind its Service."""
    lab.control_loop = False  # the still picture: nothing changes between two `up`s
    lab.up(EXITING)
    web = lab.pod("web").ip
    cip = lab.cluster.services[0].cluster_ip
    assert _curl(lab, "client", f"http://{web}:8080/hostname") == (0, "web")
    assert _curl(lab, "client", f"http://{web}:8080/exit?code=4")[0] == 52   # gone before it answers
    assert _listening(lab, "web") == ""
    rows = _pods(lab)
    assert rows["web"][1:4] == ["0/1", "Error", "0"], rows
    obj = _pod_json(lab, "web")
    cs = obj["status"]["containerStatuses"][0]
    assert cs["ready"] is False and cs["state"]["terminated"]["exitCode"] == 4, cs
    assert cs["state"]["terminated"]["reason"] == "Error", cs
    assert _ready(obj) == "False"
    # up restarts it (a reload of the node's server), counted as a restart
    r = netlab_cli("up", "--lab", lab.name, "-v", check=True)
    assert "0 changes" not in r.stdout + r.stderr, r.stdout
    assert "restart" in r.stdout + r.stderr, r.stdout
    rows = _pods(lab)
    assert rows["web"][1:4] == ["1/1", "Running", "1"], rows
    assert ":8080" in _listening(lab, "web")
    assert _curl(lab, "client", f"http://{cip}/hostname") == (0, "web")
    assert str(web) in _endpoints(lab, "web")
    # exit code 0: Completed, as kubectl shows a container that ended well
    assert _curl(lab, "client", f"http://{web}:8080/exit?code=0")[0] == 52
    rows = _pods(lab)
    assert rows["web"][1:4] == ["0/1", "Completed", "1"], rows
    term = _pod_json(lab, "web")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "Completed" and term["exitCode"] == 0, term
    r = netlab_cli("up", "--lab", lab.name, check=True)
    assert _pods(lab)["web"][1:4] == ["1/1", "Running", "2"]
    assert _curl(lab, "client", f"http://{cip}/hostname") == (0, "web")


SQUAT = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: n1}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - {name: agnhost, image: registry.k8s.io/e2e-test-images/agnhost:2.53, args: [netexec, --http-port=8080, --udp-port=8081]}
  - name: squat
    command: [python3, -c, "import socket, time\\nwhile True:\\n s = socket.socket()\\n try:\\n  s.bind(('127.0.0.1', 8080)); break\\n except OSError:\\n  s.close(); time.sleep(0.05)\\ntime.sleep(1000)"]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers: [{name: c, command: [sleep, "1000"]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
"""


def test_a_builtin_pod_that_cannot_listen_after_its_restart_is_not_an_endpoint(lab):
    """The built-in server restarts an exited pod but cannot listen on its port (another container of
    the pod has bound it meanwhile): `up`'s readiness check sees nothing listening, as for a command
    container, so the pod is not Ready and leaves its Service's endpoints."""
    lab.control_loop = False  # the still picture: nothing changes between two `up`s
    lab.up(SQUAT)
    web = lab.pod("web").ip
    assert _curl(lab, "client", f"http://{web}:8080/hostname") == (0, "web")
    assert _curl(lab, "client", f"http://{web}:8080/exit?code=1")[0] == 52
    time.sleep(0.5)   # the squatter binds 127.0.0.1:8080 (not listening): the server cannot bind 8080
    r = lab.up(SQUAT)
    assert "pod default/web: not ready (see netlab get pods)" in r.changes, r.changes
    rows = _pods(lab)
    assert rows["web"][1:3] == ["1/2", "Running"], rows
    assert "nothing listens on its containerPort TCP 8080" in _pod_json(lab, "web")["status"]["message"]
    assert str(web) not in _endpoints(lab, "web")


CLIENT_ALONE = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: n1}, {role: worker, name: n2}]
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: n1
  containers: [{name: web, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: plain, labels: {app: plain}}
spec:
  nodeName: n2
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Service
metadata: {name: plain}
spec: {selector: {app: plain}, ports: [{port: 80}]}
"""


def test_a_pod_with_no_command_and_no_port_alone_on_its_node_is_running(lab):
    """A plain client pod (an image with no command, no containerPort) runs no process of its own: its
    container is running and ready while the pod exists, whether or not its node has a built-in
    server; get pods, its Service's endpoints and `up` agree (nothing to repair)."""
    lab.up(CLIENT_ALONE)
    rows = _pods(lab)
    assert rows["plain"][1:4] == ["1/1", "Running", "0"], rows
    obj = _pod_json(lab, "plain")
    assert _ready(obj) == "True" and "running" in obj["status"]["containerStatuses"][0]["state"], obj["status"]
    # it works as a client
    assert _curl(lab, "plain", f"http://{lab.pod('web').ip}:8080/hostname") == (0, "web")
    assert str(lab.pod("plain").ip) in _endpoints(lab, "plain")
    r = netlab_cli("up", "--lab", lab.name, check=True)
    assert "0 changes" in r.stdout + r.stderr, r.stdout + r.stderr
    r = netlab_cli("get", "pods", "--lab", lab.name, check=True)
    assert "since the last up" not in r.stderr, r.stderr


ORPHANS = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: n1}]
---
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  containers: [{name: c, command: [sh, -c, "sleep 1000 & exec sleep 1001"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: other}
spec:
  containers: [{name: c, command: [sh, -c, "sleep 1000 & exec sleep 1001"]}]
"""


def _tagged(lab) -> dict[int, str]:
    """Processes anywhere on the machine that carry one of the lab's owner tags."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        tag = procs.owner_of(int(pid))
        if tag and tag.startswith(f"{lab.name}/") and procs.start_time(int(pid)) is not None:
            out[int(pid)] = tag
    return out


def test_a_pod_whose_namespace_was_deleted_by_hand_leaves_no_process_behind(lab):
    """`ip netns delete` of a pod's namespace: `up` rebuilds the pod and stops what ran in the old one
    (the recorded container, and what it started), and `down` ends every process with the lab's owner
    tag wherever it is, not only those in the lab's named namespaces."""
    lab.up(ORPHANS)
    old = state.load(lab.name)["pods"]["default/sleeper"]["procs"]["c"]
    old_tagged = {p for p, t in _tagged(lab).items() if "/pod/default/sleeper/" in t}
    assert int(old["pid"]) in old_tagged and len(old_tagged) >= 2, old_tagged   # container + its child
    r = subprocess.run(["ip", "netns", "delete", lab.pod("sleeper").netns], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lab.up(ORPHANS)
    assert not procs.alive(old), f"old container {old['pid']} survived up"
    left = {p for p in old_tagged if procs.start_time(p) is not None and p in _tagged(lab)}
    assert not left, f"processes of the old pod survived up: {left}"
    assert _pods(lab)["sleeper"][1:3] == ["1/1", "Running"]
    # the other pod's namespace goes too, and the lab is taken down with no `up` in between
    assert subprocess.run(["ip", "netns", "delete", lab.pod("other").netns]).returncode == 0
    assert _tagged(lab)
    netlab_cli("down", lab.name, check=True)
    deadline = time.monotonic() + 3
    while _tagged(lab) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _tagged(lab), f"processes of lab {lab.name} survived down: {_tagged(lab)}"
