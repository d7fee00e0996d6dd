"""The store's conformance tests (tests/unit/test_store.py, run there on memory and SQLite) on a real etcd
member in a network namespace of its own, reached from the test (in the host's namespace) with the
client's `netns=` option; plus what only a shared store shows: writers in several processes."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from netlab.store.etcd import EtcdEndpointsDown, EtcdStore, check_endpoints
from tests.integration.etcd_env import EtcdHosts
from tests.unit import test_store as conformance
from tests.unit.test_store import Clock, pod

pytestmark = pytest.mark.skipif(subprocess.run(["which", "etcd"], capture_output=True).returncode != 0,
                                reason="etcd is not installed (scripts/setup installs it)")


@pytest.fixture(scope="module")
def member():
    env = EtcdHosts(1)
    try:
        yield env
    finally:
        env.close()


def open_store(env, **kw) -> EtcdStore:
    return EtcdStore(env.endpoints(), f"/netlab-test/{uuid.uuid4().hex}/", netns=env.client_ns, **kw)


@pytest.fixture
def store(member):
    clock = Clock()
    s = open_store(member, clock=clock)
    s.test_clock = clock
    yield s
    s.close()


# every conformance test that takes a `store` runs here on etcd
for _name in dir(conformance):
    _fn = getattr(conformance, _name)
    if _name.startswith("test_") and callable(_fn) and "store" in _fn.__code__.co_varnames[:_fn.__code__.co_argcount]:
        globals()[_name] = _fn


def test_watch_orders_changes_and_reports_too_old_on_etcd(member):
    s = open_store(member, history_limit=5)
    conformance.check_watch_orders_changes_and_reports_too_old(s)
    s.close()


def test_kind_revisions_survive_history_compaction_on_etcd(member):
    s = open_store(member, history_limit=3)
    conformance.check_kind_revisions_survive_history_compaction(s)
    s.close()


def test_keys_stay_under_the_prefix_and_wait_sees_another_clients_commit(member):
    prefix = f"/netlab-test/{uuid.uuid4().hex}/"
    reader = EtcdStore(member.endpoints(), prefix, netns=member.client_ns)
    writer = EtcdStore(member.endpoints(), prefix, netns=member.client_ns)
    assert reader.wait(0, timeout=0.05) == 0

    def later():
        time.sleep(0.3)
        writer.create(pod("a"))

    t = threading.Thread(target=later)
    t.start()
    t0 = time.monotonic()
    assert reader.wait(0, timeout=5) == 1
    assert time.monotonic() - t0 < 2
    t.join()
    assert reader.get("Pod", "default", "a")["metadata"]["resourceVersion"] == "1"
    # every key the store wrote is under its prefix (etcdctl, in the member's own namespace)
    out = subprocess.run(["ip", "netns", "exec", member.hosts["m1"], "etcdctl", "--endpoints",
                          member.endpoints()[0], "get", "", "--prefix", "--keys-only"],
                         capture_output=True, text=True, check=True).stdout.split()
    mine = [k for k in out if k.startswith(prefix)]
    assert prefix + "objects/Pod/default/a" in mine and prefix + "meta/revision" in mine
    assert all(k.startswith("/netlab-test/") for k in out), out
    reader.close()
    writer.close()


WRITER = textwrap.dedent("""
    import json, sys
    from netlab.store import Conflict
    from netlab.store.etcd import EtcdStore
    endpoints, prefix, netns, n = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    s = EtcdStore(endpoints, prefix, netns=netns)
    for i in range(n):
        while True:
            c = s.get("ConfigMap", "default", "counter")
            c["data"]["n"] = str(int(c["data"]["n"]) + 1)
            try:
                s.update(c)       # optimistic concurrency: a stale resourceVersion is a Conflict
                break
            except Conflict:
                pass
        with s.transaction():     # two writes that must never interleave with another process's
            s.create({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"generateName": "w-"}, "data": {}})
            s.create({"kind": "Event", "apiVersion": "v1", "metadata": {"generateName": "e-"}})
""")


def test_writers_in_several_processes_keep_optimistic_concurrency_and_atomic_transactions(member):
    s = open_store(member)
    s.create({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "counter"}, "data": {"n": "0"}})
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, json.dumps(member.endpoints()), s.prefix,
                               member.client_ns, "25"], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        p.communicate(timeout=120)
    assert all(p.returncode == 0 for p in procs)
    assert s.get("ConfigMap", "default", "counter")["data"]["n"] == "75"   # no increment lost
    assert len(s.list("ConfigMap")) == 76 and len(s.list("Event")) == 75
    assert s.revision() == 1 + 75 + 75 * 2
    # each transaction's two creates are adjacent revisions in the history: no other write between them
    evs = s.watch(0)
    assert [e.revision for e in evs] == list(range(1, s.revision() + 1))
    for i, e in enumerate(evs):
        if e.object["metadata"]["name"].startswith("w-"):
            assert evs[i + 1].object["kind"] == "Event"
    s.close()


def test_check_endpoints_names_every_endpoint_that_does_not_answer(member):
    check_endpoints(member.endpoints(), netns=member.client_ns)
    dead = [f"http://10.231.{member.net}.77:2379", "http://127.0.0.1:1"]
    with pytest.raises(EtcdEndpointsDown) as e:
        check_endpoints(member.endpoints() + dead, netns=member.client_ns, timeout=0.5)
    msg = str(e.value)
    assert e.value.exit_code == 2 and "\n" not in msg
    assert all(d in msg for d in dead) and member.endpoints()[0] + " " not in msg


def test_big_ranges_are_read_in_pages_at_one_revision(member):
    s = open_store(member)
    s.client.PAGE = 7
    with s.transaction():
        for i in range(30):
            s.create(pod(f"p{i:02d}"))
    assert [p["metadata"]["name"] for p in s.list("Pod")] == [f"p{i:02d}" for i in range(30)]
    lists, rev = s.list_with_revision(["Pod"])
    assert len(lists["Pod"]) == 30 and rev == 30
    assert [e.revision for e in s.watch(0)] == list(range(1, 31))
    s.close()


INSIDE = textwrap.dedent("""
    import json, sys, time
    from netlab.store.etcd import EtcdStore
    s = EtcdStore(json.loads(sys.argv[1]), sys.argv[2], netns=sys.argv[3])
    with s.transaction():
        for i in range(3):
            s.create({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": f"half{i}"}})
        print("inside", flush=True)
        time.sleep(600)
""")


def test_a_writer_killed_inside_a_transaction_leaves_nothing_and_its_lock_expires(member):
    from netlab.store import etcd as etcdstore
    s = open_store(member)
    s.create(pod("before"))
    p = subprocess.Popen([sys.executable, "-c", INSIDE, json.dumps(member.endpoints()), s.prefix, member.client_ns],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "inside"
    finally:
        p.kill()
        p.wait()
    t0 = time.monotonic()
    s.create(pod("after"))          # waits for the dead writer's lock to end with its lease
    waited = time.monotonic() - t0
    assert waited < etcdstore.LOCK_TTL + 3
    assert [x["metadata"]["name"] for x in s.list("Pod")] == ["after", "before"]
    assert s.revision() == 2 and [e.object["metadata"]["name"] for e in s.watch(0)] == ["before", "after"]
    s.close()


def test_the_informer_relists_after_compaction_on_etcd(member):
    from tests.unit import test_store_informer
    s = open_store(member, history_limit=3)
    test_store_informer.check_informer_relists_after_compaction(s)
    s.close()


def test_wait_is_woken_by_the_watch_without_polling(member, monkeypatch):
    from netlab.store import etcd as etcdstore
    s = open_store(member)
    writer = EtcdStore(member.endpoints(), s.prefix, netns=member.client_ns)
    assert s.wait(0, timeout=0.3) == 0             # starts the watch
    polls = []
    real = s._poll_revision
    s._poll_revision = lambda: polls.append(1) or real()
    assert s.wait(0, timeout=2.0) == 0              # idle: the watch streams, the revision is read once a second
    assert len(polls) <= 3, len(polls)

    def later():
        time.sleep(0.5)
        writer.create(pod("a"))

    monkeypatch.setattr(etcdstore, "WAIT_POLL", 30.0)   # from here only the watch can wake it
    t = threading.Thread(target=later)
    t.start()
    t0 = time.monotonic()
    assert s.wait(0, timeout=10) == 1
    woke = time.monotonic() - t0
    t.join()
    assert 0.4 < woke < 2, woke                     # the write's event woke it
    s.close()
    writer.close()


def test_a_lab_store_moves_only_to_endpoints_that_hold_it(member):
    from netlab.dataplane import lab as labmod
    from netlab.errors import UsageError
    from netlab.live import store_config, store_for, use_etcd
    other = EtcdHosts(1)
    lab = f"etcd-{uuid.uuid4().hex[:6]}"
    try:
        use_etcd(lab, member.endpoints(), member.client_ns)
        store_for(lab).create(pod("a"))
        assert store_config(lab)["prefix"] == f"/netlab/{lab}/"
        with pytest.raises(UsageError, match=f"lab {lab} keeps its store in etcd at .* which .* does not hold"):
            use_etcd(lab, other.endpoints(), other.client_ns)
        assert store_config(lab)["endpoints"] == member.endpoints()
        # the same cluster by another way (its member's address seen from the member's own namespace) is fine
        use_etcd(lab, ["http://127.0.0.1:2379"], member.hosts["m1"])
        assert store_for(lab).get("Pod", "default", "a")["metadata"]["resourceVersion"] == "1"
    finally:
        labmod.down(lab)
        other.close()
    assert EtcdStore(member.endpoints(), f"/netlab/{lab}/", netns=member.client_ns).list("Pod") == []
