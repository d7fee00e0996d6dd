"""A normal lab (the default scenario) with its store in a real 3-member etcd cluster (`netlab up --etcd`):
built, probed, then an apply and a scale carried out by its control loop (which watches etcd) after the
etcd leader was killed, and taken down (its keys removed, etcd left running); endpoints that do not
answer are refused with nothing built."""
from __future__ import annotations

import json
import os
import secrets
import subprocess

import pytest

from netlab import names
from netlab.dataplane import lab as labmod
from netlab.dataplane import layout
from netlab.etcd import members
from netlab.live import store_for

from .conftest import netlab_cli, pods_table, until
from .etcd_env import EtcdHosts

pytestmark = pytest.mark.skipif(subprocess.run(["which", "etcd"], capture_output=True).returncode != 0,
                                reason="etcd is not installed (scripts/setup installs it)")

SCENARIO = os.path.join(os.path.dirname(__file__), "..", "..", "scenarios", "default.yaml")

EXTRA = """apiVersion: apps/v1
kind: Deployment
metadata: {name: extra}
spec:
  replicas: 2
  selector: {matchLabels: {app: extra}}
  template:
    metadata: {labels: {app: extra}}
    spec:
      tolerations: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]
      containers: [{name: c, image: registry.k8s.io/e2e-test-images/agnhost:2.53, args: [netexec]}]
"""


def etcd_keys(env, prefix, host="m1"):
    out = subprocess.run(["ip", "netns", "exec", env.hosts[host], "etcdctl", "--endpoints",
                          members.client_url(env.ips[host]), "get", prefix, "--prefix", "--keys-only"],
                         capture_output=True, text=True, timeout=20, check=True).stdout
    return [k for k in out.split() if k]


def running(lab, prefix):
    return sorted(n for n, row in pods_table(lab).items() if n.startswith(prefix) and "Running" in row)


def test_default_lab_with_its_store_in_etcd(tmp_path):
    env = EtcdHosts(3)
    lab = f"etcd-{secrets.token_hex(3)}"
    url = ",".join(env.endpoints())
    try:
        # endpoints that do not answer: one line naming them, exit 2, nothing built
        dead = f"http://10.231.{env.net}.77:2379"
        r = netlab_cli("up", SCENARIO, "--lab", lab, "--etcd", f"{url},{dead}", "--etcd-netns", env.client_ns)
        assert r.returncode == 2 and dead in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert url not in r.stderr.replace(dead, "")
        assert lab not in labmod.labs() and not os.path.exists(layout.lab_dir(lab))

        netlab_cli("up", SCENARIO, "--lab", lab, "--etcd", url, "--etcd-netns", env.client_ns, check=True,
                   timeout=300)
        d = layout.lab_dir(lab)
        assert os.path.exists(os.path.join(d, "store.json")) and not os.path.exists(os.path.join(d, "store.db"))
        keys = etcd_keys(env, f"/netlab/{lab}/objects/")
        assert f"/netlab/{lab}/objects/Deployment/default/web" in keys
        assert sum(k.startswith(f"/netlab/{lab}/objects/Pod/default/web-") for k in keys) == 3
        assert len(running(lab, "web-")) == 3

        r = netlab_cli("probe", "--lab", lab, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr

        # the nodes' flannel leases, in flannel's layout under the lab's prefix: podCIDR, underlay IP, flannel.1's MAC
        out = subprocess.run(["ip", "netns", "exec", env.hosts["m1"], "etcdctl", "--endpoints",
                              members.client_url(env.ips["m1"]), "get", f"/netlab/{lab}/coreos.com/network/",
                              "--prefix"], capture_output=True, text=True, timeout=20, check=True).stdout.splitlines()
        got = dict(zip(out[::2], out[1::2]))
        assert json.loads(got.pop(f"/netlab/{lab}/coreos.com/network/config"))["Network"] == "10.244.0.0/16"
        nodes = store_for(lab).list("Node")
        assert len(nodes) == 2 and len(got) == 2
        for n in nodes:
            ns = names.node_netns(lab, n["metadata"]["name"])
            cidr = n["spec"]["podCIDR"]
            value = json.loads(got[f"/netlab/{lab}/coreos.com/network/subnets/{cidr.replace('/', '-')}"])
            link = json.loads(subprocess.run(["ip", "-n", ns, "-j", "link", "show", "flannel.1"], capture_output=True,
                                             text=True, check=True).stdout)[0]
            addr = json.loads(subprocess.run(["ip", "-n", ns, "-j", "-4", "addr", "show", "eth0"], capture_output=True,
                                             text=True, check=True).stdout)[0]["addr_info"][0]["local"]
            assert value == {"PublicIP": addr, "PublicIPv6": None, "BackendType": "vxlan",
                             "BackendData": {"VNI": 1, "VtepMAC": link["address"]}}

        # the control loop keeps them as each node's flanneld does: one deleted by hand is written again, one
        # put on a short etcd lease is written again on a lease of flannel's 24 h before it ends
        keys = sorted(k for k in got)
        etcdctl = ["ip", "netns", "exec", env.hosts["m1"], "etcdctl", "--endpoints", members.client_url(env.ips["m1"])]
        subprocess.run(etcdctl + ["del", keys[0]], check=True, capture_output=True, timeout=20)
        short = subprocess.run(etcdctl + ["lease", "grant", "40"], check=True, capture_output=True, text=True,
                               timeout=20).stdout.split()[1]   # "lease 694d... granted with TTL(40s)"
        subprocess.run(etcdctl + ["put", keys[1], got[keys[1]], f"--lease={short}"], check=True, capture_output=True,
                       timeout=20)

        def lease_ttls():
            out = {}
            for k in keys:
                kv = json.loads(subprocess.run(etcdctl + ["get", k, "-w", "json"], capture_output=True, text=True,
                                               check=True, timeout=20).stdout).get("kvs") or []
                if kv and kv[0].get("lease"):
                    ttl = json.loads(subprocess.run(etcdctl + ["lease", "timetolive", format(kv[0]["lease"], "x"),
                                                    "-w", "json"], capture_output=True, text=True, check=True,
                                                   timeout=20).stdout)["ttl"]
                    out[k] = ttl
            return out
        until("the loop wrote both leases again, on 24 h etcd leases",
              lambda: (t := lease_ttls()) and len(t) == 2 and min(t.values()) > 23 * 3600, timeout=60)
        out = subprocess.run(etcdctl + ["get", f"/netlab/{lab}/coreos.com/network/subnets/", "--prefix"],
                             capture_output=True, text=True, timeout=20, check=True).stdout.splitlines()
        assert dict(zip(out[::2], out[1::2])) == got    # the same values

        # etcd loses its leader (1 member of 3): the lab goes on through the two others
        health = members.wait_healthy(env.endpoints(), netns=env.client_ns)
        leader = next(h for h, g in zip(env.hosts, health) if g["leader"])
        assert env.stop(leader)
        alive = next(h for h in env.hosts if h != leader)

        # apply and scale: the control loop (a process watching etcd) makes and removes the pods
        (tmp_path / "extra.yaml").write_text(EXTRA)
        netlab_cli("apply", "-f", str(tmp_path / "extra.yaml"), "--lab", lab, check=True)
        until("2 extra pods running", lambda: len(running(lab, "extra-")) == 2, timeout=120)
        netlab_cli("scale", "deploy/web", "--replicas", "5", "--lab", lab, check=True)
        until("5 web pods running", lambda: len(running(lab, "web-")) == 5, timeout=120)
        assert sum(k.startswith(f"/netlab/{lab}/objects/Pod/default/web-")
                   for k in etcd_keys(env, f"/netlab/{lab}/objects/", alive)) == 5
        netlab_cli("scale", "deploy/web", "--replicas", "2", "--lab", lab, check=True)
        until("2 web pods left", lambda: len(pods_table(lab)) and
              len([n for n in pods_table(lab) if n.startswith("web-")]) == 2, timeout=120)
        r = netlab_cli("probe", "--lab", lab, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr

        netlab_cli("down", lab, check=True)
        assert etcd_keys(env, f"/netlab/{lab}/", alive) == []     # the lab's keys went with it
        assert members.member_pid(env.lab, alive)                 # etcd itself outlives the lab
    finally:
        labmod.down(lab)
        env.close()
    assert not labmod.lab_namespaces(lab)
