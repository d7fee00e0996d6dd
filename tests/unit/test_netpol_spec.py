"""NetworkPolicy as the spec layer reads it: every field into netpol.policy objects, and what the API
server refuses refused here (one line naming document, field and fix)."""
from __future__ import annotations

import ipaddress

import pytest

from netlab.errors import SpecError
from netlab.model.build import build
from netlab.netpol.policy import IPBlock, LabelSelector, Peer, PolicyPort, Requirement, Rule

from .scenarios import cluster, load


def netpol(name="p", ns="default", **spec):
    spec.setdefault("podSelector", {})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def namespace(name, **labels):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def test_every_field_is_read():
    s = load(cluster(), namespace("x", ns="x"), netpol(
        "web", "x", podSelector={"matchLabels": {"app": "web"},
                                 "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
        ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}, "podSelector": {}},
                           {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                  "ports": [{"port": 80}, {"port": "serve-81-udp", "protocol": "UDP"},
                            {"port": 8000, "endPort": 8100}, {"protocol": "SCTP"}]}],
        egress=[{"to": [{"podSelector": {"matchExpressions": [{"key": "k8s-app", "operator": "Exists"}]}}]}]))
    assert s.ignored == []
    assert s.namespace_labels == {"x": {"ns": "x"}}
    (p,) = s.policies
    assert (p.key, p.policy_types) == ("x/web", ("Ingress", "Egress"))   # egress rules: Egress by default
    assert p.pod_selector == LabelSelector((("app", "web"),), (Requirement("tier", "NotIn", ("db",)),))
    assert p.pod_selector.text() == "app=web,tier notin (db)"
    assert p.ingress == (Rule(
        (PolicyPort("TCP", 80), PolicyPort("UDP", "serve-81-udp"), PolicyPort("TCP", 8000, 8100), PolicyPort("SCTP")),
        (Peer(LabelSelector(), LabelSelector((("ns", "y"),))),
         Peer(ip_block=IPBlock(ipaddress.ip_network("10.0.0.0/8"), (ipaddress.ip_network("10.1.0.0/16"),))))),)
    assert p.egress == (Rule((), (Peer(LabelSelector((), (Requirement("k8s-app", "Exists"),))),)),)
    c = build(s, None)
    assert c.policies == s.policies and c.namespace_labels == {"x": {"ns": "x"}}


@pytest.mark.parametrize("spec, types", [
    ({}, ("Ingress",)),
    ({"egress": []}, ("Ingress",)),
    ({"egress": [{}]}, ("Ingress", "Egress")),
    ({"policyTypes": ["Egress"]}, ("Egress",)),
    ({"policyTypes": ["Egress", "Ingress"]}, ("Ingress", "Egress")),
])
def test_policy_types_default_as_kubernetes(spec, types):
    assert load(cluster(), netpol(**spec)).policies[0].policy_types == types


def test_empty_rules_and_peers():
    p = load(cluster(), netpol(ingress=[{}], egress=[{"to": [], "ports": []}])).policies[0]
    assert p.ingress == (Rule(),) and p.egress == (Rule(),)
    assert load(cluster(), netpol(ingress=[])).policies[0].ingress == ()


def test_ipblock_host_bits_are_cleared_as_the_api_server_parses_them():
    p = load(cluster(), netpol(ingress=[{"from": [{"ipBlock": {"cidr": "10.1.2.3/16"}}]}])).policies[0]
    assert p.ingress[0].peers[0].ip_block.cidr == ipaddress.ip_network("10.1.0.0/16")


N = "NetworkPolicy p: "


@pytest.mark.parametrize("doc, line", [
    (netpol(ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]),
     N + "spec.ingress[0].from[0].ipBlock.cidr '10.0.0.0/33' is not a valid CIDR; write a CIDR like 10.0.0.0/24 "
     "(address/prefix)"),
    (netpol(ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}}]}]),
     N + "spec.ingress[0].from[0].ipBlock.except[0] 10.1.0.0/24 is not a strict subset of cidr 10.0.0.0/16; use a "
     "CIDR inside 10.0.0.0/16 with a longer prefix, or remove it"),
    (netpol(ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.0.0/16"]}}]}]),
     N + "spec.ingress[0].from[0].ipBlock.except[0] 10.0.0.0/16 is not a strict subset of cidr 10.0.0.0/16; use a "
     "CIDR inside 10.0.0.0/16 with a longer prefix, or remove it"),
    (netpol(egress=[{"ports": [{"port": 90, "endPort": 80}]}]),
     N + "spec.egress[0].ports[0].endPort 80 is below port 90; use an endPort of at least 90"),
    (netpol(ingress=[{"ports": [{"port": "http", "endPort": 90}]}]),
     N + "spec.ingress[0].ports[0].endPort may not be specified when port is a name; use a numeric port, or remove "
     "endPort"),
    (netpol(ingress=[{"ports": [{"endPort": 90}]}]),
     N + "spec.ingress[0].ports[0].endPort may not be specified when port is not specified; set port, or remove "
     "endPort"),
    (netpol(policyTypes=["Ingres"]),
     N + "spec.policyTypes[0] 'Ingres' is not a policy type; use Ingress or Egress"),
    (netpol(policyTypes=["Ingress", "Ingress"]), N + "spec.policyTypes[1] repeats Ingress; list each policy type once"),
    (netpol(ingress=[{"ports": [{"port": "80"}]}]),
     N + "spec.ingress[0].ports[0].port '80' is not a valid port name; use a number, or a container port's name: at "
     "most 15 lowercase letters, digits and '-', with at least one letter (write the number without quotes)"),
    (netpol(ingress=[{"ports": [{"port": 70000}]}]),
     N + "spec.ingress[0].ports[0].port 70000 is out of range 1-65535; use a number from 1 to 65535"),
    (netpol(ingress=[{"ports": [{"protocol": "ICMP"}]}]),
     N + "spec.ingress[0].ports[0].protocol 'ICMP' is not supported; use one of: TCP, UDP, SCTP"),
    (netpol(ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]),
     N + "spec.ingress[0].from[0].ipBlock may not be specified with podSelector or namespaceSelector; write the "
     "ipBlock as a peer of its own (another '- ipBlock:' entry)"),
    (netpol(ingress=[{"from": [{}]}]),
     N + "spec.ingress[0].from[0] must specify a peer; set podSelector, namespaceSelector or ipBlock"),
    (netpol(ingress=[{"from": [{"ipBlock": {"cidr": "fd00::/64"}}]}]),
     N + "spec.ingress[0].from[0].ipBlock.cidr fd00::/64 is IPv6; netlab emulates IPv4 clusters only; use an IPv4 "
     "CIDR"),
    (netpol(podSelector={"matchExpressions": [{"key": "a", "operator": "In"}]}),
     N + "spec.podSelector.matchExpressions[0].values must be non-empty when operator is In; list at least one value"),
    (netpol(podSelector={"matchExpressions": [{"key": "a", "operator": "Is", "values": ["x"]}]}),
     N + "spec.podSelector.matchExpressions[0].operator 'Is' is not supported; use one of: In, NotIn, Exists, "
     "DoesNotExist"),
    (netpol(ingress=[{"form": [{"podSelector": {}}]}]),
     N + "unknown field spec.ingress[0].form; did you mean from?"),
    (netpol(egress=[{"to": [{"podselector": {}}]}]),
     N + "unknown field spec.egress[0].to[0].podselector; did you mean podSelector?"),
    (netpol(ns="nope"), "NetworkPolicy p: metadata.namespace 'nope' does not exist; add a Namespace document "
     "named nope"),
])
def test_refused_with_one_line(doc, line):
    with pytest.raises(SpecError) as e:
        load(cluster(), doc)
    assert str(e.value) == line


def test_pod_selector_is_required():
    doc = netpol()
    del doc["spec"]["podSelector"]
    with pytest.raises(SpecError) as e:
        load(cluster(), doc)
    assert str(e.value) == N + "spec.podSelector is required; set spec.podSelector ({} selects every pod of the " \
                               "namespace)"
