"""The EndpointSlice controller: selection, named target ports per pod, conditions."""

from netlab.controllers import endpointslice as eps
from netlab.controllers.base import Snapshot
from netlab.controllers.runner import apply_actions
from netlab.store import MemoryStore
from netlab.store.meta import fmt_time

NOW = 1_800_000_000.0


def svc(selector=None, publish=False, target="http"):
    s = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid"},
         "spec": {"selector": {"app": "web"} if selector is None else selector,
                  "ports": [{"name": "http", "port": 80, "targetPort": target, "protocol": "TCP"}]}}
    if publish:
        s["spec"]["publishNotReadyAddresses"] = True
    return s


def pod(name, ip="10.0.0.1", ready=True, deleting=False, port=8080, phase="Running", labels=None, node="n1"):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": name, "namespace": "default", "uid": name, "labels": labels or {"app": "web"}},
         "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
         "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    if ip:
        p["status"]["podIP"] = ip
    if deleting:
        p["metadata"]["deletionTimestamp"] = fmt_time(NOW)
    return p


def conditions(objs):
    out = {}
    for a in eps.decide(Snapshot(objs), NOW):
        for e in a.obj.get("endpoints", []):
            out[e["targetRef"]["name"]] = e["conditions"]
    return out


def test_endpoint_conditions_ready_serving_terminating():
    c = conditions([svc(), pod("ready"), pod("unready", "10.0.0.2", ready=False),
                    pod("term-ready", "10.0.0.3", deleting=True), pod("term-unready", "10.0.0.4", False, True),
                    pod("no-ip", ip=None), pod("done", "10.0.0.5", phase="Succeeded"),
                    pod("other", "10.0.0.6", labels={"app": "db"})])
    assert c == {
        "ready": {"ready": True, "serving": True, "terminating": False},
        "unready": {"ready": False, "serving": False, "terminating": False},
        "term-ready": {"ready": False, "serving": True, "terminating": True},
        "term-unready": {"ready": False, "serving": False, "terminating": True},
    }


def test_publish_not_ready_addresses():
    # the EndpointSlice controller's podToEndpoint: ready is forced true (terminating or not); serving
    # stays the pod's Ready
    c = conditions([svc(publish=True), pod("unready", ready=False), pod("term", "10.0.0.3", ready=False, deleting=True)])
    assert c["unready"] == {"ready": True, "serving": False, "terminating": False}
    assert c["term"] == {"ready": True, "serving": False, "terminating": True}


def test_named_target_port_resolved_per_pod():
    acts = eps.decide(Snapshot([svc(), pod("a", port=8080), pod("b", "10.0.0.2", port=9090),
                                pod("c", "10.0.0.3", port=8080)]), NOW)
    slices = sorted(([e["targetRef"]["name"] for e in a.obj["endpoints"]], a.obj["ports"]) for a in acts)
    assert slices == [(["a", "c"], [{"name": "http", "port": 8080, "protocol": "TCP"}]),
                      (["b"], [{"name": "http", "port": 9090, "protocol": "TCP"}])]
    s = acts[0].obj
    assert s["metadata"]["labels"] == {"kubernetes.io/service-name": "web",
                                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert s["addressType"] == "IPv4" and s["metadata"]["ownerReferences"][0]["uid"] == "svc-uid"
    assert s["endpoints"][0]["nodeName"] == "n1"


def test_numeric_target_port_and_no_selector():
    acts = eps.decide(Snapshot([svc(target=8443), pod("a")]), NOW)
    assert acts[0].obj["ports"][0]["port"] == 8443
    assert eps.decide(Snapshot([svc(selector={}), pod("a")]), NOW) == []


def test_slices_follow_changes_through_a_store():
    store = MemoryStore(clock=lambda: NOW)
    s = store.create(svc())
    store.create(pod("a"))

    def sync():
        snap = Snapshot(store.list("Service") + store.list("Pod") + store.list("EndpointSlice"))
        acts = eps.decide(snap, NOW)
        if acts:
            apply_actions(store, acts, NOW)
        return acts

    sync()
    assert sync() == []  # converged
    p = store.get("Pod", "default", "a")
    p["status"]["conditions"][0]["status"] = "False"
    store.update_status(p)
    assert [a.verb for a in sync()] == ["update"]
    [sl] = store.list("EndpointSlice")
    assert sl["endpoints"][0]["conditions"]["ready"] is False
    store.delete("Pod", "default", "a")
    assert [a.verb for a in sync()] == ["delete"]
    assert store.list("EndpointSlice") == [] and s


def test_usable_endpoints_fall_back_to_serving_terminating_ones():
    objs = [svc(), pod("ready", node="n1"), pod("term", "10.0.0.2", deleting=True, node="n2"),
            pod("unready", "10.0.0.3", ready=False, node="n2")]
    slices = [a.obj for a in eps.decide(Snapshot(objs), NOW)]
    names = lambda es: sorted(e["targetRef"]["name"] for e in es)  # noqa: E731
    assert names(eps.usable_endpoints(slices)) == ["ready"]
    assert names(eps.usable_endpoints(slices, node="n2")) == ["term"]  # local: only n2's, fallback there
    objs[1] = pod("ready", deleting=True, node="n1")  # every pod terminating now
    slices = [a.obj for a in eps.decide(Snapshot(objs), NOW)]
    assert names(eps.usable_endpoints(slices)) == ["ready", "term"]
    objs[1] = pod("ready", ready=False, deleting=True, node="n1")
    objs[2] = pod("term", "10.0.0.2", ready=False, deleting=True, node="n2")
    slices = [a.obj for a in eps.decide(Snapshot(objs), NOW)]
    assert eps.usable_endpoints(slices) == []
