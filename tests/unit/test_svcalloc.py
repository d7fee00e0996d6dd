"""A Service's ClusterIP and node ports are allocated when it is written to the lab's store and kept in its
stored spec (netlab/model/svcalloc.py), as the API server does: every reader of the store (each host's agent of a
lab over several machines, whatever it saw before) then programs the same addresses. No root."""
from __future__ import annotations

import ipaddress

import pytest

from netlab.live import manifests
from netlab.live.sync import lab_scenario
from netlab.model import svcalloc
from netlab.model.build import build
from netlab.model.objects import short_hash
from netlab.spec.parse import load_text
from netlab.store.memory import MemoryStore

CLUSTER = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: sim
networking: {serviceSubnet: 10.96.0.0/27, serviceNodePortRange: 30000-30009}
nodes: [{role: worker, name: n1}]
"""
SUBNET = ipaddress.IPv4Network("10.96.0.0/27")


def service(name: str, type_: str = "ClusterIP", extra: str = "", port: str = "{port: 80, targetPort: 8080}") -> str:
    return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n"
            f"spec: {{type: {type_}, selector: {{app: {name}}}, ports: [{port}]{extra}}}\n")


def apply(store, text: str):
    target = manifests.Target("sim", store, scenario=CLUSTER)
    return [str(a) for a in manifests.apply_manifests(target, [(text, "m.yaml")])]


def stored(store, name: str) -> dict:
    return store.get("Service", "default", name)["spec"]


def hash_slot(name: str) -> int:
    size = SUBNET.num_addresses - 2
    return int(short_hash(f"default/{name}", "clusterip", n=8), 16) % size


def colliding_pair() -> tuple[str, str]:
    """Two names whose ClusterIPs hash to the same free address, the first sorting before the second."""
    reserved = {0, 9}   # .1 and .10 (the kubernetes and kube-dns Services')
    seen: dict[int, str] = {}
    for i in range(1000):
        name = f"svc{i:03d}"
        slot = hash_slot(name)
        if slot in reserved:
            continue
        if slot in seen:
            return seen[slot], name
        seen[slot] = name
    raise AssertionError("no collision")


def model_ips(store, prev: dict) -> dict[str, str]:
    """The ClusterIPs one agent's model gives, from the store and that agent's own previous state."""
    sc = lab_scenario(CLUSTER, "<t>", store, "sim", None)
    return {s.key: str(s.cluster_ip) for s in build(sc, prev, pods=[]).services}


def test_two_agents_that_saw_different_histories_agree_on_colliding_services():
    first, second = colliding_pair()
    store = MemoryStore()
    # the later name first: it takes the hashed address; the other one, applied later, the next free one
    assert apply(store, service(second)) == [f"service/{second} created"]
    assert apply(store, service(first)) == [f"service/{first} created"]
    ip_second, ip_first = stored(store, second)["clusterIP"], stored(store, first)["clusterIP"]
    assert ip_second == str(SUBNET.network_address + 1 + hash_slot(second))
    assert ip_first != ip_second and ipaddress.IPv4Address(ip_first) in SUBNET
    assert stored(store, first)["clusterIPs"] == [ip_first]
    # an agent that saw `second` alone first, and one that starts now with no state: the same addresses
    # (before, the second agent's model gave the hashed address to the name that sorts first)
    saw_second = {"services": {f"default/{second}": {"clusterIP": ip_second}}}
    want = {f"default/{first}": ip_first, f"default/{second}": ip_second}
    assert {k: v for k, v in model_ips(store, saw_second).items() if k in want} == want
    assert {k: v for k, v in model_ips(store, {}).items() if k in want} == want


def test_apply_again_keeps_the_allocation_and_reports_unchanged():
    store = MemoryStore()
    text = service("web", "NodePort")
    apply(store, text)
    before = stored(store, "web")
    assert isinstance(before["ports"][0]["nodePort"], int) and 30000 <= before["ports"][0]["nodePort"] <= 30009
    assert apply(store, text) == ["service/web unchanged"]
    assert stored(store, "web") == before


def test_what_the_user_wrote_is_kept_and_others_avoid_it():
    store = MemoryStore()
    apply(store, service("a", "NodePort", extra=", clusterIP: 10.96.0.20",
                         port="{port: 80, targetPort: 8080, nodePort: 30004}"))
    assert stored(store, "a")["clusterIP"] == "10.96.0.20" and stored(store, "a")["ports"][0]["nodePort"] == 30004
    ips, ports = {"10.96.0.20"}, {30004}
    for i in range(8):
        apply(store, service(f"b{i}", "NodePort"))
        spec = stored(store, f"b{i}")
        assert spec["clusterIP"] not in ips and spec["clusterIP"] not in ("10.96.0.1", "10.96.0.10")
        assert spec["ports"][0]["nodePort"] not in ports
        ips.add(spec["clusterIP"])
        ports.add(spec["ports"][0]["nodePort"])


def test_a_type_change_removes_what_the_new_type_does_not_take():
    store = MemoryStore()
    apply(store, service("web", "LoadBalancer", extra=", externalTrafficPolicy: Local"))
    spec = stored(store, "web")
    assert spec["ports"][0]["nodePort"] and spec["healthCheckNodePort"]
    assert spec["healthCheckNodePort"] != spec["ports"][0]["nodePort"]
    ip = spec["clusterIP"]
    assert apply(store, service("web", "NodePort")) == ["service/web configured"]
    spec = stored(store, "web")
    assert "healthCheckNodePort" not in spec and spec["ports"][0]["nodePort"] and spec["clusterIP"] == ip
    apply(store, service("web"))
    spec = stored(store, "web")
    assert "nodePort" not in spec["ports"][0] and spec["clusterIP"] == ip
    apply(store, "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                 "spec: {type: ExternalName, externalName: example.com}\n")
    assert "clusterIP" not in stored(store, "web")
    # every stored version is one the parser takes (an agent reads it as a scenario's)
    lab_scenario(CLUSTER, "<t>", store, "sim", None)


def test_headless_and_the_reserved_addresses():
    store = MemoryStore()
    apply(store, service("h", extra=", clusterIP: None"))
    assert stored(store, "h")["clusterIP"] == "None"
    sc = load_text(CLUSTER)
    dns = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kube-dns", "namespace": "kube-system"},
           "spec": {"selector": {"k8s-app": "kube-dns"}, "ports": [{"port": 53, "protocol": "UDP"}]}}
    got = svcalloc.allocate(dns, dns, None, [], sc.networking)
    assert got["spec"]["clusterIP"] == "10.96.0.10"
    other = dict(dns, metadata={"name": "x", "namespace": "default"})
    assert svcalloc.allocate(other, other, None, [], sc.networking)["spec"]["clusterIP"] not in ("10.96.0.1",
                                                                                                  "10.96.0.10")


def test_hints_keep_a_lab_s_earlier_addresses():
    """A lab made by an earlier netlab: its stored Services have no address; the state's are kept for them,
    and a new Service does not take one of them."""
    sc = load_text(CLUSTER)
    old = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "old", "namespace": "default"},
           "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80}]}}
    new = dict(old, metadata={"name": "new", "namespace": "default"})
    hints = {"default/old": {"clusterIP": "10.96.0.7", "nodePorts": {"/TCP": 30001}},
             "default/new": {"clusterIP": "10.96.0.7", "nodePorts": {"/TCP": 30001}}}   # stale: taken by old
    got = svcalloc.allocate(new, new, None, [old], sc.networking, hints)["spec"]
    assert got["clusterIP"] != "10.96.0.7" and got["ports"][0]["nodePort"] != 30001
    mine = svcalloc.allocate(old, old, None, [], sc.networking, hints)["spec"]
    assert mine["clusterIP"] == "10.96.0.7" and mine["ports"][0]["nodePort"] == 30001


def test_a_full_node_port_range_is_left_to_the_model_to_name():
    store = MemoryStore()
    for i in range(10):
        apply(store, service(f"s{i}", "NodePort"))
    apply(store, service("s10", "NodePort"))
    assert "nodePort" not in stored(store, "s10")["ports"][0]
    with pytest.raises(Exception, match="node port range is full"):
        build(lab_scenario(CLUSTER, "<t>", store, "sim", None), {}, pods=[])
