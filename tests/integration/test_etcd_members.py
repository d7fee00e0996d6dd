"""etcd members as a lab's processes: three members in three network namespaces on a shared bridge (each
its own IP), the store working through them, and losing one member of three (quorum 2 of 3) losing
nothing: writes and watches go on through the survivors, the client fails over between endpoints."""
from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from netlab.dataplane import procs
from netlab.etcd import members
from netlab.etcd.client import EtcdClient
from netlab.store.etcd import EtcdStore
from tests.integration.etcd_env import EtcdHosts
from tests.unit.test_store import pod

pytestmark = pytest.mark.skipif(subprocess.run(["which", "etcd"], capture_output=True).returncode != 0,
                                reason="etcd is not installed (scripts/setup installs it)")


def etcdctl(env, host, *args):
    return subprocess.run(["ip", "netns", "exec", env.hosts[host], "etcdctl", "--endpoints",
                           members.client_url(env.ips[host]), *args], capture_output=True, text=True, timeout=20)


def test_three_members_survive_the_loss_of_one_and_down_ends_them():
    env = EtcdHosts(3)
    try:
        # lab-owned processes: recorded, tagged, in their own namespaces, data under the lab's directory
        pids = {h: members.member_pid(env.lab, h) for h in env.hosts}
        assert all(pids.values())
        for h, pid in pids.items():
            assert procs.owner_of(pid) == f"{env.lab}/host/{h}/etcd"
            assert not procs.in_host_netns(pid)
            assert os.path.isdir(os.path.join(members.data_dir(env.lab, h), "member"))
        listed = etcdctl(env, "m1", "member", "list").stdout.splitlines()
        assert sorted(line.split(", ")[2] for line in listed) == sorted(env.hosts)

        store = EtcdStore(env.endpoints(), f"/netlab/{env.lab}/", netns=env.client_ns)
        watcher = EtcdStore(env.endpoints(), f"/netlab/{env.lab}/", netns=env.client_ns)
        for i in range(5):
            store.create(pod(f"before{i}"))
        rev = store.revision()

        # kill the leader (the worst member to lose: an election follows)
        health = members.wait_healthy(env.endpoints(), netns=env.client_ns)
        leader = next(h for h, g in zip(env.hosts, health) if g["leader"])
        os.kill(pids[leader], 9)
        until = time.monotonic() + 10
        while members.member_pid(env.lab, leader) and time.monotonic() < until:
            time.sleep(0.05)
        assert members.member_pid(env.lab, leader) is None

        # a watcher waiting through the survivors sees the writes made after the loss
        seen = {}

        def watch():
            seen["rev"] = watcher.wait(rev + 4, timeout=30)
            seen["events"] = watcher.watch(rev)

        t = threading.Thread(target=watch)
        t.start()
        t0 = time.monotonic()
        for i in range(5):
            store.create(pod(f"after{i}"))
        took = time.monotonic() - t0
        t.join(40)
        assert seen["rev"] >= rev + 5
        assert [e.object["metadata"]["name"] for e in seen["events"]] == [f"after{i}" for i in range(5)]
        assert [p["metadata"]["name"] for p in store.list("Pod")] == \
            [f"after{i}" for i in range(5)] + [f"before{i}" for i in range(5)]
        survivors = [h for h in env.hosts if h != leader]
        for h in survivors:
            assert f"/netlab/{env.lab}/objects/Pod/default/after4" in etcdctl(env, h, "get", "--prefix", "--keys-only",
                                                                               f"/netlab/{env.lab}/").stdout
        # a raw client given the dead member first fails over to a survivor
        c = EtcdClient(env.endpoints([leader, *survivors]), netns=env.client_ns)
        assert c.get(f"/netlab/{env.lab}/meta/revision").split()[0] == str(rev + 5)
        c.close()
        assert took < 20

        # the member comes back with its data and catches up
        env.start(leader)
        members.wait_healthy(env.endpoints(), netns=env.client_ns, timeout=30)
        back = EtcdStore(env.endpoints([leader]), f"/netlab/{env.lab}/", netns=env.client_ns)
        assert back.revision() == rev + 5
        back.close()
        store.close()
        watcher.close()

        assert members.stop_member(env.lab, survivors[0]) and members.member_pid(env.lab, survivors[0]) is None
        assert not members.stop_member(env.lab, survivors[0])
        left = [members.member_pid(env.lab, h) for h in env.hosts if h != survivors[0]]
    finally:
        env.close()
    # netlab down ended the others (by their owner tag) and removed their data
    assert all(procs.start_time(p) is None for p in left if p)
    assert not os.path.exists(members.data_dir(env.lab, "m1"))
