"""List-then-watch over the store, with a relist when history was compacted; event pruning."""

from netlab.store import MemoryStore, record_event
from netlab.store.events import prune_events
from netlab.store.informer import Informer


def pod(name):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {}}


def test_informer_lists_then_watches_and_relists_after_compaction():
    check_informer_relists_after_compaction(MemoryStore(history_limit=3))


def check_informer_relists_after_compaction(s):
    """(a store with history_limit=3; the etcd store's integration test runs it too)"""
    s.create(pod("a"))
    s.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    inf = Informer(s, ["Pod"])
    assert [(e.type, e.object["metadata"]["name"]) for e in inf.poll()] == [("ADDED", "a")]
    assert inf.poll() == []
    b = s.create(pod("b"))
    s.update_status(dict(b, status={"phase": "Running"}))
    s.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}})
    assert [(e.type, e.object["metadata"]["name"]) for e in inf.poll()] == [("ADDED", "b"), ("MODIFIED", "b")]
    # more changes than the history keeps: the informer relists and reports the difference
    s.delete("Pod", "default", "a")
    for i in range(5):
        s.create(pod(f"c{i}"))
    evs = inf.poll()
    assert inf.relists == 1
    assert sorted((e.type, e.object["metadata"]["name"]) for e in evs) == [
        ("ADDED", "c0"), ("ADDED", "c1"), ("ADDED", "c2"), ("ADDED", "c3"), ("ADDED", "c4"), ("DELETED", "a")]
    assert [p["metadata"]["name"] for p in inf.list("Pod")] == ["b", "c0", "c1", "c2", "c3", "c4"]
    assert inf.list("Pod")[0]["status"] == {"phase": "Running"}


def test_prune_events_after_ttl():
    t = [1000.0]
    s = MemoryStore(clock=lambda: t[0])
    p = s.create(pod("a"))
    record_event(s, p, "Normal", "Old", "m", "c")
    t[0] += 3000
    record_event(s, p, "Normal", "New", "m", "c")
    t[0] += 1000
    assert prune_events(s, t[0]) == 1
    assert [e["reason"] for e in s.list("Event")] == ["New"]
