"""The ReplicaSet controller: pod creation from the template, deletion ranking as Kubernetes'
controller_utils, status, events, burst."""



from netlab.controllers import replicaset as rsc
from netlab.controllers.base import NAME_ALPHABET, Snapshot
from netlab.controllers.runner import apply_actions
from netlab.store import MemoryStore
from netlab.store.meta import fmt_time

NOW = 1_800_000_000.0


def rs(replicas=3, min_ready=0):
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "namespace": "default", "uid": "rs-uid", "generation": 2},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"},
                                               "annotations": {"a": "b"}},
                                  "spec": {"containers": [{"name": "app", "image": "v1"}]}}}}


def pod(name, node="n1", phase="Running", ready=True, ready_for=100, restarts=0, age=1000, cost=None, labels=None):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": name, "namespace": "default", "uid": name, "creationTimestamp": fmt_time(NOW - age),
                      "labels": labels or {"app": "web", "pod-template-hash": "abc"},
                      "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "uid": "rs-uid", "controller": True}]},
         "spec": {"nodeName": node} if node else {},
         "status": {"phase": phase, "containerStatuses": [{"name": "app", "restartCount": restarts}],
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                    "lastTransitionTime": fmt_time(NOW - ready_for)}]}}
    if cost is not None:
        p["metadata"]["annotations"] = {rsc.DELETION_COST: str(cost)}
    return p


def test_creates_missing_pods_from_the_template():
    acts = rsc.decide(Snapshot([rs(3), pod("keep")]), NOW)
    creates = [a.obj for a in acts if a.verb == "create"]
    assert len(creates) == 2
    for p in creates:
        name = p["metadata"]["name"]
        assert name.startswith("web-abc-") and len(name) == len("web-abc-") + 5
        assert set(name[len("web-abc-"):]) <= set(NAME_ALPHABET)
        assert p["metadata"]["labels"] == {"app": "web", "pod-template-hash": "abc"}
        assert p["metadata"]["annotations"] == {"a": "b"}
        assert p["metadata"]["ownerReferences"][0]["uid"] == "rs-uid"
        assert p["metadata"]["ownerReferences"][0]["controller"] is True
        assert p["spec"]["containers"][0]["image"] == "v1"
    assert len({p["metadata"]["name"] for p in creates}) == 2
    evs = [a.event for a in acts if a.verb == "event"]
    assert [e["reason"] for e in evs] == ["SuccessfulCreate"] * 2
    assert evs[0]["message"] == f"Created pod: {creates[0]['metadata']['name']}"
    # pure: the same snapshot gives the same decision
    again = [a.obj["metadata"]["name"] for a in rsc.decide(Snapshot([rs(3), pod("keep")]), NOW) if a.verb == "create"]
    assert again == [p["metadata"]["name"] for p in creates]


def test_deletion_ranking_follows_kubernetes():
    pods = [
        pod("old-ready-long", ready_for=10_000, age=20_000),
        pod("unassigned", node=None, phase="Pending", ready=False),
        pod("pending", phase="Pending", ready=False),
        pod("unknown", phase="Unknown", ready=False),
        pod("running-not-ready", ready=False),
        pod("ready-short", ready_for=3),
        pod("ready-long-restarts", ready_for=10_000, restarts=5, age=20_000),
        pod("cheap", ready_for=10_000, age=20_000, cost=-10),
    ]
    ranked = [p["metadata"]["name"] for p in rsc.rank_for_deletion(pods, pods, NOW)]
    assert ranked == ["unassigned", "pending", "unknown", "running-not-ready", "cheap", "ready-short",
                      "ready-long-restarts", "old-ready-long"]


def test_deletion_prefers_newer_pods_and_doubled_up_nodes():
    a = pod("a-old", node="n1", age=500)
    b = pod("b-new", node="n1", age=100)
    c = pod("c-alone", node="n2", age=50)
    ranked = [p["metadata"]["name"] for p in rsc.rank_for_deletion([a, b, c], [a, b, c], NOW)]
    assert ranked == ["b-new", "a-old", "c-alone"]
    # ready times in the same power-of-two bucket (of nanoseconds: 70 s and 100 s are both 2^36.x)
    # are a tie broken by uid, before restarts and age are looked at
    x = pod("x", ready_for=70, age=500)
    y = pod("y", ready_for=100, age=400, restarts=3)
    z = pod("z", ready_for=30, age=1000)  # 2^34.8: ready for less time
    assert [p["metadata"]["name"] for p in rsc.rank_for_deletion([y, x, z], [], NOW)] == ["z", "x", "y"]
    # equal ready times: the most restarts of one container first, then the newer
    a = pod("a", restarts=2, age=100)
    a["status"]["containerStatuses"].append({"name": "side", "restartCount": 2})
    b = pod("b", restarts=3, age=900)
    c = pod("c", restarts=0, age=50)
    d = pod("d", restarts=0, age=5000)
    assert [p["metadata"]["name"] for p in rsc.rank_for_deletion([d, c, a, b], [], NOW)] == ["b", "a", "c", "d"]


def test_surplus_pods_are_deleted_gracefully_in_rank_order():
    pods = [pod("p1"), pod("p2", ready=False), pod("p3", phase="Pending", ready=False)]
    pods[0]["spec"]["terminationGracePeriodSeconds"] = 7
    acts = rsc.decide(Snapshot([rs(1)] + pods), NOW)
    dels = [(a.obj["metadata"]["name"], a.grace_seconds) for a in acts if a.verb == "delete"]
    assert dels == [("p3", 30), ("p2", 30)]
    assert [a.event["message"] for a in acts if a.verb == "event"] == ["Deleted pod: p3", "Deleted pod: p2"]


def test_status_counts_and_min_ready_seconds():
    pods = [pod("a", ready_for=20), pod("b", ready_for=5), pod("c", ready=False),
            pod("d", labels={"app": "web"}), pod("gone", ready=True)]
    pods[4]["metadata"]["deletionTimestamp"] = fmt_time(NOW)
    st = rsc.calculate_status(rs(4, min_ready=10), [p for p in pods if "deletionTimestamp" not in p["metadata"]], NOW)
    assert st == {"replicas": 4, "fullyLabeledReplicas": 3, "readyReplicas": 3, "availableReplicas": 2,
                  "observedGeneration": 2}
    acts = rsc.decide(Snapshot([rs(4, min_ready=10)] + pods), NOW)
    assert [a.verb for a in acts] == ["update_status"]  # the terminating pod does not count: 4 active


def test_burst_and_slow_start():
    acts = rsc.decide(Snapshot([rs(1200)]), NOW)
    assert sum(a.verb == "create" for a in acts) == 500
    assert rsc.slow_start_batches(10) == [1, 2, 4, 3]
    assert rsc.slow_start_batches(0) == []


def test_applied_through_a_store_and_quiet_afterwards():
    store = MemoryStore(clock=lambda: NOW)
    store.create(rs(3))
    snap = Snapshot(store.list("ReplicaSet") + store.list("Pod"), store.revision())
    apply_actions(store, rsc.decide(snap, NOW), NOW)
    assert len(store.list("Pod")) == 3 and store.get("ReplicaSet", "default", "web-abc")["status"]["replicas"] == 0
    snap = Snapshot(store.list("ReplicaSet") + store.list("Pod"), store.revision())
    acts = rsc.decide(snap, NOW)
    assert [a.verb for a in acts] == ["update_status"]
    apply_actions(store, acts, NOW)
    snap = Snapshot(store.list("ReplicaSet") + store.list("Pod"), store.revision())
    assert rsc.decide(snap, NOW) == []



def test_doubled_up_counts_pods_of_sibling_replicasets():
    owner = [{"kind": "Deployment", "name": "web", "uid": "d-uid", "controller": True}]
    a, b = rs(1), rs(0)
    a["metadata"]["ownerReferences"] = owner
    b["metadata"].update(name="web-old", uid="old-uid", ownerReferences=owner)
    p1, p2 = pod("p1", node="n1", age=10), pod("p2", node="n2", age=500)
    sib = pod("sib", node="n2")
    sib["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "web-old", "uid": "old-uid",
                                           "controller": True}]
    # alone, the newer p1 would go first; with the sibling's pod on n2, p2 is doubled up and goes
    acts = rsc.decide(Snapshot([a, b, p1, p2, sib]), NOW)
    deleted = [x.obj["metadata"]["name"] for x in acts if x.verb == "delete"]
    assert "p2" in deleted and "p1" not in deleted  # (sib goes too: its ReplicaSet has 0 replicas)


def test_a_pod_whose_labels_no_longer_match_is_released_and_replaced():
    # (`kubectl label pod P app-` or a patch: the ReplicaSet lets it go, it runs on as an orphan, and another
    # is made in its place)
    acts = rsc.decide(Snapshot([rs(2), pod("keep"), pod("out", labels={"pod-template-hash": "abc"})]), NOW)
    updates = [a.obj for a in acts if a.verb == "update"]
    assert [p["metadata"]["name"] for p in updates] == ["out"]
    assert "ownerReferences" not in updates[0]["metadata"]
    assert len([a for a in acts if a.verb == "create"]) == 1
    status = next(a.obj for a in acts if a.verb == "update_status")["status"]
    assert status["replicas"] == 1   # the released pod no longer counts
    # a ReplicaSet being deleted claims nothing (its pods go with it)
    dying = rs(2)
    dying["metadata"]["deletionTimestamp"] = fmt_time(NOW)
    assert not [a for a in rsc.decide(Snapshot([dying, pod("out", labels={"x": "y"})]), NOW) if a.verb == "update"]
    # through a store: the orphan keeps its other owner references, and the next sync is quiet about it
    store = MemoryStore(clock=lambda: NOW)
    store.create(rs(1))
    other = {"kind": "Thing", "name": "t", "uid": "t-uid"}
    p = pod("out", labels={"pod-template-hash": "abc"})
    p["metadata"]["ownerReferences"].append(other)
    store.create(p)
    snap = Snapshot(store.list("ReplicaSet") + store.list("Pod"), store.revision())
    apply_actions(store, rsc.decide(snap, NOW), NOW)
    assert store.get("Pod", "default", "out")["metadata"]["ownerReferences"] == [other]
    assert len(store.list("Pod")) == 2


def orphan(name, labels=None, ns="default"):
    p = pod(name, labels=labels)
    del p["metadata"]["ownerReferences"]
    p["metadata"]["namespace"] = ns
    return p


def test_an_orphan_whose_labels_match_is_adopted_and_counts():
    acts = rsc.decide(Snapshot([rs(2), pod("keep"), orphan("stray", {"app": "web", "x": "y"})]), NOW)
    adopted = [a.obj for a in acts if a.verb == "update"]
    assert [p["metadata"]["name"] for p in adopted] == ["stray"]
    ref = adopted[0]["metadata"]["ownerReferences"]
    assert ref == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "rs-uid",
                    "controller": True, "blockOwnerDeletion": True}]
    assert not [a for a in acts if a.verb == "create"]   # two pods now: nothing to make
    # one too many once adopted: the surplus is deleted as any other (the newer, unready first)
    acts = rsc.decide(Snapshot([rs(1), pod("keep"), orphan("stray", {"app": "web"})]), NOW)
    assert [a.verb for a in acts if a.verb in ("update", "delete")] == ["update", "delete"]
    # not adopted: another namespace's, labels that do not match, ended pods, and by a ReplicaSet being deleted
    done = orphan("done", {"app": "web"})
    done["status"]["phase"] = "Succeeded"
    acts = rsc.decide(Snapshot([rs(1), pod("keep"), orphan("other", {"app": "web"}, ns="x"),
                                orphan("db", {"app": "db"}), done]), NOW)
    assert not [a for a in acts if a.verb == "update"]
    dying = rs(1)
    dying["metadata"]["deletionTimestamp"] = fmt_time(NOW)
    assert not [a for a in rsc.decide(Snapshot([dying, orphan("stray", {"app": "web"})]), NOW) if a.verb == "update"]


def test_two_replicasets_matching_an_orphan_adopt_it_once():
    other = rs(1)
    other["metadata"].update(name="web-zzz", uid="other-uid")
    acts = rsc.decide(Snapshot([rs(1), other, orphan("stray", {"app": "web"})]), NOW)
    adopted = [a.obj for a in acts if a.verb == "update"]
    assert len(adopted) == 1 and adopted[0]["metadata"]["ownerReferences"][0]["uid"] == "rs-uid"
    # the other makes its own pod
    assert len([a for a in acts if a.verb == "create"]) == 1
