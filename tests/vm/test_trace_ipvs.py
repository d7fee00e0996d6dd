"""`netlab trace` in IPVS mode, inside the VM of scripts/vm-run (this repository's CI kernel has no ip_vs).

ip_vs picks the real server outside netfilter's rules, so the kernel's trace cannot show that step: the
trace must say so, show the model's prediction marked as predicted (observed: false), and still follow
the packet to the pod that answered. tests/integration/test_vm.py runs this from the host.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

if os.environ.get("NETLAB_IN_VM") != "1":
    pytest.skip("runs inside the IPVS test VM only (tests/integration/test_vm.py starts it)", allow_module_level=True)

from netlab.dataplane import lab as labmod  # noqa: E402

SCENARIO = """
apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{role: worker, name: n1}, {role: worker, name: n2}]
networking: {kubeProxyMode: ipvs, backend: vxlan}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n1
  containers: [{name: client, image: curlimages/curl}]
"""


def netlab(*args: str) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "netlab")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    name = f"vmtrace-{secrets.token_hex(3)}"
    path = tmp_path_factory.mktemp("trace") / "lab.yaml"
    path.write_text(SCENARIO)
    try:
        r = netlab("up", str(path), "--lab", name)
        assert r.returncode == 0, r.stderr
        yield name
    finally:
        labmod.down(name)
        assert not labmod.lab_namespaces(name)


def test_ipvs_choice_is_marked_predicted_and_the_packet_still_followed(lab):
    r = netlab("trace", "pod/client", "svc/web:80", "--lab", lab, "-o", "json", "--timeout", "20")
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    assert doc["outcome"] == "reachable", doc
    assert (doc["answered_by"] or "").startswith("pod/web-"), doc
    predicted = [h for h in doc["hops"] if not h["observed"]]
    assert predicted and all("predicted" in h["text"] for h in predicted), doc["hops"]
    assert any("IPVS" in h["text"] for h in predicted), predicted
    # what the kernel did show: the delivery to the pod that answered
    assert any(h["kind"] == "deliver" and doc["answered_by"] in h["text"] for h in doc["hops"]), doc["hops"]
