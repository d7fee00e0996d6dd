"""Unit tests of the resolved model (netlab.model.build): scheduling, addresses, reconcile stability,
ClusterIPs, NodePorts, endpoints and the names the kernel layer uses. Pure, no root.
"""
from __future__ import annotations

import copy
import ipaddress
import re

import pytest

from netlab.errors import SpecError
from netlab.model.build import build, template_hash

from .scenarios import (DEFAULT_SCENARIO, OMIT, cluster, cluster_of, container, deployment, load, namespace, pod,
                        service, state_of)

IP = ipaddress.IPv4Address
NET = ipaddress.IPv4Network
SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
TOLERATE_CP = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]


def per_node(c) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in c.pods:
        out[p.node] = out.get(p.node, 0) + 1
    return out


def pods_of(c, owner: str) -> list:
    return [p for p in c.pods if p.owner == f"Deployment/{owner}"]


ADDONS = ("default/kubernetes", "kube-system/kube-dns")   # the add-on Services every lab has (dns/addon.py)


def mine(c):
    """The scenario's own Services (not the add-ons')."""
    return [s for s in c.services if s.key not in ADDONS]


def svc(c, key: str):
    return next(s for s in c.services if s.key == key)


# ------------------------------------------------------------------ scheduling

def test_replicas_spread_over_schedulable_nodes():
    c = cluster_of(cluster(nodes=["control-plane", "worker", "worker"]), deployment("web", 3))
    assert per_node(c) == {"t-worker": 2, "t-worker2": 1}


def test_spread_evens_out_and_breaks_ties_by_node_order():
    c = cluster_of(cluster(nodes=["control-plane", "worker", "worker"]), deployment("web", 4))
    assert [p.node for p in c.pods] == ["t-worker", "t-worker2", "t-worker", "t-worker2"]


def test_control_plane_is_not_used_when_workers_exist():
    c = cluster_of(cluster(), deployment("web", 3), pod("p"))
    assert set(per_node(c)) == {"t-worker"}


def test_control_plane_is_used_when_tolerated():
    c = cluster_of(cluster(), deployment("web", 3, tolerations=TOLERATE_CP))
    assert per_node(c) == {"t-control-plane": 2, "t-worker": 1}


def test_control_plane_alone_takes_every_pod():
    c = cluster_of(cluster(nodes=["control-plane"]), deployment("web", 3))
    assert per_node(c) == {"t-control-plane": 3}


def test_node_name_bypasses_the_taint():
    c = cluster_of(cluster(), pod("p", nodeName="t-control-plane"))
    assert c.pods[0].node == "t-control-plane"


def test_node_name_counts_towards_the_load():
    c = cluster_of(cluster(nodes=["worker", "worker"]), pod("pinned", nodeName="t-worker"), deployment("web", 1))
    assert [p.node for p in c.pods] == ["t-worker", "t-worker2"]


def test_node_selector_is_honoured():
    nodes = ["control-plane", "worker", {"role": "worker", "labels": {"disk": "ssd"}}, "worker"]
    c = cluster_of(cluster(nodes=nodes), deployment("web", 5, nodeSelector={"disk": "ssd"}))
    assert per_node(c) == {"t-worker2": 5}


def test_node_selector_on_builtin_hostname_label():
    c = cluster_of(cluster(nodes=["worker", "worker"]), pod("p", nodeSelector={"kubernetes.io/hostname": "t-worker2"}))
    assert c.pods[0].node == "t-worker2"


def test_default_scenario_placement():
    from netlab.spec.parse import load_file
    c = build(load_file(DEFAULT_SCENARIO))
    assert c.pod("default", "client").node == "demo-worker"
    assert per_node(c) == {"demo-control-plane": 2, "demo-worker": 2}


# ------------------------------------------------------------------ node and pod addresses

def test_node_addresses_and_pod_cidrs():
    c = cluster_of(cluster(nodes=["control-plane", "worker", "worker"]))
    assert [n.ip for n in c.nodes] == [IP("172.18.0.2"), IP("172.18.0.3"), IP("172.18.0.4")]
    assert [n.pod_cidr for n in c.nodes] == [NET("10.244.0.0/24"), NET("10.244.1.0/24"), NET("10.244.2.0/24")]
    assert c.gateway_ip == IP("172.18.0.1")
    assert c.external_ip == IP("172.18.255.254")
    cp = c.nodes[0]
    assert (cp.gateway, cp.vtep_ip) == (IP("10.244.0.1"), IP("10.244.0.0"))
    assert [n.index for n in c.nodes] == [0, 1, 2]


def test_custom_networks():
    c = cluster_of(cluster(nodeSubnet="192.168.50.0/24", podSubnet="10.10.0.0/16", nodeCIDRMaskSize=26))
    assert [n.ip for n in c.nodes] == [IP("192.168.50.2"), IP("192.168.50.3")]
    assert [n.pod_cidr for n in c.nodes] == [NET("10.10.0.0/26"), NET("10.10.0.64/26")]
    assert (c.gateway_ip, c.external_ip) == (IP("192.168.50.1"), IP("192.168.50.254"))


def test_pod_ips_start_at_two_on_each_node():
    c = cluster_of(cluster(nodes=["worker", "worker"]), deployment("web", 6))
    for node in c.nodes:
        ips = sorted(p.ip for p in c.pods_on(node.name))
        first = node.pod_cidr.network_address + 2
        assert ips == [first + i for i in range(3)]
    assert c.ipam_last == {"t-worker": "10.244.0.4", "t-worker2": "10.244.1.4"}


def test_a_full_podcidr_is_usable():
    # a /28 has 16 addresses: network, gateway (.1), broadcast and 13 pods
    c = cluster_of(cluster(nodes=["worker"], nodeCIDRMaskSize=28), deployment("web", 13))
    cidr = c.nodes[0].pod_cidr
    assert sorted(p.ip for p in c.pods) == [cidr.network_address + i for i in range(2, 15)]


def test_pod_ips_are_unique_across_the_cluster():
    c = cluster_of(cluster(nodes=["control-plane", "worker", "worker", "worker"]),
                   deployment("a", 40), deployment("b", 25, tolerations=TOLERATE_CP), pod("p"))
    ips = [p.ip for p in c.pods]
    assert len(set(ips)) == len(ips) == 66
    for p in c.pods:
        node = c.node(p.node)
        assert p.ip in node.pod_cidr and p.ip not in (node.gateway, node.vtep_ip, node.pod_cidr.broadcast_address)


# ------------------------------------------------------------------ reconcile stability

def test_rebuild_with_previous_state_keeps_everything():
    docs = (cluster(nodes=["control-plane", "worker", "worker"]), deployment("web", 5), pod("p"),
            deployment("db", 2, tolerations=TOLERATE_CP))
    first = cluster_of(*docs)
    again = cluster_of(*docs, prev=state_of(first))
    assert [(p.key, p.node, p.ip, p.uid) for p in again.pods] == [(p.key, p.node, p.ip, p.uid) for p in first.pods]
    assert [(n.name, n.ip, n.pod_cidr, n.vtep_mac) for n in again.nodes] == \
        [(n.name, n.ip, n.pod_cidr, n.vtep_mac) for n in first.nodes]
    assert again.ipam_last == first.ipam_last


def test_rebuild_without_previous_state_gives_new_uids():
    docs = (cluster(), deployment("web", 3))
    a, b = cluster_of(*docs), cluster_of(*docs)
    assert [(p.name, p.ip) for p in a.pods] == [(p.name, p.ip) for p in b.pods]  # deterministic
    assert all(pa.uid != pb.uid for pa, pb in zip(a.pods, b.pods))


def test_kept_pods_stay_on_their_node_even_if_the_scheduler_would_choose_another():
    # a pod alone on worker2; adding load elsewhere must not move it
    docs = [cluster(nodes=["worker", "worker"]), pod("a"), pod("b")]
    first = cluster_of(*docs)
    assert [p.node for p in first.pods] == ["t-worker", "t-worker2"]
    prev = state_of(first)
    prev["pods"]["default/b"]["node"] = "t-worker"          # as if b had been placed on worker earlier
    prev["pods"]["default/b"]["ip"] = "10.244.0.9"
    again = cluster_of(*docs, prev=prev)
    b = again.pod("default", "b")
    assert (b.node, b.ip) == ("t-worker", IP("10.244.0.9"))


def test_scale_up_keeps_existing_pods_and_continues_after_last_reserved():
    first = cluster_of(cluster(), deployment("web", 3))
    scaled = cluster_of(cluster(), deployment("web", 5), prev=state_of(first))
    old = {p.name: (p.node, p.ip, p.uid) for p in first.pods}
    kept = [p for p in scaled.pods if p.name in old]
    assert len(kept) == 3 and all((p.node, p.ip, p.uid) == old[p.name] for p in kept)
    new = [p for p in scaled.pods if p.name not in old]
    assert [p.ip for p in new] == [IP("10.244.1.5"), IP("10.244.1.6")]
    assert scaled.ipam_last["t-worker"] == "10.244.1.6"


def test_scale_up_over_two_nodes():
    docs = lambda n: (cluster(nodes=["worker", "worker"]), deployment("web", n))  # noqa: E731
    first = cluster_of(*docs(3))
    last = {n.name: IP(first.ipam_last[n.name]) for n in first.nodes}
    scaled = cluster_of(*docs(6), prev=state_of(first))
    assert per_node(scaled) == {"t-worker": 3, "t-worker2": 3}
    old = {p.name for p in first.pods}
    for p in scaled.pods:
        if p.name not in old:
            assert p.ip > last[p.node]


def test_scale_down_then_up_does_not_reuse_the_freed_address():
    three = cluster_of(cluster(), deployment("web", 3))
    assert sorted(str(p.ip) for p in three.pods) == ["10.244.1.2", "10.244.1.3", "10.244.1.4"]
    two = cluster_of(cluster(), deployment("web", 2), prev=state_of(three))
    assert [p.ip for p in two.pods] == [p.ip for p in three.pods[:2]]
    assert two.ipam_last["t-worker"] == "10.244.1.4"        # host-local remembers the last reserved address
    again = cluster_of(cluster(), deployment("web", 3), prev=state_of(two))
    third = again.pods[2]
    assert third.name == three.pods[2].name                # replica names are derived from their index
    assert third.ip == IP("10.244.1.5")                    # ... but the address continues after .4
    assert third.uid != three.pods[2].uid                  # and it is a new pod


def test_deleted_pod_address_is_not_reused_by_the_next_pod():
    first = cluster_of(cluster(), pod("a"), pod("b"), pod("c"))
    second = cluster_of(cluster(), pod("a"), pod("c"), pod("d"), prev=state_of(first))
    ips = {p.name: str(p.ip) for p in second.pods}
    assert ips == {"a": "10.244.1.2", "c": "10.244.1.4", "d": "10.244.1.5"}


def test_allocation_wraps_around_to_the_lowest_free_address():
    docs = (cluster(nodes=["worker"], nodeCIDRMaskSize=28), pod("a"), pod("b"))
    first = cluster_of(*docs)
    cidr = first.nodes[0].pod_cidr
    prev = state_of(first)
    prev["ipam"]["t-worker"] = str(cidr.broadcast_address - 1)    # the last address was handed out
    again = cluster_of(*docs, pod("c"), pod("d"), prev=prev)
    ips = {p.name: p.ip for p in again.pods}
    assert ips["c"] == cidr.network_address + 4 and ips["d"] == cidr.network_address + 5


def test_adding_a_node_keeps_the_old_nodes_addresses():
    first = cluster_of(cluster(), deployment("web", 2))
    # the new node comes first in the list: without the previous state it would get .2 and 10.244.0.0/24
    nodes = [{"name": "alpha", "role": "worker"}, "control-plane", "worker"]
    second = cluster_of(cluster(nodes=nodes), deployment("web", 2), prev=state_of(first))
    by_name = {n.name: n for n in second.nodes}
    for n in first.nodes:
        assert (by_name[n.name].ip, by_name[n.name].pod_cidr) == (n.ip, n.pod_cidr)
    assert (by_name["alpha"].ip, by_name["alpha"].pod_cidr) == (IP("172.18.0.4"), NET("10.244.2.0/24"))
    assert [(p.node, p.ip) for p in second.pods] == [(p.node, p.ip) for p in first.pods]


def test_removing_a_node_reschedules_its_pods():
    first = cluster_of(cluster(nodes=["worker", "worker"]), deployment("web", 4))
    second = cluster_of(cluster(nodes=["worker"]), deployment("web", 4), prev=state_of(first))
    assert per_node(second) == {"t-worker": 4}
    moved = [p for p in second.pods if first.pod(p.namespace, p.name).node == "t-worker2"]
    assert len(moved) == 2 and all(p.ip in second.nodes[0].pod_cidr for p in moved)
    assert len({p.ip for p in second.pods}) == 4


def test_pod_moves_when_its_node_selector_changes():
    nodes = ["worker", {"role": "worker", "labels": {"disk": "ssd"}}]
    first = cluster_of(cluster(nodes=nodes), pod("p"))
    assert first.pods[0].node == "t-worker"
    second = cluster_of(cluster(nodes=nodes), pod("p", nodeSelector={"disk": "ssd"}), prev=state_of(first))
    assert second.pods[0].node == "t-worker2"
    assert second.pods[0].ip == IP("10.244.1.2")


def test_corrupt_previous_state_is_ignored():
    docs = (cluster(), pod("p"), service("web", type="NodePort"))
    prev = {"nodes": {"t-worker": {"ip": "junk", "podCIDR": "10.244.9.0/24"}, "t-control-plane": {}},
            "pods": {"default/p": {"node": "t-worker", "ip": None, "uid": "x"}},
            "ipam": {"t-worker": "not an ip", "t-control-plane": "192.0.2.1"},
            "services": {"default/web": {"clusterIP": "10.96.0.10", "nodePorts": {"/TCP": "30001"}}}}
    c = cluster_of(*docs, prev=prev)
    fresh = cluster_of(*docs)
    assert [(n.ip, n.pod_cidr) for n in c.nodes] == [(n.ip, n.pod_cidr) for n in fresh.nodes]
    assert c.pods[0].ip == IP("10.244.1.2")
    s = c.services[0]
    assert s.cluster_ip == svc(fresh, "default/web").cluster_ip != IP("10.96.0.10")
    assert s.ports[0].node_port == svc(fresh, "default/web").ports[0].node_port


# ------------------------------------------------------------------ pod names and the template hash

def test_deployment_pod_names():
    c = cluster_of(cluster(), deployment("web", 20))
    names = [p.name for p in c.pods]
    assert len(set(names)) == 20
    h = template_hash(load(cluster(), deployment("web", 20)).deployments[0].template)
    for p in c.pods:
        assert re.fullmatch(f"web-{SAFE}{{10}}-{SAFE}{{5}}", p.name), p.name
        assert p.name.startswith(f"web-{h}-")
        assert p.labels == {"app": "web", "pod-template-hash": h}
        assert p.owner == "Deployment/web"


def test_longest_deployment_name_gives_a_63_character_pod_name():
    c = cluster_of(cluster(), deployment("a" * 46, 1, labels={"app": "a"}))
    assert len(c.pods[0].name) == 63


@pytest.mark.parametrize("change", [
    {"containers": [container("app", [(8081, "http")])]},
    {"containers": [container("app", [(8080, "http")], image="nginx")]},
    {"containers": [container("app", [(8080, "http")], command=["sleep", "1"])]},
    {"labels": {"app": "web", "tier": "front"}, "selector": {"app": "web"}},
    {"nodeSelector": {"kubernetes.io/os": "linux"}},
    {"tolerations": TOLERATE_CP},
], ids=["port", "image", "command", "labels", "nodeSelector", "tolerations"])
def test_template_change_renames_the_pods(change):
    before = cluster_of(cluster(), deployment("web", 3))
    after = cluster_of(cluster(), deployment("web", 3, **change), prev=state_of(before))
    assert not {p.name for p in before.pods} & {p.name for p in after.pods}
    assert len({p.labels["pod-template-hash"] for p in before.pods + after.pods}) == 2


def test_replicas_do_not_change_the_template_hash():
    a = cluster_of(cluster(), deployment("web", 2))
    b = cluster_of(cluster(), deployment("web", 4))
    assert [p.name for p in a.pods] == [p.name for p in b.pods][:2]


def test_deployments_in_two_namespaces_get_distinct_pods():
    c = cluster_of(cluster(), namespace("o"), deployment("web", 2), deployment("web", 2, namespace="o"))
    assert len({p.key for p in c.pods}) == 4
    assert len({p.netns for p in c.pods}) == 4


# ------------------------------------------------------------------ ClusterIPs

def _reserved(subnet: str):
    net = NET(subnet)
    return {net.network_address, net.network_address + 1, net.network_address + 10, net.broadcast_address}


def test_cluster_ips_are_in_the_service_subnet_and_avoid_reserved_addresses():
    services = [service(f"s{i}") for i in range(200)]
    c = cluster_of(cluster(serviceSubnet="10.96.0.0/24"), *services)
    ips = [s.cluster_ip for s in mine(c)]
    assert len(set(ips)) == 200
    assert all(ip in NET("10.96.0.0/24") for ip in ips)
    assert not set(ips) & _reserved("10.96.0.0/24")


def test_small_service_subnet_can_be_filled():
    services = [service(f"s{i}") for i in range(12)]        # a /28 has 14 hosts minus .1 and .10
    c = cluster_of(cluster(serviceSubnet="10.96.0.0/28"), *services)
    assert {s.cluster_ip for s in mine(c)} == {IP("10.96.0.0") + i for i in range(2, 15) if i != 10}
    assert svc(c, "default/kubernetes").cluster_ip == IP("10.96.0.1")
    assert svc(c, "kube-system/kube-dns").cluster_ip == IP("10.96.0.10")


def test_cluster_ip_is_deterministic_and_stable_with_previous_state():
    docs = (cluster(), service("a"), service("b"), service("c", clusterIP="10.96.7.7"))
    first = cluster_of(*docs)
    assert cluster_of(*docs).services[0].cluster_ip == first.services[0].cluster_ip
    assert svc(first, "default/c").cluster_ip == IP("10.96.7.7")
    prev = state_of(first)
    prev["services"]["default/a"]["clusterIP"] = "10.96.200.200"     # allocated by an older netlab, say
    again = cluster_of(*docs, prev=prev)
    assert svc(again, "default/a").cluster_ip == IP("10.96.200.200")
    assert svc(again, "default/b").cluster_ip == svc(first, "default/b").cluster_ip


def test_previous_cluster_ip_is_kept_when_a_new_service_hashes_onto_it():
    alone = cluster_of(cluster(), service("a"))
    hashed = alone.services[0].cluster_ip
    # service b already has that address; a (new, listed first) must not take it from b
    prev = {"services": {"default/b": {"clusterIP": str(hashed), "nodePorts": {}}}}
    c = cluster_of(cluster(), service("a"), service("b"), prev=prev)
    assert svc(c, "default/b").cluster_ip == hashed
    assert svc(c, "default/a").cluster_ip not in (hashed, None)


def test_explicit_cluster_ip_wins_over_a_previous_allocation():
    first = cluster_of(cluster(), service("a"))
    taken = str(first.services[0].cluster_ip)
    c = cluster_of(cluster(), service("a"), service("b", clusterIP=taken), prev=state_of(first))
    assert str(svc(c, "default/b").cluster_ip) == taken
    assert str(svc(c, "default/a").cluster_ip) != taken


def test_headless_and_external_name_services_have_no_cluster_ip():
    c = cluster_of(cluster(), service("hl", [], clusterIP="None"),
                   service("ext", [], type="ExternalName", externalName="example.com", selector=OMIT))
    hl, ext = mine(c)
    assert (hl.cluster_ip, hl.headless) == (None, True)
    assert (ext.cluster_ip, ext.endpoints) == (None, {})


# ------------------------------------------------------------------ NodePorts

def test_node_ports_are_allocated_in_range_and_distinct():
    ports = [{"name": f"p{i}", "port": 80 + i} for i in range(5)]
    c = cluster_of(cluster(), service("web", ports, type="NodePort"), service("lb", type="LoadBalancer"),
                   service("plain"))
    nps = [p.node_port for s in c.services[:2] for p in s.ports]
    assert len(set(nps)) == 6 and all(30000 <= n <= 32767 for n in nps)
    assert [p.node_port for p in svc(c, "default/plain").ports] == [None]


def test_node_ports_in_a_custom_range():
    c = cluster_of(cluster(serviceNodePortRange="31000-31002"),
                   *[service(f"s{i}", type="NodePort") for i in range(3)])
    assert sorted(s.ports[0].node_port for s in mine(c)) == [31000, 31001, 31002]


def test_explicit_node_port_is_used():
    c = cluster_of(cluster(), service("web", [{"port": 80, "nodePort": 30080}], type="NodePort"))
    assert c.services[0].ports[0].node_port == 30080


def test_tcp_and_udp_may_share_a_node_port():
    c = cluster_of(cluster(), service("web", [{"name": "t", "port": 53, "nodePort": 30053},
                                              {"name": "u", "port": 53, "protocol": "UDP", "nodePort": 30053}],
                                      type="NodePort"))
    assert [p.node_port for p in c.services[0].ports] == [30053, 30053]


def test_node_port_is_kept_with_previous_state():
    docs = (cluster(), service("web", [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}],
                               type="NodePort"))
    first = cluster_of(*docs)
    assert cluster_of(*docs).services[0].ports[0].node_port == first.services[0].ports[0].node_port
    prev = state_of(first)
    prev["services"]["default/web"]["nodePorts"] = {"http/TCP": 31234, "dns/UDP": 31235}
    again = cluster_of(*docs, prev=prev)
    assert [p.node_port for p in again.services[0].ports] == [31234, 31235]


def test_previous_node_port_is_kept_when_a_new_service_hashes_onto_it():
    alone = cluster_of(cluster(), service("a", type="NodePort"))
    hashed = alone.services[0].ports[0].node_port
    prev = {"services": {"default/b": {"clusterIP": None, "nodePorts": {"/TCP": hashed}}}}
    c = cluster_of(cluster(), service("a", type="NodePort"), service("b", type="NodePort"), prev=prev)
    assert svc(c, "default/b").ports[0].node_port == hashed
    assert svc(c, "default/a").ports[0].node_port != hashed


def test_previous_node_port_yields_to_an_explicit_one():
    first = cluster_of(cluster(), service("a", type="NodePort"))
    np = first.services[0].ports[0].node_port
    c = cluster_of(cluster(), service("a", type="NodePort"),
                   service("b", [{"port": 80, "nodePort": np}], type="NodePort"), prev=state_of(first))
    assert svc(c, "default/b").ports[0].node_port == np
    assert svc(c, "default/a").ports[0].node_port not in (np, None)


def test_previous_node_port_outside_a_new_range_is_replaced():
    first = cluster_of(cluster(), service("a", type="NodePort"))
    c = cluster_of(cluster(serviceNodePortRange="32000-32100"), service("a", type="NodePort"), prev=state_of(first))
    assert 32000 <= c.services[0].ports[0].node_port <= 32100


# ------------------------------------------------------------------ endpoints

def _endpoint_scenario(*extra):
    return cluster_of(
        cluster(nodes=["worker", "worker"]), namespace("other"),
        pod("a", labels={"app": "web"}, containers=[container(ports=[(8080, "http"), (53, "dns", "UDP")])]),
        pod("b", labels={"app": "web", "extra": "x"}, containers=[container(ports=[(9090, "http")])]),
        pod("c", labels={"app": "other"}, containers=[container(ports=[(8080, "http")])]),
        pod("d", labels={"app": "web"}, namespace="other", containers=[container(ports=[(8080, "http")])]),
        pod("e", labels={"app": "web"}, containers=[container(ports=[(7070, "metrics")])]),
        *extra)


def _eps(c, key, port_name=""):
    return [(e.pod, e.port) for e in svc(c, key).endpoints[port_name]]


def test_named_target_port_is_resolved_per_pod():
    c = _endpoint_scenario(service("web", [{"port": 80, "targetPort": "http"}]))
    assert _eps(c, "default/web") == [("a", 8080), ("b", 9090)]    # e has no 'http'; c, d are not selected


def test_numeric_target_port_selects_every_matching_pod_in_the_namespace():
    c = _endpoint_scenario(service("web", [{"port": 80, "targetPort": 8080}]))
    assert sorted(_eps(c, "default/web")) == [("a", 8080), ("b", 8080), ("e", 8080)]


def test_endpoints_per_port_name_and_protocol():
    c = _endpoint_scenario(service("web", [{"name": "http", "port": 80, "targetPort": "http"},
                                           {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"},
                                           {"name": "raw", "port": 81}]))
    assert _eps(c, "default/web", "http") == [("a", 8080), ("b", 9090)]
    assert _eps(c, "default/web", "dns") == [("a", 53)]
    assert sorted(_eps(c, "default/web", "raw")) == [("a", 81), ("b", 81), ("e", 81)]


def test_endpoint_details_and_order():
    c = _endpoint_scenario(service("web", [{"port": 80, "targetPort": "http"}], selector={"app": "web", "extra": "x"}))
    (ep,) = svc(c, "default/web").endpoints[""]
    b = c.pod("default", "b")
    assert (ep.ip, ep.port, ep.node, ep.pod, ep.namespace, ep.ready) == (b.ip, 9090, b.node, "b", "default", True)
    c2 = _endpoint_scenario(service("web", [{"port": 80}]))
    ips = [e.ip for e in svc(c2, "default/web").endpoints[""]]
    assert ips == sorted(ips)


def test_endpoints_in_another_namespace():
    c = _endpoint_scenario(service("web", [{"port": 80, "targetPort": "http"}], namespace="other"))
    assert _eps(c, "other/web") == [("d", 8080)]


def test_service_without_selector_has_no_endpoints():
    c = _endpoint_scenario(service("manual", selector=OMIT), service("empty", selector={}))
    assert svc(c, "default/manual").endpoints == {}
    assert all(eps == [] for eps in svc(c, "default/empty").endpoints.values())


def test_headless_service_has_endpoints():
    c = _endpoint_scenario(service("web", [{"port": 80, "targetPort": "http"}], clusterIP="None"))
    assert _eps(c, "default/web") == [("a", 8080), ("b", 9090)]


def test_deployment_pods_are_endpoints():
    c = cluster_of(cluster(), deployment("web", 3), service("web", [{"port": 80, "targetPort": "http"}]))
    eps = svc(c, "default/web").endpoints[""]
    assert sorted(e.pod for e in eps) == sorted(p.name for p in c.pods)
    assert {e.port for e in eps} == {8080}


def test_a_named_target_port_no_selected_pod_defines_is_accepted_with_no_endpoints():
    """Kubernetes accepts it (a pod may name the port later) and gives that port no endpoints; the
    Service's other ports keep theirs."""
    c = cluster_of(cluster(), pod("a", labels={"app": "web"}, containers=[container(ports=[(8080, "web"), (53, "dns")])]),
                   service("web", [{"name": "http", "port": 80, "targetPort": "http"},
                                   {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"},
                                   {"name": "web", "port": 81, "targetPort": "web"}]))
    assert svc(c, "default/web").endpoints == {"http": [], "dns": [], "web": [svc(c, "default/web").endpoints["web"][0]]}
    assert _eps(c, "default/web", "web") == [("a", 8080)]  # 'dns' is a TCP port of the pod, not a UDP one


def test_service_selecting_no_pod_has_empty_endpoints():
    c = cluster_of(cluster(), service("web", [{"port": 80, "targetPort": "http"}]))
    assert svc(c, "default/web").endpoints == {"": []}


# ------------------------------------------------------------------ kernel-facing names

def _mac_bytes(mac: str) -> bytes:
    assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac), mac
    return bytes.fromhex(mac.replace(":", ""))


def test_vtep_macs():
    c = cluster_of(cluster(nodes=["control-plane"] + ["worker"] * 15))
    macs = [n.vtep_mac for n in c.nodes]
    assert len(set(macs)) == 16
    for mac in macs:
        b = _mac_bytes(mac)
        assert len(b) == 6
        assert b[0] & 0x01 == 0, f"{mac} is multicast"
        assert b[0] & 0x02 == 0x02, f"{mac} is not locally administered"
    assert [n.vtep_mac for n in cluster_of(cluster(nodes=["control-plane"] + ["worker"] * 15)).nodes] == macs


def test_vtep_macs_differ_between_labs():
    a = cluster_of(cluster("one"))
    b = cluster_of(cluster("two"))
    assert not {n.vtep_mac for n in a.nodes} & {n.vtep_mac for n in b.nodes}


def test_pod_host_veth_names():
    c = cluster_of(cluster(nodes=["worker"] * 4), namespace("o"), deployment("web", 300), deployment("web", 100, namespace="o"))
    names = [p.host_veth for p in c.pods]
    assert len(set(names)) == 400
    for name in names:
        assert len(name.encode()) <= 15 and re.fullmatch(r"veth[0-9a-f]{8}", name)


def test_node_underlay_veth_names():
    c = cluster_of(cluster(nodes=["worker"] * 30))
    names = [n.underlay_veth for n in c.nodes]
    assert len(set(names)) == 30 and all(len(n.encode()) <= 15 for n in names)


def test_namespace_names():
    c = cluster_of(cluster("lab"), pod("p"))
    assert c.nodes[0].netns == "nl.lab.node.lab-control-plane"
    assert c.pods[0].netns == "nl.lab.pod.default.p"
    assert (c.underlay_netns, c.external_netns) == ("nl.lab.underlay", "nl.lab.external")


def test_namespaces_list():
    c = cluster_of(cluster(), namespace("b"), namespace("a"), namespace("default"))
    assert c.namespaces == ["default", "kube-system", "kube-public", "kube-node-lease", "b", "a"]


def test_build_does_not_modify_the_previous_state():
    docs = (cluster(), deployment("web", 3), service("web", type="NodePort"))
    prev = state_of(cluster_of(*docs))
    snapshot = copy.deepcopy(prev)
    cluster_of(*docs[:1], deployment("web", 5), prev=prev)
    assert prev == snapshot


def test_build_errors_are_spec_errors():
    with pytest.raises(SpecError) as info:
        cluster_of(cluster(nodes=["worker"], nodeCIDRMaskSize=29), deployment("web", 6))
    assert info.value.exit_code == 2
    assert "6 pods are scheduled on it, but a node's podCIDR holds 5 pod addresses" in str(info.value)


def test_pods_on_follows_the_pod_list():
    import dataclasses
    from .scenarios import DEFAULT_SCENARIO, build, load_text
    with open(DEFAULT_SCENARIO) as f:
        c = build(load_text(f.read()), None)
    for n in c.nodes:
        assert c.pods_on(n.name) == [p for p in c.pods if p.node == n.name]
    n = c.nodes[0].name
    mine = c.pods_on(n)
    mine.append("not a pod")   # a copy: the index is not changed through it
    assert "not a pod" not in c.pods_on(n)
    extra = dataclasses.replace(c.pods[0], name="extra", node=n)
    c.pods.append(extra)        # the same list, longer: indexed again
    assert c.pods_on(n)[-1] is extra
    other = dataclasses.replace(c, pods=[extra])   # another list
    assert other.pods_on(n) == [extra] and all(not other.pods_on(m.name) for m in c.nodes[1:])
