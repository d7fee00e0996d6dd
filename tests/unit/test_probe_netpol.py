"""The probe's side of NetworkPolicy, without root: the `denied` outcome (ICMP 3/13, for the crafted kinds
and for the socket kinds through IP_RECVERR's error queue), the plan's expectations derived from
netlab.netpol.evaluate on the addresses each enforcing node sees (netlab/probe/policy.py), and how
`netlab probe` judges and reports them (-v names the policies, -o json carries `denied_by`)."""
from __future__ import annotations

import errno
import selectors
import ipaddress
from collections import Counter

import pytest

from netlab.netpol.policy import IPBlock, LabelSelector, NetworkPolicy, Peer, PolicyPort, Rule, default_types
from netlab.probe import plan, run
from netlab.probe.kinds import sock as sockmod
from netlab.probe.kinds.http import HttpProbe
from netlab.probe.kinds.udp_app import UdpAppProbe
from netlab.probe.outcomes import icmp_error_outcome
from netlab.probe.spec import OUTCOMES, ProbeResult, ProbeSpec

from .scenarios import cluster, cluster_of, container, pod, service

EXT = "external"


def lab(etp: str = "Cluster", backend: str | None = None):
    """client (role=client) and web1 on t-worker, web2 on t-worker2; Service web (NodePort, TCP 80 -> 8080
    and UDP 53 -> 5353) selecting app=web."""
    web = [container(ports=[(8080, "http"), {"containerPort": 5353, "protocol": "UDP", "name": "dns"}])]
    net = {"backend": backend} if backend else {}
    c = cluster_of(cluster(nodes=("control-plane", "worker", "worker"), **net),
                   pod("client", {"role": "client"}, [container(ports=[(8080, "http")])], nodeName="t-worker"),
                   pod("web1", {"app": "web"}, web, nodeName="t-worker"),
                   pod("web2", {"app": "web"}, web, nodeName="t-worker2"),
                   service("web", type="NodePort", externalTrafficPolicy=etp,
                           ports=[{"name": "http", "port": 80, "targetPort": 8080},
                                  {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]))
    return c


def sel(**kv):
    return LabelSelector(tuple(kv.items()))


def pol(name, selector=None, ingress=None, egress=None, types=None, ns="default"):
    return NetworkPolicy(ns, name, selector if selector is not None else LabelSelector(),
                         types or default_types(egress is not None), tuple(ingress or ()), tuple(egress or ()))


def cidr(text, *excepts):
    return Peer(ip_block=IPBlock(ipaddress.ip_network(text), tuple(ipaddress.ip_network(e) for e in excepts)))


def by_target(checks):
    return {c.target: c for c in checks}


def src(c, text):
    return plan.resolve_sources(c, text)[0]


# ------------------------------------------------------------------ outcomes

def test_admin_prohibited_is_denied_for_every_kind_and_nothing_else_is():
    assert "denied" in OUTCOMES
    for kind in ("icmp", "tcp", "udp", "http", "udp-app"):
        assert icmp_error_outcome(kind, 3, 13) == "denied"
        assert icmp_error_outcome(kind, 3, 1) == "unreachable"     # REJECT --reject-with icmp-host-unreachable
        assert icmp_error_outcome(kind, 3, 0) == "unreachable"
    for code in (2, 3, 9, 10):                                     # the other REJECT flavours stay refused
        assert icmp_error_outcome("tcp", 3, code) == "refused"
    assert icmp_error_outcome("tcp", 11, 0) == "unreachable"


class FakeGroup:
    def __init__(self):
        self.results = {}
        self.active = set()
        self.sel = selectors.DefaultSelector()


class FakeSock:
    def close(self):
        pass


@pytest.mark.parametrize("cls,kind", [(HttpProbe, "http"), (UdpAppProbe, "udp-app")])
@pytest.mark.parametrize("queued,want", [((3, 13), "denied"), ((3, 1), "unreachable"), ((3, 10), "refused"),
                                         (None, "unreachable")])
def test_socket_kinds_tell_denied_from_host_unreachable_by_the_error_queue(monkeypatch, cls, kind, queued, want):
    """Both ICMP 3/13 and 3/1 reach a socket as EHOSTUNREACH: the ICMP type and code queued by IP_RECVERR
    decide; without a queued ICMP error (a local route error) EHOSTUNREACH stays unreachable."""
    entry = None if queued is None else (errno.EHOSTUNREACH, sockmod.SO_EE_ORIGIN_ICMP, *queued, "10.244.2.0")
    monkeypatch.setattr(sockmod, "read_errqueue", lambda s: entry)
    g = FakeGroup()
    p = cls(0, ProbeSpec("ns", kind, "10.244.2.2", 8080))
    p.sock = FakeSock()
    p.group = g
    g.active.add(p)
    p._fail(g, errno.EHOSTUNREACH, "connect")
    r = g.results[0]
    assert r.outcome == want, r
    if queued == (3, 13):
        assert r.detail == "ICMP admin-prohibited from 10.244.2.0" and r.reply_src == "10.244.2.0"
        assert r.rtt_ms is not None


# ------------------------------------------------------------------ expectations

def test_without_policies_nothing_is_expected_denied():
    c = lab()
    checks = plan.default_matrix(c)
    assert checks and all(ch.expect in ("reachable", "refused", "timeout") for ch in checks)
    assert not any(ch.denied_by for ch in checks)


def test_default_deny_ingress_direct_probes_and_the_node_exemption():
    c = lab()
    c.policies = [pol("deny-web", sel(app="web"), types=("Ingress",))]
    got = by_target(plan.target_checks(c, src(c, "pod/client"), "pod/web1"))
    assert set(got) == {"pod/web1", "pod/web1:8080/tcp", "pod/web1:5353/udp"}
    for ch in got.values():
        assert ch.expect == "denied" and ch.backends is None and ch.expect_source_ip is None
        assert [d.text() for d in ch.denied_by] == ["denied by ingress of default/web1: default/deny-web"]
    d = got["pod/web1:8080/tcp"].denied_by[0]
    assert (d.src, d.dst, d.port, d.protocol) == ("10.244.1.2", "10.244.1.3", 8080, "TCP")
    assert got["pod/web1"].denied_by[0].protocol == "ICMP"
    # the probes stay the app exchanges: a denied connect() is told apart by its error queue
    assert [p.kind for ch in got.values() for p in ch.probes] == ["icmp", "http", "udp-app"]
    # a node reaches its own pods always; another node's traffic comes from its flannel.1 address
    own = plan.target_checks(c, src(c, "node/t-worker"), "pod/web1")
    assert all(ch.expect == "reachable" and not ch.denied_by for ch in own)
    other = plan.target_checks(c, src(c, "node/t-worker2"), "pod/web1")
    assert all(ch.expect == "denied" for ch in other)
    assert other[1].denied_by[0].src == "10.244.2.0"     # t-worker2's vtep
    # the unselected client is still reachable from web1, and a pod reaches itself through its Service
    assert all(ch.expect == "reachable" for ch in plan.target_checks(c, src(c, "pod/web1"), "pod/client"))


def test_host_gw_nodes_are_seen_with_their_underlay_address():
    c = lab(backend="host-gw")
    c.policies = [pol("from-worker2", sel(app="web"), ingress=[Rule(peers=(cidr("172.18.0.4/32"),))])]
    assert all(ch.expect == "reachable" for ch in plan.target_checks(c, src(c, "node/t-worker2"), "pod/web1"))
    c = lab()   # vxlan: the same node comes from 10.244.2.0, which the block does not hold
    c.policies = [pol("from-worker2", sel(app="web"), ingress=[Rule(peers=(cidr("172.18.0.4/32"),))])]
    assert all(ch.expect == "denied" for ch in plan.target_checks(c, src(c, "node/t-worker2"), "pod/web1"))


def test_service_all_endpoints_denied_is_denied_with_syn_probes():
    c = lab()
    c.policies = [pol("deny-web", sel(app="web"), types=("Ingress",))]
    got = by_target(plan.target_checks(c, src(c, "pod/client"), "svc/web", count=5))
    http, dns = got["svc/web:http"], got["svc/web:dns"]
    assert http.expect == dns.expect == "denied"
    assert [p.kind for p in http.probes] == ["tcp"] and [p.kind for p in dns.probes] == ["udp"]
    assert http.backends == set()    # as for refused: no pod may answer
    assert sorted((d.endpoint, d.dst, d.port) for d in http.denied_by) == [
        ("default/web1", "10.244.1.3", 8080), ("default/web2", "10.244.2.2", 8080)]
    assert {d.text() for d in dns.denied_by} == {
        "denied by ingress of default/web1: default/deny-web (endpoint default/web1)",
        "denied by ingress of default/web2: default/deny-web (endpoint default/web2)"}


def test_some_endpoints_denied_is_reachable_or_denied_with_the_allowed_backends():
    c = lab()
    # web2 admits only the client; web1 admits everyone
    c.policies = [NetworkPolicy("default", "only-client", LabelSelector((("app", "web"),)), ("Ingress",),
                                (Rule(peers=(Peer(pod_selector=sel(role="client")),)),))]
    checks = by_target(plan.target_checks(c, src(c, "pod/client"), "svc/web"))
    assert checks["svc/web:http"].expect == "reachable" and not checks["svc/web:http"].denied_by
    # from web1: itself is always allowed (self), web2 denies it
    got = by_target(plan.target_checks(c, src(c, "pod/web1"), "svc/web", count=20))
    ch = got["svc/web:http"]
    assert ch.expect == "reachable-or-denied"
    assert ch.backends == {"web1"} and len(ch.probes) == 20 and ch.probes[0].kind == "http"
    assert [d.endpoint for d in ch.denied_by] == ["default/web2"]


def test_external_nodeport_sees_the_client_locally_and_the_entry_node_across():
    """From outside to t-worker's NodePort: web1 (on t-worker) sees the external host's address (FORWARD
    runs before the masquerade), web2 (on t-worker2) sees t-worker's flannel.1 address."""
    c = lab()
    ext_ip = str(c.external_ip)
    c.policies = [pol("from-worker-vtep", sel(app="web"), ingress=[Rule(peers=(cidr("10.244.1.0/32"),))])]
    ext = src(c, EXT)
    got = by_target(plan.target_checks(c, ext, "nodeport/web@t-worker"))
    ch = got["nodeport/web:http@t-worker"]
    assert ch.expect == "reachable-or-denied" and ch.backends == {"web2"}
    assert [(d.endpoint, d.src) for d in ch.denied_by] == [("default/web1", ext_ip)]
    # entering at t-worker2: web2 is local there (sees the external host), web1 sees 10.244.2.0: both denied
    ch = by_target(plan.target_checks(c, ext, "nodeport/web@t-worker2"))["nodeport/web:http@t-worker2"]
    assert ch.expect == "denied"
    assert sorted((d.endpoint, d.src) for d in ch.denied_by) == [("default/web1", "10.244.2.0"),
                                                                 ("default/web2", ext_ip)]
    # externalTrafficPolicy Local: no masquerade, only the local endpoint, which sees the external host
    c = lab(etp="Local")
    c.policies = [pol("from-ext", sel(app="web"), ingress=[Rule(peers=(cidr(f"{ext_ip}/32"),))])]
    ch = by_target(plan.target_checks(c, ext, "nodeport/web@t-worker"))["nodeport/web:http@t-worker"]
    assert ch.expect == "reachable" and ch.backends == {"web1"}


def test_default_matrix_expects_the_policies():
    c = lab()
    c.policies = [pol("deny-web", sel(app="web"), types=("Ingress",))]
    checks = plan.default_matrix(c)
    denied = [ch for ch in checks if ch.expect == "denied"]
    assert denied and all(ch.denied_by for ch in denied)
    assert all(ch.expect == "denied" for ch in checks if ch.group == "external -> nodeport")
    # pod -> service from the client: denied; from web1: itself or web2 (denied)
    svc = [(ch.source.name, ch.target, ch.expect) for ch in checks if ch.group == "pod -> service"]
    assert ("default/client", "svc/web:http", "denied") in svc
    assert ("default/web1", "svc/web:http", "reachable-or-denied") in svc


def test_egress_isolation_names_the_source_pod():
    c = lab()
    c.policies = [pol("client-dns-only", sel(role="client"), types=("Egress",),
                      egress=[Rule(ports=(PolicyPort("UDP", 5353),))])]
    got = by_target(plan.target_checks(c, src(c, "pod/client"), "svc/web"))
    assert got["svc/web:dns"].expect == "reachable"
    assert got["svc/web:http"].expect == "denied"
    assert {d.text() for d in got["svc/web:http"].denied_by} == {
        "denied by egress of default/client: default/client-dns-only (endpoint default/web1)",
        "denied by egress of default/client: default/client-dns-only (endpoint default/web2)"}
    # its own node is exempt, another node is not (ICMP: no rule with ports allows it)
    nodes = {ch.target: ch.expect for ch in plan.target_checks(c, src(c, "pod/client"), "node/t-worker")}
    assert nodes == {"node/t-worker": "reachable"}
    assert plan.target_checks(c, src(c, "pod/client"), "node/t-worker2")[0].expect == "denied"
    # a raw IP target is judged as it is; a Service address (DNATed on the way) is not guessed at
    assert plan.target_checks(c, src(c, "pod/client"), "10.244.2.2:8080")[0].expect == "denied"
    assert plan.target_checks(c, src(c, "pod/client"), "10.244.2.2:5353/udp")[0].expect == "reachable"
    svc = next(s for s in c.services if s.name == "web")
    assert plan.target_checks(c, src(c, "pod/client"), f"{svc.cluster_ip}:80")[0].expect == "reachable"


def test_pod_to_another_nodes_nodeport_egress_sees_that_node_and_ingress_its_own_node():
    """client (t-worker) -> t-worker2's NodePort: its egress sees t-worker2's address; the packet leaves
    t-worker masqueraded to t-worker's underlay address, which web2 (local to the entry) sees."""
    c = lab()
    c.policies = [pol("client-out", sel(role="client"), types=("Egress",),
                      egress=[Rule(peers=(cidr("172.18.0.4/32"),))]),
                  pol("web-in", sel(app="web"), ingress=[Rule(peers=(cidr("172.18.0.3/32"),))])]
    ch = by_target(plan.target_checks(c, src(c, "pod/client"), "nodeport/web:http@t-worker2"))[
        "nodeport/web:http@t-worker2"]
    assert ch.expect == "reachable-or-denied" and ch.backends == {"web2"}
    assert [(d.endpoint, d.direction, d.src) for d in ch.denied_by] == [("default/web1", "ingress", "10.244.2.0")]
    # through its own node's NodePort the egress sees the endpoint (DNAT on t-worker): not allowed
    ch = by_target(plan.target_checks(c, src(c, "pod/client"), "nodeport/web:http@t-worker"))[
        "nodeport/web:http@t-worker"]
    assert ch.expect == "denied" and {d.direction for d in ch.denied_by} == {"egress"}


# ------------------------------------------------------------------ judging and reporting

def result(spec, outcome, answered_by=None):
    return ProbeResult(spec, outcome, 1.0 if outcome == "reachable" else None, "ICMP admin-prohibited from x"
                       if outcome == "denied" else "", answered_by=answered_by)


def test_judging_denied_and_mixed_checks():
    c = lab()
    c.policies = [NetworkPolicy("default", "only-client", LabelSelector((("app", "web"),)), ("Ingress",),
                                (Rule(peers=(Peer(pod_selector=sel(role="client")),)),))]
    ch = by_target(plan.target_checks(c, src(c, "pod/web1"), "svc/web", count=4))["svc/web:http"]
    sp = ch.probes[0]
    mixed = run.judge(ch, [result(sp, "reachable", "web1"), result(sp, "denied"), result(sp, "reachable", "web1"),
                           result(sp, "denied")])
    assert mixed.ok and mixed.outcome == "reachable-or-denied", mixed.why
    assert run.judge(ch, [result(sp, "denied")] * 4).ok
    assert run.judge(ch, [result(sp, "reachable", "web1")] * 4).ok
    stray = run.judge(ch, [result(sp, "reachable", "web2"), result(sp, "denied")] * 2)
    assert not stray.ok and "web2, which must not answer" in stray.why
    timeout = run.judge(ch, [result(sp, "reachable", "web1"), result(sp, "timeout")] * 2)
    assert not timeout.ok
    c.policies = [pol("deny-web", sel(app="web"), types=("Ingress",))]
    den = by_target(plan.target_checks(c, src(c, "pod/client"), "svc/web"))["svc/web:http"]
    assert run.judge(den, [result(den.probes[0], "denied")]).ok
    bad = run.judge(den, [result(den.probes[0], "refused")])
    assert not bad.ok and "expected denied, got refused" in bad.why


def test_verbose_table_names_the_policies_and_json_carries_them():
    c = lab()
    c.policies = [pol("deny-web", sel(app="web"), types=("Ingress",))]
    checks = plan.target_checks(c, src(c, "pod/client"), "pod/web1")
    judged = [run.judge(ch, [result(ch.probes[0], "denied")]) for ch in checks]
    quiet = run.table(judged, 0.1)
    assert "denied by" not in quiet and "denied" in quiet
    loud = run.table(judged, 0.1, verbose=True)
    assert loud.count("  -> denied by ingress of default/web1: default/deny-web") == 3
    doc = run.as_json(judged, 0.1)
    row = doc["checks"][1]
    assert row["outcome"] == "denied" and row["expect"] == "denied" and row["ok"]
    assert row["denied_by"] == [{"direction": "ingress", "pod": "default/web1", "policies": ["default/deny-web"],
                                 "src": "10.244.1.2", "dst": "10.244.1.3", "port": 8080, "protocol": "TCP",
                                 "endpoint": None}]
    # an unexpected denial (no policy says so) fails and shows the ICMP answer
    c.policies = []
    ch = plan.target_checks(c, src(c, "pod/client"), "pod/web1")[1]
    r = run.judge(ch, [result(ch.probes[0], "denied")])
    assert not r.ok and "expected reachable, got denied (ICMP admin-prohibited from x)" in r.why
    assert run.as_json([r], 0.1)["checks"][0]["denied_by"] == []
    assert Counter(x.outcome for x in r.results) == {"denied": 1}


def test_a_host_network_pod_is_seen_as_its_node():
    """A hostNetwork pod's traffic is its node's: toward another node's pod it comes from that node's
    flannel.1 address, and its own node's pods always admit it."""
    c = cluster_of(cluster(nodes=("control-plane", "worker", "worker")),
                   pod("hn", {"role": "client"}, [container(ports=[(9090, "m")])], nodeName="t-worker",
                       hostNetwork=True),
                   pod("web1", {"app": "web"}, [container(ports=[(8080, "http")])], nodeName="t-worker"),
                   pod("web2", {"app": "web"}, [container(ports=[(8080, "http")])], nodeName="t-worker2"),
                   service("web", ports=[{"port": 80, "targetPort": 8080}]))
    # admits role=client pods: a hostNetwork pod is selected by no peer (it is not a pod address)
    c.policies = [NetworkPolicy("default", "from-client", LabelSelector((("app", "web"),)), ("Ingress",),
                                (Rule(peers=(Peer(pod_selector=sel(role="client")),)),))]
    hn = src(c, "pod/hn")
    far = plan.target_checks(c, hn, "pod/web2")[1]
    assert far.expect == "denied" and far.denied_by[0].src == "10.244.1.0"
    assert plan.target_checks(c, hn, "pod/web1")[1].expect == "reachable"
    ch = by_target(plan.target_checks(c, hn, "svc/web"))["svc/web:80"]
    assert ch.expect == "reachable-or-denied" and ch.backends == {"web1"}


def test_load_balancer_from_outside_any_node_may_take_it():
    """The model cannot tell which node announces a LoadBalancer IP: an endpoint allowed through one of
    them may answer. Allowing t-worker's flannel.1 address admits web2 (through t-worker, masqueraded), never
    web1 (local to t-worker it sees the external host; through the others their own addresses)."""
    from netlab.model.build import build

    from ..builders import lb_granted
    from .scenarios import load
    web = [container(ports=[(8080, "http")])]
    c = build(lb_granted(load(cluster(nodes=("control-plane", "worker", "worker")),
                              pod("web1", {"app": "web"}, web, nodeName="t-worker"),
                              pod("web2", {"app": "web"}, web, nodeName="t-worker2"),
                              service("web", type="LoadBalancer", loadBalancerIP="192.0.2.20",
                                      ports=[{"port": 80, "targetPort": 8080}]))))
    c.policies = [pol("from-vtep", sel(app="web"), ingress=[Rule(peers=(cidr("10.244.1.0/32"),))])]
    ch = plan.target_checks(c, src(c, EXT), "lb/web")[0]
    assert ch.expect == "reachable-or-denied" and ch.backends == {"web2"}
    # every way that is denied is named: web1 through each node, web2 through the two others
    assert sorted((d.endpoint, d.src) for d in ch.denied_by) == sorted([
        ("default/web1", str(c.external_ip)), ("default/web1", "10.244.0.0"), ("default/web1", "10.244.2.0"),
        ("default/web2", str(c.external_ip)), ("default/web2", "10.244.0.0")])


def test_a_scenario_expectation_may_say_denied():
    c = cluster_of(cluster(expectations=[{"from": "pod/client", "to": "svc/web", "expect": "denied"}]),
                   pod("client", {"role": "client"}, [container(ports=[(8080, "http")])]),
                   pod("web1", {"app": "web"}, [container(ports=[(8080, "http")])]),
                   service("web", ports=[{"port": 80, "targetPort": 8080}]))
    checks = plan.expectation_checks(c)
    assert [(ch.target, ch.expect, ch.backends) for ch in checks] == [("svc/web:80", "denied", None)]
