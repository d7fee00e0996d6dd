"""The DaemonSet controller (netlab/controllers/daemonset.py): eligible nodes (nodeSelector, taints
and tolerations, the control-plane taint), a pod per node bound by nodeName with the daemon
tolerations and Kubernetes' labels, nodes added and removed, rolling updates within maxUnavailable
(and with maxSurge), OnDelete, status and kubectl's rollout status, on a simulated cluster."""

import pytest

from netlab.controllers import daemonset as dsc
from netlab.controllers.base import Snapshot
from netlab.controllers.printers import table
from netlab.live.objects import with_defaults

from .ctrl_sim import Sim, node

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def daemonset(name="agent", image="v1", tolerations=None, node_selector=None, strategy=None, min_ready=0):
    spec = {"containers": [{"name": "app", "image": image}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    if node_selector:
        spec["nodeSelector"] = node_selector
    d = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "default"},
         "spec": {"selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}
    if strategy is not None:
        d["spec"]["updateStrategy"] = strategy
    if min_ready:
        d["spec"]["minReadySeconds"] = min_ready
    return with_defaults(d)


def cluster(workers=("w1", "w2")):
    sim = Sim(nodes=())
    cp = node("cp", taints=[CP_TAINT])
    cp["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] = ""
    sim.store.create(cp)
    for w in workers:
        sim.store.create(node(w))
    sim.settle()
    return sim


def add(sim, ds):
    sim.store.create(ds)
    sim.settle()


def run(sim, seconds):
    for _ in range(seconds):
        sim.tick(1)


def by_node(sim, name="agent"):
    out = {}
    for p in sim.pods():
        if (p["metadata"].get("ownerReferences") or [{}])[0].get("name") == name:
            out.setdefault(p["spec"]["nodeName"], []).append(p)
    return out


def test_one_pod_per_worker_not_on_the_tainted_control_plane():
    sim = cluster()
    add(sim, daemonset())
    run(sim, 5)
    pods = by_node(sim)
    assert sorted(pods) == ["w1", "w2"]
    p = pods["w1"][0]
    assert p["metadata"]["name"].startswith("agent-") and len(p["metadata"]["name"]) == len("agent-") + 5
    labels = p["metadata"]["labels"]
    ds = sim.get("DaemonSet", "agent")
    assert labels["app"] == "agent" and labels[dsc.REVISION_HASH] == dsc.revision_hash(ds)
    assert labels[dsc.TEMPLATE_GENERATION] == "1"
    assert p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    tols = {(t["key"], t["effect"]): t for t in p["spec"]["tolerations"]}
    for key, effect in (("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
                        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
                        ("node.kubernetes.io/unschedulable", "NoSchedule")):
        assert (key, effect) in tols and "tolerationSeconds" not in tols[(key, effect)]
    st = ds["status"]
    assert st["desiredNumberScheduled"] == 2 and st["currentNumberScheduled"] == 2 and st["numberReady"] == 2
    assert st["numberAvailable"] == 2 and st["updatedNumberScheduled"] == 2 and st["numberMisscheduled"] == 0
    assert "numberUnavailable" not in st and st["observedGeneration"] == ds["metadata"]["generation"]
    assert [e["reason"] for e in sim.events("SuccessfulCreate")] == ["SuccessfulCreate"] * 2


def test_control_plane_only_when_its_taint_is_tolerated():
    sim = cluster()
    add(sim, daemonset(tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                             "effect": "NoSchedule"}]))
    run(sim, 5)
    assert sorted(by_node(sim)) == ["cp", "w1", "w2"]
    # a toleration of another taint does not do
    sim2 = cluster()
    add(sim2, daemonset(tolerations=[{"key": "example.com/other", "operator": "Exists"}]))
    run(sim2, 5)
    assert sorted(by_node(sim2)) == ["w1", "w2"]


def test_eligibility_rules():
    pspec = dsc.daemon_pod_spec(daemonset(node_selector={"disk": "ssd"}))
    ssd = node("a")
    ssd["metadata"]["labels"]["disk"] = "ssd"
    assert dsc.node_should_run(pspec, ssd) == (True, True)
    assert dsc.node_should_run(pspec, node("b")) == (False, False)
    plain = dsc.daemon_pod_spec(daemonset())
    # cordoned and not-ready nodes keep their daemon pods (the added tolerations)
    assert dsc.node_should_run(plain, node("c", unschedulable=True)) == (True, True)
    assert dsc.node_should_run(plain, node("d", taints=[{"key": "node.kubernetes.io/not-ready",
                                                          "effect": "NoExecute"}])) == (True, True)
    # an untolerated NoSchedule taint: no new pod, a running one continues; NoExecute: it goes
    assert dsc.node_should_run(plain, node("e", taints=[{"key": "x", "effect": "NoSchedule"}])) == (False, True)
    assert dsc.node_should_run(plain, node("f", taints=[{"key": "x", "effect": "NoExecute"}])) == (False, False)


def test_node_added_gets_its_pod_node_removed_loses_it_and_relabelled_node_too():
    sim = cluster()
    add(sim, daemonset(node_selector={"kubernetes.io/os": "linux"}))
    for n in sim.store.list("Node"):
        n["metadata"]["labels"]["kubernetes.io/os"] = "linux"
        sim.store.update(n)
    run(sim, 5)
    assert sorted(by_node(sim)) == ["w1", "w2"]
    w3 = node("w3")
    w3["metadata"]["labels"]["kubernetes.io/os"] = "linux"
    sim.store.create(w3)
    run(sim, 5)
    assert sorted(by_node(sim)) == ["w1", "w2", "w3"]
    assert sim.get("DaemonSet", "agent")["status"]["desiredNumberScheduled"] == 3
    sim.store.delete("Node", None, "w2", grace_seconds=0)
    run(sim, 5)
    assert sorted(by_node(sim)) == ["w1", "w3"]
    # a node whose labels no longer match the nodeSelector loses its pod
    w1 = sim.store.get("Node", None, "w1")
    w1["metadata"]["labels"]["kubernetes.io/os"] = "windows"
    sim.store.update(w1)
    run(sim, 40)
    assert sorted(by_node(sim)) == ["w3"]
    assert sim.get("DaemonSet", "agent")["status"]["desiredNumberScheduled"] == 1


def test_deleted_pod_is_made_again_and_deleted_daemonset_takes_its_pods():
    sim = cluster()
    add(sim, daemonset())
    run(sim, 5)
    victim = by_node(sim)["w1"][0]
    sim.store.delete("Pod", "default", victim["metadata"]["name"], grace_seconds=0)
    run(sim, 5)
    again = by_node(sim)["w1"]
    assert len(again) == 1 and again[0]["metadata"]["name"] != victim["metadata"]["name"]
    sim.store.delete("DaemonSet", "default", "agent")
    run(sim, 40)
    assert by_node(sim) == {}


def _rollout(sim, image="v2", steps=60):
    ds = sim.get("DaemonSet", "agent")
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = image
    sim.store.update(ds)
    seen = []
    for _ in range(steps):
        sim.clock.t += 0.5
        sim.settle()
        pods = [p for p in sim.store.list("Pod") if p["spec"].get("nodeName")]
        ready_old = sum(1 for p in pods if not p["metadata"].get("deletionTimestamp")
                        and p["spec"]["containers"][0]["image"] != image
                        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])))
        ready_new = sum(1 for p in pods if p["spec"]["containers"][0]["image"] == image
                        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])))
        seen.append((ready_old, ready_new, sum(1 for p in pods if not p["metadata"].get("deletionTimestamp"))))
    return seen


@pytest.mark.parametrize("unavailable", [1, 2, "50%"])
def test_rolling_update_stays_within_max_unavailable(unavailable):
    sim = cluster(workers=("w1", "w2", "w3", "w4"))
    add(sim, daemonset(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": unavailable}}))
    run(sim, 5)
    seen = _rollout(sim)
    limit = {1: 1, 2: 2, "50%": 2}[unavailable]
    assert all(4 - (old + new) <= limit for old, new, _ in seen), seen
    assert max(4 - (old + new) for old, new, _ in seen) == limit   # it does use its budget
    pods = by_node(sim)
    assert sorted(pods) == ["w1", "w2", "w3", "w4"]
    assert all(len(v) == 1 and v[0]["spec"]["containers"][0]["image"] == "v2" for v in pods.values())
    ds = sim.get("DaemonSet", "agent")
    assert all(p["metadata"]["labels"][dsc.TEMPLATE_GENERATION] == "2" for v in pods.values() for p in v)
    assert dsc.rollout_status(ds) == ('daemon set "agent" successfully rolled out', True)


def test_rolling_update_with_surge_keeps_every_node_served():
    sim = cluster(workers=("w1", "w2", "w3"))
    add(sim, daemonset(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1,
                                                                                    "maxUnavailable": 0}}))
    run(sim, 5)
    seen = _rollout(sim)
    assert all(old + new >= 3 for old, new, _ in seen), seen
    assert max(total for _, _, total in seen) <= 4
    assert all(v[0]["spec"]["containers"][0]["image"] == "v2" and len(v) == 1 for v in by_node(sim).values())


def test_on_delete_replaces_only_deleted_pods():
    sim = cluster()
    add(sim, daemonset(strategy={"type": "OnDelete"}))
    run(sim, 5)
    ds = sim.get("DaemonSet", "agent")
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    sim.store.update(ds)
    run(sim, 10)
    assert {v[0]["spec"]["containers"][0]["image"] for v in by_node(sim).values()} == {"v1"}
    sim.store.delete("Pod", "default", by_node(sim)["w1"][0]["metadata"]["name"], grace_seconds=0)
    run(sim, 5)
    images = {n: v[0]["spec"]["containers"][0]["image"] for n, v in by_node(sim).items()}
    assert images == {"w1": "v2", "w2": "v1"}
    assert sim.get("DaemonSet", "agent")["status"]["updatedNumberScheduled"] == 1
    with pytest.raises(ValueError):
        dsc.rollout_status(sim.get("DaemonSet", "agent"))


def test_min_ready_seconds_holds_the_rollout():
    sim = cluster()
    add(sim, daemonset(min_ready=5))
    run(sim, 3)
    st = sim.get("DaemonSet", "agent")["status"]
    assert st["numberReady"] == 2 and "numberAvailable" not in st and st["numberUnavailable"] == 2
    msg, done = dsc.rollout_status(sim.get("DaemonSet", "agent"))
    assert not done and "0 of 2 updated pods are available" in msg
    run(sim, 6)
    assert sim.get("DaemonSet", "agent")["status"]["numberAvailable"] == 2


def test_get_ds_columns():
    sim = cluster()
    add(sim, daemonset(node_selector={"kubernetes.io/os": "linux"}))
    run(sim, 5)
    rows = table("DaemonSet", [sim.get("DaemonSet", "agent")], sim.now)
    assert rows[0] == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"]
    assert rows[1][:7] == ["agent", "0", "0", "0", "0", "0", "kubernetes.io/os=linux"]


def test_decide_is_pure():
    sim = cluster()
    sim.store.create(daemonset())
    snap = Snapshot.from_store(sim.store, dsc.KINDS)
    a = [(x.verb, x.obj["metadata"]["name"]) for x in dsc.decide(snap, sim.now)]
    b = [(x.verb, x.obj["metadata"]["name"]) for x in dsc.decide(snap, sim.now)]
    assert a == b and len([v for v, _ in a if v == "create"]) == 2
