"""Node lifecycle with a fake clock: NotReady after the grace period, taints, eviction after the
toleration seconds, replacement pods elsewhere, recovery; cordon; admission of default tolerations."""

from netlab.controllers.base import Snapshot
from netlab.controllers.nodelifecycle import NodeLifecycle, cordon, default_tolerations, min_toleration_seconds
from netlab.store.meta import get_condition

from .ctrl_sim import Sim, deployment, service


def node_taints(sim, name):
    return {(t["key"], t["effect"]) for t in sim.get("Node", name, None).get("spec", {}).get("taints", [])}


def test_node_failure_timeline():
    sim = Sim(nodes=("n1", "n2", "n3"), node_grace=10, toleration=20)
    sim.kubelet.heartbeat = 2  # lease renewals well inside the grace period
    sim.store.create(deployment(replicas=3))
    sim.store.create(service())
    for _ in range(3):
        sim.tick(1)
    on_n1 = [p["metadata"]["name"] for p in sim.pods() if p["spec"]["nodeName"] == "n1"]
    assert len(on_n1) == 1
    assert {t["key"] for t in sim.pods()[0]["spec"]["tolerations"]} == {"node.kubernetes.io/not-ready",
                                                                         "node.kubernetes.io/unreachable"}
    sim.kubelet.down.add("n1")
    t_down = sim.now
    while sim.now < t_down + 7:
        sim.tick(1)
    assert get_condition(sim.get("Node", "n1", None), "Ready")["status"] == "True"
    # the last renewal was at most 2 s before the stop: NotReady 10 s (the grace) after it
    while get_condition(sim.get("Node", "n1", None), "Ready")["status"] == "True":
        sim.tick(1)
        assert sim.now <= t_down + 11
    ready = get_condition(sim.get("Node", "n1", None), "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert node_taints(sim, "n1") == {("node.kubernetes.io/unreachable", "NoExecute"),
                                      ("node.kubernetes.io/unreachable", "NoSchedule")}
    assert [e["message"] for e in sim.events("NodeNotReady") if e["involvedObject"]["kind"] == "Node"] == [
        "Node n1 status is now: NodeNotReady"]
    # the pod on n1 is marked not ready at once and leaves the ready endpoints
    p = sim.get("Pod", on_n1[0])
    assert get_condition(p, "Ready")["status"] == "False"
    assert on_n1[0] not in {e["targetRef"]["name"] for e in sim.ready_endpoints()}
    t_taint = sim.now
    while sim.now < t_taint + 19:
        sim.tick(1)
        assert not sim.get("Pod", on_n1[0])["metadata"].get("deletionTimestamp")
    sim.tick(1)
    sim.tick(1)
    p = sim.get("Pod", on_n1[0])
    assert p["metadata"].get("deletionTimestamp")  # evicted; stays Terminating while n1 is unreachable
    assert [e["message"] for e in sim.events("TaintManagerEviction")] == [f"Marking for deletion Pod default/{on_n1[0]}"]
    sim.tick(2)
    active = sim.pods()
    assert len(active) == 3 and all(p["spec"]["nodeName"] != "n1" for p in active)
    assert len(sim.ready_endpoints()) == 3
    assert on_n1[0] not in {e["targetRef"]["name"] for e in sim.ready_endpoints()}
    # node start: Ready again, taints gone, the old pod finishes terminating
    sim.kubelet.down.discard("n1")
    sim.tick(1)
    assert get_condition(sim.get("Node", "n1", None), "Ready")["status"] == "True"
    assert node_taints(sim, "n1") == set()
    assert [e["message"] for e in sim.events("NodeReady")] == ["Node n1 status is now: NodeReady"]
    sim.tick(40)
    assert sim.store.try_get("Pod", "default", on_n1[0]) is None


def test_pods_that_tolerate_forever_are_not_evicted_and_untolerated_at_once():
    taints = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    forever = {"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]}}
    assert min_toleration_seconds(forever, taints) is None
    assert min_toleration_seconds({"spec": {}}, taints) == 0
    two = {"spec": {"tolerations": [{"operator": "Exists", "tolerationSeconds": 50},
                                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                     "tolerationSeconds": 20}]}}
    assert min_toleration_seconds(two, taints) == 20


def test_cordon_adds_unschedulable_taint_and_uncordon_removes_it():
    sim = Sim(nodes=("n1", "n2"))
    sim.store.update(cordon(sim.get("Node", "n1", None)))
    sim.tick(1)
    assert node_taints(sim, "n1") == {("node.kubernetes.io/unschedulable", "NoSchedule")}
    sim.store.create(deployment(replicas=2))
    sim.tick(1)
    assert {p["spec"]["nodeName"] for p in sim.pods()} == {"n2"}
    sim.store.update(cordon(sim.get("Node", "n1", None), False))
    sim.tick(1)
    assert node_taints(sim, "n1") == set()


def test_node_that_never_reported_after_startup_grace():
    nl = NodeLifecycle(grace=10, startup_grace=60)
    n = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "creationTimestamp": "2027-01-01T00:00:00Z"}}
    t0 = 1798761600.0  # 2027-01-01T00:00:00Z
    assert nl.decide(Snapshot([n]), t0 + 59) == [] or all(a.verb != "update_status" for a in nl.decide(Snapshot([n]), t0 + 59))
    acts = nl.decide(Snapshot([n]), t0 + 61)
    st = [a for a in acts if a.verb == "update_status"][0].obj["status"]
    ready = [c for c in st["conditions"] if c["type"] == "Ready"][0]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusNeverUpdated", "Kubelet never posted node status.")


def test_default_tolerations_admission():
    p = default_tolerations({"kind": "Pod", "metadata": {"name": "p"}, "spec": {}}, 300)
    assert p["spec"]["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
    own = {"kind": "Pod", "metadata": {"name": "p"},
           "spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                     "effect": "NoExecute", "tolerationSeconds": 5}]}}
    keys = [t["key"] for t in default_tolerations(own)["spec"]["tolerations"]]
    assert keys == ["node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"]


def test_runner_next_wakeup_names_the_timers():
    from .ctrl_sim import T0
    sim = Sim(nodes=("n1",), node_grace=20)
    sim.kubelet.heartbeat = 5
    sim.store.create(deployment(replicas=1, minReadySeconds=7, progressDeadlineSeconds=40))
    sim.tick(1)
    # the lease was renewed at T0: the node's grace runs out at T0+20, before the progress
    # deadline of the ReplicaSet created at T0+1 (T0+41)
    assert sim.runner.next_wakeup(sim.now) == T0 + 20
    sim.tick(1)
    sim.tick(1)  # the pod turned Ready at T0+3: available (minReadySeconds 7) after T0+10
    assert sim.runner.next_wakeup(sim.now) == T0 + 10
    assert sim.get("Deployment", "web")["status"].get("availableReplicas", 0) == 0
    sim.tick(7.5)
    assert sim.get("Deployment", "web")["status"]["availableReplicas"] == 1
    # nothing pending but the node's heartbeat deadline (the lease was just renewed)
    assert sim.runner.next_wakeup(sim.now) == sim.now + 20


def test_a_node_that_has_not_reported_yet_is_not_tainted_during_its_startup_grace():
    from netlab.controllers.runner import Runner
    from netlab.store import MemoryStore
    from .ctrl_sim import T0, Clock, node
    clock = Clock()
    store = MemoryStore(clock=clock)
    store.create(node("n1"))
    Runner(store).run_until_quiescent()
    assert store.get("Node", None, "n1")["spec"].get("taints") in (None, [])
    assert store.list("Event") == []
    clock.t = T0 + 61
    Runner(store).run_until_quiescent()
    n = store.get("Node", None, "n1")
    assert {t["key"] for t in n["spec"]["taints"]} == {"node.kubernetes.io/unreachable"}
    assert get_condition(n, "Ready")["reason"] == "NodeStatusNeverUpdated"


def test_drain_moves_deployment_pods_and_refuses_bare_pods():
    import pytest
    from netlab.controllers.validation import ControllerError
    from netlab.controllers.verbs import drain
    sim = Sim(nodes=("n1", "n2"))
    sim.store.create(deployment(replicas=4))
    for _ in range(3):
        sim.tick(1)
    bare = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare", "namespace": "default"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}, "status": {"phase": "Pending"}}
    sim.store.create(bare)
    sim.tick(1)
    n1 = sim.get("Node", "n1", None)
    with pytest.raises(ControllerError, match='unable to drain node "n1" due to error: cannot delete Pods that '
                                              r"declare no controller \(use --force to override\): default/bare"):
        drain(n1, sim.store.list("Pod"))
    node, evict, lines = drain(n1, sim.store.list("Pod"), force=True)
    assert lines[0] == "node/n1 cordoned" and lines[-1] == "node/n1 drained"
    assert "evicting pod default/bare" in lines and "pod/bare evicted" in lines
    sim.store.update(node)
    with sim.store.transaction():
        for p in evict:
            sim.store.delete("Pod", "default", p["metadata"]["name"], grace_seconds=1)
    for _ in range(4):
        sim.tick(1)
    assert {p["spec"]["nodeName"] for p in sim.pods()} == {"n2"} and len(sim.pods()) == 4
    assert sim.store.try_get("Pod", "default", "bare") is None


def test_pods_bound_to_a_deleted_node_are_removed():
    sim = Sim(nodes=("n1", "n2"))
    sim.store.create(deployment(replicas=2))
    for _ in range(3):
        sim.tick(1)
    gone = [p["metadata"]["name"] for p in sim.pods() if p["spec"]["nodeName"] == "n1"]
    sim.store.delete("Node", None, "n1")
    for _ in range(3):
        sim.tick(1)
    assert all(sim.store.try_get("Pod", "default", n) is None for n in gone)
    assert len(sim.pods()) == 2 and {p["spec"]["nodeName"] for p in sim.pods()} == {"n2"}


# ------------------------------------------------------------------ disruption (zone states)

NOEXEC = {("node.kubernetes.io/unreachable", "NoExecute")}


def test_zone_state_thresholds():
    from netlab.controllers.nodelifecycle import FULL, NORMAL, PARTIAL, zone_state
    assert zone_state(["True"] * 6) == NORMAL
    assert zone_state(["True"] * 4 + ["Unknown"] * 2) == NORMAL      # 2 not ready: never more than normal
    assert zone_state(["True"] * 2 + ["Unknown"] * 4) == PARTIAL     # 4 of 6 (67%) and more than 2
    assert zone_state(["True"] * 3 + ["False"] * 3) == NORMAL        # 3 of 6 is 50%, under 55%
    assert zone_state([None, "Unknown", "False"]) == FULL            # none ready (no condition: not ready)
    assert zone_state(["Unknown"]) == FULL


def test_every_node_stale_at_once_is_not_an_eviction():
    """The store stalled for longer than the grace (every kubelet's renewals held up): every node is
    NotReady, but the controller takes it for its own problem: no NoExecute taint, no pod evicted; the
    renewals come back and the nodes are Ready with their pods."""
    sim = Sim(nodes=("n1", "n2", "n3"), node_grace=10, toleration=5)
    sim.kubelet.heartbeat = 2
    sim.store.create(deployment(replicas=3))
    for _ in range(3):
        sim.tick(1)
    before = {p["metadata"]["name"] for p in sim.pods()}
    sim.kubelet.down.update(("n1", "n2", "n3"))
    for _ in range(30):
        sim.tick(1)
        for n in ("n1", "n2", "n3"):
            assert not node_taints(sim, n) & NOEXEC
    for n in ("n1", "n2", "n3"):
        assert get_condition(sim.get("Node", n, None), "Ready")["status"] == "Unknown"
        assert node_taints(sim, n) == {("node.kubernetes.io/unreachable", "NoSchedule")}
    assert sim.events("TaintManagerEviction") == []
    assert all(get_condition(p, "Ready")["status"] == "False" for p in sim.pods())   # marked not ready all the same
    sim.kubelet.down.clear()
    sim.tick(1)
    sim.tick(1)
    assert {p["metadata"]["name"] for p in sim.pods(active_only=False)} == before
    for n in ("n1", "n2", "n3"):
        assert get_condition(sim.get("Node", n, None), "Ready")["status"] == "True" and not node_taints(sim, n)


def test_a_node_failure_then_every_node_stale_lifts_its_taint_until_the_others_are_back():
    sim = Sim(nodes=("n1", "n2", "n3"), node_grace=10, toleration=100)
    sim.kubelet.heartbeat = 2
    sim.kubelet.down.add("n3")
    for _ in range(13):
        sim.tick(1)
    assert node_taints(sim, "n3") >= NOEXEC
    first = next(t for t in sim.get("Node", "n3", None)["spec"]["taints"] if t["effect"] == "NoExecute")["timeAdded"]
    sim.kubelet.down.update(("n1", "n2"))
    for _ in range(13):
        sim.tick(1)
    assert all(not node_taints(sim, n) & NOEXEC for n in ("n1", "n2", "n3"))   # all down: none evicts
    sim.kubelet.down.difference_update(("n1", "n2"))
    sim.tick(1)
    sim.tick(1)
    assert node_taints(sim, "n3") >= NOEXEC and not node_taints(sim, "n1") and not node_taints(sim, "n2")
    again = next(t for t in sim.get("Node", "n3", None)["spec"]["taints"] if t["effect"] == "NoExecute")["timeAdded"]
    assert again > first   # the eviction clock starts again


def test_a_small_zone_in_partial_disruption_taints_no_more_nodes():
    nodes = tuple(f"n{i}" for i in range(1, 7))
    sim = Sim(nodes=nodes, node_grace=10, toleration=5)
    sim.kubelet.heartbeat = 2
    sim.kubelet.down.update(("n1", "n2", "n3", "n4"))   # 4 of 6: partial disruption, a zone of 6 nodes
    for _ in range(30):
        sim.tick(1)
    for n in ("n1", "n2", "n3", "n4"):
        assert get_condition(sim.get("Node", n, None), "Ready")["status"] == "Unknown"
        assert not node_taints(sim, n) & NOEXEC
    sim.kubelet.down.difference_update(("n3", "n4"))   # 2 of 6: normal again, the two left are tainted
    sim.tick(1)
    sim.tick(1)
    assert node_taints(sim, "n1") >= NOEXEC and node_taints(sim, "n2") >= NOEXEC
    assert not node_taints(sim, "n3") and not node_taints(sim, "n4")


def _nodes(names, ready, zone="", taints=None, beat="2027-01-01T00:16:40Z"):
    """Nodes as stored: Ready as `ready(name)` says, the ready ones' heartbeat at `beat` (the tests' now)."""
    out = []
    for n in names:
        md = {"name": n, "labels": {"topology.kubernetes.io/zone": zone} if zone else {}}
        st = {"conditions": [{"type": "Ready", "status": ready(n),
                              "lastHeartbeatTime": beat if ready(n) == "True" else "2027-01-01T00:00:00Z"}]}
        spec = {"taints": list((taints or {}).get(n, []))}
        out.append({"apiVersion": "v1", "kind": "Node", "metadata": md, "spec": spec, "status": st})
    return out


def test_a_large_zone_in_partial_disruption_taints_one_node_per_100_s():
    t0 = 1798761600.0 + 1000   # well after every heartbeat
    names = [f"n{i:02d}" for i in range(60)]
    down = set(names[:40])
    nl = NodeLifecycle(grace=10)
    nodes = _nodes(names, lambda n: "Unknown" if n in down else "True")
    acts = nl.decide_health(Snapshot(nodes), t0)
    tainted = [a.obj["metadata"]["name"] for a in acts if a.verb == "update"
               and any(x["effect"] == "NoExecute" for x in a.obj["spec"]["taints"])]
    assert tainted == ["n00"]
    stamp = "2027-01-01T00:16:40Z"   # t0
    taints = {"n00": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": stamp}]}
    def snap(at: str):
        return Snapshot(_nodes(names, lambda n: "Unknown" if n in down else "True", taints=taints, beat=at))

    def noexec(acts):   # the nodes newly tainted NoExecute (n00's taint is there already)
        return [a.obj["metadata"]["name"] for a in acts if a.verb == "update" and a.obj["metadata"]["name"] != "n00"
                and any(x["effect"] == "NoExecute" for x in a.obj["spec"]["taints"])]
    assert noexec(nl.decide_health(snap("2027-01-01T00:18:19Z"), t0 + 99)) == []   # the zone's rate holds
    assert nl.rate_deadline(snap("2027-01-01T00:18:19Z")) == t0 + 100
    assert noexec(nl.decide_health(snap("2027-01-01T00:18:20Z"), t0 + 100)) == ["n01"]


def test_zones_are_judged_apart():
    """Zone a entirely down while zone b is well: a is one failed zone, not the controller's problem."""
    nl = NodeLifecycle(grace=10)
    t = 1798761600.0 + 1000
    nodes = _nodes(["a1", "a2", "a3"], lambda n: "Unknown", zone="a") + _nodes(["b1", "b2"], lambda n: "True", zone="b")
    got = {a.obj["metadata"]["name"] for a in nl.decide_health(Snapshot(nodes), t) if a.verb == "update"
           and any(x["effect"] == "NoExecute" for x in a.obj["spec"]["taints"])}
    assert got == {"a1", "a2", "a3"}
    nodes = (_nodes(["a1", "a2", "a3"], lambda n: "Unknown", zone="a")
             + _nodes(["b1", "b2"], lambda n: "False", zone="b"))
    assert not [a for a in nl.decide_health(Snapshot(nodes), t) if a.verb == "update"
                and any(x["effect"] == "NoExecute" for x in a.obj["spec"]["taints"])]
