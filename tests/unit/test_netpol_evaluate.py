"""netpol.evaluate: NetworkPolicy semantics as a pure function (a few hand-checked cases; the full truth
tables are the integration suite's, against its own model)."""
import ipaddress
from types import SimpleNamespace

from netlab.netpol.evaluate import selecting, verdict
from netlab.netpol.policy import (IPBlock, LabelSelector, NetworkPolicy, Peer, PolicyPort, Requirement, Rule,
                                  default_types)

IP = ipaddress.ip_address


def pod(ns, name, ip, node="n1", ports=(), **labels):
    def port_named(n, proto):
        return next((p for nm, p, pr in ports if nm == n and pr == proto), None)
    return SimpleNamespace(namespace=ns, name=name, ip=IP(ip), node=node, labels=dict(labels, pod=name),
                           host_network=False, port_named=port_named, key=f"{ns}/{name}")


def node(name, ip, cidr):
    c = ipaddress.ip_network(cidr)
    return SimpleNamespace(name=name, ip=IP(ip), pod_cidr=c, gateway=c.network_address + 1)


def cluster(*policies, ns_labels=None):
    pods = [pod("x", "a", "10.244.1.2", ports=(("serve-80-tcp", 80, "TCP"),)), pod("x", "b", "10.244.1.3"),
            pod("y", "a", "10.244.2.2", node="n2"), pod("z", "c", "10.244.2.3", node="n2")]
    return SimpleNamespace(pods=pods, nodes=[node("n1", "192.168.0.11", "10.244.1.0/24"),
                                             node("n2", "192.168.0.12", "10.244.2.0/24")],
                           policies=list(policies), namespace_labels=ns_labels or {"y": {"ns": "y"}})


def sel(**kv):
    return LabelSelector(tuple(kv.items()))


def pol(name, ns="x", selector=None, ingress=None, egress=None, types=None):
    return NetworkPolicy(ns, name, selector or LabelSelector(), types or default_types(egress is not None),
                         tuple(ingress or ()), tuple(egress or ()))


def test_no_policy_allows_everything():
    assert verdict(cluster(), "10.244.2.2", "10.244.1.2", 80).allowed


def test_default_deny_ingress_names_the_policy_and_keeps_node_and_self():
    c = cluster(pol("deny"))
    v = verdict(c, "10.244.2.2", "10.244.1.2", 80)
    assert (v.allowed, v.direction, v.policies) == (False, "ingress", ("x/deny",))
    assert verdict(c, "10.244.1.1", "10.244.1.2", 80).reason == "node"      # cni0: the kubelet's probes
    assert verdict(c, "192.168.0.11", "10.244.1.2", 80).allowed
    assert not verdict(c, "192.168.0.12", "10.244.1.2", 80).allowed         # another node is not exempt
    assert verdict(c, "10.244.1.2", "10.244.1.2", 80).reason == "self"
    assert verdict(c, "10.244.1.2", "10.244.2.2", 80).allowed               # egress not isolated


def test_namespace_and_pod_selector_in_one_peer_vs_two_peers():
    both = pol("p", ingress=[Rule(peers=(Peer(pod_selector=sel(pod="a"), namespace_selector=sel(ns="y")),))])
    assert verdict(cluster(both), "10.244.2.2", "10.244.1.2", 80).allowed       # y/a
    assert not verdict(cluster(both), "10.244.2.3", "10.244.1.2", 80).allowed   # z/c
    assert not verdict(cluster(both), "10.244.1.3", "10.244.1.2", 80).allowed   # x/b: own ns, not y
    own = pol("p", ingress=[Rule(peers=(Peer(pod_selector=sel(pod="b")),))])
    assert verdict(cluster(own), "10.244.1.3", "10.244.1.2", 80).allowed
    assert not verdict(cluster(own), "10.244.2.2", "10.244.1.2", 80).allowed


def test_ports_named_and_ranges_and_protocols():
    named = pol("p", ingress=[Rule(ports=(PolicyPort("TCP", "serve-80-tcp"),))])
    assert verdict(cluster(named), "10.244.2.2", "10.244.1.2", 80).allowed
    assert not verdict(cluster(named), "10.244.2.2", "10.244.1.2", 81).allowed
    assert not verdict(cluster(named), "10.244.2.2", "10.244.1.2", 80, "UDP").allowed
    rng = pol("p", ingress=[Rule(ports=(PolicyPort("UDP", 80, 81),))])
    assert verdict(cluster(rng), "10.244.2.2", "10.244.1.2", 81, "UDP").allowed
    assert not verdict(cluster(rng), "10.244.2.2", "10.244.1.2", 82, "UDP").allowed
    assert not verdict(cluster(rng), "10.244.2.2", "10.244.1.2", 81, "TCP").allowed


def test_ipblock_except_and_egress_union():
    eg = pol("e", egress=[Rule(peers=(Peer(ip_block=IPBlock(ipaddress.ip_network("10.244.2.0/24"),
                                                           (ipaddress.ip_network("10.244.2.3/32"),))),))])
    assert eg.policy_types == ("Ingress", "Egress")
    c = cluster(pol("e", egress=eg.egress, types=("Egress",)))
    assert verdict(c, "10.244.1.2", "10.244.2.2", 80).allowed
    v = verdict(c, "10.244.1.2", "10.244.2.3", 80)
    assert (v.allowed, v.direction) == (False, "egress")
    c2 = cluster(pol("e", egress=eg.egress, types=("Egress",)),
                 pol("all", egress=[Rule()], types=("Egress",)))
    assert verdict(c2, "10.244.1.2", "10.244.2.3", 80).policies == ("x/all",)


def test_match_expressions():
    s = LabelSelector((), (Requirement("pod", "In", ("a", "c")), Requirement("tier", "DoesNotExist")))
    c = cluster(pol("p", selector=s))
    assert [p.name for p in selecting(c, c.pods[0], "ingress")] == ["p"]
    assert selecting(c, c.pods[1], "ingress") == []
    assert not Requirement("pod", "NotIn", ("a",)).matches({"pod": "a"})
    assert Requirement("pod", "NotIn", ("a",)).matches({})
