"""The IPAM controller (MetalLB's controller side) on a memory store: assignment from pools,
requested addresses and pools, sharing, autoAssign, avoidBuggyIPs, serviceAllocation, release,
stability and events (MetalLB's reasons and messages)."""
import pytest

from netlab.controllers import lbipam
from netlab.controllers.runner import Controller, Runner
from netlab.store import MemoryStore
from netlab.store.events import events_for

T0 = 1_800_000_000.0
NS = "metallb-system"


class Clock:
    def __init__(self):
        self.t = T0

    def __call__(self):
        self.t += 1
        return self.t


def pool(name, *addresses, **spec):
    return {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": name, "namespace": NS},
            "spec": {"addresses": list(addresses), **spec}}


def svc(name, ns="default", type_="LoadBalancer", ports=(80,), annotations=None, labels=None, **spec):
    md = {"name": name, "namespace": ns}
    if annotations:
        md["annotations"] = dict(annotations)
    if labels:
        md["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Service", "metadata": md,
            "spec": {"type": type_, "selector": {"app": name},
                     "ports": [{"port": p, "protocol": "TCP"} for p in ports], **spec}}


@pytest.fixture
def lab():
    store = MemoryStore(clock=Clock())
    runner = Runner(store, [Controller("lbipam", lbipam.KINDS, lbipam.decide, lazy=lbipam.LAZY)])

    class Lab:
        def add(self, *objs):
            for o in objs:
                store.create(o)
            runner.run_until_quiescent()

        def ip(self, name, ns="default"):
            ing = ((store.get("Service", ns, name).get("status") or {}).get("loadBalancer") or {}).get("ingress")
            return ing[0]["ip"] if ing else None

        def events(self, name, ns="default"):
            return [(e["reason"], e["message"]) for e in events_for(store, store.get("Service", ns, name))]

        def settle(self):
            runner.run_until_quiescent()
    Lab.store = store
    return Lab()


def test_first_free_address_status_annotation_and_event(lab):
    lab.add(pool("p", "192.0.2.10-192.0.2.12"), svc("a"), svc("b"))
    assert lab.ip("a") == "192.0.2.10" and lab.ip("b") == "192.0.2.11"
    a = lab.store.get("Service", "default", "a")
    assert a["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.10", "ipMode": "VIP"}]
    assert a["metadata"]["annotations"]["metallb.universe.tf/ip-allocated-from-pool"] == "p"
    assert lab.events("a") == [("IPAllocated", 'Assigned IP ["192.0.2.10"]')]


def test_exhausted_pool_pending_with_event_once_then_freed(lab):
    lab.add(pool("p", "192.0.2.10/32"), svc("a"))
    lab.add(svc("b"))
    assert lab.ip("b") is None
    assert lab.events("b") == [("AllocationFailed", 'Failed to allocate IP for "default/b": no available IPs')]
    lab.settle()
    ev = [e for e in lab.store.list("Event") if e["involvedObject"]["name"] == "b"]
    assert len(ev) == 1 and ev[0]["count"] == 1   # not repeated while nothing changes
    lab.store.delete("Service", "default", "a")
    lab.settle()
    assert lab.ip("b") == "192.0.2.10"
    assert lab.events("b")[-1] == ("IPAllocated", 'Assigned IP ["192.0.2.10"]')


def test_assignment_is_stable_across_decisions(lab):
    lab.add(pool("p", "192.0.2.0/29"), svc("a"), svc("b"), svc("c"))
    before = {n: lab.ip(n) for n in "abc"}
    lab.store.delete("Service", "default", "a")
    lab.add(svc("d"))
    assert lab.ip("b") == before["b"] and lab.ip("c") == before["c"]
    assert lab.ip("d") == before["a"]   # the freed address is the first free one again


def test_requested_ip_spec_and_annotation(lab):
    lab.add(pool("p", "192.0.2.0/28"), svc("a", loadBalancerIP="192.0.2.7"),
            svc("b", annotations={"metallb.io/loadBalancerIPs": "192.0.2.9"}),
            svc("c", annotations={"metallb.universe.tf/loadBalancerIPs": "192.0.2.11"}))
    assert (lab.ip("a"), lab.ip("b"), lab.ip("c")) == ("192.0.2.7", "192.0.2.9", "192.0.2.11")


def test_requested_ip_outside_every_pool(lab):
    lab.add(pool("p", "192.0.2.0/28"), svc("a", loadBalancerIP="198.51.100.5"))
    assert lab.ip("a") is None
    assert lab.events("a") == [("AllocationFailed",
                                'Failed to allocate IP for "default/a": ["198.51.100.5"] is not allowed in config')]


def test_both_requests_refused(lab):
    lab.add(pool("p", "192.0.2.0/28"),
            svc("a", loadBalancerIP="192.0.2.3", annotations={"metallb.io/loadBalancerIPs": "192.0.2.4"}))
    assert lab.ip("a") is None
    assert lab.events("a")[0][1] == ('Failed to allocate IP for "default/a": service can not have both '
                                     'metallb.io/loadBalancerIPs and svc.Spec.LoadBalancerIP')
    lab.add(svc("b", annotations={"metallb.universe.tf/loadBalancerIPs": "192.0.2.300"}))
    assert lab.events("b")[0][1] == ('Failed to allocate IP for "default/b": invalid '
                                     'metallb.universe.tf/loadBalancerIPs: "192.0.2.300"')


def test_address_pool_annotation_and_autoassign_false(lab):
    lab.add(pool("auto", "192.0.2.0/30"), pool("manual", "198.51.100.0/30", autoAssign=False),
            svc("a"), svc("b", annotations={"metallb.universe.tf/address-pool": "manual"}))
    assert lab.ip("a") == "192.0.2.0" and lab.ip("b") == "198.51.100.0"
    lab.add(svc("c", annotations={"metallb.io/address-pool": "nope"}))
    assert lab.events("c") == [("AllocationFailed", 'Failed to allocate IP for "default/c": unknown pool "nope"')]


def test_autoassign_false_pool_only_on_request(lab):
    lab.add(pool("manual", "198.51.100.0/30", autoAssign=False), svc("a"))
    assert lab.ip("a") is None
    assert lab.events("a")[0][1].endswith("no available IPs")


def test_avoid_buggy_ips(lab):
    lab.add(pool("p", "192.0.2.255-192.0.3.1", avoidBuggyIPs=True), svc("a"), svc("b"))
    assert (lab.ip("a"), lab.ip("b")) == ("192.0.3.1", None)


def test_shared_ip_rules(lab):
    lab.add(pool("p", "192.0.2.10/31"),
            svc("a", ports=(80,), annotations={"metallb.universe.tf/allow-shared-ip": "k"}, loadBalancerIP="192.0.2.10"),
            svc("b", ports=(443,), annotations={"metallb.universe.tf/allow-shared-ip": "k"}, loadBalancerIP="192.0.2.10"))
    assert lab.ip("a") == lab.ip("b") == "192.0.2.10"
    # the same port on the shared address: refused
    lab.add(svc("c", ports=(80,), annotations={"metallb.universe.tf/allow-shared-ip": "k"}, loadBalancerIP="192.0.2.10"))
    assert lab.ip("c") is None
    assert lab.events("c")[0][1] == 'Failed to allocate IP for "default/c": port TCP/80 is already in use on "192.0.2.10"'
    # another key: refused
    lab.add(svc("d", ports=(8080,), annotations={"metallb.universe.tf/allow-shared-ip": "other"},
                loadBalancerIP="192.0.2.10"))
    assert lab.ip("d") is None and "address also in use by default/a,default/b" in lab.events("d")[0][1]
    # a shared key without a requested address: the first address it may share
    lab.add(svc("e", ports=(8443,), annotations={"metallb.universe.tf/allow-shared-ip": "k"}))
    assert lab.ip("e") == "192.0.2.10"
    # no key: not on a shared address
    lab.add(svc("f", ports=(9000,)))
    assert lab.ip("f") == "192.0.2.11"


def test_shared_ip_local_policy_needs_same_selector(lab):
    share = {"metallb.universe.tf/allow-shared-ip": "k"}
    lab.add(pool("p", "192.0.2.10/32"),
            svc("a", ports=(80,), annotations=share, externalTrafficPolicy="Local"),
            svc("b", ports=(81,), annotations=share, externalTrafficPolicy="Local"))
    assert lab.ip("a") == "192.0.2.10" and lab.ip("b") is None   # selectors app=a and app=b differ


def test_release_on_type_change_and_class_left_alone(lab):
    lab.add(pool("p", "192.0.2.10/32"), svc("a"), svc("x", loadBalancerClass="example.com/other"))
    assert lab.ip("a") == "192.0.2.10" and lab.ip("x") is None and lab.events("x") == []
    a = lab.store.get("Service", "default", "a")
    a["spec"]["type"] = "ClusterIP"
    lab.store.update(a)
    lab.add(svc("b"))
    a = lab.store.get("Service", "default", "a")
    assert lab.ip("a") is None and "metallb.universe.tf/ip-allocated-from-pool" not in (a["metadata"].get("annotations") or {})
    assert lab.ip("b") == "192.0.2.10"


def test_service_allocation_priority_namespaces_selectors(lab):
    lab.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"team": "a"}}},
            pool("general", "192.0.2.0/30"),
            pool("team-low", "198.51.100.0/30", serviceAllocation={"priority": 20, "namespaces": ["team"]}),
            pool("team-high", "203.0.113.0/30",
                 serviceAllocation={"priority": 10, "namespaceSelectors": [{"matchLabels": {"team": "a"}}]}),
            pool("gold", "203.0.113.64/30", serviceAllocation={"serviceSelectors": [{"matchLabels": {"tier": "gold"}}]}),
            svc("a", ns="team"), svc("b"), svc("c", labels={"tier": "gold"}))
    assert lab.ip("a", "team") == "203.0.113.0"   # priority 10 before 20
    assert lab.ip("b") == "192.0.2.0"             # pools with a serviceAllocation are not for everyone
    assert lab.ip("c") == "203.0.113.64"          # pinned by its labels
    # a pool of another namespace cannot be asked for
    lab.add(svc("d", annotations={"metallb.io/address-pool": "team-low"}))
    assert lab.events("d")[0][1] == 'Failed to allocate IP for "default/d": pool team-low not compatible for ip assignment'


def test_pool_change_clears_an_address_it_no_longer_holds(lab):
    lab.add(pool("p", "192.0.2.10/32"), svc("a"))
    p = lab.store.get("IPAddressPool", NS, "p")
    p["spec"]["addresses"] = ["192.0.2.20/32"]
    lab.store.update(p)
    lab.settle()
    assert lab.ip("a") == "192.0.2.20"
    reasons = [r for r, _ in lab.events("a")]
    assert reasons == ["IPAllocated", "ClearAssignment", "IPAllocated"]


def test_changed_request_moves_the_service(lab):
    lab.add(pool("p", "192.0.2.0/28"), svc("a"))
    a = lab.store.get("Service", "default", "a")
    a["spec"]["loadBalancerIP"] = "192.0.2.5"
    lab.store.update(a)
    lab.settle()
    assert lab.ip("a") == "192.0.2.5"


def test_no_pools_no_address_no_event(lab):
    lab.add(svc("a"))
    assert lab.ip("a") is None and lab.events("a") == []


def test_without_metallb_nothing_is_touched_and_an_ipmode_is_kept(lab):
    s = svc("a")
    s["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "Proxy"}]}}
    lab.add(s)   # no pool: MetalLB is not installed, the status another writer set stays
    assert lab.store.get("Service", "default", "a")["status"]["loadBalancer"]["ingress"][0]["ipMode"] == "Proxy"
    lab.add(pool("p", "192.0.2.10/32"))   # now its controller keeps the address it finds (in the pool)
    st = lab.store.get("Service", "default", "a")
    assert st["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.10", "ipMode": "Proxy"}]
    assert st["metadata"]["annotations"]["metallb.universe.tf/ip-allocated-from-pool"] == "p"


def test_pool_status_counts_assigned_and_available(lab):
    lab.add(pool("p", "192.0.2.10-192.0.2.13"), svc("a"), svc("b"),
            svc("c", ports=(81,), annotations={"metallb.universe.tf/allow-shared-ip": "k"}),
            svc("d", ports=(82,), annotations={"metallb.universe.tf/allow-shared-ip": "k"}))
    assert lab.ip("c") == lab.ip("d") == "192.0.2.12"
    assert lab.store.get("IPAddressPool", NS, "p")["status"] == {
        "assignedIPv4": 3, "assignedIPv6": 0, "availableIPv4": 1, "availableIPv6": 0}


def test_events_are_read_only_where_metallb_is_installed(lab):
    # (a big lab has tens of thousands of events; this controller needs its own, and only with pools)
    read = []
    real = lab.store.snapshot_index
    lab.store.snapshot_index = lambda kinds: read.extend(kinds) or real(kinds)
    lab.store.create({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "reason": "Started",
                      "involvedObject": {"kind": "Pod", "name": "x", "uid": "u"}, "source": {"component": "kubelet"}})
    lab.add(svc("a"))
    assert "Event" not in read and "Service" in read
    lab.add(pool("p", "192.0.2.10/32"))
    assert "Event" not in read and lab.ip("a") == "192.0.2.10"   # (nothing to look up yet)
    lab.add(svc("b"))   # the pool is exhausted: a failure, said once (its earlier events looked up)
    lab.settle()
    assert "Event" in read and [r for r, _ in lab.events("b")] == ["AllocationFailed"]
