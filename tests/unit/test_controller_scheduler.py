"""The scheduler: nodeName wins, nodeSelector, taints and tolerations, spreading, messages."""

from netlab.controllers import scheduler
from netlab.controllers.base import Snapshot

NOW = 1_800_000_000.0


def node(name, taints=(), unschedulable=False, labels=None):
    spec = {"taints": list(taints)}
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def pod(name, owner="rs1", created="2027-01-01T00:00:00Z", **spec):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": name, "creationTimestamp": created,
                         "ownerReferences": [{"kind": "ReplicaSet", "name": owner, "uid": owner, "controller": True}]},
            "spec": spec, "status": {"phase": "Pending"}}


CP = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def bindings(acts):
    return {a.obj["metadata"]["name"]: a.obj["spec"]["nodeName"] for a in acts if a.verb == "bind"}


def test_binds_and_spreads_a_replicaset_and_avoids_control_plane():
    nodes = [node("cp", [CP]), node("w1"), node("w2")]
    pods = [pod(f"p{i}", created=f"2027-01-01T00:00:0{i}Z") for i in range(4)]
    acts = scheduler.decide(Snapshot(nodes + pods), NOW)
    b = bindings(acts)
    assert b == {"p0": "w1", "p1": "w2", "p2": "w1", "p3": "w2"}
    ev = [a.event for a in acts if a.verb == "event"]
    assert ev[0] == {"type": "Normal", "reason": "Scheduled", "message": "Successfully assigned default/p0 to w1",
                     "component": "default-scheduler"}
    st = [a.obj for a in acts if a.verb == "bind"][0]
    assert st["status"]["conditions"][-1]["type"] == "PodScheduled" and st["status"]["conditions"][-1]["status"] == "True"


def test_spreads_by_owner_before_total_load():
    nodes = [node("w1"), node("w2")]
    bound = [dict(pod(f"other{i}", owner="rsX"), spec={"nodeName": "w1"}) for i in range(3)]
    mine = dict(pod("mine0"), spec={"nodeName": "w2"})
    acts = scheduler.decide(Snapshot(nodes + bound + [mine, pod("new")]), NOW)
    assert bindings(acts) == {"new": "w1"}  # w1 has no pod of rs1 yet, though it is busier


def test_node_name_wins_and_is_not_rescheduled():
    nodes = [node("w1", [{"key": "x", "effect": "NoSchedule"}])]
    acts = scheduler.decide(Snapshot(nodes + [pod("fixed", nodeName="w1")]), NOW)
    assert acts == []


def test_node_selector_and_tolerations():
    nodes = [node("cp", [CP], labels={"disk": "ssd"}), node("w1", labels={"disk": "hdd"})]
    p = pod("p", nodeSelector={"disk": "ssd"}, tolerations=[{"key": "node-role.kubernetes.io/control-plane",
                                                             "operator": "Exists", "effect": "NoSchedule"}])
    assert bindings(scheduler.decide(Snapshot(nodes + [p]), NOW)) == {"p": "cp"}


def test_failed_scheduling_message_like_kubectl():
    nodes = [node("cp", [CP]), node("w1", unschedulable=True,
                                    taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
             node("w2", [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
             node("w3", labels={"zone": "b"})]
    p = pod("p", nodeSelector={"zone": "a"})
    acts = scheduler.decide(Snapshot(nodes + [p]), NOW)
    ev = [a.event for a in acts if a.verb == "event"][0]
    assert ev["type"] == "Warning" and ev["reason"] == "FailedScheduling"
    assert ev["message"] == (
        "0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
        "1 node(s) were unschedulable. preemption: 0/4 nodes are available: 4 Preemption is not helpful "
        "for scheduling.")
    cond = [a.obj for a in acts if a.verb == "update_status"][0]["status"]["conditions"][-1]
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    # the same failure again writes nothing (no event storm)
    p["status"] = cond and {"phase": "Pending", "conditions": [cond]}
    assert scheduler.decide(Snapshot(nodes + [p]), NOW) == []


def test_toleration_matching_rules():
    t = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert scheduler.toleration_matches({"key": "k", "operator": "Equal", "value": "v"}, t)
    assert not scheduler.toleration_matches({"key": "k", "value": "w"}, t)
    assert scheduler.toleration_matches({"key": "k", "operator": "Exists"}, t)
    assert scheduler.toleration_matches({"operator": "Exists"}, t)
    assert not scheduler.toleration_matches({"key": "k", "operator": "Exists", "effect": "NoExecute"}, t)
    assert not scheduler.toleration_matches({"value": "v"}, t)


def test_other_schedulers_pods_and_deleting_nodes_are_left_alone():
    gone = node("w0")
    gone["metadata"]["deletionTimestamp"] = "2027-01-01T00:00:00Z"
    mine, theirs = pod("mine"), pod("theirs", schedulerName="my-scheduler")
    acts = scheduler.decide(Snapshot([gone, node("w1"), mine, theirs]), NOW)
    assert bindings(acts) == {"mine": "w1"}


def _ports(*ports, host_network=False):
    spec = {"containers": [{"name": "c", "ports": list(ports)}]}
    if host_network:
        spec["hostNetwork"] = True
    return spec


def test_node_ports_keeps_two_host_network_pods_with_one_port_apart():
    """kube-scheduler's NodePorts: a hostNetwork pod's ports are host ports; the second pod wanting
    8080/TCP goes to the other node, and with no other node it stays Pending with the scheduler's reason."""
    first = dict(pod("a", owner="x"), spec=dict(_ports({"containerPort": 8080}, host_network=True), nodeName="w1"))
    second = pod("b", owner="y", **_ports({"containerPort": 8080}, host_network=True))
    acts = scheduler.decide(Snapshot([node("w1"), node("w2")] + [first, second]), NOW)
    assert bindings(acts) == {"b": "w2"}
    acts = scheduler.decide(Snapshot([node("w1")] + [first, second]), NOW)
    assert bindings(acts) == {}
    ev = [a.event for a in acts if a.verb == "event"][0]
    assert ev["reason"] == "FailedScheduling"
    assert ev["message"].startswith("0/1 nodes are available: 1 node(s) didn't have free ports for the requested "
                                    "pod ports.")


def test_node_ports_protocol_and_host_ip():
    """Another protocol or another (non-wildcard) hostIP does not conflict; 0.0.0.0 overlaps any address;
    two pending pods wanting the same hostPort are not put on one node in one pass."""
    bound = dict(pod("a", owner="x"), spec=dict(_ports({"containerPort": 80, "hostPort": 8080, "hostIP": "172.18.0.2"}),
                                                nodeName="w1"))
    udp = pod("u", owner="u", **_ports({"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}))
    other_ip = pod("o", owner="o", **_ports({"containerPort": 80, "hostPort": 8080, "hostIP": "172.18.0.9"}))
    acts = scheduler.decide(Snapshot([node("w1")] + [bound, udp, other_ip]), NOW)
    assert bindings(acts) == {"u": "w1", "o": "w1"}
    wild = pod("w", owner="w", **_ports({"containerPort": 80, "hostPort": 8080}))
    assert bindings(scheduler.decide(Snapshot([node("w1")] + [bound, wild]), NOW)) == {}
    twins = [pod(f"t{i}", owner="t", created=f"2027-01-01T00:00:0{i}Z", **_ports({"containerPort": 80, "hostPort": 81}))
             for i in range(2)]
    assert sorted(bindings(scheduler.decide(Snapshot([node("w1"), node("w2")] + twins), NOW)).values()) == ["w1", "w2"]


def test_node_ports_respects_ports_netlab_uses_in_the_node():
    """flannel's VXLAN port (the Node's reserved-ports annotation) is not given to a hostNetwork pod."""
    n = node("w1")
    n["metadata"]["annotations"] = {scheduler.RESERVED_PORTS: "8472/UDP"}
    vx = pod("vx", **_ports({"containerPort": 8472, "protocol": "UDP"}, host_network=True))
    acts = scheduler.decide(Snapshot([n, vx]), NOW)
    assert bindings(acts) == {}
    assert scheduler.NODE_PORTS in [a.event for a in acts if a.verb == "event"][0]["message"]
    tcp = pod("tcp", **_ports({"containerPort": 8472}, host_network=True))
    assert bindings(scheduler.decide(Snapshot([n, tcp]), NOW)) == {"tcp": "w1"}


def _reference(nodes, pods):
    """The scheduler's rules applied the plain way (every pod filtered against every node, the best of all
    fitting nodes by min): what decide's memoized filtering and heaps must reproduce exactly."""
    from netlab.store.meta import controller_ref
    load, owner_load, ports = {}, {}, {}
    out = {}
    for p in sorted(pods, key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"])):
        owner = controller_ref(p)["uid"]
        fits = [n["metadata"]["name"] for n in nodes
                if scheduler.filter_node(p, n, ports.get(n["metadata"]["name"], [])) is None]
        if not fits:
            continue
        best = min(fits, key=lambda n: (owner_load.get((n, owner), 0), load.get(n, 0), n))
        out[p["metadata"]["name"]] = best
        load[best] = load.get(best, 0) + 1
        owner_load[(best, owner)] = owner_load.get((best, owner), 0) + 1
        ports.setdefault(best, []).extend(scheduler.host_ports(p))
    return out


def test_memoized_filtering_binds_as_the_plain_rules_do():
    import random
    rnd = random.Random(7)
    taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    tol = [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]
    for case in range(60):
        nodes = []
        for i in range(rnd.randint(1, 12)):
            nodes.append(node(f"n{i:02d}", [CP] if rnd.random() < 0.15 else [taint] if rnd.random() < 0.2 else [],
                              unschedulable=rnd.random() < 0.1,
                              labels={"zone": rnd.choice("ab")}))
        pods = []
        for i in range(rnd.randint(1, 80)):
            spec = {}
            if rnd.random() < 0.3:
                spec["nodeSelector"] = {"zone": rnd.choice("ab")}
            if rnd.random() < 0.3:
                spec["tolerations"] = tol
            if rnd.random() < 0.15:
                spec["containers"] = [{"name": "c", "ports": [{"containerPort": 80, "hostPort": rnd.choice([80, 81])}]}]
            pods.append(pod(f"p{i:03d}", owner=rnd.choice(["rs1", "rs2", "rs3"]),
                            created=f"2027-01-01T00:00:{rnd.randint(0, 59):02d}Z", **spec))
        got = bindings(scheduler.decide(Snapshot(nodes + pods), NOW))
        assert got == _reference(nodes, pods), case


def test_prefer_no_schedule_is_avoided_while_another_node_fits_and_a_toleration_lifts_it():
    soft = {"key": "maint", "value": "soon", "effect": "PreferNoSchedule"}
    nodes = [node("w1", [soft]), node("w2"), node("w3", [soft, dict(soft, key="old")])]
    pods = [pod(f"p{i}", created=f"2027-01-01T00:00:0{i}Z") for i in range(4)]
    # w2 takes every pod (spreading comes after the taints); w1 (one taint) is still better than w3 (two)
    assert bindings(scheduler.decide(Snapshot(nodes + pods), NOW)) == {f"p{i}": "w2" for i in range(4)}
    assert bindings(scheduler.decide(Snapshot([nodes[0], nodes[2], pods[0]]), NOW)) == {"p0": "w1"}
    # not a filter: a node with only PreferNoSchedule taints takes pods when it is the only one
    assert bindings(scheduler.decide(Snapshot([nodes[2], pods[0]]), NOW)) == {"p0": "w3"}
    tolerant = [pod(f"t{i}", owner="rs2", created=f"2027-01-01T00:00:0{i}Z",
                    tolerations=[{"key": "maint", "operator": "Exists"}, {"key": "old", "operator": "Exists"}])
                for i in range(3)]
    assert bindings(scheduler.decide(Snapshot(nodes + tolerant), NOW)) == {"t0": "w1", "t1": "w2", "t2": "w3"}
