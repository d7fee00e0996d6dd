"""One control loop per host (netlab/live/agent.py): the leader election's decisions (leader.py, a fake
clock), what a host's agent builds and models (hostscope.py, dataplane.lab's host views), the lab's state
as a whole from its hosts' (state.merge_hosts), and the agents' names."""
from __future__ import annotations

import os

import pytest

from netlab import names
from netlab.dataplane import layout, state
from netlab.dataplane.lab import host_views, own_namespaces
from netlab.live import hostscope, leader
from netlab.live.leader import Decision, Elector, Observed, decide
from netlab.live.loop import parse_args
from netlab.model.build import build
from netlab.spec.parse import load_text
from netlab.store.memory import MemoryStore
from netlab.store.meta import fmt_time


def lease(holder: str, renew: float, transitions: int = 0, duration: int = 8) -> dict:
    return {"metadata": {"name": leader.NAME, "namespace": leader.NAMESPACE, "resourceVersion": "7"},
            "spec": {"holderIdentity": holder, "renewTime": fmt_time(renew), "leaseDurationSeconds": duration,
                     "leaseTransitions": transitions}}


# ------------------------------------------------------------------ leader election, pure

def test_no_lease_is_created_by_the_first_candidate():
    d = decide(None, "a", 100.0, Observed())
    assert d.action == "create"
    assert d.spec["holderIdentity"] == "a" and d.spec["leaseTransitions"] == 0
    assert d.spec["leaseDurationSeconds"] == leader.LEASE_SECONDS


def test_the_holder_renews_but_not_more_often_than_the_retry_period():
    seen = Observed()
    assert decide(lease("a", 100.0), "a", 100.5, seen, last_renew=100.0).action == "wait"
    d = decide(lease("a", 100.0), "a", 100.0 + leader.RETRY_SECONDS, seen, last_renew=100.0)
    assert d.action == "renew" and d.spec["renewTime"] == fmt_time(100.0 + leader.RETRY_SECONDS)
    assert d.spec["holderIdentity"] == "a"


def test_another_candidate_waits_until_the_record_is_unchanged_for_the_lease_duration():
    seen = Observed()
    # first seen at 100: held for 8 s of this candidate's own clock, whatever the record's renewTime says
    assert decide(lease("a", 50.0, 3), "b", 100.0, seen).action == "wait"
    assert decide(lease("a", 50.0, 3), "b", 107.9, seen).action == "wait"
    d = decide(lease("a", 50.0, 3), "b", 108.0, seen)
    assert d.action == "take" and d.spec["holderIdentity"] == "b" and d.spec["leaseTransitions"] == 4


def test_a_renewal_seen_restarts_the_wait():
    seen = Observed()
    assert decide(lease("a", 100.0), "b", 100.0, seen).action == "wait"
    assert decide(lease("a", 105.0), "b", 106.0, seen).action == "wait"   # renewed: observed anew at 106
    assert decide(lease("a", 105.0), "b", 113.9, seen).action == "wait"
    assert decide(lease("a", 105.0), "b", 114.0, seen).action == "take"


def test_a_released_lease_is_taken_at_once():
    assert decide(lease("", 100.0), "b", 100.1, Observed()).action == "take"


def test_a_holder_stops_leading_at_its_renew_deadline_before_the_lease_expires():
    assert leader.leading(100.0, 100.0 + leader.RENEW_DEADLINE - 0.1)
    assert not leader.leading(100.0, 100.0 + leader.RENEW_DEADLINE)
    assert not leader.leading(None, 100.0)
    assert leader.RENEW_DEADLINE < leader.LEASE_SECONDS


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_two_electors_one_leader_and_a_takeover_when_it_stops_renewing():
    store, clock = MemoryStore(), Clock()
    a, b = Elector(store, "a", clock=clock), Elector(store, "b", clock=clock)
    assert a.tick() is True
    assert b.tick() is False
    for _ in range(20):   # a renews every second: b never takes over
        clock.t += 1.0
        assert a.tick() is True and b.tick() is False
    assert store.get("Lease", "kube-system", "netlab-controllers")["spec"]["holderIdentity"] == "a"
    # a dies (no more ticks): b takes over once it saw the same record for the lease duration
    took = None
    for i in range(30):
        clock.t += 0.5
        if b.tick():
            took = i * 0.5 + 0.5
            break
    assert took is not None and leader.LEASE_SECONDS <= took <= leader.LEASE_SECONDS + 1
    spec = store.get("Lease", "kube-system", "netlab-controllers")["spec"]
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    # a comes back (a paused process): it sees b hold the Lease and leads no more
    assert a.tick() is False


def test_a_conflicting_takeover_leaves_one_leader():
    store, clock = MemoryStore(), Clock()
    a = Elector(store, "a", clock=clock)
    assert a.tick()
    b, c = Elector(store, "b", clock=clock), Elector(store, "c", clock=clock)
    b.tick(), c.tick()
    clock.t += leader.LEASE_SECONDS + 1
    stale = store.get("Lease", "kube-system", "netlab-controllers")
    # b and c both read the expired Lease; b writes first, c's write (same resourceVersion) conflicts
    real = store.try_get
    store.try_get = lambda *k: stale   # noqa: E731 - both decide on the same read
    assert b.tick() is True
    assert c.tick() is False
    store.try_get = real
    assert store.get("Lease", "kube-system", "netlab-controllers")["spec"]["holderIdentity"] == "b"


def test_release_hands_over_at_once():
    store, clock = MemoryStore(), Clock()
    a, b = Elector(store, "a", clock=clock), Elector(store, "b", clock=clock)
    assert a.tick() and not b.tick()
    a.release()
    clock.t += 0.1
    assert b.tick() is True


# ------------------------------------------------------------------ what an agent builds and models

def node(name: str, host: str | None, ip: str = "172.18.0.2", cidr: str = "10.244.0.0/24") -> dict:
    labels = {"kubernetes.io/hostname": name} | ({hostscope.HOST_LABEL: host} if host else {})
    return {"metadata": {"name": name, "labels": labels}, "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}


def pod(name: str, node_name: str, ip: str | None = None, ready: bool = False) -> dict:
    status: dict = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"nodeName": node_name}, "status": status}


def test_nodes_by_host():
    nodes = [node("n1", "ha"), node("n2", "ha"), node("n3", "hb"), node("n4", None)]
    assert hostscope.hosts_of(nodes) == {"ha": ["n1", "n2"], "hb": ["n3"]}
    assert hostscope.own_nodes(nodes, "hb") == {"n3"}
    assert hostscope.unplaced(nodes) == ["n4"]
    assert hostscope.unplaced([node("n1", None)]) == []   # a lab of one loop: nothing is unplaced


def test_another_hosts_pod_is_modelled_only_once_it_has_an_address():
    own = {"n1"}
    assert hostscope.modelled(pod("a", "n1"), own)                 # its own, built here
    assert not hostscope.modelled(pod("b", "n3"), own)             # not built by its agent yet
    assert hostscope.modelled(pod("c", "n3", "10.244.2.5"), own)


def test_agent_state_joins_its_own_records_the_labs_decisions_and_the_stores_view():
    nodes = [node("n1", "ha", "172.18.0.2", "10.244.0.0/24"), node("n3", "hb", "172.18.0.4", "10.244.2.0/24")]
    pods = [pod("mine", "n1", "10.244.0.9", True), pod("theirs", "n3", "10.244.2.5", True),
            pod("young", "n3")]
    own_state = {"scenario": "old", "nodes": {"n1": {"netns": "nl.x.node.n1", "ip": "1.1.1.1", "podCIDR": "x"}},
                 "pods": {"default/mine": {"node": "n1", "ip": "10.244.0.9", "uid": "uid-mine", "procs": {"c": {}}},
                          "default/theirs": {"node": "n3", "ip": "stale"}},
                 "servers": {"n1": {"pid": 1}, "n3": {"pid": 2}}, "ipam": {"n1": "10.244.0.9"}}
    lab_state = {"scenario": "new", "services": {"default/web": {"clusterIP": "10.96.0.20"}}, "proxyMode": "nftables",
                 "pods": {"default/other": {"node": "n3"}}}
    st = hostscope.agent_state(own_state, lab_state, nodes, pods, {"n1"})
    assert st["scenario"] == "new" and st["proxyMode"] == "nftables"          # the lab's, as `up` last wrote it
    assert st["services"] == lab_state["services"]
    assert st["nodes"]["n1"] == {"netns": "nl.x.node.n1", "ip": "172.18.0.2", "podCIDR": "10.244.0.0/24"}
    assert st["nodes"]["n3"] == {"ip": "172.18.0.4", "podCIDR": "10.244.2.0/24"}   # the store's
    assert st["pods"]["default/mine"]["procs"] == {"c": {}}                  # its own record
    assert st["pods"]["default/theirs"] == {"node": "n3", "ip": "10.244.2.5", "uid": "uid-theirs", "ready": True}
    assert "default/young" not in st["pods"] and "default/other" not in st["pods"]
    assert st["servers"] == {"n1": {"pid": 1}}
    assert st["ipam"] == {"n1": "10.244.0.9"}


def test_an_agent_without_records_adopts_what_up_recorded_of_its_nodes():
    lab_state = {"scenario": "s", "pods": {"default/a": {"node": "n1", "ip": "10.244.0.2", "uid": "u"},
                                           "default/b": {"node": "n3", "ip": "10.244.2.2", "uid": "v"}},
                 "servers": {"n1": {"pid": 5}, "n3": {"pid": 6}}}
    st = hostscope.agent_state(None, lab_state, [node("n1", "ha")], [], {"n1"})
    assert st["pods"] == {"default/a": lab_state["pods"]["default/a"]}
    assert st["servers"] == {"n1": {"pid": 5}}


SCENARIO = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: hv
nodes:
- {name: n1, labels: {netlab.dev/host: ha}}
- {name: n2, role: worker, labels: {netlab.dev/host: ha}}
- {name: n3, role: worker, labels: {netlab.dev/host: hb}}
---
apiVersion: v1
kind: Pod
metadata: {name: p1}
spec: {nodeName: n1, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p3}
spec: {nodeName: n3, containers: [{name: c, image: busybox}]}
"""


def test_host_views_build_only_the_hosts_nodes_and_pods_and_share_the_model():
    cluster = build(load_text(SCENARIO, "<t>"))
    nodes_view, pods_view = host_views(cluster, {"n3"})
    assert [n.name for n in nodes_view.nodes] == ["n3"]
    assert {p.key for p in nodes_view.pods} == {"default/p1", "default/p3"}   # the rules need every pod
    assert [p.key for p in pods_view.pods] == ["default/p3"]
    assert pods_view.services is cluster.services
    assert pods_view.pods[0] is cluster.pod("default", "p3")
    assert host_views(cluster, None) == (cluster, cluster)


def test_an_agent_looks_only_at_its_own_namespaces():
    cluster = build(load_text(SCENARIO, "<t>"))
    desired = {p.key: p for p in cluster.pods}
    existing = {"nl.hv.underlay", "nl.hv.external", "nl.hv.node.n1", "nl.hv.node.n3", "nl.hv.pod.default.p1",
                "nl.hv.pod.default.p3", "nl.hv.pod.default.gone-here", "nl.hv.pod.default.gone-there",
                "nl.hvx.node.n3"}
    prev = {"default/gone-here": {"node": "n3"}}
    got = own_namespaces("hv", existing, {"n3"}, desired, prev)
    assert got == {"nl.hv.underlay", "nl.hv.external", "nl.hv.node.n3", "nl.hv.pod.default.p3",
                   "nl.hv.pod.default.gone-here"}
    assert own_namespaces("hv", existing, None, desired, prev) == existing


# ------------------------------------------------------------------ the lab's state from its hosts'

def test_the_labs_state_is_its_hosts_records_over_ups():
    base = {"scenario": "s", "phase": "ready", "nodes": {"n1": {"ip": "a"}, "n3": {"ip": "c"}},
            "pods": {"default/old": {"node": "n3"}, "default/p1": {"node": "n1", "ip": "up"},
                     "default/x": {"node": "n9"}},
            "servers": {"n1": {"pid": 1}, "n3": {"pid": 3}}, "ipam": {"n1": "u1", "n3": "u3"}}
    hosts = {"hb": {"nodes": {"n3": {"ip": "c2"}}, "pods": {"default/new": {"node": "n3"}},
                    "servers": {"n3": {"pid": 33}, "n1": {"pid": 99}}, "ipam": {"n3": "h3", "n1": "bad"}}}
    got = state.merge_hosts(base, hosts)
    assert got["scenario"] == "s" and got["phase"] == "ready"
    assert set(got["pods"]) == {"default/p1", "default/x", "default/new"}   # old: gone from its host
    assert got["pods"]["default/p1"]["ip"] == "up"
    assert got["servers"] == {"n1": {"pid": 1}, "n3": {"pid": 33}}
    assert got["nodes"]["n3"] == {"ip": "c2"} and got["ipam"] == {"n1": "u1", "n3": "h3"}
    assert base["pods"]["default/old"] == {"node": "n3"}   # the input is left alone
    assert state.merge_hosts(None, {}) is None


def test_an_agent_keeps_its_hosts_state_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "RUN_DIR", str(tmp_path))
    try:
        layout.set_host("ha")
        assert layout.state_file("lab") == str(tmp_path / "lab" / "hosts" / "ha" / "state.json")
        assert layout.terminating_file("lab") == str(tmp_path / "lab" / "hosts" / "ha" / "terminating")
        assert layout.conntrack_record("lab") == str(tmp_path / "lab" / "hosts" / "ha" / "conntrack-udp.txt")
        state.save("lab", {"pods": {"default/a": {"node": "n1"}}, "nodes": {"n1": {}}})
        layout.set_host("hb")
        state.save("lab", {"pods": {"default/b": {"node": "n3"}}, "nodes": {"n3": {}}})
        assert set(state.load("lab")["pods"]) == {"default/b"}
    finally:
        layout.set_host(None)
    assert layout.state_file("lab") == str(tmp_path / "lab" / "state.json")
    assert set(state.load("lab")["pods"]) == {"default/a", "default/b"}   # a command sees the whole lab
    assert layout.agent_pidfile("lab", "ha") != layout.agent_pidfile("lab", "hb")


# ------------------------------------------------------------------ names, arguments

def test_agent_owner_tags():
    assert names.agent_owner("lab", "ha") == "lab/host/ha/agent"
    assert names.is_agent_owner("lab", "lab/host/ha/agent")
    assert not names.is_agent_owner("lab", "lab/host/ha/etcd")           # the etcd member of the host
    assert not names.is_agent_owner("lab", "labx/host/ha/agent")
    assert not names.is_agent_owner("lab", "lab/pod/host/x/agent")
    assert names.agent_owner("lab", "ha").startswith(names.lab_owner_prefix("lab"))


@pytest.mark.parametrize("argv, want", [
    (["lab"], ("lab", None)), (["lab", "--host", "ha"], ("lab", "ha")), ([], None), (["lab", "--host"], None),
    (["lab", "--hots", "ha"], None), (["../x"], None), (["lab", "--host", "a/b"], None)])
def test_loop_arguments(argv, want):
    assert parse_args(argv) == want


def test_decision_type():
    assert Decision("wait").spec is None


# ------------------------------------------------------------------ up of a lab run by agents

def test_a_lab_places_all_of_its_nodes_on_hosts_or_none():
    from netlab.errors import UsageError
    from netlab.lab_spec import _check_placement
    _check_placement(build(load_text(SCENARIO, "<t>")))
    _check_placement(build(load_text(SCENARIO.replace("labels: {netlab.dev/host: ha}", "labels: {}")
                                     .replace("labels: {netlab.dev/host: hb}", "labels: {}"), "<t>")))
    half = SCENARIO.replace("{name: n2, role: worker, labels: {netlab.dev/host: ha}}", "{name: n2, role: worker}")
    with pytest.raises(UsageError) as e:
        _check_placement(build(load_text(half, "<t>")))
    assert e.value.exit_code == 2
    assert "nodes n2 are placed on no host" in str(e.value) and "netlab.dev/host=<host>" in str(e.value)


def test_up_of_a_lab_run_by_agents_waits_for_its_pods_to_be_built():
    from netlab.live.rollouts import settled
    store = MemoryStore()
    p = store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "default"},
                      "spec": {"nodeName": "n3", "containers": [{"name": "c", "image": "busybox"}]}})
    assert settled(store) == (True, "")
    assert settled(store, built=True) == (False, "pod a being built on node n3")
    store.update_status(dict(p, status={"podIP": "10.244.2.2"}))
    assert settled(store, built=True) == (True, "")


def test_get_leases_shows_the_holder():
    from netlab.controllers.printers import table
    obj = leader.lease_object({"holderIdentity": "ha_1234", "renewTime": fmt_time(100.0)})
    obj["metadata"]["creationTimestamp"] = fmt_time(40.0)
    assert table("Lease", [obj], 100.0) == [["NAME", "HOLDER", "AGE"], ["netlab-controllers", "ha_1234", "60s"]]


def test_the_labs_shared_decisions_travel_in_the_store():
    st = {"scenario": "text", "services": {"default/web": {"clusterIP": "10.96.0.20"}}, "pods": {"a": {}},
          "proxyMode": "ipvs"}
    cm = hostscope.config_object(st)
    assert (cm["kind"], cm["metadata"]["namespace"], cm["metadata"]["name"]) == ("ConfigMap", "kube-system",
                                                                                  "netlab-config")
    shared = hostscope.config_of(cm)
    assert shared == {"scenario": "text", "services": st["services"], "proxyMode": "ipvs"}   # no pods
    assert hostscope.config_of(None) is None and hostscope.config_of({"data": {"lab.json": "{"}}) is None
    # an agent on a host that does not share the lab's directory: the store's decisions, no lab state
    got = hostscope.agent_state(None, None, [], [], {"n1"}, shared)
    assert got["scenario"] == "text" and got["proxyMode"] == "ipvs" and got["pods"] == {}
    # the store's win over a lab state.json left from an older `up`
    assert hostscope.agent_state(None, {"scenario": "old"}, [], [], {"n1"}, shared)["scenario"] == "text"


def test_the_agents_recorded_in_a_labs_directory(tmp_path, monkeypatch):
    from netlab.live import agent
    monkeypatch.setattr(layout, "RUN_DIR", str(tmp_path))
    assert agent.recorded_hosts("lab") == []
    os.makedirs(layout.run_dir("lab"))
    for name in ("agent-ha.pid", "agent-hb.pid", "agent-ha.lock", "control-loop.pid", "netexec-n1.pid"):
        open(os.path.join(layout.run_dir("lab"), name), "w").close()
    assert agent.recorded_hosts("lab") == ["ha", "hb"]
    how = agent.launch("lab", "ha")
    assert how.argv[1:] == ["-m", "netlab.live.loop", "lab", "--host", "ha"]
    assert how.env["NETLAB_OWNER"] == "lab/host/ha/agent" and how.env[layout.HOST_VAR] == "ha"
    assert how.log == os.path.join(layout.logs_dir("lab"), "agent-ha.log")


def test_a_host_label_set_in_the_store_counts_for_placement():
    from netlab.errors import UsageError
    from netlab.lab_spec import _check_placement
    half = SCENARIO.replace("{name: n2, role: worker, labels: {netlab.dev/host: ha}}", "{name: n2, role: worker}")
    _check_placement(build(load_text(half, "<t>")), [node("n2", "ha")])   # `netlab label node n2 ...=ha`
    with pytest.raises(UsageError):
        _check_placement(build(load_text(half, "<t>")), [node("n2", None)])
