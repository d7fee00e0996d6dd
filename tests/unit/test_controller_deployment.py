"""The Deployment controller: Kubernetes' rolling-update arithmetic (cases from Kubernetes' own
unit tests: rolling_test.go, deployment_util_test.go) and whole rollouts driven with a fake clock."""

import pytest

from .ctrl_sim import Sim, deployment, service
from netlab.controllers import deployutil as du
from netlab.controllers.base import Snapshot
from netlab.controllers.deployment import DeploymentSync
from netlab.controllers.validation import ControllerError
from netlab.controllers.verbs import rollout_status


def dep(replicas, surge=0, unavailable=0, strategy="RollingUpdate"):
    d = deployment(replicas=replicas, surge=surge, unavailable=unavailable, strategy=strategy)
    d["metadata"].update(uid="d-uid", generation=1)
    return d


def rs(name, replicas, available=None, created="2027-01-01T00:00:00Z", revision=None, template_image=None):
    r = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
         "metadata": {"name": name, "namespace": "default", "uid": name + "-uid", "creationTimestamp": created,
                      "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": "d-uid", "controller": True}],
                      "annotations": {}},
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "app", "image": template_image or name}]}}},
         "status": {"replicas": replicas, "availableReplicas": replicas if available is None else available}}
    if revision is not None:
        r["metadata"]["annotations"][du.REVISION] = str(revision)
    return r


@pytest.mark.parametrize("surge,unavail,desired,want", [
    ("0%", "0%", 0, (0, 1)),      # both resolve to 0: unavailable becomes 1
    ("39%", "39%", 10, (4, 3)),   # surge rounds up, unavailable rounds down
    (0, "1%", 2, (0, 1)),         # 1% of 2 rounds down to 0 -> 1
    ("25%", "25%", 1, (1, 0)),
    (3, 2, 10, (3, 2)),
])
def test_resolve_fenceposts(surge, unavail, desired, want):
    assert du.resolve_fenceposts(surge, unavail, desired) == want


@pytest.mark.parametrize("surge,unavail", [("oops", "39%"), ("55%", "urg")])
def test_resolve_fenceposts_rejects_non_percentages(surge, unavail):
    with pytest.raises(ValueError, match="not a percentage"):
        du.resolve_fenceposts(surge, unavail, 10)


@pytest.mark.parametrize("replicas,unavail,strategy,want", [
    (10, 5, "RollingUpdate", 5), (10, 10, "RollingUpdate", 10), (5, 10, "RollingUpdate", 5),
    (0, 10, "RollingUpdate", 0), (10, 5, "Recreate", 0), (10, "50%", "RollingUpdate", 5),
    (10, "100%", "RollingUpdate", 10), (5, "100%", "RollingUpdate", 5),
])
def test_max_unavailable(replicas, unavail, strategy, want):
    assert du.max_unavailable(dep(replicas, 0, unavail, strategy)) == want


@pytest.mark.parametrize("strategy,dep_replicas,new_replicas,surge,want", [
    ("RollingUpdate", 1, 5, 1, 5),    # can not scale up: stays at newRS replicas
    ("RollingUpdate", 6, 2, 10, 6),   # scale up to the Deployment's replicas
    ("Recreate", 3, 1, 1, 3),
])
def test_new_rs_new_replicas(strategy, dep_replicas, new_replicas, surge, want):
    d = dep(dep_replicas, surge, 1, strategy)
    if strategy == "Recreate":
        d["spec"]["strategy"] = {"type": "Recreate"}
    assert du.new_rs_new_replicas(d, [rs("rs5", 5)], rs("new", new_replicas)) == want


def _sync(d, rss):
    snap = Snapshot([d] + rss)
    s = DeploymentSync(snap, d, 1_800_000_000)
    by_name = {r["metadata"]["name"]: r for r in s.rss}
    return s, [by_name[x["metadata"]["name"]] for x in rss]


@pytest.mark.parametrize("dep_replicas,surge,old,new,scaled,want", [
    (10, 0, 10, 0, False, None), (10, 2, 10, 0, True, 2), (10, 2, 5, 0, True, 7),
    (10, 2, 10, 2, False, None), (10, 2, 2, 11, True, 10),
])
def test_reconcile_new_replicaset(dep_replicas, surge, old, new, scaled, want):
    d = dep(dep_replicas, surge, 0)
    s, (new_rs, old_rs) = _sync(d, [rs("foo-v2", new), rs("foo-v1", old)])
    assert s.reconcile_new([new_rs, old_rs], new_rs) is scaled
    if scaled:
        assert new_rs["spec"]["replicas"] == want


@pytest.mark.parametrize("dep_replicas,unavail,old,new,ready_old,ready_new,scaled,want_old", [
    (10, 0, 10, 0, 10, 0, True, 9),
    (10, 2, 10, 0, 10, 0, True, 8),
    (10, 2, 10, 0, 8, 0, True, 8),    # unhealthy old replicas are cleaned up
    (10, 2, 10, 0, 9, 0, True, 8),    # one unhealthy cleaned up, one ready scaled down
    (10, 2, 8, 2, 8, 0, False, 8),    # the new RS's unavailable pods block scaling down further
])
def test_reconcile_old_replicasets(dep_replicas, unavail, old, new, ready_old, ready_new, scaled, want_old):
    d = dep(dep_replicas, 0, unavail)
    s, (old_rs, new_rs) = _sync(d, [rs("foo-old", old, ready_old, "2027-01-01T00:00:00Z"),
                                    rs("foo-new", new, ready_new, "2027-01-02T00:00:00Z")])
    assert s.reconcile_old([old_rs, new_rs], [old_rs], new_rs) is scaled
    assert old_rs["spec"]["replicas"] == want_old


@pytest.mark.parametrize("ready,unhealthy,max_cleanup,want", [(8, 2, 1, 1), (8, 2, 3, 2), (8, 2, 0, 0), (10, 0, 3, 0)])
def test_cleanup_unhealthy_replicas(ready, unhealthy, max_cleanup, want):
    d = dep(10, 2, 2)
    s, (old_rs,) = _sync(d, [rs("foo-v2", ready + unhealthy, ready)])
    assert s.cleanup_unhealthy([old_rs], max_cleanup) == want
    assert old_rs["spec"]["replicas"] == ready + unhealthy - want


@pytest.mark.parametrize("unavail,ready,old,want", [(0, 10, 10, 9), (2, 10, 10, 8), (2, 8, 10, None), (2, 10, 0, None),
                                                    (2, 1, 10, None)])
def test_scale_down_old_for_rolling_update(unavail, ready, old, want):
    d = dep(10, 0, unavail)
    s, (old_rs,) = _sync(d, [rs("foo-v2", old, ready)])
    n = s.scale_down_old_for_rolling([old_rs], [old_rs])
    assert (n > 0) is (want is not None)
    if want is not None:
        assert old_rs["spec"]["replicas"] == want


@pytest.mark.parametrize("desired,current,updated,available,mu,ms,want", [
    (5, 5, 5, 4, 1, 0, False), (5, 5, 5, 3, 1, 0, False), (5, 5, 5, 5, 0, 0, True),
    (5, 5, 4, 5, 0, 0, False), (1, 2, 1, 1, 0, 1, False), (1, 1, 1, 0, 1, 1, False),
])
def test_deployment_complete(desired, current, updated, available, mu, ms, want):
    d = dep(desired, ms, mu)
    status = {"replicas": current, "updatedReplicas": updated, "availableReplicas": available, "observedGeneration": 1}
    assert du.deployment_complete(d, status) is want


@pytest.mark.parametrize("old,new,want", [
    ((10, 4, 4, 4), (10, 6, 4, 4), True), ((10, 4, 4, 4), (10, 4, 4, 4), False),
    ((10, 4, 6, 6), (8, 4, 6, 6), True), ((10, 7, 3, 3), (10, 6, 3, 3), False),
    ((10, 4, 7, 7), (8, 8, 5, 5), True), ((10, 10, 9, 8), (10, 10, 10, 8), True),
    ((10, 10, 10, 9), (10, 10, 10, 10), True),
])
def test_deployment_progressing(old, new, want):
    f = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")
    d = {"status": dict(zip(f, old))}
    assert du.deployment_progressing(d, dict(zip(f, new))) is want


def test_hash_is_deterministic_and_shaped_like_kubernetes():
    t = deployment()["spec"]["template"]
    h = du.compute_hash(t)
    assert h == du.compute_hash(t) and 8 <= len(h) <= 10 and set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert du.compute_hash(t, 1) != h
    t2 = deployment(image="v2")["spec"]["template"]
    assert du.compute_hash(t2) != h


# ---------------------------------------------------------------- simulated rollouts


def test_rolling_update_on_the_sqlite_store(tmp_path):
    sim = Sim(store_dir=str(tmp_path))
    sim.store.create(deployment(replicas=3, surge=1, unavailable=0))
    sim.store.create(service())
    for _ in range(4):
        sim.tick(1)
    sim.set_template("web", "v2")
    for _ in range(20):
        sim.tick(0.5)
        assert len(sim.ready_endpoints()) >= 3 and len(sim.pods()) <= 4
    assert sorted(sim.image_of(p) for p in sim.pods()) == ["v2"] * 3
    # a second process's view: reopen the file and find the same world at the same revision
    from netlab.store import SQLiteStore
    other = SQLiteStore(str(tmp_path))
    assert other.revision() == sim.store.revision()
    assert sorted(p["metadata"]["name"] for p in other.list("Pod")) == sorted(
        p["metadata"]["name"] for p in sim.store.list("Pod"))
    other.close()


def rollout_sim(**kw):
    sim = Sim(**kw)
    sim.store.create(deployment(replicas=6, surge=1, unavailable=0))
    sim.store.create(service())
    for _ in range(4):
        sim.tick(1)
    return sim


def check_invariants(sim):
    active = sim.pods()
    ready = [p for p in active if any(c["type"] == "Ready" and c["status"] == "True"
                                      for c in p["status"].get("conditions", []))]
    assert len(ready) >= 6, f"only {len(ready)} ready pods"
    assert len(active) <= 7, f"{len(active)} pods"
    assert len(sim.ready_endpoints()) >= 6


def ready_images(sim):
    eps = sim.ready_endpoints()
    by_name = {p["metadata"]["name"]: p for p in sim.store.list("Pod")}
    return sorted(sim.image_of(by_name[e["targetRef"]["name"]]) for e in eps)


def test_rolling_update_keeps_ready_pods_and_switches_to_v2():
    sim = rollout_sim()
    assert ready_images(sim) == ["v1"] * 6
    sim.set_template("web", "v2")
    seen = set()
    for _ in range(40):
        sim.tick(0.5)
        check_invariants(sim)
        seen.update(ready_images(sim))
    assert ready_images(sim) == ["v2"] * 6 and seen == {"v1", "v2"}
    d = sim.get("Deployment", "web")
    assert rollout_status(d) == ('deployment "web" successfully rolled out', True)
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (6, 6, 6, 6)
    assert st["observedGeneration"] == d["metadata"]["generation"] == 2
    prog = du.get_cond(st, "Progressing")
    assert prog["reason"] == "NewReplicaSetAvailable" and prog["status"] == "True"
    assert du.get_cond(st, "Available")["status"] == "True"
    assert d["metadata"]["annotations"][du.REVISION] == "2"
    old, new = sorted(sim.rss(), key=du.revision)
    assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == 6
    msgs = [e["message"] for e in sim.events("ScalingReplicaSet")]
    assert msgs[1] == f"Scaled up replica set {new['metadata']['name']} from 0 to 1"
    assert f"Scaled down replica set {old['metadata']['name']} from 6 to 5" in msgs
    # past 9 different messages about the Deployment, its recorder combines them into one event whose count
    # grows and whose message is the last one's (client-go's EventCorrelator, as `kubectl describe` shows it)
    from netlab.store.events import COMBINED
    plain = [m for m in msgs if not m.startswith(COMBINED)]
    assert len(plain) == 9 and msgs[:9] == plain and len(msgs) == 10
    assert msgs[-1] == f"{COMBINED}Scaled down replica set {old['metadata']['name']} from 1 to 0"
    assert sim.events("ScalingReplicaSet")[-1]["count"] == 4   # 13 scaling steps: 9 on their own, 4 combined


def test_rollback_restores_v1_with_the_same_guarantee():
    from netlab.controllers.verbs import rollout_undo
    sim = rollout_sim()
    sim.set_template("web", "v2")
    for _ in range(40):
        sim.tick(0.5)
    d, msg = rollout_undo(sim.get("Deployment", "web"), sim.rss())
    assert msg == "deployment.apps/web rolled back"
    sim.store.update(d)
    for _ in range(40):
        sim.tick(0.5)
        check_invariants(sim)
    assert ready_images(sim) == ["v1"] * 6
    assert len(sim.rss()) == 2  # the v1 ReplicaSet was reused, not recreated
    v1 = next(r for r in sim.rss() if r["spec"]["template"]["spec"]["containers"][0]["image"] == "v1")
    assert v1["metadata"]["annotations"][du.REVISION] == "3"
    assert v1["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
    assert sim.get("Deployment", "web")["metadata"]["annotations"][du.REVISION] == "3"


def test_recreate_scales_old_to_zero_waits_for_pods_then_scales_up():
    sim = Sim()
    d = deployment(replicas=3, strategy="Recreate")
    d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 5
    sim.store.create(d)
    for _ in range(4):
        sim.tick(1)
    d = sim.get("Deployment", "web")
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "v2"
    sim.store.update(d)
    sim.tick(0.1)
    images = {sim.image_of(p) for p in sim.store.list("Pod")}
    assert images == {"v1"}  # old pods terminating, no new pod yet
    assert all(p["metadata"].get("deletionTimestamp") for p in sim.store.list("Pod"))
    new = [r for r in sim.rss() if r["spec"]["template"]["spec"]["containers"][0]["image"] == "v2"]
    assert new == []  # the new ReplicaSet is created only once old pods are gone
    for _ in range(3):
        sim.tick(1)
        assert not ({sim.image_of(p) for p in sim.store.list("Pod")} >= {"v1", "v2"})
    for _ in range(10):
        sim.tick(1)
    assert {sim.image_of(p) for p in sim.pods()} == {"v2"} and len(sim.pods()) == 3


def test_paused_deployment_does_not_roll_out_but_scales():
    sim = rollout_sim()
    d = sim.get("Deployment", "web")
    d["spec"]["paused"] = True
    sim.store.update(d)
    sim.tick(1)
    assert du.get_cond(sim.get("Deployment", "web")["status"], "Progressing")["reason"] == "DeploymentPaused"
    sim.set_template("web", "v2")
    for _ in range(5):
        sim.tick(1)
    assert {sim.image_of(p) for p in sim.pods()} == {"v1"} and len(sim.rss()) == 1
    d = sim.get("Deployment", "web")
    d["spec"]["replicas"] = 8
    sim.store.update(d)
    for _ in range(4):
        sim.tick(1)
    assert len(sim.pods()) == 8 and {sim.image_of(p) for p in sim.pods()} == {"v1"}
    d = sim.get("Deployment", "web")
    d["spec"]["paused"] = False
    sim.store.update(d)
    for _ in range(40):
        sim.tick(1)
    assert {sim.image_of(p) for p in sim.pods()} == {"v2"} and len(sim.pods()) == 8


def test_progress_deadline_exceeded():
    sim = rollout_sim()
    d = sim.get("Deployment", "web")
    d["spec"]["progressDeadlineSeconds"] = 10
    d["spec"]["template"]["metadata"]["annotations"] = {"sim.netlab.io/never-ready": "true"}
    sim.store.update(d)
    for _ in range(9):
        sim.tick(1)
    cond = du.get_cond(sim.get("Deployment", "web")["status"], "Progressing")
    assert cond["status"] == "True" and cond["reason"] == "ReplicaSetUpdated"
    for _ in range(4):
        sim.tick(1)
    st = sim.get("Deployment", "web")["status"]
    cond = du.get_cond(st, "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert cond["message"].endswith("has timed out progressing.")
    with pytest.raises(ControllerError, match="exceeded its progress deadline"):
        rollout_status(sim.get("Deployment", "web"))
    assert st["availableReplicas"] == 6 and du.get_cond(st, "Available")["status"] == "True"
    assert len(sim.pods()) == 7  # one surge pod that never got ready; old ones stay


def test_scale_during_rollout_is_proportional():
    sim = Sim()
    sim.store.create(deployment(replicas=10, surge=3, unavailable=2))
    for _ in range(4):
        sim.tick(1)
    d = sim.get("Deployment", "web")
    d["spec"]["template"]["metadata"]["annotations"] = {"sim.netlab.io/never-ready": "true"}
    sim.store.update(d)
    sim.tick(1)
    sizes = sorted((du.revision(r), r["spec"]["replicas"]) for r in sim.rss())
    assert sizes == [(1, 8), (2, 5)]  # surge 3 + unavailable 2: old 10 -> 8, new 0 -> 5 (13 in all)
    d = sim.get("Deployment", "web")
    d["spec"]["replicas"] = 20
    sim.store.update(d)
    sim.tick(1)
    sizes = sorted((du.revision(r), r["spec"]["replicas"]) for r in sim.rss())
    # 20 + 3 surge = 23 allowed: the 10 added are shared in proportion to the sizes against the
    # max-replicas annotation 13 (round(8*23/13)-8 = 6, round(5*23/13)-5 = 4): the rollout neither
    # advances nor goes back
    assert sizes == [(1, 14), (2, 9)]
    ev = [e["message"] for e in sim.events("ScalingReplicaSet")][-2:]
    assert all(m.startswith("Scaled up replica set") for m in ev)


def test_revision_history_limit_deletes_old_empty_replicasets():
    sim = Sim()
    sim.store.create(deployment(replicas=2, surge=1, unavailable=0, revisionHistoryLimit=1))
    for _ in range(3):
        sim.tick(1)
    for image in ("v2", "v3", "v4"):
        sim.set_template("web", image)
        for _ in range(15):
            sim.tick(1)
    revs = sorted(du.revision(r) for r in sim.rss())
    assert revs == [3, 4]


def test_deleting_a_deployment_removes_its_replicasets_and_pods():
    sim = rollout_sim()
    sim.store.delete("Deployment", "default", "web")
    for _ in range(40):
        sim.tick(1)
    assert sim.rss() == [] and sim.store.list("Pod") == []
    assert all(s["endpoints"] == [] for s in sim.store.list("EndpointSlice")) or not sim.store.list("EndpointSlice")


class Killed(BaseException):
    """Stands for SIGKILL in the middle of a controller's transaction."""


def test_control_loop_killed_mid_sync_resumes_without_duplicating_or_losing_pods(tmp_path):
    # The store's write primitive dies at the n-th write of a run: the open transaction is rolled
    # back (as SQLite does for a killed process) and a fresh runner resumes from the store.
    import random
    from netlab.controllers.runner import Runner, default_controllers
    sim = Sim(store_dir=str(tmp_path))
    sim.store.create(deployment(replicas=6, surge=1, unavailable=0))
    sim.store.create(service())
    for _ in range(4):
        sim.tick(1)
    sim.set_template("web", "v2")
    rng = random.Random(7)
    real_put, real_insert, real_all, kills = sim.store._put, sim.store._insert, sim.store._put_all, 0
    for _ in range(60):
        budget = [rng.randint(1, 30)]

        def dying(real, budget=budget):
            def write(*a):
                before = budget[0]
                budget[0] -= len(a[0]) if isinstance(a[0], list) else 1   # _put_all: a write per row
                if before > 0 >= budget[0]:
                    raise Killed()
                return real(*a)
            return write

        # (creates: _insert; the events of a sync, together: _put_all)
        sim.store._put, sim.store._insert, sim.store._put_all = dying(real_put), dying(real_insert), dying(real_all)
        try:
            sim.tick(0.5)
        except Killed:
            kills += 1
            assert not sim.store._db.in_transaction
            sim.runner = Runner(sim.store, default_controllers())  # the restarted control loop
        sim.store._put, sim.store._insert, sim.store._put_all = real_put, real_insert, real_all
        check_invariants(sim)  # at most 7 pods, at least 6 ready pods and endpoints, kill or not
        uids = {r["metadata"]["uid"] for r in sim.rss()}
        assert all(p["metadata"]["ownerReferences"][0]["uid"] in uids for p in sim.store.list("Pod"))
    for _ in range(20):
        sim.tick(0.5)
    assert kills > 10
    assert sorted(sim.image_of(p) for p in sim.pods()) == ["v2"] * 6
    assert len(sim.ready_endpoints()) == 6


def test_empty_selector_is_reported_once_and_nothing_is_created():
    sim = Sim()
    d = deployment(replicas=2)
    d["spec"]["selector"] = {}
    sim.store.create(d)
    sim.tick(1)
    sim.tick(1)
    assert sim.rss() == [] and sim.pods() == []
    [e] = sim.events("SelectingAll")
    assert e["type"] == "Warning" and e["count"] == 1


@pytest.mark.parametrize("replicas,surge,unavailable", [
    (6, 1, 0), (10, "25%", "25%"), (5, 0, 1), (4, "50%", "50%"), (3, "1%", 0), (7, 2, "30%"),
])
def test_rollout_bounds_for_several_strategies_including_a_rollover(replicas, surge, unavailable):
    # Kubernetes' promise: never more than replicas + maxSurge pods, never fewer than
    # replicas - maxUnavailable available ones, also when a second update lands mid-rollout.
    sim = Sim()
    sim.store.create(deployment(replicas=replicas, surge=surge, unavailable=unavailable))
    sim.store.create(service())
    for _ in range(4):
        sim.tick(1)
    d = sim.get("Deployment", "web")
    max_total = replicas + du.max_surge(d)
    min_ready = replicas - du.max_unavailable(d)

    def check():
        active = sim.pods()
        ready = [p for p in active if any(c["type"] == "Ready" and c["status"] == "True"
                                          for c in p["status"].get("conditions", []))]
        assert len(active) <= max_total and len(ready) >= min_ready
        assert sum(r["spec"]["replicas"] for r in sim.rss()) <= max_total

    sim.set_template("web", "v2")
    for _ in range(3):
        sim.tick(0.5)
        check()
    sim.set_template("web", "v3")  # rollover: v2 is now an old ReplicaSet too
    for _ in range(60):
        sim.tick(0.5)
        check()
    assert sorted(sim.image_of(p) for p in sim.pods()) == ["v3"] * replicas
    assert rollout_status(sim.get("Deployment", "web"))[1] is True
    assert sorted(du.revision(r) for r in sim.rss()) == [1, 2, 3]
    assert [r["spec"]["replicas"] for r in sorted(sim.rss(), key=du.revision)] == [0, 0, replicas]


def test_scale_to_zero_and_back():
    sim = rollout_sim()
    d = sim.get("Deployment", "web")
    d["spec"]["replicas"] = 0
    sim.store.update(d)
    for _ in range(35):
        sim.tick(1)
    assert sim.store.list("Pod") == [] and sim.get("Deployment", "web")["status"]["replicas"] == 0
    d = sim.get("Deployment", "web")
    d["spec"]["replicas"] = 2
    sim.store.update(d)
    for _ in range(4):
        sim.tick(1)
    assert len(sim.pods()) == 2 and len(sim.rss()) == 1
    msgs = [e["message"] for e in sim.events("ScalingReplicaSet")]
    assert msgs[-2].endswith("from 6 to 0") and msgs[-1].endswith("from 0 to 2")


def test_rollout_restart_replaces_every_pod_and_change_cause_reaches_history():
    from netlab.controllers.verbs import history_lines, rollout_restart
    sim = rollout_sim()
    before = {p["metadata"]["name"] for p in sim.pods()}
    d, msg = rollout_restart(sim.get("Deployment", "web"), sim.now)
    d["metadata"].setdefault("annotations", {})["kubernetes.io/change-cause"] = "kubectl rollout restart deploy/web"
    sim.store.update(d)
    for _ in range(40):
        sim.tick(0.5)
        check_invariants(sim)
    after = {p["metadata"]["name"] for p in sim.pods()}
    assert len(after) == 6 and not (before & after)
    assert rollout_status(sim.get("Deployment", "web"))[1]
    lines = history_lines(sim.get("Deployment", "web"), sim.rss())
    assert lines[1:] == ["REVISION  CHANGE-CAUSE", "1         <none>", "2         kubectl rollout restart deploy/web"]
