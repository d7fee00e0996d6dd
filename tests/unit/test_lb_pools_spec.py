"""MetalLB's IPAddressPool and L2Advertisement as the spec layer reads them (checked as MetalLB's
webhook does: one line naming document, field and fix), the Cluster document's loadBalancer:
shorthand, and the pools' overlap with the lab's own addresses."""
from __future__ import annotations

import pytest

from netlab import lb
from netlab.errors import SpecError
from netlab.live.objects import scenario_objects
from netlab.model.build import build

from .scenarios import cluster, load, service

API = "metallb.io/v1beta1"


def pool(name="p", addresses=("172.18.255.200-172.18.255.250",), ns="metallb-system", **spec):
    return {"apiVersion": API, "kind": "IPAddressPool", "metadata": {"name": name, "namespace": ns},
            "spec": {"addresses": list(addresses), **spec}}


def l2(name="l2", ns="metallb-system", **spec):
    d = {"apiVersion": API, "kind": "L2Advertisement", "metadata": {"name": name, "namespace": ns}}
    if spec:
        d["spec"] = spec
    return d


def lb_cluster(*pools):
    c = cluster()
    c["loadBalancer"] = {"pools": list(pools)}
    return c


def test_pools_and_advertisements_are_real_kinds_in_metallb_system():
    s = load(cluster(), pool(), l2(ipAddressPools=["p"]), service("web", type="LoadBalancer"))
    assert s.addons == [] and s.ignored == []
    assert "metallb-system" in s.namespaces and lb.installed(s)
    objs = scenario_objects(s)
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"] == ["metallb-system"]
    assert {o["kind"] for o in objs} >= {"IPAddressPool", "L2Advertisement"}
    assert not lb.installed(load(cluster(), l2()))


def test_shorthand_makes_the_documents():
    s = load(lb_cluster({"name": "default", "addresses": ["172.18.255.200-172.18.255.250"]},
                        {"name": "manual", "addresses": ["172.18.254.0/28"], "autoAssign": False}))
    docs = [(d["kind"], d["metadata"]["name"], d["metadata"]["namespace"], d.get("spec")) for d in s.documents]
    assert docs == [
        ("IPAddressPool", "default", "metallb-system", {"addresses": ["172.18.255.200-172.18.255.250"]}),
        ("L2Advertisement", "default", "metallb-system", {"ipAddressPools": ["default"]}),
        ("IPAddressPool", "manual", "metallb-system", {"addresses": ["172.18.254.0/28"], "autoAssign": False}),
        ("L2Advertisement", "manual", "metallb-system", {"ipAddressPools": ["manual"]}),
    ]
    assert lb.installed(s) and "metallb-system" in s.namespaces
    assert not lb.installed(load(cluster()))


P = "IPAddressPool p: "
L = "L2Advertisement l2: "


@pytest.mark.parametrize("doc, line", [
    (pool(addresses=["nonsense"]), P + "spec.addresses[0] 'nonsense' is not a CIDR or an IPv4 address range; write "
     "a CIDR (192.168.10.0/24) or a range (192.168.10.10-192.168.10.20)"),
    (pool(addresses=["172.18.255.9-172.18.255.1"]), P + "spec.addresses[0] '172.18.255.9-172.18.255.1' ends before "
     "it starts (MetalLB: the start IP is after the end IP); write a CIDR (192.168.10.0/24) or a range "
     "(192.168.10.10-192.168.10.20)"),
    (pool(addresses=["172.18.255.9/24"]), P + "spec.addresses[0] '172.18.255.9/24' has host bits set; write "
     "172.18.255.0/24"),
    (pool(addresses=["fd00::/120"]), P + "spec.addresses[0] 'fd00::/120' is IPv6: netlab emulates IPv4 clusters; "
     "write a CIDR (192.168.10.0/24) or a range (192.168.10.10-192.168.10.20)"),
    (pool(addresses=[]), P + "spec.addresses must list at least one range (MetalLB: pool has no prefixes defined); "
     "set spec.addresses, e.g. ['172.18.255.200-172.18.255.250']"),
    (pool(addresses=[5]), P + "spec.addresses[0] must be a string, not an integer; quote it, e.g. \"5\""),
    (pool(autoAssign="yes"), P + "spec.autoAssign must be true or false, not 'yes'; write true or false"),
    (pool(avoidBuggyIPs=1), P + "spec.avoidBuggyIPs must be true or false, not 1; write true or false"),
    (pool(adresses=["1.2.3.4/32"]), P + "unknown field spec.adresses; did you mean addresses?"),
    (pool(ns="default"), P + "metadata.namespace 'default' is not MetalLB's namespace: IPAddressPool resources must "
     "be created in metallb-system; set metadata.namespace: metallb-system"),
    (pool(serviceAllocation={"priority": "high"}), P + "spec.serviceAllocation.priority must be an integer, not the "
     "string 'high'; write a whole number"),
    (pool(serviceAllocation={"namespaces": ["a", "a"]}), P + "spec.serviceAllocation.namespaces[1] 'a' is listed "
     "twice (MetalLB: duplicate definition in namespaces field); list each namespace once"),
    (pool(serviceAllocation={"serviceSelectors": [{"matchLabels": {"a": "b"}}, {"matchLabels": {"a": "b"}}]}),
     P + "spec.serviceAllocation.serviceSelectors[1] repeats an earlier selector (MetalLB: duplicate definition of "
     "serviceSelectors); remove the duplicate"),
    (pool(serviceAllocation={"namespaceSelectors": [{"matchExpressions": [{"key": "a", "operator": "In"}]}]}),
     P + "spec.serviceAllocation.namespaceSelectors[0].matchExpressions[0].values must be non-empty with operator "
     "In; list at least one value"),
    (pool(serviceAllocation={"namespaceSelectors": [{"matchExpressions": [{"key": "a", "operator": "Is"}]}]}),
     P + "spec.serviceAllocation.namespaceSelectors[0].matchExpressions[0].operator 'Is' is not supported; use one "
     "of: In, NotIn, Exists, DoesNotExist"),
    (pool(addresses=["10.244.0.0/28"]), P + "spec.addresses[0] '10.244.0.0/28' overlaps networking.podSubnet "
     "10.244.0.0/16; take the pool's addresses from the node subnet, away from the nodes, the gateway and the "
     "external host (e.g. its upper end)"),
    (pool(addresses=["10.96.100.1-10.96.100.5"]), P + "spec.addresses[0] '10.96.100.1-10.96.100.5' overlaps "
     "networking.serviceSubnet 10.96.0.0/16; take the pool's addresses from the node subnet, away from the nodes, "
     "the gateway and the external host (e.g. its upper end)"),
    (pool(addresses=["172.18.0.0/30"]), P + "spec.addresses[0] '172.18.0.0/30' overlaps the gateway's address "
     "172.18.0.1; take the pool's addresses from the node subnet, away from the nodes, the gateway and the external "
     "host (e.g. its upper end)"),
    (pool(addresses=["172.18.255.254/32"]), P + "spec.addresses[0] '172.18.255.254/32' overlaps the external host's "
     "addresses 172.18.255.253-172.18.255.254; take the pool's addresses from the node subnet, away from the nodes, "
     "the gateway and the external host (e.g. its upper end)"),
    (pool(addresses=["172.18.255.253/32"]), P + "spec.addresses[0] '172.18.255.253/32' overlaps the external host's "
     "addresses 172.18.255.253-172.18.255.254; take the pool's addresses from the node subnet, away from the nodes, "
     "the gateway and the external host (e.g. its upper end)"),
    (l2(ipAddressPools=["a", "a"]), L + "spec.ipAddressPools[1] 'a' is listed twice (MetalLB: duplicate definition "
     "of ipAddressPools); list each pool once"),
    (l2(interfaces="eth0"), L + "spec.interfaces must be a list, not the string 'eth0'; write it as '- item' lines"),
    (l2(nodeSelectors=[{"matchLabel": {}}]), L + "unknown field spec.nodeSelectors[0].matchLabel; did you mean "
     "matchLabels?"),
    (l2(preferredNodeSelectors=[{"weight": 0, "preference": {}}]), L + "spec.preferredNodeSelectors[0].weight 0 is "
     "out of range 1-100; use a number from 1 to 100"),
    (l2(ns="default"), L + "metadata.namespace 'default' is not MetalLB's namespace: L2Advertisement resources must "
     "be created in metallb-system; set metadata.namespace: metallb-system"),
    (l2(bogus=1), L + "unknown field spec.bogus; remove it: L2AdvertisementSpec has no such field (kubectl's strict "
     "field validation refuses it too)"),
])
def test_bad_input_is_one_line(doc, line):
    with pytest.raises(SpecError) as e:
        load(cluster(), doc)
    assert str(e.value) == line


def test_overlapping_pools_are_refused():
    with pytest.raises(SpecError) as e:
        load(cluster(), pool("a", ["172.18.200.0/24"]), pool("b", ["172.18.200.128-172.18.200.130"]))
    assert str(e.value) == ("IPAddressPool b: spec.addresses[0] '172.18.200.128-172.18.200.130' overlaps "
                            "172.18.200.0-172.18.200.255 of pool 'a' (MetalLB refuses overlapping pools); give each "
                            "pool its own addresses")


def test_shorthand_errors_name_the_cluster_document():
    with pytest.raises(SpecError) as e:
        load(lb_cluster({"name": "x", "addresses": ["bad"]}))
    assert str(e.value).startswith("Cluster (document 1): loadBalancer.pools[0] (IPAddressPool x): spec.addresses[0] 'bad' is "
                                   "not a CIDR")
    with pytest.raises(SpecError, match=r"Cluster \(document 1\): unknown field loadBalancer.pools\[0\].adresses; did you mean "
                                        "addresses"):
        load(lb_cluster({"name": "x", "adresses": ["172.18.255.1/32"]}))
    with pytest.raises(SpecError, match=r"loadBalancer.pools\[1\].name 'x' names two pools"):
        load(lb_cluster({"name": "x", "addresses": ["172.18.255.1/32"]}, {"name": "x", "addresses": ["172.18.255.2/32"]}))
    with pytest.raises(SpecError, match=r"loadBalancer.pools\[0\].autoAssign must be true or false"):
        load(lb_cluster({"name": "x", "addresses": ["172.18.255.1/32"], "autoAssign": "no"}))


def test_a_pool_on_a_node_address_is_refused_when_the_model_is_built():
    s = load(cluster(), pool(addresses=["172.18.0.2-172.18.0.9"]))   # nodes are .2 upward
    with pytest.raises(SpecError) as e:
        build(s)
    assert str(e.value) == ("IPAddressPool p: spec.addresses holds 172.18.0.2, the address of node t-control-plane; "
                            "take the pool's addresses from the node subnet away from the nodes' addresses (e.g. its "
                            "upper end)")
    build(load(cluster(), pool(addresses=["172.18.0.10-172.18.0.20"])))   # inside the node subnet: fine
