"""Static pods on real namespaces (issue 12): a manifest file in a node's directory
(/run/netlab/<lab>/manifests/<node>/) is run by that node's kubelet (the control loop), mirrored in
the store as <pod>-<node> (annotation kubernetes.io/config.mirror, owned by the Node) so `get pods`
shows it, and answers curl; `delete pod` of the mirror does not stop it (the mirror comes back, the
pod's namespace is the same); an invalid file is reported as a Warning event naming the file, the
rest runs on; removing the file stops the pod and its namespace goes."""
from __future__ import annotations

import json
import os

from netlab.live.staticpods import MIRROR, manifests_dir

from .conftest import kubectl, pods_json, until

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: sp
nodes: [{name: cp, role: control-plane}, {name: w1, role: worker}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: w1
  containers: [{name: c}]
"""

STATIC = """apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers: [{name: web, image: registry.k8s.io/e2e-test-images/agnhost:2.39, args: [netexec],
                ports: [{containerPort: 8080}]}]
"""


def ready_pod(lab, name: str):
    p = pods_json(lab.name).get(name)
    if p and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or []):
        return p
    return None


def curl(lab, url: str) -> str:
    r = lab._run(("pod", "client"), ["curl", "-sS", "--max-time", "3", url])
    return r.stdout.strip() if r.returncode == 0 else ""


def test_static_pod_runs_from_its_file_is_mirrored_and_goes_with_it(lab):
    lab.up(SCENARIO)
    d = manifests_dir(lab.name, "cp")
    until("the node's manifest directory", lambda: os.path.isdir(d))
    path = os.path.join(d, "web.yaml")
    with open(path, "w") as f:
        f.write(STATIC)
    p = until("the mirror pod web-cp ready", lambda: ready_pod(lab, "web-cp"))
    assert p["spec"]["nodeName"] == "cp"   # on the tainted control plane: the kubelet runs it, no scheduler
    ip = p["status"]["podIP"]
    assert until("web-cp answering", lambda: curl(lab, f"http://{ip}:8080/hostname") == "web-cp", timeout=30)
    store_pod = json.loads(kubectl(lab, "get", "pods", "web-cp", "-o", "json").stdout)
    assert store_pod["metadata"]["ownerReferences"][0]["kind"] == "Node"
    ev_kinds = kubectl(lab, "get", "pods").stdout
    assert "web-cp" in ev_kinds
    netns = f"/run/netns/nl.{lab.name}.pod.default.web-cp"
    inode = os.stat(netns).st_ino

    # delete pod of the mirror: it comes back, the pod was not stopped (same namespace, still answering)
    r = kubectl(lab, "delete", "pod", "web-cp", "--timeout", "60s")
    assert 'pod "web-cp" deleted' in r.stdout
    until("the mirror back", lambda: ready_pod(lab, "web-cp"))
    assert os.stat(netns).st_ino == inode
    assert curl(lab, f"http://{ip}:8080/hostname") == "web-cp"

    # an invalid file: a Warning event naming it; the valid one runs on
    bad = os.path.join(d, "bad.yaml")
    with open(bad, "w") as f:
        f.write(STATIC.replace("containers:", "containerz:"))
    until("the event about bad.yaml", lambda: bad in kubectl(lab, "get", "events").stdout)
    events = kubectl(lab, "get", "events").stdout
    line = next(x for x in events.splitlines() if bad in x)
    assert "Warning" in line and "FailedStaticPod" in line and "node/cp" in line and "containerz" in line
    assert curl(lab, f"http://{ip}:8080/hostname") == "web-cp"
    os.unlink(bad)

    # the file removed: the pod stops and its namespace goes
    os.unlink(path)
    until("web-cp gone", lambda: "web-cp" not in pods_json(lab.name), timeout=60)
    until("its namespace gone", lambda: not os.path.exists(netns), timeout=30)
    assert curl(lab, f"http://{ip}:8080/hostname") == ""
