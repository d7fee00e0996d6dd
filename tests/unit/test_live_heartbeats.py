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
