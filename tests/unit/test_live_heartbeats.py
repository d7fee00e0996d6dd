"""LiveLab.heartbeats: one beat at a time (the pass's own and `beating`'s thread write the same Leases), and
a beat that waited behind a newer one writes nothing."""
import threading
import time

from netlab.live.sync import LiveLab
from netlab.store import MemoryStore


def test_beats_run_one_at_a_time_and_a_stale_one_is_skipped():
    store = MemoryStore()
    store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    live = LiveLab("hbtest", store=store)
    live.static.sync = lambda *a, **k: []   # (no static pod directories in a unit test)
    inside, overlaps, ran = [], [], []
    real = live._heartbeats

    def beat(grace, now):
        inside.append(now)
        if len(inside) > 1:
            overlaps.append(tuple(inside))
        time.sleep(0.02)
        real(grace, now)
        ran.append(now)
        inside.pop()

    live._heartbeats = beat
    now = time.time()
    threads = [threading.Thread(target=live.heartbeats, args=(10.0, now + i)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlaps and ran and not live.errors
    lease = store.get("Lease", "kube-node-lease", "n1")
    assert lease["spec"]["holderIdentity"] == "n1"
    before = list(ran)
    live.heartbeats(10.0, live.last_heartbeat - 5)   # older than the last beat: nothing to do
    assert ran == before
    live.heartbeats(10.0, live.last_heartbeat + 5)
    assert len(ran) == len(before) + 1


def test_a_lease_is_never_older_than_the_grace_period_when_the_beats_come_between_rounds(monkeypatch):
    """The shortest grace period (1 s): `keep_alive` called between controller rounds every 10 ms renews each
    Lease before it is 1.5 heartbeat periods old (0.375 s), never letting it reach the grace (a 1 s floor on
    both the beat and the renewal made a Lease up to 2 s old: every node NotReady in a 3,000-pod `up`)."""
    import types

    from netlab.live import sync
    from netlab.store.meta import parse_time
    store = MemoryStore()
    for n in ("n1", "n2"):
        store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}})
    live = LiveLab("hbtest", store=store)
    live.static.sync = lambda *a, **k: []
    live._periods = (1.0, 300)
    clock = [1_800_000_000.0]
    monkeypatch.setattr(sync, "time", types.SimpleNamespace(time=lambda: clock[0], monotonic=time.monotonic))
    live.heartbeats(1.0, clock[0])
    oldest = 0.0
    for _ in range(300):
        clock[0] += 0.01
        live.keep_alive()
        for n in ("n1", "n2"):
            oldest = max(oldest, clock[0] - parse_time(store.get("Lease", "kube-node-lease", n)["spec"]["renewTime"]))
    assert 0.25 <= oldest <= 0.375 + 0.011, oldest
    assert sync.heartbeat_period(1.0) == 0.25 and sync.heartbeat_period(10.0) == 2.5
    assert not live.errors
