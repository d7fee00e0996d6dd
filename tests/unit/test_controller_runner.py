"""The runner serving a SQLite store in a thread: another connection (a CLI verb, another process)
writes a Deployment and the loop reacts within a fraction of a second; idle, it sleeps."""

import threading
import time

from netlab.controllers.runner import Runner
from netlab.store import SQLiteStore

from .ctrl_sim import deployment, node


def test_serve_reacts_to_another_connections_write(tmp_path):
    loop_store = SQLiteStore(str(tmp_path))
    cli = SQLiteStore(str(tmp_path))
    cli.create(node("n1"))
    runner = Runner(loop_store)
    stop = threading.Event()
    t = threading.Thread(target=runner.serve, args=(stop,), kwargs={"max_wait": 2.0})
    t.start()
    try:
        time.sleep(0.2)
        rev = cli.revision()
        t0 = time.monotonic()
        cli.create(deployment(replicas=3))
        def bound():
            return [p for p in cli.list("Pod") if p["spec"].get("nodeName") == "n1"]
        while len(bound()) < 3 and time.monotonic() - t0 < 5:
            time.sleep(0.01)
        assert len(bound()) == 3 and len(cli.list("Pod")) == 3
        assert time.monotonic() - t0 < 2
        # idle: nothing more is written
        time.sleep(0.3)
        settled = cli.revision()
        time.sleep(0.5)
        assert cli.revision() == settled > rev
    finally:
        stop.set()
        t0 = time.monotonic()
        t.join(5)
        assert time.monotonic() - t0 < 1
        loop_store.close()
        cli.close()
    assert not t.is_alive()


def test_controllers_with_unchanged_kinds_are_skipped_until_a_write_or_a_timer():
    from netlab.controllers.runner import default_controllers
    from .ctrl_sim import Sim
    sim = Sim(nodes=("n1",), node_grace=10)
    sim.store.create(deployment(replicas=2))
    for _ in range(3):
        sim.tick(1)
    r = Runner(sim.store, default_controllers(node_grace=10))
    r.round(sim.now)
    skipped = r.skipped
    assert r.round(sim.now) == 0 and r.skipped == skipped + len(r.controllers)  # nothing changed: all skipped
    # a Lease renewal concerns only the node lifecycle controller
    lease = sim.store.get("Lease", "kube-node-lease", "n1")
    lease["spec"]["renewTime"] = "2027-01-15T08:00:03Z"
    sim.store.update(lease)
    skipped = r.skipped
    r.round(sim.now)
    assert r.skipped == skipped + len(r.controllers) - 1  # only the node health half ran
    # the node's grace period is a timer: past it, the node controller runs without any write
    skipped = r.skipped
    assert r.round(sim.now + 30) > 0
    assert r.skipped < skipped + len(r.controllers)


def test_a_failing_controller_is_reported_and_the_others_go_on():
    import pytest
    from netlab.controllers.runner import Controller
    from netlab.store import MemoryStore

    def broken(snap, now):
        raise ValueError("bad object")

    def writer(snap, now):
        from netlab.controllers.base import create
        return [] if snap.list("ConfigMap") else [create({"apiVersion": "v1", "kind": "ConfigMap",
                                                          "metadata": {"name": "x"}})]

    store = MemoryStore()
    errors = []
    r = Runner(store, [Controller("broken", ("Pod",), broken), Controller("writer", ("ConfigMap",), writer)],
               on_error=lambda name, e: errors.append((name, str(e))))
    r.run_until_quiescent()
    assert store.get("ConfigMap", "default", "x") and errors[0] == ("broken", "bad object")
    with pytest.raises(ValueError):
        Runner(store, [Controller("broken", ("Pod",), broken)]).round()


def test_apply_actions_writes_batches_as_one_by_one_and_all_or_nothing():
    """Consecutive creates, bindings and status writes go to the store together (create_all, bind_all,
    update_status_all); the objects, their order in the history and a refusal are as one write at a time."""
    import pytest
    from netlab.controllers.base import bind, create, event, update, update_status
    from netlab.controllers.runner import apply_actions
    from netlab.store import AlreadyExists, MemoryStore

    def pod(name, **kw):
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": []}, **kw}

    store = MemoryStore()
    rev = store.revision()
    admitted = []
    apply_actions(store, [create(pod("a")), create(pod("b")), event(pod("a"), "Normal", "R", "m", "c"),
                          bind(pod("a", spec={"nodeName": "n1"})), bind(pod("b", spec={"nodeName": "n2"})),
                          update_status(pod("a", status={"phase": "Running"})),
                          update(pod("a", metadata={"name": "a", "labels": {"x": "1"}},   # on its own write
                                     spec={"containers": [], "nodeName": "n1"})),
                          create({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "g-"},
                                  "spec": {}})],
                  1.0, admission=[lambda p: admitted.append(p["metadata"].get("name")) or p])
    seen = [(w.type, w.object["metadata"]["name"]) for w in store.watch(rev) if w.object["kind"] == "Pod"]
    assert seen[:6] == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("MODIFIED", "b"), ("MODIFIED", "a"),
                        ("MODIFIED", "a")] and seen[6][0] == "ADDED" and seen[6][1].startswith("g-")
    a = store.get("Pod", "default", "a")
    assert a["spec"]["nodeName"] == "n1" and a["status"] == {"phase": "Running"} and a["metadata"]["labels"] == {
        "x": "1"}
    assert admitted == ["a", "b", None] and len(store.list("Event")) == 1
    # a name taken refuses the whole transaction, as create raises it
    rev = store.revision()
    with pytest.raises(AlreadyExists, match='Pod "b" already exists in namespace "default"'):
        apply_actions(store, [create(pod("c")), create(pod("b")), create(pod("d"))], 2.0)
    assert store.revision() == rev and store.try_get("Pod", "default", "c") is None
