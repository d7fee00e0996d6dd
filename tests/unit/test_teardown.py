"""live/teardown.py: a host's part of a lab (pure), and the request and answers `netlab down` of a lab on real
hosts exchanges with the agents through the store."""
import threading

from netlab.live import teardown
from netlab.store import MemoryStore


def _node(name, host):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"netlab.dev/host": host}}}


def _pod(name, node, ns="default"):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": {"nodeName": node}}


def test_a_hosts_part_is_its_namespace_its_nodes_and_their_pods():
    nodes = [_node("cp", "a"), _node("w1", "b"), _node("w2", "b")]
    pods = [_pod("web-1", "w1"), _pod("web-2", "cp"), _pod("dns", "w2", "kube-system"), _pod("pending", None)]
    netns, owners = teardown.host_part("lab", "b", nodes, pods)
    assert netns == ["nl.lab.pod.default.web-1", "nl.lab.pod.kube-system.dns", "nl.lab.node.w1", "nl.lab.node.w2",
                     "nl.lab.host.b"]
    assert owners == ["lab/pod/default/web-1/", "lab/pod/kube-system/dns/", "lab/node/w1/", "lab/node/w2/"]
    # a host with no nodes: its namespace only
    assert teardown.host_part("lab", "z", nodes, pods) == (["nl.lab.host.z"], [])


def test_down_waits_for_every_hosts_answer_and_names_those_that_gave_none(monkeypatch):
    store = MemoryStore()
    for n, h in (("cp", "a"), ("w1", "b"), ("w2", "c")):
        store.create(_node(n, h))
    store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "netlab-config",
                                                                        "namespace": "kube-system"}, "data": {}})
    from netlab import live
    from netlab.live import agent
    monkeypatch.setattr(agent, "is_real", lambda lab: True)
    monkeypatch.setattr(live, "store_for", lambda lab: store)

    def agents():   # hosts a and b answer once they see the request; c's agent does not run
        while teardown.requested(store) is None:
            threading.Event().wait(0.01)
        for h in "ab":
            store.create(teardown.answer_object(h, f"m-{h}", 3, 4, True))
    t = threading.Thread(target=agents)
    t.start()
    said = []
    out = teardown.whole_lab("lab", {"backend": "etcd"}, timeout=2.3, progress=said.append)
    t.join()
    assert sorted(out.answered) == ["a", "b"] and out.missing == ["c"]
    assert out.answered["a"] == {"host": "a", "machine": "m-a", "namespaces": "3", "processes": "4",
                                 "scope": "machine"}
    assert said == ["waiting for the agents of host c to remove their part (0 s left)"], said
    # a lab whose store holds no lab any more (another machine's down dropped it): nothing asked
    store2 = MemoryStore()
    monkeypatch.setattr(live, "store_for", lambda lab: store2)
    assert teardown.whole_lab("lab", {"backend": "etcd"}, timeout=0.1) is None and teardown.requested(store2) is None
    # not on real hosts: nothing asked
    monkeypatch.setattr(agent, "is_real", lambda lab: False)
    assert teardown.whole_lab("lab", {"backend": "etcd"}, timeout=0.1) is None
    # a store not in etcd: nothing asked
    monkeypatch.setattr(agent, "is_real", lambda lab: True)
    assert teardown.whole_lab("lab", None, timeout=0.1) is None


def test_up_clears_what_an_interrupted_down_left():
    store = MemoryStore()
    store.create(teardown.request_object("m1", "2026-12-02T10:00:00Z"))
    store.create(teardown.answer_object("a", "m1", 1, 2, False))
    keep = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "netlab-config", "namespace": "kube-system"}}
    store.create(keep)
    teardown.clear(store)
    assert teardown.requested(store) is None
    assert [c["metadata"]["name"] for c in store.list("ConfigMap", "kube-system")] == ["netlab-config"]


def test_a_negative_timeout_is_refused_before_anything_is_looked_at():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "netlab", "down", "nolab", "--timeout", "-1"], capture_output=True,
                       text=True)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Invalid value for '--timeout': -1.0 is not in the range x>=0." in r.stderr, r.stderr
    assert "nothing to remove" not in r.stdout
