"""Issue 12: real manifests, pasted as users paste them (tests/data/corpus/: the Kubernetes website's
examples, kubernetes/examples' guestbook, kind's and MetalLB's docs; each file names its source).

For every file: `netlab validate -f FILE` accepts it as it is; then it comes up in a small lab (a
Cluster document and a client pod put in front of it), and every Service whose selector matches a pod
of the file gets ready endpoints and answers `curl` by its ClusterIP (a headless one: at each endpoint
address) from the client pod, on real namespaces; the lab is then removed (the `lab` fixture, whatever
happens).

Workloads are checked too: a Job runs to completion (condition Complete), a DaemonSet has a ready pod
on every node it selects, a StatefulSet all its replicas ready. Nothing is skipped: a file netlab
cannot bring up fails here.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml


from .conftest import kubectl, netlab_cli, until

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
FILES = sorted(CORPUS.glob("*.yaml"))

HEAD = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: NAME
nodes: [{name: n1, role: control-plane}, {name: n2}]
---
apiVersion: v1
kind: Pod
metadata: {name: corpus-client, namespace: default}
spec: {containers: [{name: c, image: busybox}]}
---
"""


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def _matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_a_real_manifest_validates_comes_up_and_its_services_answer(path, lab, tmp_path):
    docs = _docs(path)
    assert path.read_text().startswith("# Source: https://"), "each corpus file names its source first"

    v = netlab_cli("validate", "-f", str(path))
    assert v.returncode == 0, f"validate refused {path.name}: {v.stderr}"

    f = tmp_path / path.name
    f.write_text(HEAD.replace("NAME", lab.name) + path.read_text())
    r = netlab_cli("up", "-f", str(f), "--lab", lab.name, timeout=300)
    assert r.returncode == 0, f"up refused {path.name}: {r.stderr}"

    pods = json.loads(kubectl(lab, "get", "pods", "-A", "-o", "json").stdout)["items"]
    services = json.loads(kubectl(lab, "get", "services", "-A", "-o", "json").stdout)["items"]
    checked = 0
    for svc in services:
        ns, name = svc["metadata"].get("namespace", "default"), svc["metadata"]["name"]
        spec = svc["spec"]
        selected = [p for p in pods if p["metadata"].get("namespace", "default") == ns
                    and _matches(spec.get("selector") or {}, p["metadata"].get("labels") or {})
                    and p["metadata"]["name"] != "corpus-client"]
        serving = [p for p in selected if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        if not serving or f"{ns}/{name}" in ("default/kubernetes", "kube-system/kube-dns"):
            continue   # the add-ons' (no API server; kube-dns answers DNS, not HTTP: test_cluster_dns.py)
        port = spec["ports"][0]

        def ready_addresses():
            out = json.loads(kubectl(lab, "get", "endpointslices", "-n", ns, "-o", "json").stdout)["items"]
            return [a for s in out if (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name
                    for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")
                    for a in e.get("addresses") or []]
        addresses = until(f"ready endpoints of Service {ns}/{name}", ready_addresses, timeout=90)
        if spec.get("clusterIP") in (None, "None"):
            targets = [(a, port.get("targetPort", port["port"])) for a in addresses]
        else:
            targets = [(spec["clusterIP"], port["port"])]
        for ip, p in targets:
            def answers():
                c = netlab_cli("exec", "--lab", lab.name, "corpus-client", "--", "curl", "-sS", "-o", "/dev/null",
                               "-w", "%{http_code}", "--max-time", "3", f"http://{ip}:{p}/")
                return c.stdout.strip() if c.returncode == 0 else None
            code = until(f"an HTTP answer from Service {ns}/{name} at {ip}:{p}", answers, timeout=30)
            assert code.isdigit() and code != "000", code
            checked += 1
    expect = any(d.get("kind") == "Service" and (d.get("spec") or {}).get("selector") for d in docs)
    if expect:
        assert checked or not any(_matches((d.get("spec") or {}).get("selector") or {}, p["metadata"].get("labels") or {})
                                  for d in docs if d.get("kind") == "Service" for p in pods), \
            "a Service selects pods but nothing was checked"

    # the workloads of the file did their work
    for d in docs:
        kind, meta = d.get("kind"), d.get("metadata") or {}
        ref, ns = f"{kind.lower()}/{meta.get('name')}", meta.get("namespace", "default")
        if kind == "Job":
            w = kubectl(lab, "wait", "--for=condition=complete", ref, "-n", ns, "--timeout=120s", check=False)
            assert w.returncode == 0, f"{ref} did not complete: {w.stderr}"
        elif kind in ("DaemonSet", "StatefulSet"):
            def settled():
                st = json.loads(kubectl(lab, "get", ref, "-n", ns, "-o", "json").stdout).get("status") or {}
                if kind == "DaemonSet":
                    return st.get("desiredNumberScheduled", 0) > 0 and \
                        st.get("numberReady") == st.get("desiredNumberScheduled")
                return st.get("readyReplicas") == (d.get("spec") or {}).get("replicas", 1)
            until(f"{ref} ready", settled, timeout=120)
