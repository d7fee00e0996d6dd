"""A Service without a selector and an EndpointSlice written by hand (issue 12): the documented way to
point a Service at a server outside the cluster. A real server in the lab's external namespace, a
real client (curl) in a pod through the ClusterIP, in iptables and nftables modes; `netlab apply -f`
of a changed slice moves the target; the EndpointSlice controller leaves the slice alone."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile

import pytest

from netlab.dataplane import lab as labmod

from .conftest import kubectl, until

SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: sl
networking: {kubeProxyMode: MODE}
nodes: [{name: n1, role: control-plane}, {name: n2}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: n2
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  ports: [{port: 80, targetPort: 8000}]
"""

SLICE = """apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{port: PORT, protocol: TCP}]
endpoints:
- addresses: ["ADDR"]
"""


def server(lab, port: int, body: str, tmp: str) -> subprocess.Popen:
    """python3 -m http.server in the external namespace, serving a file whose content is `body`."""
    d = os.path.join(tmp, str(port))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "who"), "w") as f:
        f.write(body)
    argv = labmod.netns_exec_argv(lab.cluster.external_netns,
                                  ["python3", "-m", "http.server", "--bind", "0.0.0.0", str(port), "--directory", d])
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fetch(lab, vip) -> str:
    r = lab._run(("pod", "client"), ["curl", "-sS", "--max-time", "3", f"http://{vip}/who"])
    return r.stdout.strip() if r.returncode == 0 else ""


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_selectorless_service_reaches_the_external_host(lab, mode):
    with tempfile.TemporaryDirectory() as tmp:
        servers = []
        try:
            lab.up(SCENARIO.replace("MODE", mode))
            ext = str(lab.cluster.external_ip)
            servers = [server(lab, 8000, "first", tmp), server(lab, 8001, "second", tmp)]
            slice_file = os.path.join(tmp, "slice.yaml")
            with open(slice_file, "w") as f:
                f.write(SLICE.replace("PORT", "8000").replace("ADDR", ext))
            if mode == "iptables":   # the slice given to apply -f; in nftables mode, in the scenario of `up`
                kubectl(lab, "apply", "-f", slice_file)
            else:
                lab.up(SCENARIO.replace("MODE", mode) + "---\n" + SLICE.replace("PORT", "8000").replace("ADDR", ext))
            vip = next(s for s in lab.cluster.services if s.name == "db").cluster_ip
            until("the ClusterIP to reach the slice's address", lambda: fetch(lab, vip) == "first")
            # the EndpointSlice controller left the hand-written slice as written
            doc = json.loads(kubectl(lab, "get", "endpointslices", "-o", "json").stdout)
            mine = [i for i in doc["items"] if i["metadata"]["name"] == "db-1"]
            assert [e["addresses"] for e in mine[0]["endpoints"]] == [[ext]], mine
            table = kubectl(lab, "get", "endpointslices").stdout
            assert any(line.split()[:4] == ["db-1", "IPv4", "8000", ext] for line in table.splitlines()), table
            # a changed slice moves the target
            with open(slice_file, "w") as f:
                f.write(SLICE.replace("PORT", "8001").replace("ADDR", ext))
            kubectl(lab, "apply", "-f", slice_file)
            until("the ClusterIP to follow the changed slice", lambda: fetch(lab, vip) == "second")
            # `up` of a scenario without the slice prunes it: the Service has no endpoint left (REJECT)
            lab.up(SCENARIO.replace("MODE", mode))
            assert "db-1" not in kubectl(lab, "get", "endpointslices").stdout
            until("the pruned slice's address to be gone", lambda: lab._run(
                ("pod", "client"), ["curl", "-sS", "--max-time", "3", f"http://{vip}/who"]).returncode == 7)
        finally:
            for p in servers:
                p.kill()
                p.wait()


ENDPOINTS = """apiVersion: v1
kind: Endpoints
metadata: {name: db}
subsets:
- KEY: [{ip: "ADDR"}]
  ports: [{port: 8000, protocol: TCP}]
"""


def test_endpoints_object_when_there_is_no_slice(lab):
    """A v1 Endpoints object gives the selectorless Service its address; a notReadyAddresses one is not
    used (the ClusterIP then refuses, as kube-proxy's REJECT for a Service without endpoints)."""
    with tempfile.TemporaryDirectory() as tmp:
        servers = []
        try:
            lab.up(SCENARIO.replace("MODE", "iptables"))
            ext = str(lab.cluster.external_ip)
            servers = [server(lab, 8000, "first", tmp)]
            path = os.path.join(tmp, "ep.yaml")
            with open(path, "w") as f:
                f.write(ENDPOINTS.replace("KEY", "addresses").replace("ADDR", ext))
            kubectl(lab, "apply", "-f", path)
            vip = next(s for s in lab.cluster.services if s.name == "db").cluster_ip
            until("the ClusterIP to reach the Endpoints' address", lambda: fetch(lab, vip) == "first")
            with open(path, "w") as f:
                f.write(ENDPOINTS.replace("KEY", "notReadyAddresses").replace("ADDR", ext))
            kubectl(lab, "apply", "-f", path)

            def refused():
                r = lab._run(("pod", "client"), ["curl", "-sS", "--max-time", "3", f"http://{vip}/who"])
                return r.returncode == 7   # curl: couldn't connect (the REJECT), not a reply, not a timeout
            until("a not-ready address to be left out", refused)
            assert kubectl(lab, "delete", "-f", path).stdout.strip() == 'endpoints "db" deleted'
        finally:
            for p in servers:
                p.kill()
                p.wait()
