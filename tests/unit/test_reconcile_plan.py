"""`up`'s decisions without root: the desired cluster plus a fake observation (the namespaces that
exist, the previous state, which processes are alive) in, the plan out (netlab.dataplane.plan)."""
from __future__ import annotations

import pytest

from netlab import names
from netlab.dataplane import plan
from netlab.model.build import build
from netlab.spec.parse import load_text

from .scenarios import cluster, container, deployment, pod, service, state_of, text

LAB = "t"


def desired(*docs, prev=None):
    return build(load_text(text(*docs)), prev)


def base(replicas=2, extra=()):
    return (cluster(LAB, nodes=[{"role": "worker", "name": "a"}, {"role": "worker", "name": "b"}]),
            deployment("web", replicas), *extra)


def recorded(c) -> dict:
    """The previous state's pods as `up` writes them (fingerprint and UID)."""
    return {p.key: {"node": p.node, "ip": str(p.ip), "uid": p.uid, "fingerprint": p.fingerprint()}
            for p in c.pods}


def all_netns(c) -> set[str]:
    return {c.underlay_netns, c.external_netns} | {n.netns for n in c.nodes} | {p.netns for p in c.pods}


def again(c, *docs):
    """The same scenario (or `docs`) built against `c`'s state: what a second `up` wants."""
    st = state_of(c)
    st["pods"] = recorded(c)
    return desired(*(docs or base()), prev=st)


# ------------------------------------------------------------------ namespaces

def test_a_new_lab_creates_everything():
    c = desired(*base())
    p = plan.plan_namespaces(c, {}, set())
    assert p.remove == [] and p.check == []
    assert p.create == [x.key for x in c.pods]
    assert p.fresh_nodes == ["a", "b"]


def test_an_unchanged_lab_keeps_everything():
    c = desired(*base())
    p = plan.plan_namespaces(again(c), recorded(c), all_netns(c))
    assert p.remove == [] and p.create == [] and p.fresh_nodes == []
    assert sorted(p.check) == sorted(x.key for x in c.pods)


def test_a_pod_no_longer_wanted_is_removed():
    c = desired(*base(extra=[pod("solo")]))
    c2 = again(c)  # without the solo pod
    p = plan.plan_namespaces(c2, recorded(c), all_netns(c))
    assert p.remove == [names.pod_netns(LAB, "default", "solo")]
    assert "default/solo" not in p.check + p.create


def test_a_pod_whose_spec_changed_is_removed_and_created():
    c = desired(*base(extra=[pod("solo", containers=[container("c", [80])])]))
    c2 = again(c, *base(extra=[pod("solo", containers=[container("c", [81])])]))
    p = plan.plan_namespaces(c2, recorded(c), all_netns(c))
    solo = names.pod_netns(LAB, "default", "solo")
    assert p.remove == [solo]
    assert p.create == ["default/solo"]


def test_a_pod_with_no_record_or_another_uid_is_made_again():
    c = desired(*base())
    rec = recorded(c)
    victim = c.pods[0].key
    rec[victim]["uid"] = "someone-else"
    p = plan.plan_namespaces(again(c), rec, all_netns(c))
    assert p.remove == [c.pods[0].netns] and p.create == [victim]
    rec.pop(victim)
    p = plan.plan_namespaces(again(c), rec, all_netns(c))
    assert p.create == [victim]


def test_a_pod_whose_namespace_vanished_is_created_not_removed():
    c = desired(*base())
    gone = c.pods[1]
    p = plan.plan_namespaces(again(c), recorded(c), all_netns(c) - {gone.netns})
    assert p.remove == [] and p.create == [gone.key]


def test_a_node_no_longer_wanted_is_removed_and_a_new_one_is_fresh():
    c = desired(*base())
    c2 = again(c, cluster(LAB, nodes=[{"role": "worker", "name": "a"}, {"role": "worker", "name": "z"}]),
               deployment("web", 2))
    p = plan.plan_namespaces(c2, recorded(c), all_netns(c))
    assert names.node_netns(LAB, "b") in p.remove
    assert p.removed_nodes == ["b"]
    assert p.fresh_nodes == ["z"]


def test_namespaces_that_are_not_netlab_s_are_never_removed():
    c = desired(*base())
    odd = {f"nl.{LAB}", f"nl.{LAB}.mine", f"nl.{LAB}.pod.nodot", "nl.other.node.a", "x.y"}
    p = plan.plan_namespaces(again(c), recorded(c), all_netns(c) | odd)
    assert p.remove == []


def test_another_lab_with_a_prefix_name_is_not_ours():
    c = desired(*base())
    theirs = {names.pod_netns(LAB + "-2", "default", "x"), names.node_netns(LAB + "-2", "a")}
    p = plan.plan_namespaces(again(c), recorded(c), all_netns(c) | theirs)
    assert p.remove == []


def test_destroyed_lists_what_another_file_would_remove():
    c = desired(*base(extra=[pod("solo")]))
    st = state_of(c)
    st["pods"] = recorded(c)
    other = desired(cluster(LAB, nodes=[{"role": "worker", "name": "x"}]), prev=st)
    lost = plan.destroyed(other, st)
    assert "node a" in lost and "node b" in lost and "pod default/solo" in lost
    assert plan.destroyed(again(c, *base(extra=[pod("solo")])), st) == []


# ------------------------------------------------------------------ built-in servers

def test_idle_servers_start_where_needed_and_strays_stop():
    c = desired(cluster(LAB, nodes=[{"role": "worker", "name": "a"}, {"role": "worker", "name": "b"},
                                    {"role": "worker", "name": "c"}]),
                pod("p", containers=[container("c", [80])], nodeName="a"),
                pod("q", containers=[container("c", command=["sleep", "1"])], nodeName="b"))
    p = plan.plan_idle_servers(c, {"a": False, "b": False, "c": False}, strays={"b"})
    assert p.start == ["a"]          # only a has a pod served by the built-in server
    assert p.stop == ["b"]
    p = plan.plan_idle_servers(c, {"a": True, "b": True, "c": False}, strays={"b"})
    assert p.start == [] and p.stop == []   # a recorded, running server is left alone


@pytest.mark.parametrize("alive,same,fresh,started,want", [
    (True, True, set(), set(), "keep"),
    (True, False, set(), set(), "reload"),        # its config changed
    (True, True, {"POD"}, set(), "reload"),       # one of its pods was made again
    (True, True, set(), {"a"}, "reload"),         # idle server just started: give it its pods
    (False, True, set(), set(), "start"),
    (False, False, set(), set(), "start"),
])
def test_server_actions(alive, same, fresh, started, want):
    c = desired(cluster(LAB, nodes=[{"role": "worker", "name": "a"}]), pod("p", containers=[container("c", [80])]))
    fresh = {"default/p"} if fresh else set()
    assert plan.plan_servers(c, fresh, {"a": alive}, {"a": same}, started)["a"] == want


def test_a_server_whose_pod_exited_is_reloaded_which_restarts_the_pod():
    c = desired(cluster(LAB, nodes=[{"role": "worker", "name": "a"}]), pod("p", containers=[container("c", [80])]))
    assert plan.plan_servers(c, set(), {"a": True}, {"a": True}, set(), exited={"a"})["a"] == "reload"
    assert plan.plan_servers(c, set(), {"a": True}, {"a": True}, set(), exited=set())["a"] == "keep"


def test_a_node_without_built_in_pods_gets_no_server_but_a_running_one_is_emptied():
    c = desired(cluster(LAB, nodes=[{"role": "worker", "name": "a"}]),
                pod("p", containers=[container("c", command=["sleep", "1"])]))
    assert plan.plan_servers(c, set(), {"a": False}, {}, set()) == {"a": "none"}
    assert plan.plan_servers(c, set(), {"a": True}, {"a": False}, set()) == {"a": "reload"}


# ------------------------------------------------------------------ containers

def cmd_lab():
    return desired(cluster(LAB, nodes=[{"role": "worker", "name": "a"}]),
                   pod("p", containers=[container("one", command=["sleep", "1"]),
                                        container("two", command=["sleep", "2"]),
                                        container("srv", [80])]))


def test_containers_alive_are_kept_and_the_built_in_one_is_not_a_process():
    c = cmd_lab()
    acts = plan.plan_containers(c, {("default/p", "one"): True, ("default/p", "two"): True}, set(), {})
    assert [(a.container, a.action) for a in acts] == [("one", "keep"), ("two", "keep")]


def test_a_dead_container_is_restarted_and_counted():
    c = cmd_lab()
    acts = plan.plan_containers(c, {("default/p", "one"): False, ("default/p", "two"): True}, set(), {})
    one = acts[0]
    assert one.action == "start" and one.restart


def test_a_container_of_a_new_pod_is_started_not_counted():
    c = cmd_lab()
    acts = plan.plan_containers(c, {("default/p", "one"): False}, {"default/p"}, {})
    assert all(a.action == "start" and not a.restart for a in acts)


def test_a_container_never_recorded_is_started_not_counted():
    c = cmd_lab()
    acts = plan.plan_containers(c, {}, set(), {})
    assert [(a.action, a.restart) for a in acts] == [("start", False), ("start", False)]


def test_unrecorded_processes_are_adopted_oldest_first_and_the_rest_ended():
    c = cmd_lab()
    acts = plan.plan_containers(c, {}, set(), {("default/p", "one"): [100, 200, 300]})
    one = acts[0]
    assert (one.action, one.pid, one.end) == ("adopt", 100, [200, 300])
    assert acts[1].action == "start"


# ------------------------------------------------------------------ readiness

def test_initial_readiness_of_new_pods():
    c = desired(cluster(LAB, nodes=[{"role": "worker", "name": "a"}]),
                pod("builtin", containers=[container("c", [80])]),
                pod("portless", containers=[container("c", command=["sleep", "1"])]),
                pod("server", containers=[container("c", [80], command=["python3", "-m", "http.server", "80"])]))
    fresh = {p.key for p in c.pods}
    got = plan.initial_readiness(c, fresh)
    assert got == {"default/builtin": True, "default/portless": True, "default/server": False}
    for p in c.pods:
        p.ready = False
    assert plan.initial_readiness(c, set()) == {k: False for k in got}   # existing: as last observed


def test_readiness_changes_and_endpoints():
    c = desired(cluster(LAB, nodes=[{"role": "worker", "name": "a"}]), deployment("web", 3),
                service("web", ports=[{"port": 80, "targetPort": 8080}]))
    keys = [p.key for p in c.pods]
    seen = {k: True for k in keys}
    assert plan.readiness_changes(c, seen) == []
    seen[keys[1]] = False
    assert plan.readiness_changes(c, seen) == [keys[1]]


def test_a_pod_recorded_not_ready_is_not_an_endpoint():
    c = desired(cluster(LAB, nodes=[{"role": "worker", "name": "a"}]), deployment("web", 3),
                service("web", ports=[{"port": 80, "targetPort": 8080}]))
    st = state_of(c)
    st["pods"] = recorded(c)
    victim = c.pods[0]
    st["pods"][victim.key]["ready"] = False
    c2 = desired(cluster(LAB, nodes=[{"role": "worker", "name": "a"}]), deployment("web", 3),
                 service("web", ports=[{"port": 80, "targetPort": 8080}]), prev=st)
    eps = c2.services[0].endpoints[""]
    assert len(eps) == 2 and victim.name not in {e.pod for e in eps}


@pytest.mark.parametrize("policy, status, restarted", [
    ("Always", 0, True), ("Always", 1, True), ("OnFailure", 0, False), ("OnFailure", 3, True),
    ("OnFailure", None, True), ("Never", 0, False), ("Never", 1, False)])
def test_an_ended_container_is_restarted_as_its_restart_policy_says(policy, status, restarted):
    c = cmd_lab()
    c.pod("default", "p").restart_policy = policy
    recorded = {("default/p", "one"): False, ("default/p", "two"): True}
    acts = plan.plan_containers(c, recorded, set(), {}, {("default/p", "one"): status})
    one = acts[0]
    assert (one.action, one.restart) == (("start", True) if restarted else ("keep", False))
    # a new pod's containers start whatever the policy
    acts = plan.plan_containers(c, recorded, {"default/p"}, {}, {("default/p", "one"): status})
    assert acts[0].action == "start" and not acts[0].restart


def test_pods_whose_namespace_vanished_have_their_processes_stopped():
    prev = {"default/a": {"netns": "nl.t.pod.default.a"}, "default/b": {"netns": "nl.t.pod.default.b"},
            "default/c": {}, "default/d": "torn"}
    assert plan.vanished_pods(prev, {"nl.t.pod.default.a"}) == ["default/b"]
    assert plan.vanished_pods(prev, {"nl.t.pod.default.a", "nl.t.pod.default.b"}) == []
