"""Issue 12: a StatefulSet with its headless Service on real namespaces. Its pods come up in order
(web-1 only once web-0 is Ready), each has its stable name as its hostname and answers by that name
(the built-in server's /hostname, curl from another pod) at the address the headless Service's
EndpointSlice lists for that hostname; a deleted pod comes back with the same name and an IP of the
same family; a template change rolls out in reverse ordinal order; scale to 1 removes web-2, then
web-1. A StatefulSet without serviceName is refused (exit 2) and nothing is built."""
from __future__ import annotations

import json

from netlab.dataplane import lab as labmod
from netlab.store.meta import parse_time

from .conftest import kubectl, netlab_cli, until

MANIFEST = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: NAME
nodes: [{name: n1, role: control-plane}, {name: n2}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 8080, name: http}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: registry.k8s.io/e2e-test-images/agnhost:2.39
        args: [netexec, --http-port=8080]
        ports: [{containerPort: 8080, name: http}]
        env: [{name: VERSION, value: "VERSION1"}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec: {containers: [{name: c, image: busybox}]}
"""


def pods(lab) -> dict[str, dict]:
    """The StatefulSet's pods as the lab's store has them (creation and Ready times included)."""
    from netlab.live import store_for
    return {p["metadata"]["name"]: p for p in store_for(lab.name).list("Pod", "default")
            if p["metadata"]["name"].startswith("web-")}


def ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions") or [])


def ready_since(p: dict) -> float:
    return next(parse_time(c["lastTransitionTime"]) for c in p["status"]["conditions"]
                if c["type"] == "Ready" and c["status"] == "True")


def hostnames(lab) -> dict[str, str]:
    """hostname -> address of the ready endpoints of the headless Service's EndpointSlices."""
    doc = json.loads(kubectl(lab, "get", "endpointslices", "-o", "json").stdout)
    out = {}
    for s in doc["items"]:
        if s["metadata"].get("labels", {}).get("kubernetes.io/service-name") != "web":
            continue
        for e in s.get("endpoints") or []:
            if e["conditions"].get("ready") and e.get("hostname"):
                out[e["hostname"]] = e["addresses"][0]
    return out


def curl(lab, ip: str) -> str | None:
    r = netlab_cli("exec", "--lab", lab.name, "client", "--", "curl", "-sS", "--max-time", "3",
                   f"http://{ip}:8080/hostname")
    return r.stdout.strip() if r.returncode == 0 else None


def all_answer(lab, names):
    def check():
        by = hostnames(lab)
        if sorted(by) != sorted(names):
            return None
        got = {n: curl(lab, by[n]) for n in names}
        return by if all(got[n] == n for n in names) else None
    return check


def test_statefulset_pods_come_up_in_order_answer_by_name_and_come_back(lab, tmp_path):
    f = tmp_path / "sts.yaml"
    f.write_text(MANIFEST.replace("NAME", lab.name))
    r = netlab_cli("up", "-f", str(f), "--lab", lab.name, timeout=240)
    assert r.returncode == 0, r.stderr

    until("web-0..2 Ready", lambda: len(ps := pods(lab)) == 3 and all(ready(p) for p in ps.values()), timeout=120)
    ps = pods(lab)
    # OrderedReady: each pod was made only after the one before it was Ready
    for lo, hi in (("web-0", "web-1"), ("web-1", "web-2")):
        assert parse_time(ps[hi]["metadata"]["creationTimestamp"]) >= ready_since(ps[lo]), (lo, hi)
    for n, p in ps.items():
        assert p["spec"]["hostname"] == n and p["spec"]["subdomain"] == "web"
        assert p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == n

    # `get pods -o json` (the kernel's view) names the owner and the hostname as the store does
    seen = {p["metadata"]["name"]: p for p in json.loads(kubectl(lab, "get", "pods", "-o", "json").stdout)["items"]}
    assert seen["web-0"]["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert seen["web-0"]["metadata"]["ownerReferences"][0]["name"] == "web"
    assert seen["web-0"]["spec"]["hostname"] == "web-0"

    rows = kubectl(lab, "get", "sts").stdout.splitlines()
    assert rows[0].split() == ["NAME", "READY", "AGE"] and rows[1].split()[:2] == ["web", "3/3"], rows
    wide = kubectl(lab, "get", "statefulsets", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"], wide
    st = json.loads(kubectl(lab, "get", "statefulset", "web", "-o", "json").stdout)["status"]
    assert st["readyReplicas"] == 3 and st["currentRevision"] == st["updateRevision"], st

    # each pod answers by its stable name at the address the headless Service lists for that name
    by = until("each pod answers by its name", all_answer(lab, ["web-0", "web-1", "web-2"]), timeout=60)
    assert by["web-1"] == ps["web-1"]["status"]["podIP"]
    # and its UTS hostname is that name
    h = netlab_cli("exec", "--lab", lab.name, "web-2", "--", "hostname")
    assert h.returncode == 0 and h.stdout.strip() == "web-2", h

    # a deleted pod comes back with the same name, an address of the same family, and answers
    uid = ps["web-1"]["metadata"]["uid"]
    kubectl(lab, "delete", "pod", "web-1")
    until("web-1 made again and Ready", lambda: (p := pods(lab).get("web-1")) is not None
          and p["metadata"]["uid"] != uid and ready(p), timeout=90)
    again = pods(lab)["web-1"]
    assert ":" not in again["status"]["podIP"] and "." in again["status"]["podIP"]
    until("web-1 answers again by its name", all_answer(lab, ["web-0", "web-1", "web-2"]), timeout=60)

    # apply -f of a changed template: a rolling update, highest ordinal first
    objs = tmp_path / "objs.yaml"   # the manifests without the Cluster document (apply refuses it)
    objs.write_text(MANIFEST.split("---\n", 1)[1].replace("VERSION1", "VERSION2"))
    kubectl(lab, "apply", "-f", str(objs))
    s = kubectl(lab, "rollout", "status", "sts/web", "--timeout", "180s", timeout=200)
    assert s.stdout.strip().splitlines()[-1].startswith("statefulset rolling update complete 3 pods at revision"), s
    ps = pods(lab)
    assert {p["spec"]["containers"][0]["env"][0]["value"] for p in ps.values()} == {"VERSION2"}
    made = {n: parse_time(p["metadata"]["creationTimestamp"]) for n, p in ps.items()}
    assert made["web-2"] < made["web-1"] < made["web-0"], made
    until("the updated pods answer by name", all_answer(lab, ["web-0", "web-1", "web-2"]), timeout=60)

    # scale to 1: web-2 goes first, web-1 only once web-2 is gone
    kubectl(lab, "scale", "sts/web", "--replicas", "1")
    seen = []
    def shrunk():
        names = sorted(n + ("~" if p["metadata"].get("deletionTimestamp") else "") for n, p in pods(lab).items())
        if not seen or seen[-1] != names:
            seen.append(names)
        return names == ["web-0"]
    until("only web-0 left", shrunk, timeout=120, every=0.1)
    # web-1 is not touched while web-2 is there (even terminating, "~")
    assert all("web-1" in s for s in seen if "web-2" in s or "web-2~" in s), seen
    assert ["web-0", "web-1~"] in seen or ["web-0", "web-1"] in seen, seen
    assert kubectl(lab, "get", "sts").stdout.splitlines()[1].split()[:2] == ["web", "1/1"]
    until("web-0 alone answers", all_answer(lab, ["web-0"]), timeout=60)


def test_a_statefulset_without_service_name_is_refused_and_nothing_is_built(lab, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(MANIFEST.replace("NAME", lab.name).replace("  serviceName: web\n", ""))
    r = netlab_cli("up", "-f", str(f), "--lab", lab.name, timeout=120)
    assert r.returncode == 2, r
    lines = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert lines == ["error: StatefulSet default/web: spec.serviceName is required; name the headless Service "
                     "(clusterIP: None) that governs the pods, e.g. serviceName: web"], r.stderr
    assert not labmod.lab_namespaces(lab.name)
