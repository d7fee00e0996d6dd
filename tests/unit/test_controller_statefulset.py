"""The StatefulSet controller with a fake clock: ordered creation (OrderedReady) and Parallel, scale
down from the highest ordinal, the rolling update in reverse ordinal order honouring the partition,
OnDelete, a deleted pod made again with the same name, the pods' identity and the set's status, and
the EndpointSlice's hostname for the governing Service."""

from netlab.controllers import statefulset as ssc
from netlab.controllers.base import Snapshot

from .ctrl_sim import Sim, service


def sts(name="web", replicas=3, image="v1", policy="OrderedReady", strategy=None, **spec):
    s = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": "default"},
         "spec": {"serviceName": name, "replicas": replicas, "podManagementPolicy": policy,
                  "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"containers": [{"name": "app", "image": image,
                                                        "ports": [{"name": "http", "containerPort": 8080}]}]}}}}
    if strategy is not None:
        s["spec"]["updateStrategy"] = strategy
    s["spec"].update(spec)
    return s


def names(sim):
    return sorted(p["metadata"]["name"] for p in sim.pods())


def created_order(sim):
    return [e["message"].split()[2] for e in sim.events("SuccessfulCreate") if "StatefulSet" in e["message"]]


def deleted_order(sim):
    return [e["message"].split()[2] for e in sim.events("SuccessfulDelete") if "StatefulSet" in e["message"]]


def run(sim, seconds):
    for _ in range(seconds):
        sim.tick(1)


def image(sim, name):
    return sim.get("Pod", name)["spec"]["containers"][0]["image"]


def set_image(sim, img, name="web"):
    s = sim.get("StatefulSet", name)
    s["spec"]["template"]["spec"]["containers"][0]["image"] = img
    sim.store.update(s)


def test_ordered_ready_makes_each_pod_only_after_the_lower_ones_are_ready():
    sim = Sim(start=2, ready=2)
    sim.store.create(sts())
    sim.settle()
    assert names(sim) == ["web-0"]           # web-1 waits for web-0 to be Running and Ready
    run(sim, 3)
    assert names(sim) == ["web-0"]
    run(sim, 2)
    assert names(sim) == ["web-0", "web-1"]
    run(sim, 20)
    assert names(sim) == ["web-0", "web-1", "web-2"]
    assert created_order(sim) == ["web-0", "web-1", "web-2"]
    st = sim.get("StatefulSet", "web")["status"]
    assert st["replicas"] == st["readyReplicas"] == st["availableReplicas"] == 3
    assert st["currentReplicas"] == st["updatedReplicas"] == 3
    assert st["currentRevision"] == st["updateRevision"] == ssc.revision_name(sim.get("StatefulSet", "web"))
    assert st["observedGeneration"] == 1


def test_pods_carry_the_identity_kubernetes_gives_them():
    sim = Sim()
    sim.store.create(sts(replicas=2))
    run(sim, 10)
    s = sim.get("StatefulSet", "web")
    p = sim.get("Pod", "web-1")
    assert p["metadata"]["labels"] == {"app": "web", "statefulset.kubernetes.io/pod-name": "web-1",
                                       "apps.kubernetes.io/pod-index": "1",
                                       "controller-revision-hash": s["status"]["updateRevision"]}
    ref = p["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("StatefulSet", "web", s["metadata"]["uid"], True)
    assert p["spec"]["hostname"] == "web-1" and p["spec"]["subdomain"] == "web"
    revs = sim.store.list("ControllerRevision")
    assert [r["metadata"]["name"] for r in revs] == [s["status"]["updateRevision"]]
    assert revs[0]["revision"] == 1 and revs[0]["data"]["spec"]["template"] == s["spec"]["template"]


def test_ordinals_start_shifts_the_names():
    sim = Sim()
    sim.store.create(sts(replicas=2, ordinals={"start": 5}))
    run(sim, 10)
    assert names(sim) == ["web-5", "web-6"]


def test_parallel_makes_every_pod_at_once():
    sim = Sim(start=5, ready=5)
    sim.store.create(sts(policy="Parallel"))
    sim.settle()
    assert names(sim) == ["web-0", "web-1", "web-2"]


def test_scale_down_removes_the_highest_ordinal_first_one_at_a_time():
    sim = Sim()
    sim.store.create(sts(replicas=4))
    run(sim, 15)
    assert names(sim) == ["web-0", "web-1", "web-2", "web-3"]
    s = sim.get("StatefulSet", "web")
    s["spec"]["replicas"] = 1
    sim.store.update(s)
    sim.settle()
    # web-3 is terminating (30 s grace): web-2 is not touched until web-3 is gone
    assert names(sim) == ["web-0", "web-1", "web-2"]
    assert [p["metadata"]["name"] for p in sim.pods(active_only=False)] == ["web-0", "web-1", "web-2", "web-3"]
    run(sim, 100)
    assert names(sim) == ["web-0"]
    assert deleted_order(sim) == ["web-3", "web-2", "web-1"]


def test_parallel_scale_down_deletes_all_at_once():
    sim = Sim()
    sim.store.create(sts(replicas=3, policy="Parallel"))
    run(sim, 10)
    s = sim.get("StatefulSet", "web")
    s["spec"]["replicas"] = 0
    sim.store.update(s)
    sim.settle()
    assert names(sim) == []
    assert deleted_order(sim) == ["web-2", "web-1", "web-0"]


def test_rolling_update_goes_in_reverse_ordinal_order_one_pod_at_a_time():
    sim = Sim()
    sim.store.create(sts(replicas=3))
    run(sim, 10)
    old = sim.get("StatefulSet", "web")["status"]["currentRevision"]
    set_image(sim, "v2")
    seen = []
    for _ in range(200):
        sim.tick(1)
        images = {n: image(sim, n) for n in names(sim)}
        if not seen or seen[-1] != images:
            seen.append(images)
        if all(i == "v2" for i in images.values()) and len(images) == 3:
            break
    updated_when = {}
    for i, snap in enumerate(seen):
        for n, img in snap.items():
            if img == "v2":
                updated_when.setdefault(n, i)
    assert updated_when["web-2"] < updated_when["web-1"] < updated_when["web-0"]
    assert deleted_order(sim) == ["web-2", "web-1", "web-0"]
    # never more than one pod missing or unready at a time
    assert all(len(s) >= 2 for s in seen)
    run(sim, 5)
    st = sim.get("StatefulSet", "web")["status"]
    assert st["currentRevision"] == st["updateRevision"] != old
    assert st["updatedReplicas"] == st["currentReplicas"] == 3
    assert len(sim.store.list("ControllerRevision")) == 2


def test_rolling_update_honours_the_partition():
    sim = Sim()
    sim.store.create(sts(replicas=4, strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}))
    run(sim, 15)
    set_image(sim, "v2")
    run(sim, 120)
    assert {n: image(sim, n) for n in names(sim)} == {"web-0": "v1", "web-1": "v1", "web-2": "v2", "web-3": "v2"}
    st = sim.get("StatefulSet", "web")["status"]
    assert st["updatedReplicas"] == 2 and st["currentReplicas"] == 2
    assert st["currentRevision"] != st["updateRevision"]
    # a pod below the partition that is deleted comes back at the current (old) revision
    sim.store.delete("Pod", "default", "web-0", grace_seconds=0)
    run(sim, 10)
    assert image(sim, "web-0") == "v1"
    # partition 0: the rest is updated, then the set's current revision is the new one
    s = sim.get("StatefulSet", "web")
    s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 0
    sim.store.update(s)
    run(sim, 120)
    assert {image(sim, n) for n in names(sim)} == {"v2"}
    st = sim.get("StatefulSet", "web")["status"]
    assert st["currentRevision"] == st["updateRevision"]


def test_on_delete_updates_a_pod_only_when_the_user_deletes_it():
    sim = Sim()
    sim.store.create(sts(replicas=3, strategy={"type": "OnDelete"}))
    run(sim, 10)
    set_image(sim, "v2")
    run(sim, 60)
    assert {image(sim, n) for n in names(sim)} == {"v1"}
    assert deleted_order(sim) == []
    sim.store.delete("Pod", "default", "web-1", grace_seconds=0)
    run(sim, 10)
    assert {n: image(sim, n) for n in names(sim)} == {"web-0": "v1", "web-1": "v2", "web-2": "v1"}
    assert sim.get("StatefulSet", "web")["status"]["updatedReplicas"] == 1


def test_a_deleted_pod_is_made_again_with_the_same_name():
    sim = Sim()
    sim.store.create(sts(replicas=3))
    run(sim, 10)
    uid = sim.get("Pod", "web-1")["metadata"]["uid"]
    sim.store.delete("Pod", "default", "web-1", grace_seconds=5)
    sim.settle()
    assert sim.get("Pod", "web-1")["metadata"].get("deletionTimestamp")   # not replaced while it terminates
    run(sim, 15)
    again = sim.get("Pod", "web-1")
    assert again["metadata"]["uid"] != uid and not again["metadata"].get("deletionTimestamp")
    assert names(sim) == ["web-0", "web-1", "web-2"]
    made = [e for e in sim.events("SuccessfulCreate") if "web-1 in StatefulSet" in e["message"]]
    assert [e.get("count", 1) for e in made] == [2]


def test_a_failed_pod_is_replaced():
    sim = Sim()
    sim.store.create(sts(replicas=1))
    run(sim, 5)
    p = sim.get("Pod", "web-0")
    p["status"] = dict(p["status"], phase="Failed")
    sim.store.update_status(p)
    run(sim, 40)
    assert sim.get("Pod", "web-0")["status"]["phase"] == "Running"
    assert deleted_order(sim) == ["web-0"]


def test_deleting_the_set_deletes_its_pods_and_revisions():
    sim = Sim()
    sim.store.create(sts(replicas=2))
    run(sim, 10)
    sim.store.delete("StatefulSet", "default", "web")
    run(sim, 40)
    assert sim.pods(active_only=False) == [] and sim.store.list("ControllerRevision") == []


def test_the_governing_service_names_each_pod_in_its_endpointslice():
    sim = Sim()
    sim.store.create(sts(replicas=2))
    sim.store.create(service("web"))
    sim.store.create(service("other", selector={"app": "web"}))
    run(sim, 10)
    eps = sorted(sim.ready_endpoints("web"), key=lambda e: e["targetRef"]["name"])
    assert [e.get("hostname") for e in eps] == ["web-0", "web-1"]
    assert [e["addresses"][0] for e in eps] == [sim.get("Pod", n)["status"]["podIP"] for n in ("web-0", "web-1")]
    # another Service selecting the same pods does not name them (their subdomain is not it)
    assert [e.get("hostname") for e in sim.ready_endpoints("other")] == [None, None]


def test_decide_is_pure():
    s = dict(sts(), metadata={"name": "web", "namespace": "default", "uid": "u1", "generation": 1})
    a = [x.describe() for x in ssc.decide(Snapshot([s]), 0.0)]
    b = [x.describe() for x in ssc.decide(Snapshot([s]), 0.0)]
    assert a == b and "create Pod default/web-0" in a and "create Pod default/web-1" not in a
