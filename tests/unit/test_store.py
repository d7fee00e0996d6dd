"""The store interface: etcd-like revisions, Kubernetes-like object semantics, on both backends."""

import os
import stat
import threading
import time

import pytest

from netlab.store import (AlreadyExists, Conflict, Invalid, MemoryStore, NotFoundError, SQLiteStore, TooOld,
                          record_event)
from netlab.store.events import events_for
from netlab.store.meta import fmt_time, parse_selector, parse_time, selector_matches


class Clock:
    def __init__(self, t=1_700_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    clock = Clock()
    s = MemoryStore(clock=clock) if request.param == "memory" else SQLiteStore(str(tmp_path), clock=clock)
    s.test_clock = clock
    yield s
    s.close()


def pod(name, ns=None, labels=None, spec=None):
    md = {"name": name, "labels": labels or {}}
    if ns:
        md["namespace"] = ns
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec or {"containers": [{"name": "c"}]}}


def test_create_sets_metadata_and_revision(store):
    a = store.create(pod("a"))
    b = store.create(pod("b"))
    assert a["metadata"]["namespace"] == "default"
    assert a["metadata"]["generation"] == 1 and a["metadata"]["uid"]
    assert a["metadata"]["creationTimestamp"] == "2023-11-14T22:13:20Z"
    assert int(b["metadata"]["resourceVersion"]) == int(a["metadata"]["resourceVersion"]) + 1
    assert store.revision() == int(b["metadata"]["resourceVersion"])
    with pytest.raises(AlreadyExists, match='Pod "a" already exists in namespace "default"'):
        store.create(pod("a"))
    node = store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "namespace": "x"}})
    assert "namespace" not in node["metadata"]
    assert store.get("Node", None, "n1")["metadata"]["name"] == "n1"


def test_generate_name_and_invalid_objects(store):
    from netlab.store import Invalid
    a = store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-"}, "spec": {}})
    b = store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-"}, "spec": {}})
    for p in (a, b):
        assert p["metadata"]["name"].startswith("web-") and len(p["metadata"]["name"]) == 9
        assert set(p["metadata"]["name"][4:]) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert a["metadata"]["name"] != b["metadata"]["name"]
    with pytest.raises(Invalid, match="needs kind and metadata.name"):
        store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {}})
    assert len(store.list("Pod")) == 2


def test_get_list_namespace_and_selector(store):
    store.create(pod("a", labels={"app": "web", "tier": "fe"}))
    store.create(pod("b", labels={"app": "db"}))
    store.create(pod("c", ns="other", labels={"app": "web"}))
    with pytest.raises(NotFoundError, match='Pod "zz" not found'):
        store.get("Pod", "default", "zz")
    assert [p["metadata"]["name"] for p in store.list("Pod")] == ["a", "b", "c"]
    assert [p["metadata"]["name"] for p in store.list("Pod", "default")] == ["a", "b"]
    assert [p["metadata"]["name"] for p in store.list("Pod", label_selector="app=web")] == ["a", "c"]
    assert [p["metadata"]["name"] for p in store.list("Pod", label_selector="app in (web,db),!tier")] == ["b", "c"]
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]}
    assert [p["metadata"]["name"] for p in store.list("Pod", label_selector=sel)] == ["a"]


def test_list_with_revision_is_a_consistent_snapshot(store):
    store.create(pod("a"))
    store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    lists, rev = store.list_with_revision(["Pod", "Node", "Service"])
    assert rev == store.revision() == 2
    assert [len(lists[k]) for k in ("Pod", "Node", "Service")] == [1, 1, 0]


def test_snapshot_reuses_unchanged_objects_and_sees_every_change(store):
    a = store.create(pod("a"))
    store.create(pod("b"))
    first, rev = store.snapshot(["Pod"])
    again, rev2 = store.snapshot(["Pod"])
    assert rev == rev2 and [x is y for x, y in zip(first["Pod"], again["Pod"])] == [True, True]
    store.update_status(dict(a, status={"phase": "Running"}))
    store.delete("Pod", "default", "b")
    with pytest.raises(AlreadyExists):
        with store.transaction():
            store.create(pod("c"))
            store.create(pod("a"))
    now, _ = store.snapshot(["Pod"])
    assert [p["metadata"]["name"] for p in now["Pod"]] == ["a"]
    assert now["Pod"][0]["status"] == {"phase": "Running"} and now["Pod"][0] is not first["Pod"][0]
    store.create(pod("c"))
    assert [p["metadata"]["name"] for p in store.snapshot(["Pod"])[0]["Pod"]] == ["a", "c"]
    if isinstance(store, SQLiteStore):   # what was written since the last snapshot comes with its scan
        c = dict(store.get("Pod", "default", "c"), status={"phase": "Running"})
        loads, real = [], store._load
        store._load = lambda k: loads.append(k) or real(k)
        store.update_status(c)
        loads.clear()
        assert store.snapshot(["Pod"])[0]["Pod"][1]["status"] == {"phase": "Running"} and loads == []


def test_snapshot_index_is_shared_until_its_kind_is_written(store):
    from netlab.controllers.base import Snapshot
    store.create(pod("b"))
    store.create(pod("a"))
    store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}})
    first, rev = store.snapshot_index(["Pod", "Node"])
    assert list(first["Pod"]) == [("default", "a"), ("default", "b")] and list(first["Node"]) == [("", "n")]
    store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "m"}})
    again, rev2 = store.snapshot_index(["Pod", "Node"])
    assert rev2 > rev and again["Pod"] is first["Pod"]          # pods not written: the same table
    assert again["Node"] is not first["Node"] and sorted(again["Node"]) == [("", "m"), ("", "n")]
    store.update_status(dict(store.get("Pod", "default", "a"), status={"phase": "Running"}))
    snap = Snapshot.from_store(store, ["Pod"])
    assert snap.get("Pod", "default", "a")["status"] == {"phase": "Running"}
    assert [p["metadata"]["name"] for p in snap.list("Pod")] == ["a", "b"] and snap.revision == store.revision()
    with store.transaction():   # inside a transaction: what it wrote, not the cache
        store.delete("Pod", "default", "b")
        inside, _ = store.snapshot_index(["Pod"])
        assert list(inside["Pod"]) == [("default", "a")]
    assert list(store.snapshot_index(["Pod"])[0]["Pod"]) == [("default", "a")]


def test_kind_revisions_move_only_with_writes_of_that_kind(store):
    before = store.kind_revisions(["Pod", "Node"])
    store.create(pod("a"))
    after = store.kind_revisions(["Pod", "Node"])
    assert after[0] > before[0] and after[1] == before[1]
    with pytest.raises(AlreadyExists):
        with store.transaction():
            store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}})
            store.create(pod("a"))
    assert store.kind_revisions(["Pod", "Node"]) == after  # a rolled-back write moves nothing
    store.delete("Pod", "default", "a")
    assert store.kind_revisions(["Pod"])[0] == store.revision()


def test_returned_objects_are_copies(store):
    a = store.create(pod("a"))
    a["spec"]["containers"][0]["name"] = "changed"
    assert store.get("Pod", "default", "a")["spec"]["containers"][0]["name"] == "c"


def test_update_optimistic_concurrency_and_generation(store):
    a = store.create(pod("a"))
    a2 = dict(a, spec={"containers": [{"name": "d"}]})
    b = store.update(a2)
    assert b["metadata"]["generation"] == 2
    with pytest.raises(Conflict, match="the object has been modified"):
        store.update(a2)  # stale resourceVersion
    # a metadata-only change does not bump the generation
    b["metadata"]["labels"] = {"x": "y"}
    c = store.update(b)
    assert c["metadata"]["generation"] == 2 and c["metadata"]["labels"] == {"x": "y"}
    # an update without resourceVersion is unconditional
    c["metadata"].pop("resourceVersion")
    c["spec"] = {"containers": [{"name": "e"}]}
    assert store.update(c)["metadata"]["generation"] == 3


def test_update_keeps_status_and_update_status_keeps_spec(store):
    a = store.create(pod("a"))
    s = store.update_status(dict(a, status={"phase": "Running"}, spec={"ignored": True}))
    assert s["status"] == {"phase": "Running"} and s["spec"] == a["spec"]
    assert s["metadata"]["generation"] == 1
    u = store.update(dict(s, status={"phase": "Failed"}))
    assert u["status"] == {"phase": "Running"}


def test_bind_sets_the_node_and_status_in_one_write_and_only_once(store):
    a = store.create(pod("a"))
    rev = store.revision()
    status = {"conditions": [{"type": "PodScheduled", "status": "True"}]}
    b = store.bind(dict(a, spec=dict(a["spec"], nodeName="n1"), status=status))
    assert store.revision() == rev + 1   # one write: a watcher sees one MODIFIED
    assert b["spec"]["nodeName"] == "n1" and b["status"] == status
    assert b["spec"]["containers"] == a["spec"]["containers"] and b["metadata"]["generation"] == 2
    assert [e.type for e in store.watch(rev)] == ["MODIFIED"]
    with pytest.raises(Conflict, match="already assigned to node 'n1'"):
        store.bind(dict(b, spec=dict(b["spec"], nodeName="n2")))
    with pytest.raises(Conflict):   # an older resourceVersion is refused as update() refuses it
        store.bind(dict(store.create(pod("c")), spec={"nodeName": "n1"}, metadata=dict(a["metadata"], name="c")))
    assert store.get("Pod", "default", "a")["spec"]["nodeName"] == "n1"


def test_noop_writes_take_no_revision(store):
    a = store.create(pod("a"))
    rev = store.revision()
    assert store.update(a)["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]
    store.update_status(a)
    assert store.revision() == rev


def test_what_is_stored_comes_back_as_written_through_the_store_codec(store):
    """Stored texts are orjson's (store/api._dump): non-ASCII text and nested keys written in any order come
    back as given, an integer beyond 64 bits as a float; a re-write of the same object in another key
    order is no change."""
    from netlab.store.api import _dump
    labels = {"z": "ü", "a": "日本"}
    a = store.create(pod("a", labels=labels, spec={"containers": [{"name": "c"}], "big": 2 ** 70, "f": 1.5}))
    got = store.get("Pod", "default", "a")
    assert got["metadata"]["labels"] == labels and got["spec"]["f"] == 1.5
    assert got["spec"]["big"] == float(2 ** 70)   # as the API server's decoder reads it
    assert _dump({"b": 1, "a": {"y": 2, "x": "ü"}}) == '{"a":{"x":"ü","y":2},"b":1}'
    rev = store.revision()
    shuffled = dict(reversed(list(got.items())))
    shuffled["metadata"] = dict(reversed(list(got["metadata"].items())))
    store.update(shuffled)
    assert store.revision() == rev and a["metadata"]["uid"] == got["metadata"]["uid"]


def test_writes_that_return_no_copy_store_the_same(store):
    """copy=False (a caller that drops what a write returns: the controllers' runner, the event recorder):
    None back, the same object and revisions stored as with a copy; the history a watcher reads has every
    write, in order, also within the transaction that wrote them."""
    rev = store.revision()
    with store.transaction():
        assert store.create(pod("a"), copy=False) is None
        a = store.get("Pod", "default", "a")
        a["metadata"]["labels"] = {"x": "1"}
        assert store.update(a, copy=False) is None
        a = store.get("Pod", "default", "a")
        assert store.update_status(dict(a, status={"phase": "Running"}), copy=False) is None
        assert [(e.type, e.object["metadata"]["resourceVersion"]) for e in store.watch(rev)] == [
            ("ADDED", str(rev + 1)), ("MODIFIED", str(rev + 2)), ("MODIFIED", str(rev + 3))]
    got = store.get("Pod", "default", "a")
    assert got["metadata"]["labels"] == {"x": "1"} and got["status"] == {"phase": "Running"}
    assert got["metadata"]["resourceVersion"] == str(rev + 3) == str(store.revision())
    with pytest.raises(AlreadyExists):
        store.create(pod("a"), copy=False)


def test_graceful_delete_and_finalizers(store):
    clock = store.test_clock
    store.create(pod("a"))
    marked = store.delete("Pod", "default", "a", grace_seconds=30)
    assert marked["metadata"]["deletionTimestamp"] == fmt_time(clock.t + 30)
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert store.get("Pod", "default", "a")["metadata"]["deletionTimestamp"]
    # a longer grace does not extend it; a shorter one shortens it
    assert store.delete("Pod", "default", "a", grace_seconds=60)["metadata"]["deletionGracePeriodSeconds"] == 30
    assert store.delete("Pod", "default", "a", grace_seconds=5)["metadata"]["deletionGracePeriodSeconds"] == 5
    store.delete("Pod", "default", "a", grace_seconds=0)
    assert store.try_get("Pod", "default", "a") is None

    f = pod("f")
    f["metadata"]["finalizers"] = ["netlab.io/cleanup"]
    store.create(f)
    m = store.delete("Pod", "default", "f")
    assert m["metadata"]["deletionTimestamp"] and store.try_get("Pod", "default", "f")
    m["metadata"]["finalizers"] = []
    store.update(m)
    assert store.try_get("Pod", "default", "f") is None

    # with a grace period running, removing the finalizer leaves the removal to the final delete
    g = pod("g")
    g["metadata"]["finalizers"] = ["netlab.io/cleanup"]
    store.create(g)
    m = store.delete("Pod", "default", "g", grace_seconds=30)
    m["metadata"]["finalizers"] = []
    store.update(m)
    assert store.get("Pod", "default", "g")["metadata"]["deletionTimestamp"]
    store.delete("Pod", "default", "g", grace_seconds=0)
    assert store.try_get("Pod", "default", "g") is None


def test_watch_orders_changes_and_reports_too_old(tmp_path):
    for s in (MemoryStore(history_limit=5), SQLiteStore(str(tmp_path), history_limit=5)):
        check_watch_orders_changes_and_reports_too_old(s)
        s.close()


def check_watch_orders_changes_and_reports_too_old(s):
    """(a store with history_limit=5; every backend's conformance test runs it)"""
    start = s.revision()
    a = s.create(pod("a"))
    s.update_status(dict(a, status={"phase": "Running"}))
    s.delete("Pod", "default", "a")
    evs = s.watch(start)
    assert [(e.type, e.object["metadata"]["name"]) for e in evs] == [
        ("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert [e.revision for e in evs] == [1, 2, 3]
    assert s.watch(2)[0].type == "DELETED"
    for i in range(10):
        s.create(pod(f"p{i}"))
    with pytest.raises(TooOld, match="too old resource version: 0"):
        s.watch(0)
    assert len(s.watch(s.revision() - 5)) == 5
    assert [e.object["metadata"]["name"] for e in s.watch(s.revision() - 2, kind="Pod")] == ["p8", "p9"]


def test_transaction_is_atomic(store):
    store.create(pod("keep"))
    rev = store.revision()
    with pytest.raises(AlreadyExists):
        with store.transaction():
            store.create(pod("new1"))
            store.delete("Pod", "default", "keep")
            store.create(pod("new1"))
    assert store.revision() == rev
    assert [p["metadata"]["name"] for p in store.list("Pod")] == ["keep"]
    assert store.watch(rev) == []
    with store.transaction():
        store.create(pod("x"))
        store.create(pod("y"))
    assert store.revision() == rev + 2


def test_sqlite_file_mode_and_reopen(tmp_path):
    s = SQLiteStore(str(tmp_path / "lab"))
    s.create(pod("a"))
    s.close()
    assert stat.S_IMODE(os.stat(tmp_path / "lab" / "store.db").st_mode) == 0o600
    s2 = SQLiteStore(str(tmp_path / "lab"))
    assert s2.get("Pod", "default", "a")["metadata"]["resourceVersion"] == "1"
    assert s2.revision() == 1
    s2.close()


def test_wait_sees_another_connections_commit(tmp_path):
    reader = SQLiteStore(str(tmp_path))
    writer = SQLiteStore(str(tmp_path))
    rev = reader.wait(0, timeout=0.05)
    assert rev == 0

    def later():
        time.sleep(0.2)
        writer.create(pod("a"))

    t = threading.Thread(target=later)
    t.start()
    t0 = time.monotonic()
    assert reader.wait(0, timeout=5) == 1
    assert time.monotonic() - t0 < 2
    t.join()
    assert reader.get("Pod", "default", "a")
    reader.close()
    writer.close()


def test_event_aggregation(store):
    clock = store.test_clock
    d = store.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {}})
    record_event(store, d, "Normal", "ScalingReplicaSet", "Scaled up replica set web-1 from 0 to 1", "deployment-controller")
    clock.t += 60
    e = record_event(store, d, "Normal", "ScalingReplicaSet", "Scaled up replica set web-1 from 0 to 1",
                     "deployment-controller")
    record_event(store, d, "Warning", "Other", "x", "deployment-controller")
    assert e["count"] == 2 and e["firstTimestamp"] != e["lastTimestamp"]
    assert e["involvedObject"]["kind"] == "Deployment" and e["source"]["component"] == "deployment-controller"
    assert [x["reason"] for x in events_for(store, d)] == ["ScalingReplicaSet", "Other"] or \
        [x["reason"] for x in events_for(store, d)] == ["Other", "ScalingReplicaSet"]
    assert len(store.list("Event")) == 2
    n = store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    assert record_event(store, n, "Normal", "NodeNotReady", "m", "node-controller")["metadata"]["namespace"] == "default"
    with pytest.raises(ValueError):
        record_event(store, n, "Bad", "r", "m", "c")


def test_events_are_correlated_as_client_go_does(store):
    """store/events.py: a recorder combines similar events past 10 (same object, type and reason, another
    message) into one whose count grows, and writes at most 25 events about one object at once, then one
    every 5 minutes; an event held back is counted in the next write of it. Another recorder (another
    process: another store object) starts afresh."""
    from netlab.store.events import COMBINED, Correlator, correlator
    clock = store.test_clock
    rs = store.create({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1"}, "spec": {}})
    written = [record_event(store, rs, "Normal", "SuccessfulCreate", f"Created pod: web-1-{i}", "replicaset-controller")
               for i in range(100)]
    evs = events_for(store, rs)
    plain = sorted(e["message"] for e in evs if not e["message"].startswith(COMBINED))
    assert plain == sorted(f"Created pod: web-1-{i}" for i in range(9))
    combined = [e for e in evs if e["message"].startswith(COMBINED)]
    # 25 written (9 on their own, 16 the combined one's), the 75 after held back by the spam filter
    assert len(combined) == 1 and combined[0]["count"] == 16 and written.count(None) == 75
    assert combined[0]["message"] == COMBINED + "Created pod: web-1-24"
    # another object has its own budget; the scheduler's events of each pod are all written
    for i in range(30):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"web-1-{i}", "namespace": "default", "uid": f"u{i}"}}
        assert record_event(store, pod, "Normal", "Scheduled", f"assigned to n{i}", "default-scheduler") is not None
    # five minutes on: one token more; the write carries the 75 held back too
    clock.t += 300
    e = record_event(store, rs, "Normal", "SuccessfulCreate", "Created pod: web-1-100", "replicaset-controller")
    assert e["count"] == 16 + 75 + 1 and e["message"] == COMBINED + "Created pod: web-1-100"
    assert record_event(store, rs, "Normal", "SuccessfulCreate", "Created pod: web-1-101", "replicaset-controller") is None
    # ten minutes without a similar event: messages stand on their own again (the budget has refilled by 2)
    clock.t += 601
    e = record_event(store, rs, "Normal", "SuccessfulCreate", "Created pod: web-1-102", "replicaset-controller")
    assert e["message"] == "Created pod: web-1-102" and e["count"] == 1
    # a recorder started again (a new process) remembers nothing
    store._event_correlator = Correlator()
    assert correlator(store).buckets == {} and correlator(store).similar == {}


def test_the_correlators_memory_forgets_the_least_recently_seen_first(monkeypatch):
    """client-go's LRU: past CACHE_SIZE objects, the one seen longest ago is forgotten (a new budget for it), one
    seen again stays."""
    from netlab.store import events
    monkeypatch.setattr(events, "CACHE_SIZE", 3)
    c = events.Correlator()
    for k in ("a", "b", "c"):
        assert c.allow((k,), 0.0)
    assert c.allow(("a",), 0.0)          # a seen again: now the most recent
    assert c.allow(("d",), 0.0)          # one too many: b (seen longest ago) goes
    assert list(c.buckets) == [("c",), ("a",), ("d",)]
    assert c.buckets[("a",)][0] == events.SPAM_BURST - 2 and len(c.buckets) == 3


def test_record_events_writes_what_record_event_writes_one_by_one(store):
    """events.record_events (a pass's events in one transaction, the new ones created together) leaves the store
    as record_event leaves it called for each in turn: the combined event, the spam filter's held-back count,
    a repeat within the batch and a repeat of an event stored before."""
    from netlab.store.events import record_events
    one_by_one = MemoryStore(clock=store.test_clock)
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "namespace": "default",
                                                                      "uid": "rs"}}
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "namespace": "default", "uid": f"u{i}"}}
            for i in range(40)]
    first = (pods[0], "Normal", "Pulled", "already present", "kubelet")
    for s in (store, one_by_one):
        record_event(s, *first)
    store.test_clock.t += 5
    events = ([(rs, "Normal", "SuccessfulCreate", f"Created pod: p{i}", "replicaset-controller") for i in range(40)]
              + [(p, "Normal", "Scheduled", f"assigned to n{i % 3}", "default-scheduler") for i, p in enumerate(pods)]
              + [first, (pods[1], "Warning", "BackOff", "again", "kubelet"), (pods[1], "Warning", "BackOff", "again",
                                                                                  "kubelet")])
    rev = store.revision()
    record_events(store, events)
    for e in events:
        record_event(one_by_one, *e)

    def seen(s):
        return sorted((e["metadata"]["name"], e["message"], e["count"], e["firstTimestamp"], e["lastTimestamp"],
                       e["involvedObject"]["uid"]) for e in s.list("Event"))
    assert seen(store) == seen(one_by_one)
    by_name = {e["metadata"]["name"]: e for e in store.list("Event")}
    assert sorted(e["count"] for e in by_name.values() if e["reason"] in ("Pulled", "BackOff")) == [2, 2]
    assert max(e["count"] for e in by_name.values() if e["reason"] == "SuccessfulCreate") == 16   # 25 at once
    # its new events (all but the Pulled written before), then the repeats counted in their order: the combined
    # event's 15 after its first, the Pulled written before and the BackOff written just now
    kinds = [(w.type, w.object["reason"]) for w in store.watch(rev)]
    assert kinds == ([("ADDED", "SuccessfulCreate")] * 10 + [("ADDED", "Scheduled")] * 40 + [("ADDED", "BackOff")]
                     + [("MODIFIED", "SuccessfulCreate")] * 15 + [("MODIFIED", "Pulled"), ("MODIFIED", "BackOff")])


def test_create_all_stores_the_free_names_together_as_create_does(store):
    from netlab.store.api import Invalid
    store.create(pod("a"))
    rev = store.revision()
    mine = [pod("a"), pod("b", labels={"x": "1"}), pod("c", ns="other"), pod("b")]
    assert store.create_all(mine) == [False, True, True, False]
    assert mine[1]["metadata"] == {"name": "b", "labels": {"x": "1"}}   # the caller's objects as they were
    b, c = store.get("Pod", "default", "b"), store.get("Pod", "other", "c")
    assert (b["metadata"]["resourceVersion"], c["metadata"]["resourceVersion"]) == (str(rev + 1), str(rev + 2))
    assert b["metadata"]["generation"] == 1 and b["metadata"]["namespace"] == "default" and b["metadata"]["uid"]
    assert b["metadata"]["creationTimestamp"] == fmt_time(store.test_clock.t) and b["metadata"]["labels"] == {"x": "1"}
    assert [(w.type, w.object["metadata"]["name"]) for w in store.watch(rev)] == [("ADDED", "b"), ("ADDED", "c")]
    assert store.kind_revisions(["Pod"]) == (rev + 2,)
    # all or nothing: an object without a name refuses the batch
    with pytest.raises(Invalid):
        store.create_all([pod("d"), {"kind": "Pod", "metadata": {}}])
    assert store.revision() == rev + 2 and store.try_get("Pod", "default", "d") is None
    assert store.create_all([]) == []


def test_create_all_gives_each_object_a_random_version_4_uid_and_keeps_a_given_one(store):
    import uuid
    from netlab.store.api import new_uids
    given = pod("kept")
    given["metadata"]["uid"] = "11111111-2222-4333-8444-555555555555"
    assert store.create_all([pod(f"p{i}") for i in range(200)] + [given]) == [True] * 201
    uids = [store.get("Pod", "default", f"p{i}")["metadata"]["uid"] for i in range(200)]
    assert len(set(uids)) == 200
    for u in uids + new_uids(500):
        parsed = uuid.UUID(u)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, u)
    assert store.get("Pod", "default", "kept")["metadata"]["uid"] == "11111111-2222-4333-8444-555555555555"
    assert new_uids(0) == []


def test_update_status_all_writes_what_update_status_writes_one_by_one(store):
    a, b, c = (store.create(pod(n)) for n in "abc")
    rev = store.revision()
    store.update_status_all([dict(a, status={"phase": "Running"}), b,   # b: no change (no status, as stored)
                             dict(c, status={"phase": "Failed"}), {"kind": "Pod", "metadata": {"name": "a"},
                                                                   "status": {"phase": "Succeeded"}}])
    assert [(w.type, w.object["metadata"]["name"], w.object["status"]) for w in store.watch(rev)] == [
        ("MODIFIED", "a", {"phase": "Running"}), ("MODIFIED", "c", {"phase": "Failed"}),
        ("MODIFIED", "a", {"phase": "Succeeded"})]   # a twice: the second on the first, as one by one
    got = store.get("Pod", "default", "a")
    assert got["status"] == {"phase": "Succeeded"} and got["spec"] == a["spec"] and got["metadata"]["generation"] == 1
    assert got["metadata"]["resourceVersion"] == str(rev + 3) and store.revision() == rev + 3
    # a stale resourceVersion or a missing object: refused as update_status refuses it, and nothing written
    for bad, error in (([dict(b, status={"phase": "Running"}), dict(a, status={})], Conflict),
                       ([dict(b, status={"phase": "Running"}), pod("zz")], NotFoundError)):
        with pytest.raises(error):
            store.update_status_all(bad)
        assert store.revision() == rev + 3 and store.get("Pod", "default", "b").get("status") == b.get("status")


def test_bind_all_writes_what_bind_writes_one_by_one(store):
    a, b, c = (store.create(pod(n)) for n in "abc")
    rev = store.revision()
    cond = {"conditions": [{"type": "PodScheduled", "status": "True"}]}
    store.bind_all([dict(a, spec={"nodeName": "n1"}, status=cond), dict(c, spec={"nodeName": "n2"})])
    assert [(w.type, w.object["metadata"]["name"], w.object["spec"]["nodeName"]) for w in store.watch(rev)] == [
        ("MODIFIED", "a", "n1"), ("MODIFIED", "c", "n2")]
    one = store.get("Pod", "default", "a")
    assert one["status"] == cond and one["metadata"]["generation"] == 2 and store.revision() == rev + 2
    assert store.get("Pod", "default", "c").get("status") == c.get("status")   # (a binding without one keeps it)
    # refused as bind refuses it (bound already, twice in the list, stale, missing, no node), nothing written
    for bad, error in (([dict(b, spec={"nodeName": "n1"}), {"kind": "Pod", "metadata": {"name": "a"},
                                                            "spec": {"nodeName": "n3"}}], Conflict),
                       ([{"kind": "Pod", "metadata": {"name": "b"}, "spec": {"nodeName": "n1"}},
                         {"kind": "Pod", "metadata": {"name": "b"}, "spec": {"nodeName": "n2"}}], Conflict),
                       ([dict(b, spec={"nodeName": "n1"}, metadata=dict(b["metadata"], resourceVersion="1"))],
                        Conflict),
                       ([dict(b, spec={"nodeName": "n1"}), pod("zz", spec={"nodeName": "n1"})], NotFoundError),
                       ([dict(b, spec={})], Invalid)):
        with pytest.raises(error):
            store.bind_all(bad)
        assert store.revision() == rev + 2 and not store.get("Pod", "default", "b")["spec"].get("nodeName")


def test_time_and_selector_helpers():
    assert parse_time(fmt_time(1.5)) == 1.5
    assert parse_time("1970-01-01T00:00:10Z") == 10
    assert fmt_time(10) == "1970-01-01T00:00:10Z"
    assert parse_selector("a=b,c!=d") == [("a", "In", ("b",)), ("c", "NotIn", ("d",))]
    assert selector_matches("env notin (prod),x", {"env": "dev", "x": "1"})
    assert not selector_matches("env notin (prod)", {"env": "prod"})
    assert selector_matches({}, {"a": "b"})
    with pytest.raises(ValueError, match="invalid label selector"):
        parse_selector("a=(b")


def test_a_matchlabels_matcher_agrees_with_the_general_one():
    """matcher() compares a selector of matchLabels alone directly: the same answers as the requirements'."""
    from netlab.store.meta import _matches, matcher
    sels = [{}, {"matchLabels": {}}, {"matchLabels": {"app": "web"}}, {"app": "web", "v": "1"}, "app=web",
            "app=web,v=1", {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "v", "operator": "In",
                                                                                 "values": ["1"]}]}]
    labelsets = [None, {}, {"app": "web"}, {"app": "web", "v": "1"}, {"app": "db", "v": "1"}, {"v": "1"},
                 {"app": "web", "v": "2", "x": "y"}]
    for sel in sels:
        m, reqs = matcher(sel), parse_selector(sel)
        for labels in labelsets:
            assert m(labels) == _matches(reqs, labels), (sel, labels)
    assert not matcher({"matchLabels": {"app": "web"}})({"app": "web2"})
    assert matcher({"matchLabels": {}})(None)


def test_kind_revisions_survive_history_compaction(tmp_path):
    for s in (MemoryStore(history_limit=3), SQLiteStore(str(tmp_path), history_limit=3)):
        check_kind_revisions_survive_history_compaction(s)
        s.close()


def check_kind_revisions_survive_history_compaction(s):
    """(a store with history_limit=3)"""
    s.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}})
    node_rev = s.kind_revisions(["Node"])
    for i in range(10):
        s.create(pod(f"p{i}"))
    assert s.kind_revisions(["Node"]) == node_rev and s.compacted() > node_rev[0]


@pytest.mark.parametrize("limit", [None, 7])
def test_snapshots_moved_on_from_history_match_a_fresh_list(tmp_path, limit):
    # Random writes (new names sorting before and after the old ones, updates, status, deletes, several
    # namespaces, writes of other kinds in between); after each batch the snapshot equals what a fresh
    # list says, in its order. With a short history (7) most batches outrun it: the full-scan path.
    import random
    rng = random.Random(5)
    kw = {} if limit is None else {"history_limit": limit}
    for s in (MemoryStore(**kw), SQLiteStore(str(tmp_path / str(limit)), **kw)):
        names: set = set()
        for batch in range(40):
            with s.transaction():
                for _ in range(rng.randint(1, 6)):
                    op = rng.random()
                    if op < 0.4 or not names:
                        key = (rng.choice(["default", "a", "zz"]), f"p{rng.randint(0, 60):02d}")
                        if key not in names:
                            s.create(pod(key[1], ns=key[0]))
                            names.add(key)
                    elif op < 0.6:
                        key = rng.choice(sorted(names))
                        s.update_status(dict(s.get("Pod", *key), status={"n": rng.randint(0, 3)}))
                    elif op < 0.7:
                        key = rng.choice(sorted(names))
                        s.update(dict(s.get("Pod", *key), spec={"containers": [{"name": f"c{rng.randint(0, 3)}"}]}))
                    elif op < 0.85:
                        key = rng.choice(sorted(names))
                        s.delete("Pod", *key)
                        names.discard(key)
                    else:
                        s.create({"apiVersion": "v1", "kind": "Node", "metadata": {"generateName": "n-"}})
            snap, rev = s.snapshot_index(["Pod"])
            assert rev == s.revision()
            assert list(snap["Pod"].values()) == s.list("Pod"), f"batch {batch}"
            assert list(snap["Pod"]) == sorted(names)
        s.close()


def test_a_refused_create_writes_nothing_and_changes_nothing_of_the_callers(store):
    mine = pod("a", labels={"x": "1"})
    store.create(mine)
    assert mine["metadata"] == {"name": "a", "labels": {"x": "1"}}   # the caller's object as it was
    rev = store.revision()
    with pytest.raises(AlreadyExists):
        store.create(pod("a"))
    assert store.revision() == rev and [e.type for e in store.watch(rev - 1)] == ["ADDED"]
    b = store.create(pod("b"))
    assert int(b["metadata"]["resourceVersion"]) == rev + 1   # no revision was spent on the refused one
    status = {"phase": "Running"}
    upd = dict(b, status=status)
    after = store.update_status(upd)
    spec = {"containers": [{"name": "z"}]}
    new = dict(after, spec=spec)
    store.update(new)
    assert upd["metadata"]["resourceVersion"] == b["metadata"]["resourceVersion"] and upd["status"] is status
    assert new["metadata"] == after["metadata"] and new["spec"] is spec   # (update's argument unchanged too)
    assert store.get("Pod", "default", "b")["status"] == {"phase": "Running"}


def test_generate_name_draws_again_when_the_name_is_taken(store, monkeypatch):
    import random
    draws = iter("bbbbb" "bbbbb" "ccccc")   # the first two names drawn are the same
    monkeypatch.setattr(random, "choice", lambda seq: next(draws))
    a = store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-"}, "spec": {}})
    rev = store.revision()
    b = store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-"}, "spec": {}})
    assert (a["metadata"]["name"], b["metadata"]["name"]) == ("web-bbbbb", "web-ccccc")
    assert int(b["metadata"]["resourceVersion"]) == rev + 1


def test_snapshot_lists_in_store_order_without_sorting_again(store):
    from netlab.controllers.base import Snapshot
    for ns, name in (("b", "z"), ("a", "y"), ("b", "a"), ("a", "x")):
        store.create(pod(name, ns=ns))
    snap = Snapshot.from_store(store, ["Pod"])
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in snap.list("Pod")] == \
        [("a", "x"), ("a", "y"), ("b", "a"), ("b", "z")]
    assert [p["metadata"]["name"] for p in snap.list("Pod", "b")] == ["a", "z"]
    built = Snapshot(list(reversed(store.list("Pod"))))   # made from objects in any order: put in order
    assert [p["metadata"]["name"] for p in built.list("Pod")] == ["x", "y", "a", "z"]


def test_objects_are_an_ordinary_rowid_table_and_a_store_made_with_the_old_without_rowid_one_works(tmp_path):
    import sqlite3
    from netlab.store.sqlite import SQLiteStore
    new = SQLiteStore(str(tmp_path / "new"))
    (sql,) = new._db.execute("SELECT sql FROM sqlite_master WHERE name='objects'").fetchone()
    assert "WITHOUT ROWID" not in sql.upper()
    assert new._db.execute("SELECT count(*) FROM sqlite_master WHERE type='index' AND tbl_name='objects'"
                           ).fetchone()[0] == 1   # (the key's own index)
    # a store made before 2026-12-04: its table stays as it is, and everything works on it
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    db = sqlite3.connect(str(old_dir / "store.db"))
    db.executescript("""
        CREATE TABLE objects (kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
            rev INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, namespace, name)) WITHOUT ROWID;
        CREATE TABLE history (rev INTEGER PRIMARY KEY, type TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta VALUES ('revision', 0), ('compacted', 0);
    """)
    db.close()
    for st in (SQLiteStore(str(old_dir)), new):
        st.create(pod("a"))
        st.create(pod("b"))
        with pytest.raises(AlreadyExists):
            st.create(pod("a"))
        got = st.get("Pod", "default", "a")
        got["metadata"]["labels"] = {"x": "1"}
        st.update(got)
        assert [p["metadata"]["name"] for p in st.list("Pod")] == ["a", "b"]
        assert st.get("Pod", "default", "a")["metadata"]["labels"] == {"x": "1"}
        st.delete("Pod", "default", "b")
        assert [p["metadata"]["name"] for p in st.list("Pod")] == ["a"]
    (sql,) = SQLiteStore(str(old_dir))._db.execute("SELECT sql FROM sqlite_master WHERE name='objects'").fetchone()
    assert "WITHOUT ROWID" in sql.upper()
