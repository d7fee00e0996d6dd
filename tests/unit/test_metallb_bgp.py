"""MetalLB's BGP mode in the pure core (netlab/lb/bgpmode.py, netlab/bgp/bird.py): BGPPeer and
BGPAdvertisement checked as written (strict, one line), the sessions and routes decided from the store's
objects (node selection, externalTrafficPolicy Local, peers, aggregation, communities), the published file,
and the BIRD configurations rendered from the model and that file (golden files, BIRD's own parser). No root."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from netlab.bgp import bird
from netlab.dataplane.bgp import speakers
from netlab.errors import SpecError
from netlab.lb import bgpmode
from netlab.lb.bgpmode import Plan, Route, Session, decide, parse_document
from netlab.live.lbannounce import bgp_assigned_events
from netlab.live.objects import scenario_objects

from . import golden
from .scenarios import cluster, cluster_of, load
from .test_lb_announce import eps, node, pool, service, speaker_pod

IP = "172.18.200.10"
ROUTER = "172.18.255.254"   # the external host of a 172.18.0.0/16 lab: the lab's BGP router
META = {"name": "r", "namespace": "metallb-system"}


def peer_doc(**spec):
    base = {"myASN": 64512, "peerASN": 64513, "peerAddress": ROUTER}
    base.update(spec)
    return {"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer", "metadata": dict(META),
            "spec": {k: v for k, v in base.items() if v is not None}}


def ad_doc(**spec):
    return {"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement", "metadata": {"name": "a",
            "namespace": "metallb-system"}, "spec": spec}


POOL_DOC = {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
            "metadata": {"name": "p", "namespace": "metallb-system"}, "spec": {"addresses": ["172.18.200.0/28"]}}


# ---------------------------------------------------------------- spec

def test_peer_and_advertisement_are_accepted_as_written_and_stored():
    s = load(cluster(), POOL_DOC, peer_doc(holdTime="9s", keepaliveTime="3s", peerPort=179,
                                           nodeSelectors=[{"matchLabels": {"bgp": "yes"}}]),
             ad_doc(ipAddressPools=["p"], aggregationLength=32, localPref=100, communities=["65535:65282"],
                    peers=["r"]))
    assert s.ignored == [] and s.addons == []
    kinds = [o["kind"] for o in scenario_objects(s)]
    assert kinds.count("BGPPeer") == kinds.count("BGPAdvertisement") == 1


def test_fields_netlab_does_not_emulate_are_reported_once_as_ignored():
    s = load(cluster(), peer_doc(password="secret", routerID="10.0.0.1", ebgpMultiHop=True, bfdProfile="b"),
             ad_doc(aggregationLengthV6=64))
    assert sorted(s.ignored) == sorted(["BGPPeer r: spec.password",
                                        "BGPPeer r: spec.routerID",
                                        "BGPPeer r: spec.ebgpMultiHop",
                                        "BGPPeer r: spec.bfdProfile",
                                        "BGPAdvertisement a: spec.aggregationLengthV6"])


def test_defaults_of_ignored_fields_are_not_reported():
    s = load(cluster(), peer_doc(ebgpMultiHop=False, vrf="", enableGracefulRestart=False), ad_doc(
        aggregationLengthV6=128))
    assert s.ignored == []


@pytest.mark.parametrize("doc,line", [
    (peer_doc(peerAddress="172.18.0.9"), "BGPPeer r: spec.peerAddress 172.18.0.9 is not a BGP router "
     "of this lab (its one router, the external router, is 172.18.255.254); set spec.peerAddress: 172.18.255.254"),
    (peer_doc(peerAddress="router"), "BGPPeer r: spec.peerAddress 'router' is not an IPv4 address; "
     "write the lab's external router's address, 172.18.255.254"),
    (peer_doc(peerASN=65000), "BGPPeer r: spec.peerASN 65000 is not the AS of the lab's external "
     "router (64513); set spec.peerASN: 64513"),
    (peer_doc(myASN=0), "BGPPeer r: spec.myASN 0 is out of range 1-4294967295; use a number from 1 "
     "to 4294967295"),
    (peer_doc(myASN=None), "BGPPeer r: spec.myASN is required; set spec.myASN (an AS number, "
     "1-4294967295)"),
    (peer_doc(peerPort=1790), "BGPPeer r: spec.peerPort 1790: the lab's external router listens on "
     "179 only; remove peerPort or set it to 179"),
    (peer_doc(holdTime="ninety"), "BGPPeer r: spec.holdTime 'ninety' is not a duration; write it "
     'like "90s" or "1m30s"'),
    (peer_doc(holdTime="1s"), "BGPPeer r: spec.holdTime 1s is outside 3s-65535s"),
    (peer_doc(holdTime="9s", keepaliveTime="10s"), "BGPPeer r: spec.keepaliveTime 10s is more than "
     "holdTime 9s (MetalLB refuses it); use at most 3s"),
    (peer_doc(dynamicASN="external"), "BGPPeer r: spec.dynamicASN is not supported: netlab's BGP "
     "router is known (write peerASN: the lab's router's AS); remove dynamicASN"),
    (peer_doc(peerAdress="x"), "BGPPeer r: unknown field spec.peerAdress; did you mean peerAddress?"),
    (peer_doc(nodeSelectors=[{"matchLabel": {"a": "b"}}]), "BGPPeer r: unknown field "
     "spec.nodeSelectors[0].matchLabel; did you mean matchLabels?"),
    (dict(peer_doc(), metadata={"name": "r"}), "BGPPeer r: metadata.namespace 'default' is not MetalLB's namespace"),
    (dict(peer_doc(), apiVersion="metallb.io/v1beta1"), "BGPPeer r: apiVersion 'metallb.io/v1beta1' does not match "
     "kind BGPPeer; use apiVersion: metallb.io/v1beta2"),
    (ad_doc(aggregationLength=33), "BGPAdvertisement a: spec.aggregationLength 33 is out of range "
     "0-32"),
    (ad_doc(aggregationLength=24), "BGPAdvertisement a: spec.aggregationLength 24 is shorter than "
     "172.18.200.0/28 of pool 'p' (MetalLB: a prefix of the pool is more specific than the aggregation length); "
     "use at least 28, or give the pool a CIDR of that size"),
    (ad_doc(communities=["no-export"]), "BGPAdvertisement a: spec.communities[0] 'no-export' is not "
     'a community netlab can send (netlab resolves no Community aliases); write "65535:65282" or "large:1:2:3"'),
    (ad_doc(communities=["70000:1"]), "BGPAdvertisement a: spec.communities[0] '70000:1' is not a community"),
    (ad_doc(peers=["r", "r"]), "BGPAdvertisement a: spec.peers[1] 'r' is listed twice"),
    (ad_doc(localPref=-1), "BGPAdvertisement a: spec.localPref -1 is out of range"),
    (ad_doc(interfaces=["eth0"]), "BGPAdvertisement a: unknown field spec.interfaces; remove it: "
     "BGPAdvertisementSpec has no such field"),
])
def test_bad_input_is_one_line(doc, line):
    with pytest.raises(SpecError) as e:
        load(cluster(), POOL_DOC, doc)
    assert "\n" not in str(e.value) and str(e.value).startswith(line), str(e.value)


def test_with_the_bgp_backend_my_asn_is_the_nodes_as():
    with pytest.raises(SpecError) as e:
        load(cluster(backend="bgp"), peer_doc(myASN=64999))
    assert str(e.value) == ("BGPPeer r: spec.myASN 64999 is not the nodes' AS 64512: with "
                            "networking.backend bgp MetalLB's routes go over the nodes' existing session to the "
                            "router; "
                            "set spec.myASN: 64512")
    load(cluster(backend="bgp"), peer_doc())   # the nodes' AS: accepted


def test_the_router_address_and_as_follow_networking_bgp():
    c = cluster(backend="bgp", bgp={"asNumber": 65001, "externalRouter": {"asNumber": 65002,
                                                                          "address": "172.18.9.9"}})
    load(c, peer_doc(myASN=65001, peerASN=65002, peerAddress="172.18.9.9"))
    with pytest.raises(SpecError, match="set spec.peerAddress: 172.18.9.9"):
        load(c, peer_doc(myASN=65001, peerASN=65002))


def test_durations():
    assert bgpmode.duration_seconds("90s") == 90 and bgpmode.duration_seconds("1m30s") == 90
    assert bgpmode.duration_seconds("1h") == 3600 and bgpmode.duration_seconds("500ms") == 0.5
    assert bgpmode.duration_seconds("90") is None and bgpmode.duration_seconds("") is None


# ---------------------------------------------------------------- the decision

NODES = ("n1", "n2", "n3")


def bgppeer(name="r", node_selectors=None, **spec):
    s = {"myASN": 64512, "peerASN": 64513, "peerAddress": ROUTER, **spec}
    if node_selectors is not None:
        s["nodeSelectors"] = node_selectors
    return {"kind": "BGPPeer", "metadata": {"name": name, "namespace": "metallb-system"}, "spec": s}


def bgpad(name="a", **spec):
    return {"kind": "BGPAdvertisement", "metadata": {"name": name, "namespace": "metallb-system"}, "spec": spec}


def objs(**over):
    base = {"Node": [node(n, labels={"zone": "a" if n != "n3" else "b"}) for n in NODES],
            "Pod": [speaker_pod(n) for n in NODES], "Service": [service()], "EndpointSlice": [eps(on=("n1",))],
            "IPAddressPool": [pool()], "BGPPeer": [bgppeer()], "BGPAdvertisement": [bgpad()]}
    base.update(over)
    return base


def announcing(o, lb_ips=None):
    _, routes, why = decide(o, lb_ips)
    return [(r.prefix, r.node) for r in routes], why


def test_every_selected_node_announces_with_policy_cluster():
    assert announcing(objs()) == ([(f"{IP}/32", n) for n in NODES], {})


def test_with_policy_local_only_nodes_with_a_ready_local_endpoint_announce():
    o = objs(Service=[service(etp="Local")], EndpointSlice=[eps(on=("n1", "n3"))])
    assert announcing(o)[0] == [(f"{IP}/32", "n1"), (f"{IP}/32", "n3")]
    o = objs(Service=[service(etp="Local")], EndpointSlice=[eps(on=("n2",), ready=False)])
    assert announcing(o) == ([], {"default/web": "no endpoint that can serve"})


def test_no_advertisement_no_route_and_the_reason():
    assert announcing(objs(BGPAdvertisement=[])) == ([], {"default/web": "no BGPAdvertisement for pool p"})


def test_advertisement_node_selectors_and_peer_node_selectors():
    o = objs(BGPAdvertisement=[bgpad(nodeSelectors=[{"matchLabels": {"zone": "a"}}])])
    assert [n for _, n in announcing(o)[0]] == ["n1", "n2"]
    o = objs(BGPPeer=[bgppeer(node_selectors=[{"matchExpressions": [{"key": "zone", "operator": "In",
                                                                       "values": ["b"]}]}])])
    sessions, routes, _ = decide(o)
    assert [s.node for s in sessions] == ["n3"] and [r.node for r in routes] == ["n3"]


def test_advertisement_peers_limit_the_sessions():
    o = objs(BGPPeer=[bgppeer("r1", [{"matchLabels": {"zone": "a"}}]), bgppeer("r2", [{"matchLabels": {"zone": "b"}}])],
             BGPAdvertisement=[bgpad(peers=["r2"])])
    sessions, routes, _ = decide(o)
    assert [(s.node, s.peer) for s in sessions] == [("n1", "r1"), ("n2", "r1"), ("n3", "r2")]
    assert [r.node for r in routes] == ["n3"]


def test_a_node_whose_speaker_is_not_usable_does_not_announce_but_keeps_its_session():
    o = objs(Node=[node("n1"), node("n2", unschedulable=True), node("n3", ready=False)])
    sessions, routes, _ = decide(o)
    assert [s.node for s in sessions] == ["n1", "n2", "n3"] and [r.node for r in routes] == ["n1"]


def test_aggregation_local_pref_and_communities_merge_per_prefix():
    o = objs(Service=[service("web"), service("api", ip="172.18.200.11")],
             EndpointSlice=[eps("web", on=("n1",)), eps("api", on=("n1",))],
             BGPAdvertisement=[bgpad("a", aggregationLength=28, localPref=50, communities=["65535:65282"]),
                               bgpad("b", aggregationLength=28, localPref=200, communities=["large:1:2:3"])])
    _, routes, _ = decide(o)
    assert {(r.prefix, r.services, r.local_pref, r.communities) for r in routes} == {
        ("172.18.200.0/28", ("default/api", "default/web"), 200, ((1, 2, 3), (65535, 65282)))}


def test_the_lb_ips_of_the_pass_win_over_the_status():
    assert announcing(objs(), {"default/web": ["172.18.200.3"]})[0][0] == ("172.18.200.3/32", "n1")


def test_foreign_class_and_no_peer():
    assert announcing(objs(Service=[service(lb_class="x/y")]))[1] == {"default/web": "loadBalancerClass x/y is not "
                                                                                       "MetalLB's"}
    assert announcing(objs(BGPPeer=[]))[1] == {"default/web": "no node with a BGP session that a BGPAdvertisement "
                                                              "selects"}


def test_published_file_round_trip_and_accepted_prefixes():
    o = objs(IPAddressPool=[pool(addresses=("172.18.200.0/28", "172.18.201.10-172.18.201.12"))])
    sessions, routes, _ = decide(o)
    doc = bgpmode.document(sessions, routes, bgpmode.accepted(o))
    plan = parse_document(doc)
    assert plan.sessions == tuple(sessions) and plan.routes == tuple(routes)
    assert plan.accept == ("172.18.200.0/28", "172.18.201.10/31", "172.18.201.12/32")
    assert parse_document({"kind": "Other"}) == Plan()


def test_node_assigned_events():
    before = [Route(f"{IP}/32", "n1", ("default/web",))]
    after = before + [Route(f"{IP}/32", "n2", ("default/web",))]
    assert bgp_assigned_events(before, after) == [("default/web", "nodeAssigned",
                                                   'announcing from node "n2" with protocol "bgp"')]
    assert bgp_assigned_events(after, before) == []


# ---------------------------------------------------------------- BIRD configurations

def plan_for(c, nodes=None, hold=None, keep=None, my_asn=64512):
    names = nodes if nodes is not None else [n.name for n in c.nodes]
    return Plan(tuple(Session(n, "r", my_asn, 64513, str(c.external_ip), hold, keep) for n in names),
                tuple([Route(f"{IP}/32", n, ("default/web",)) for n in names]
                      + [Route("172.18.200.16/28", names[0], ("default/api",), 200, ((65535, 65282), (1, 2, 3)))]),
                ("172.18.200.0/27",))


def lab(backend="vxlan", **net):
    return cluster_of(cluster("g", nodes=["control-plane", "worker", "worker"], backend=backend, **net))


def test_golden_node_and_router_without_the_bgp_backend():
    c = lab()
    p = plan_for(c, nodes=[c.nodes[0].name, c.nodes[2].name], hold=9, keep=3, my_asn=64600)
    golden.check("metallb_bgp_node", bird.node_config(c, c.nodes[0], p), "BIRD config differs")
    golden.check("metallb_bgp_router", bird.router_config(c, p), "BIRD config differs")
    assert bird.node_config(c, c.nodes[1], p) == ""   # no BGPPeer selects it: no speaker
    assert [s.node for s in speakers(c, p)] == [c.nodes[0].name, c.nodes[2].name, None]


def test_golden_with_the_bgp_backend():
    c = lab("bgp")
    golden.check("metallb_bgp_backend_node", bird.node_config(c, c.nodes[1], plan_for(c)), "BIRD config differs")
    golden.check("metallb_bgp_backend_router", bird.router_config(c, plan_for(c)), "BIRD config differs")


def test_no_plan_no_speaker_without_the_bgp_backend_and_the_backend_unchanged():
    c = lab()
    assert speakers(c, None) == [] and speakers(c, Plan()) == []
    b = lab("bgp")
    assert bird.node_config(b, b.nodes[0], None) == bird.node_config(b, b.nodes[0])
    assert "lb_ips" not in bird.node_config(b, b.nodes[0])


@pytest.mark.skipif(shutil.which("bird") is None, reason="bird2 is not installed (scripts/setup)")
@pytest.mark.parametrize("backend", ["vxlan", "host-gw", "bgp"])
def test_bird_accepts_every_config(tmp_path, backend):
    c = lab(backend)
    p = plan_for(c, hold=9, keep=3)
    texts = [bird.node_config(c, n, p) for n in c.nodes] + [bird.router_config(c, p)]
    texts += [bird.node_config(c, n, Plan()) for n in c.nodes if backend == "bgp"] + [bird.router_config(c, Plan())]
    for i, t in enumerate(texts):
        f = tmp_path / f"{i}.conf"
        f.write_text(t)
        r = subprocess.run(["bird", "-p", "-c", str(f)], capture_output=True, text=True)
        assert r.returncode == 0, f"{r.stderr}\n{t}"


def test_a_bgppeer_without_bird_installed_is_refused_in_one_line(monkeypatch):
    from netlab.dataplane import bgp, procs
    from netlab.errors import UsageError
    monkeypatch.setattr(procs, "which", lambda tool: None)
    bgp.preflight(lab())   # no BGPPeer, no BGP backend: BIRD is not needed
    with pytest.raises(UsageError) as e:
        bgp.preflight(lab(), metallb_bgp=True)
    assert str(e.value) == ("MetalLB's BGP mode (a BGPPeer) runs BIRD 2 on the nodes but bird and birdc are not "
                            "installed; run scripts/setup (or apt-get install bird2)")


def test_get_prints_metallb_s_columns():
    from netlab.controllers.printers import table
    peer = bgppeer(ebgpMultiHop=True)
    assert table("BGPPeer", [peer], 0.0) == [["NAME", "ADDRESS", "ASN", "BFD PROFILE", "MULTI HOPS"],
                                             ["r", ROUTER, "64513", "", "true"]]
    assert table("BGPAdvertisement", [bgpad(ipAddressPools=["p"], peers=["r"])], 0.0)[1] == \
        ["a", '["p"]', "", '["r"]']
