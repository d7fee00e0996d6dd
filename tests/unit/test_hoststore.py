"""Emulated hosts with their own etcd members (hostNetwork.store: etcd, netlab/dataplane/hoststore.py): the
option, the admin station's address, the lab's store.json, which network a client uses, and how an agent
is started (all pure, or with the lab's directory in a temporary one)."""
from __future__ import annotations

import json
import os

import pytest

from netlab.dataplane import hoststore, layout, nsenter
from netlab.errors import SpecError, UsageError
from netlab.live import agent
from netlab.model.build import build
from netlab.spec.parse import load_text

HEAD = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nname: mh\n"
THREE = "hosts: [{name: a}, {name: b}, {name: c}]\n"
NODES = "nodes: [{role: control-plane}, {role: worker}, {role: worker}]\n"


def cluster(body: str):
    return build(load_text(HEAD + body, "mh.yaml"), {})


def test_the_option_defaults_to_sqlite_and_is_refused_for_real_hosts():
    assert cluster(THREE + NODES).networking.hosts.store == "sqlite"
    assert not hoststore.wants_etcd(cluster(THREE + NODES))
    assert not hoststore.wants_etcd(cluster(NODES))   # a lab on one machine: untouched
    c = cluster(THREE + "hostNetwork: {store: etcd}\n" + NODES)
    assert c.networking.hosts.store == "etcd" and hoststore.wants_etcd(c)
    with pytest.raises(SpecError) as e:
        load_text(HEAD + "hosts: [{name: a, address: 10.9.0.2, interface: eth1}]\n"
                  "hostNetwork: {mode: real, segment: 10.9.0.0/24, store: etcd}\n" + NODES, "mh.yaml")
    assert "store" in str(e.value) and "--etcd" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SpecError) as e:
        load_text(HEAD + THREE + "hostNetwork: {store: zookeeper}\n" + NODES, "mh.yaml")
    assert "sqlite, etcd" in str(e.value)


def test_the_admin_station_takes_the_first_address_no_host_has():
    hc = cluster(THREE + "hostNetwork: {store: etcd}\n" + NODES).networking.hosts
    assert hoststore.admin_address(hc) == "192.168.240.1/24"
    hc = cluster("hosts: [{name: a, address: 192.168.240.1}, {name: b}]\nhostNetwork: {store: etcd}\n"
                 + NODES).networking.hosts
    assert hoststore.admin_address(hc) not in {f"{h.address}/24" for h in hc.hosts}
    full = cluster("hosts: [{name: a}, {name: b}, {name: c}, {name: d}, {name: e}, {name: f}]\n"
                   "hostNetwork: {segment: 10.77.0.0/29, store: etcd}\n" + NODES).networking.hosts
    with pytest.raises(UsageError) as e:
        hoststore.admin_address(full)
    assert "10.77.0.0/29" in str(e.value) and "larger segment" in str(e.value)


def test_store_json_names_the_members_reached_from_the_segment_and_each_host():
    c = cluster(THREE + "hostNetwork: {store: etcd}\n" + NODES)
    conf = hoststore.store_conf(c)
    assert conf == {
        "backend": "etcd", "prefix": "/netlab/mh/", "netns": "nl.mh.segment",
        "endpoints": ["http://192.168.240.2:2379", "http://192.168.240.3:2379", "http://192.168.240.4:2379"],
        "hosts": {"a": {"netns": "nl.mh.host.a", "ip": "192.168.240.2"},
                  "b": {"netns": "nl.mh.host.b", "ip": "192.168.240.3"},
                  "c": {"netns": "nl.mh.host.c", "ip": "192.168.240.4"}}}
    assert hoststore.host_netns(conf, "b") == "nl.mh.host.b"
    assert hoststore.host_netns(conf, "z") is None and hoststore.host_netns(None, "a") is None


def test_a_client_inside_a_host_uses_its_own_network_else_the_segment():
    conf = hoststore.store_conf(cluster(THREE + "hostNetwork: {store: etcd}\n" + NODES))
    ids = {"nl.mh.host.a": (4, 10), "nl.mh.host.b": (4, 11), "nl.mh.host.c": None}
    assert hoststore.inside(conf, (4, 11), ids) == "b"
    assert hoststore.inside(conf, (4, 99), ids) is None     # the machine's root namespace, or the segment's
    assert hoststore.inside(conf, None, ids) is None
    # this process (the test's, in no lab host): the store.json's namespace; a store.json of `up --etcd`
    # (no hosts) is left as it is
    assert hoststore.client_netns(conf) == "nl.mh.segment"
    assert hoststore.client_netns({"backend": "etcd", "endpoints": ["http://x:2379"], "prefix": "/p/",
                                   "netns": None}) is None


def test_an_agent_runs_inside_its_host_when_the_lab_has_members_there(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "RUN_DIR", str(tmp_path))
    real = os.path.lexists
    monkeypatch.setattr(nsenter.os.path, "exists", lambda p: p.startswith("/run/netns/") or real(p))
    plain = agent.launch("mh", "b")
    assert plain.argv[1:] == ["-m", "netlab.live.loop", "mh", "--host", "b"]
    conf = hoststore.store_conf(cluster(THREE + "hostNetwork: {store: etcd}\n" + NODES))
    os.makedirs(layout.lab_dir("mh"), exist_ok=True)
    with open(os.path.join(layout.lab_dir("mh"), "store.json"), "w") as f:
        json.dump(conf, f)
    inside = agent.launch("mh", "b")
    assert inside.argv == ["nsenter", "--net=/run/netns/nl.mh.host.b", "--", *plain.argv]
    assert inside.env["NETLAB_OWNER"] == "mh/host/b/agent"


def test_up_refuses_other_hosts_or_another_etcd_before_building_anything(tmp_path, monkeypatch):
    from netlab.dataplane import fabric
    from netlab.live import hostmembers
    monkeypatch.setattr(layout, "RUN_DIR", str(tmp_path))
    monkeypatch.setattr(fabric.Fabric, "ensure_hosts", lambda *a, **k: pytest.fail("built something"))
    c = cluster(THREE + "hostNetwork: {store: etcd}\n" + NODES)
    os.makedirs(layout.lab_dir("mh"), exist_ok=True)
    path = os.path.join(layout.lab_dir("mh"), "store.json")
    for old, words in ((dict(hoststore.store_conf(c), hosts={"a": {"netns": "nl.mh.host.a", "ip": "192.168.240.2"}}),
                        ("cannot change", "netlab down mh")),
                       ({"backend": "etcd", "endpoints": ["http://10.1.0.1:2379"], "prefix": "/netlab/mh/",
                         "netns": None}, ("up --etcd", "netlab down mh"))):
        with open(path, "w") as f:
            json.dump(old, f)
        with pytest.raises(UsageError) as e:
            hostmembers.ensure(c)
        assert all(w in str(e.value) for w in words) and "\n" not in str(e.value), str(e.value)
