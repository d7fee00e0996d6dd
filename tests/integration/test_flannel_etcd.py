"""flannel's leases in a real etcd member: written with an etcd lease TTL, renewed, listed, watched
(a new node's lease, and one that ends because its node stopped renewing it), published idempotently."""
from __future__ import annotations

import subprocess
import threading
import time

import pytest

from netlab.etcd import members
from netlab.etcd.client import EtcdClient
from netlab.flannel import Lease, lab_prefix
from netlab.flannel import leases as fl

from .etcd_env import EtcdHosts

pytestmark = pytest.mark.skipif(subprocess.run(["which", "etcd"], capture_output=True).returncode != 0,
                                reason="etcd is not installed (scripts/setup installs it)")


def test_leases_written_renewed_listed_watched_and_expiring():
    env = EtcdHosts(1)
    try:
        c = EtcdClient(env.endpoints(), netns=env.client_ns)
        prefix = lab_prefix(f"/netlab/{env.lab}/")
        fl.write_config(c, "10.244.0.0/16", prefix=prefix)
        assert fl.read_config(c, prefix) == {"Network": "10.244.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan"}}
        a = Lease("10.244.0.0/24", "172.18.0.2", "vxlan", "aa:00:00:00:00:01")
        b = Lease("10.244.1.0/24", "172.18.0.3", "vxlan", "aa:00:00:00:00:02")
        wa = fl.write_lease(c, a, ttl=60, prefix=prefix)
        listed, rev = fl.list_leases(c, prefix)
        assert listed == [a]
        assert 55 <= fl.remaining(c, wa) <= 60

        # a watcher from the listed revision sees node b arrive, then its lease end (b never renews it)
        got = {}

        def watch():
            got["changes"] = fl.watch_leases(c2, rev, timeout=20, prefix=prefix, until=lambda ch: len(ch) >= 2)

        c2 = EtcdClient(env.endpoints(), netns=env.client_ns)
        t = threading.Thread(target=watch)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        fl.write_lease(c, b, ttl=2, prefix=prefix)
        t.join(30)
        assert got["changes"][0] == ("PUT", b)
        assert got["changes"][1][0] == "DELETE" and str(got["changes"][1][1]) == "10.244.1.0/24"
        assert time.monotonic() - t0 >= 1.5
        # a renewed lease outlives its first TTL
        time.sleep(1)
        assert fl.renew(c, wa) == 60 and fl.remaining(c, wa) >= 58
        assert fl.list_leases(c, prefix)[0] == [a]
        # etcdctl sees flannel's layout
        out = subprocess.run(["ip", "netns", "exec", env.hosts["m1"], "etcdctl", "--endpoints",
                              members.client_url(env.ips["m1"]), "get", prefix + "/subnets", "--prefix"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        assert out == [prefix + "/subnets/10.244.0.0-24", a.value()]

        # publish: what is wanted stays, what changed is rewritten, what is gone is released
        assert fl.publish(c, [a], "10.244.0.0/16", 24, "vxlan", prefix, ttl=60, margin=10) == []
        assert fl.publish(c, [a], "10.244.0.0/16", 24, "vxlan", prefix, ttl=60, margin=59) == ["renewed 10.244.0.0/24"]
        a2 = Lease("10.244.0.0/24", "172.18.0.9", "vxlan", "aa:00:00:00:00:01")
        assert fl.publish(c, [a2, b], "10.244.0.0/16", 24, "vxlan", prefix, ttl=60, margin=10) == [
            "wrote 10.244.0.0/24", "wrote 10.244.1.0/24"]
        assert fl.publish(c, [b], "10.244.0.0/16", 24, "vxlan", prefix, ttl=60, margin=10) == [
            "released 10.244.0.0/24"]
        assert fl.list_leases(c, prefix)[0] == [b]
        fl.release(c, fl.Written(b, int(c.range(prefix + "/subnets/", prefix=True)[0][0]["lease"]), 0))
        assert fl.list_leases(c, prefix)[0] == []
        c.close()
        c2.close()
    finally:
        env.close()
