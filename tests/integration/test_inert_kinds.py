"""Issue 12: a manifest mixing what netlab emulates (Deployment, Service, a standalone ReplicaSet) with
objects that carry no dataplane (ConfigMap, Secret, ServiceAccount) and an add-on's custom resource
(MetalLB's BFDProfile: BFD is not emulated) comes up: the notices are said once, the store has every object, and the
ReplicaSet's pods answer through their Service (curl from a client pod, real namespaces)."""
from __future__ import annotations

import json

from .conftest import kubectl, netlab_cli, until

MIX = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: NAME
nodes: [{name: n1, role: control-plane}, {name: n2}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data: {index.html: hello, mode: fast}
---
apiVersion: v1
kind: Secret
metadata: {name: db-creds}
type: Opaque
stringData: {password: hunter2}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: pool, namespace: metallb-system}
spec: {receiveInterval: 300}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: registry.k8s.io/e2e-test-images/agnhost:2.39, args: [netexec, --http-port=8080],
         ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: solo}
spec:
  replicas: 2
  selector: {matchLabels: {app: solo}}
  template:
    metadata: {labels: {app: solo}}
    spec:
      containers:
      - {name: app, image: registry.k8s.io/e2e-test-images/agnhost:2.39, args: [netexec, --http-port=8080],
         ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: solo}
spec: {selector: {app: solo}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, image: busybox}]}
"""


def test_a_mixed_manifest_comes_up_and_the_standalone_replicaset_serves(lab, tmp_path):
    f = tmp_path / "mix.yaml"
    f.write_text(MIX.replace("NAME", lab.name))
    r = netlab_cli("up", "-f", str(f), "--lab", lab.name, timeout=240)
    assert r.returncode == 0, r.stderr
    stored = [line for line in r.stderr.splitlines() if "does not use yet" in line]
    addons = [line for line in r.stderr.splitlines() if "add-ons" in line]
    assert stored == ["netlab: storing objects netlab does not use yet: ServiceAccount default/robot"], r.stderr
    assert addons == ["netlab: ignoring add-ons' objects netlab does not emulate (stored only): "
                      "BFDProfile pool (MetalLB)"], r.stderr

    cms = kubectl(lab, "get", "configmaps").stdout.splitlines()
    assert cms[0].split() == ["NAME", "DATA", "AGE"] and cms[1].split()[:2] == ["web-config", "2"]
    secrets = kubectl(lab, "get", "secrets").stdout
    assert secrets.splitlines()[1].split()[:3] == ["db-creds", "Opaque", "1"] and "hunter2" not in secrets
    assert kubectl(lab, "get", "sa").stdout.splitlines()[1].split()[0] == "robot"
    rs = kubectl(lab, "get", "rs", "solo").stdout.splitlines()[1].split()
    assert rs[:4] == ["solo", "2", "2", "2"], rs

    svc = json.loads(kubectl(lab, "get", "svc", "solo", "-o", "json").stdout)
    ip = svc["spec"]["clusterIP"]
    solo = {p["metadata"]["name"] for p in json.loads(kubectl(lab, "get", "pods", "-o", "json").stdout)["items"]
            if p["metadata"]["name"].startswith("solo-")}
    assert len(solo) == 2, solo

    def answers():
        got = set()
        for _ in range(30):
            c = netlab_cli("exec", "--lab", lab.name, "client", "--", "curl", "-sS", "--max-time", "3",
                           f"http://{ip}/hostname")
            if c.returncode == 0:
                got.add(c.stdout.strip())
        return got if got == solo else None
    until("both ReplicaSet pods answer through the Service", answers, timeout=60)

    # scale rs/solo works on a standalone ReplicaSet
    kubectl(lab, "scale", "rs/solo", "--replicas", "1")
    until("one solo pod", lambda: kubectl(lab, "get", "rs", "solo").stdout.splitlines()[1].split()[1:4]
          == ["1", "1", "1"], timeout=60)

    # apply -f: a ConfigMap's data change is an update, said once; a truly unknown kind is refused (exit 2)
    cm = tmp_path / "cm.yaml"
    cm.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config}\ndata: {mode: slow}\n")
    a = kubectl(lab, "apply", "-f", str(cm))
    assert a.stdout.strip() == "configmap/web-config configured", a.stdout
    assert "does not use yet" not in a.stderr, a.stderr   # pods read ConfigMaps (volumes, env)
    assert kubectl(lab, "get", "cm").stdout.splitlines()[1].split()[:2] == ["web-config", "1"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    r = kubectl(lab, "apply", "-f", str(bad), check=False)
    assert r.returncode == 2 and "kind 'Widget' is not supported; netlab understands" in r.stderr, r
