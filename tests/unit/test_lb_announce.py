"""MetalLB's layer-2 election (netlab/lb/announce.py), the speaker add-on and image, and the speaker's ARP
frames: pure, no root."""
from __future__ import annotations

import hashlib
import json
import os
import socket

import pytest

from netlab.lb import announce, installed
from netlab.lb.addon import IMAGE, objects as addon_objects
from netlab.lb.announce import Announcement, decide, election_order
from netlab.lb import speaker
from netlab.workload.images import ImageError, recognise

IP = "172.18.200.10"


def node(name, ready=True, labels=None, unschedulable=False, net_unavailable=False):
    conds = [{"type": "Ready", "status": "True" if ready else "Unknown"}]
    if net_unavailable:
        conds.append({"type": "NetworkUnavailable", "status": "True"})
    spec = {"unschedulable": True} if unschedulable else {}
    return {"kind": "Node", "metadata": {"name": name, "labels": dict(labels or {})}, "spec": spec,
            "status": {"conditions": conds}}


def speaker_pod(node_name, ready=True, deleting=False):
    md = {"name": f"speaker-{node_name}", "namespace": "metallb-system",
          "labels": {"app": "metallb", "component": "speaker"}}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"kind": "Pod", "metadata": md, "spec": {"nodeName": node_name},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def service(name="web", ip=IP, etp="Cluster", lb_class=None, annotations=None, typ="LoadBalancer"):
    spec = {"type": typ, "externalTrafficPolicy": etp, "ports": [{"port": 80}]}
    if lb_class:
        spec["loadBalancerClass"] = lb_class
    return {"kind": "Service", "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
            "spec": spec, "status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]} if ip else {}}}


def eps(name="web", on=("n1",), ready=True, serving=None):
    cond = {"ready": ready}
    if serving is not None:
        cond["serving"] = serving
    return {"kind": "EndpointSlice", "metadata": {"name": f"{name}-x", "namespace": "default",
                                                  "labels": {"kubernetes.io/service-name": name}},
            "endpoints": [{"addresses": ["10.244.0.5"], "nodeName": n, "conditions": dict(cond)} for n in on]}


def pool(name="p", addresses=("172.18.200.0/28",), labels=None, ns="metallb-system"):
    return {"kind": "IPAddressPool", "metadata": {"name": name, "namespace": ns, "labels": dict(labels or {})},
            "spec": {"addresses": list(addresses)}}


def l2ad(name="a", pools=None, pool_selectors=None, node_selectors=None, interfaces=None):
    spec = {}
    for k, v in (("ipAddressPools", pools), ("ipAddressPoolSelectors", pool_selectors),
                 ("nodeSelectors", node_selectors), ("interfaces", interfaces)):
        if v is not None:
            spec[k] = v
    return {"kind": "L2Advertisement", "metadata": {"name": name, "namespace": "metallb-system"}, "spec": spec}


NODES = ("n1", "n2", "n3")


def objs(**over):
    base = {"Node": [node(n) for n in NODES], "Pod": [speaker_pod(n) for n in NODES],
            "Service": [service()], "EndpointSlice": [eps(on=NODES)], "IPAddressPool": [pool()],
            "L2Advertisement": [l2ad()]}
    base.update(over)
    return base


def winner(o, lb_ips=None):
    anns, why = decide(o, lb_ips)
    got = {a.node for a in anns if a.ip == IP}
    assert len(got) <= 1, anns
    return (got.pop() if got else None), why


def test_election_order_is_metallbs_sha256_of_node_hash_ip():
    order = election_order(["n3", "n1", "n2"], IP)
    want = sorted(["n1", "n2", "n3"], key=lambda n: hashlib.sha256((n + "#" + IP).encode()).hexdigest())
    assert order == want
    # another IP orders the nodes differently somewhere: the announcements spread over the nodes
    firsts = {election_order(["n1", "n2", "n3"], f"172.18.200.{i}")[0] for i in range(1, 15)}
    assert len(firsts) > 1


def test_exactly_one_node_the_first_of_the_order():
    w, _ = winner(objs())
    assert w == election_order(NODES, IP)[0]


def test_a_not_ready_node_or_speaker_loses_and_the_next_takes_over():
    first, second = election_order(NODES, IP)[:2]
    nodes = [node(n, ready=n != first) for n in NODES]
    assert winner(objs(Node=nodes))[0] == second
    pods = [speaker_pod(n, ready=n != first) for n in NODES]
    assert winner(objs(Pod=pods))[0] == second
    pods = [speaker_pod(n, deleting=n == first) for n in NODES]
    assert winner(objs(Pod=pods))[0] == second
    pods = [speaker_pod(n) for n in NODES if n != first]   # no speaker there at all
    assert winner(objs(Pod=pods))[0] == second


def test_unschedulable_network_unavailable_and_excluded_nodes_do_not_announce():
    first, second = election_order(NODES, IP)[:2]
    for kw in ({"unschedulable": True}, {"net_unavailable": True},
               {"labels": {"node.kubernetes.io/exclude-from-external-load-balancers": ""}}):
        nodes = [node(n, **kw) if n == first else node(n) for n in NODES]
        assert winner(objs(Node=nodes))[0] == second, kw


def test_node_selectors_of_the_advertisement():
    nodes = [node(n, labels={"lb": "yes"} if n == "n2" else {}) for n in NODES]
    ad = l2ad(node_selectors=[{"matchLabels": {"lb": "yes"}}])
    assert winner(objs(Node=nodes, L2Advertisement=[ad]))[0] == "n2"
    ad = l2ad(node_selectors=[{"matchExpressions": [{"key": "lb", "operator": "DoesNotExist"}]}])
    w, _ = winner(objs(Node=nodes, L2Advertisement=[ad]))
    assert w == election_order(["n1", "n3"], IP)[0]
    # the one selected node not ready: nobody (the others are not selected)
    nodes = [node(n, ready=n != "n2", labels={"lb": "yes"} if n == "n2" else {}) for n in NODES]
    w, why = winner(objs(Node=nodes, L2Advertisement=[l2ad(node_selectors=[{"matchLabels": {"lb": "yes"}}])]))
    assert w is None and "no available node" in why["default/web"]


def test_advertisements_apply_by_pool_name_selector_or_to_all_pools():
    p = pool(labels={"zone": "a"})
    assert winner(objs(IPAddressPool=[p], L2Advertisement=[l2ad(pools=["p"])]))[0]
    assert winner(objs(IPAddressPool=[p], L2Advertisement=[l2ad(pool_selectors=[{"matchLabels": {"zone": "a"}}])]))[0]
    w, why = winner(objs(IPAddressPool=[p], L2Advertisement=[l2ad(pools=["other"])]))
    assert w is None and why["default/web"] == "no L2Advertisement for pool p"
    w, why = winner(objs(IPAddressPool=[p], L2Advertisement=[l2ad(pool_selectors=[{"matchLabels": {"zone": "b"}}])]))
    assert w is None
    w, why = winner(objs(L2Advertisement=[]))
    assert w is None
    # an advertisement outside metallb-system is not MetalLB's
    ad = l2ad()
    ad["metadata"]["namespace"] = "default"
    assert winner(objs(L2Advertisement=[ad]))[0] is None


def test_the_ips_pool_from_the_annotation_or_the_addresses():
    assert announce.pool_of(IP, [pool("a", ["172.18.100.0/24"]), pool("b", ["172.18.200.5-172.18.200.20"])]) == "b"
    assert announce.pool_of(IP, [pool("a", ["172.18.100.0/24"])]) is None
    assert announce.pool_of(IP, [pool("a", ["172.18.200.0/24"]), pool("b", ["172.18.0.0/16"])], "b") == "b"
    assert announce.pool_of(IP, [pool("a", ["172.18.200.0/24"])], "gone") == "a"
    w, why = winner(objs(IPAddressPool=[pool(addresses=["10.0.0.0/24"])]))
    assert w is None and why["default/web"] == f"{IP} is in no IPAddressPool"
    # the pool the annotation names decides which advertisements apply
    pools = [pool("a", ["172.18.200.0/24"]), pool("b", ["172.18.200.0/28"])]
    nodes = [node(n, labels={"lb": "yes"} if n == "n3" else {}) for n in NODES]
    ads = [l2ad("for-a", pools=["a"], node_selectors=[{"matchLabels": {"lb": "yes"}}]), l2ad("for-b", pools=["b"])]
    svc = service(annotations={"metallb.universe.tf/ip-allocated-from-pool": "a"})
    assert winner(objs(IPAddressPool=pools, L2Advertisement=ads, Node=nodes, Service=[svc]))[0] == "n3"


def test_external_traffic_policy_local_only_nodes_with_a_serving_endpoint():
    svc = service(etp="Local")
    last = election_order(NODES, IP)[-1]
    assert winner(objs(Service=[svc], EndpointSlice=[eps(on=(last,))]))[0] == last
    # a terminating endpoint that still serves counts (MetalLB's EndpointCanServe); one that does not, not
    slices = [eps(on=(last,), ready=False, serving=True)]
    assert winner(objs(Service=[svc], EndpointSlice=slices))[0] == last
    slices = [eps(on=(last,), ready=False, serving=False)]
    w, why = winner(objs(Service=[svc], EndpointSlice=slices))
    assert w is None and why["default/web"] == "no endpoint that can serve"
    # the endpoint's node has no ready speaker: nobody
    pods = [speaker_pod(n, ready=n != last) for n in NODES]
    w, why = winner(objs(Service=[svc], EndpointSlice=[eps(on=(last,))], Pod=pods))
    assert w is None and "local endpoint" in why["default/web"]


def test_no_endpoint_no_announcement_and_foreign_class_ignored():
    assert winner(objs(EndpointSlice=[]))[0] is None
    w, why = winner(objs(Service=[service(lb_class="example.com/other")]))
    assert w is None and "loadBalancerClass" in why["default/web"]
    assert decide(objs(Service=[service(typ="NodePort")]))[0] == []


def test_lb_ips_from_the_model_win_over_status():
    o = objs(Service=[service(ip=None)])
    assert winner(o)[0] is None
    assert winner(o, {"default/web": [IP]})[0] == election_order(NODES, IP)[0]


def test_interfaces_of_the_winners_advertisements():
    anns, _ = decide(objs(L2Advertisement=[l2ad(interfaces=["eth0"])]))
    assert anns[0].interfaces == ("eth0",)
    anns, _ = decide(objs(L2Advertisement=[l2ad("a", interfaces=["eth0"]), l2ad("b")]))
    assert anns[0].interfaces is None


def test_document_round_trip_node_ips_and_events():
    anns = [Announcement(IP, "default/web", "n2", "p", None), Announcement("172.18.200.11", "default/x", "n1", "p",
                                                                           ("eth0",))]
    doc = json.loads(json.dumps(announce.document(anns)))
    assert announce.parse_document(doc) == anns
    assert announce.parse_document({"kind": "Other"}) == []
    assert announce.node_ips(anns, "n1") == {"172.18.200.11": ("eth0",)}
    ev = announce.assigned_events({"default/web": "n1"}, {"default/web": "n2", "default/x": "n1"})
    assert ev == [("default/web", "nodeAssigned", 'announcing from node "n2" with protocol "layer2"'),
                  ("default/x", "nodeAssigned", 'announcing from node "n1" with protocol "layer2"')]
    assert announce.assigned_events({"default/web": "n2"}, {"default/web": "n2"}) == []


# ---------------------------------------------------------------- add-on and image

class _Sc:
    def __init__(self, docs):
        self.documents = docs


def test_installed_when_the_scenario_has_an_ip_address_pool():
    assert installed(_Sc([{"kind": "IPAddressPool"}, {"kind": "Service"}]))
    assert not installed(_Sc([{"kind": "L2Advertisement"}]))


def test_speaker_daemonset_as_metallbs_manifest():
    ns, ds = addon_objects("/run/netlab/x/lb")
    assert ns == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "metallb-system"}}
    spec = ds["spec"]["template"]["spec"]
    assert ds["metadata"] == {"name": "speaker", "namespace": "metallb-system",
                              "labels": {"app": "metallb", "component": "speaker"}}
    assert spec["hostNetwork"] is True and spec["terminationGracePeriodSeconds"] == 2
    c = spec["containers"][0]
    assert c["image"].startswith("quay.io/metallb/speaker:")
    assert c["securityContext"]["capabilities"] == {"add": ["NET_RAW"], "drop": ["ALL"]}
    assert spec["volumes"][0]["hostPath"]["path"] == "/run/netlab/x/lb"
    # the user's own win
    assert addon_objects("/run/netlab/x/lb", [{"kind": "Namespace", "metadata": {"name": "metallb-system"}}]) == [ds]


def test_speaker_image_runs_netlabs_speaker():
    ds = addon_objects("/x")[1]
    c = ds["spec"]["template"]["spec"]["containers"][0]
    r = recognise(c["image"], [], c["args"], {})
    assert r.name == "metallb-speaker"
    assert r.command[1:5] == ["-m", "netlab.lb.speaker", "--announcements", "/etc/metallb-netlab/announce.json"]
    assert r.command[-4:] == ["--port", "7472", "--log-level", "info"]
    # MetalLB's other flags are accepted; a missing announcements file or a bad port is one clear error
    assert recognise(IMAGE, ["/speaker"], c["args"] + ["--ml-bindport=7946"], {}).name == "metallb-speaker"
    with pytest.raises(ImageError, match="no --netlab-announcements"):
        recognise(IMAGE, [], ["--port=7472"], {})
    with pytest.raises(ImageError, match="not a port"):
        recognise(IMAGE, [], ["--port=0", "--netlab-announcements=/x"], {})
    with pytest.raises(ImageError, match="emulates"):
        recognise(IMAGE, ["sh", "-c", "x"], [], {})


def test_scenario_objects_add_the_speaker_only_with_a_pool():
    from netlab.live.objects import scenario_objects
    from netlab.spec.parse import load_text
    base = "apiVersion: netlab.dev/v1alpha1\nkind: Cluster\nname: t\n"
    docs = scenario_objects(load_text(base, "<t>"), "/run/netlab/t/dns")
    assert not any(d["kind"] == "DaemonSet" for d in docs)
    text = base + ("---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\n"
                   "metadata: {name: p, namespace: metallb-system}\nspec: {addresses: [172.18.200.0/28]}\n")
    docs = scenario_objects(load_text(text, "<t>"), "/run/netlab/t/dns")
    ds = [d for d in docs if d["kind"] == "DaemonSet"]
    assert len(ds) == 1 and ds[0]["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"] == "/run/netlab/t/lb"
    assert sum(1 for d in docs if d["kind"] == "Namespace" and d["metadata"]["name"] == "metallb-system") == 1


# ---------------------------------------------------------------- the speaker's frames and interfaces

MAC = bytes.fromhex("02aabbccdd01")
ASKER = bytes.fromhex("02aabbccdd99")


def request(target, dst=speaker.BROADCAST, sender_ip="172.18.255.254"):
    return speaker.arp_frame(1, ASKER, ASKER, sender_ip, dst, b"\0" * 6, target)


def test_reply_only_for_our_ips_to_broadcast_or_our_mac():
    frame, ip, asker = speaker.reply_for(request(IP), MAC, {IP: None})
    assert (ip, asker) == (IP, "172.18.255.254")
    dst, op, smac, sip, tmac, tip = speaker.parse_arp(frame)
    assert (dst, op, smac, sip, tmac, tip) == (ASKER, 2, MAC, IP, ASKER, "172.18.255.254")
    assert frame[6:12] == MAC and len(frame) == 42
    assert speaker.reply_for(request(IP, dst=MAC), MAC, {IP: None}) is not None
    assert speaker.reply_for(request("172.18.200.11"), MAC, {IP: None}) is None
    assert speaker.reply_for(request(IP, dst=bytes.fromhex("02ffffffff00")), MAC, {IP: None}) is None
    reply = speaker.arp_frame(2, ASKER, ASKER, IP, MAC, MAC, "172.18.0.2")
    assert speaker.reply_for(reply, MAC, {IP: None}) is None
    assert speaker.reply_for(b"\xff" * 41, MAC, {IP: None}) is None


def test_gratuitous_arp_is_a_request_and_a_reply_for_the_ip():
    frames = speaker.gratuitous(MAC, IP)
    got = [speaker.parse_arp(f) for f in frames]
    assert [g[1] for g in got] == [1, 2]
    for dst, _op, smac, sip, tmac, tip in got:
        assert (dst, smac, sip, tmac, tip) == (speaker.BROADCAST, MAC, IP, speaker.BROADCAST, IP)


def test_usable_interfaces_as_metallb_picks_them(tmp_path):
    def iface(name, flags, mac="02:00:00:00:00:01", master=False):
        d = tmp_path / name
        d.mkdir()
        (d / "flags").write_text(hex(flags) + "\n")
        (d / "address").write_text(mac + "\n")
        if master:
            (d / "master").write_text("")
    iface("eth0", 0x1003)
    iface("lo", 0x9)
    iface("cni0", 0x1003)
    iface("veth1234", 0x1003)
    iface("kube-ipvs0", 0x83)
    iface("eth1", 0x1002)            # down
    iface("eth2", 0x1083)            # NOARP
    iface("eth3", 0x1003, master=True)
    assert speaker.usable_interfaces(str(tmp_path)) == {"eth0": bytes.fromhex("020000000001")}


def test_speaker_follows_the_file(tmp_path, monkeypatch):
    """The speaker keeps its node's IPs, logs gains and losses, and sends gratuitous ARP on a gain
    (the socket replaced: no root)."""
    sent = []

    class FakeSock:
        def sendto(self, frame, addr):
            sent.append((frame, addr))

        def close(self):
            pass
    monkeypatch.setattr(socket, "socket", lambda *a, **k: FakeSock())
    out = []

    class Out:
        def write(self, s):
            out.append(s)

        def flush(self):
            pass
    path = tmp_path / "announce.json"
    sp = speaker.Speaker(str(path), "n1", speaker.Log("info", Out()), sysfs=str(tmp_path / "none"))
    sp.ifaces = {"eth0": MAC}
    sp.look(0.0)
    assert sp.ips == {} and not sent
    path.write_text(json.dumps(announce.document([Announcement(IP, "default/web", "n1", "p", None),
                                                  Announcement("172.18.200.11", "default/x", "n2", "p", None)])))
    sp.look(1.0)
    assert sp.ips == {IP: None}
    assert [speaker.parse_arp(f)[1] for f, a in sent] == [1, 2] and all(a == ("eth0", 0) for _, a in sent)
    assert json.loads(out[-1])["event"] == "serviceAnnounced" and json.loads(out[-1])["service"] == "default/web"
    os.replace(path, tmp_path / "old")
    path.write_text(json.dumps(announce.document([Announcement(IP, "default/web", "n2", "p", None)])))
    sp.look(2.0)
    assert sp.ips == {} and json.loads(out[-1])["event"] == "serviceWithdrawn"
    assert 'metallb_layer2_gratuitous_sent 2' in sp.metrics()


def _store():
    """A store holding the objects above (what the publishers read)."""
    from netlab.store import MemoryStore
    store = MemoryStore()
    o = objs()
    with store.transaction():
        for kind in ("Node", "Pod", "Service", "EndpointSlice", "IPAddressPool", "L2Advertisement"):
            for obj in o[kind]:
                store.create(dict(json.loads(json.dumps(obj)), apiVersion=obj.get("apiVersion", "v1")))
    return store


def test_publisher_writes_the_file_private_and_tells_each_change_once(tmp_path, monkeypatch):
    """Two publishers of one lab (`up`'s and the control loop's) against one store: the file 0600 in a
    0700 directory, one nodeAssigned event per change of the announcing node, nothing for the second."""
    from netlab.dataplane import layout
    from netlab.live.lbannounce import AnnouncementPublisher, announce_path
    from netlab.store.events import events_for
    monkeypatch.setattr(layout, "RUN_DIR", str(tmp_path))
    store = _store()
    ips = {"default/web": [IP]}
    first = election_order(NODES, IP)[0]
    one, two = AnnouncementPublisher("lab"), AnnouncementPublisher("lab")
    assert one.publish(store, ips) is True
    path = announce_path("lab")
    assert os.stat(path).st_mode & 0o777 == 0o600 and os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
    assert {a.ip: a.node for a in announce.parse_document(json.load(open(path)))} == {IP: first}
    assert two.publish(store, ips) is False        # same content: not rewritten, no second event
    assert one.publish(store, ips) is False        # nothing moved
    svc = store.get("Service", "default", "web")
    ev = [e for e in events_for(store, svc) if e["reason"] == "nodeAssigned"]
    assert len(ev) == 1 and ev[0]["message"] == f'announcing from node "{first}" with protocol "layer2"'
    assert ev[0].get("count", 1) == 1              # told once (a repeat would count 2: "x2")
    # the winner's node goes NotReady: the next node, one more event
    n = store.get("Node", None, first)
    n["status"]["conditions"][0]["status"] = "Unknown"
    store.update_status(n)
    assert two.publish(store, ips) is True
    assert {a.node for a in announce.parse_document(json.load(open(path)))} == {election_order(NODES, IP)[1]}
    ev = [e for e in events_for(store, svc) if e["reason"] == "nodeAssigned"]
    assert len(ev) == 2 and all(e.get("count", 1) == 1 for e in ev)
    assert any(f'"{election_order(NODES, IP)[1]}"' in e["message"] for e in ev)


def test_an_agent_that_does_not_lead_writes_its_machines_file_and_no_event(tmp_path, monkeypatch):
    """A lab on real hosts: each machine's agent writes the announcements for the speakers on its own disk;
    the events are the store's, written where the controllers run only."""
    from netlab.dataplane import layout
    from netlab.live.lbannounce import AnnouncementPublisher, announce_path
    monkeypatch.setattr(layout, "RUN_DIR", str(tmp_path))
    store = _store()
    rev = store.revision()
    assert AnnouncementPublisher("lab").publish(store, {"default/web": [IP]}, tell=False) is True
    assert {a.node for a in announce.parse_document(json.load(open(announce_path("lab"))))} == \
        {election_order(NODES, IP)[0]}
    assert store.revision() == rev and store.list("Event") == []


def test_bgp_on_a_real_host_agent_that_does_not_lead_writes_its_file_and_starts_its_own_speakers(tmp_path, monkeypatch):
    """MetalLB's BGP mode on real hosts: every machine's agent writes its copy of the sessions and routes and
    brings its own nodes' BIRD speakers in line (the external router's on the home host only); MetalLB's events
    stay with the leader."""
    from types import SimpleNamespace

    from netlab.dataplane import bgp, layout
    from netlab.lb import bgpmode
    from netlab.live.addonfiles import AddonFiles
    from netlab.live.lbannounce import bgp_path
    monkeypatch.setattr(layout, "RUN_DIR", str(tmp_path))
    calls = []
    monkeypatch.setattr(bgp, "ensure", lambda cluster, changes, own=None, router=True: calls.append((own, router)))
    store = _store()
    store.create({"apiVersion": "metallb.io/v1beta2", "kind": "BGPPeer",
                  "metadata": {"name": "r", "namespace": "metallb-system"},
                  "spec": {"myASN": 64512, "peerASN": 64513, "peerAddress": "172.18.255.254"}})
    store.create({"apiVersion": "metallb.io/v1beta1", "kind": "BGPAdvertisement",
                  "metadata": {"name": "b", "namespace": "metallb-system"}, "spec": {}})
    cluster = SimpleNamespace(networking=SimpleNamespace(hosts=SimpleNamespace(home=SimpleNamespace(name="a"))),
                              nodes=[])
    rev = store.revision()
    for host, own, router in (("b", {"n2"}, False), ("a", {"n1"}, True)):
        files = AddonFiles(f"lab-{host}", store, errors := [])
        files.tell, files.own, files.host = False, own, host
        files.lb_ips = {"default/web": [IP]}
        files.bgp_cluster = cluster
        files.publish_lb()
        assert errors == [] and calls[-1] == (own, router), (errors, calls)
        plan = bgpmode.parse_document(json.load(open(bgp_path(f"lab-{host}"))))
        assert {r.node for r in plan.routes if r.prefix == f"{IP}/32"} == set(NODES)
    assert store.revision() == rev and store.list("Event") == []   # no event from an agent that does not lead
    # where the controllers run (one machine): every speaker, and the events
    files = AddonFiles("lab-one", store, [])
    files.lb_ips, files.bgp_cluster = {"default/web": [IP]}, cluster
    files.publish_lb()
    assert calls[-1] == (None, True) and store.list("Event")


def test_announce_failed_when_the_interfaces_leave_out_eth0():
    ok = Announcement(IP, "default/web", "n1", "p", ("eth0", "bond0"))
    bad = Announcement(IP, "default/web", "n1", "p", ("eth1",))
    assert announce.failed_events([], [ok]) == []
    assert announce.failed_events([], [Announcement(IP, "default/web", "n1", "p", None)]) == []
    assert announce.failed_events([], [bad]) == [
        ("default/web", "announceFailed",
         f'the interfaces specified by LB IP "{IP}" doesn\'t exist in assigned node "n1" with protocol "layer2"')]
    assert announce.failed_events([bad], [bad]) == []       # told once


def test_gratuitous_arp_repeats_every_1_1_s_for_5_s(tmp_path, monkeypatch):
    sent = []

    class FakeSock:
        def sendto(self, frame, addr):
            sent.append(frame)

        def close(self):
            pass
    monkeypatch.setattr(socket, "socket", lambda *a, **k: FakeSock())
    path = tmp_path / "announce.json"
    path.write_text(json.dumps(announce.document([Announcement(IP, "default/web", "n1", "p", None)])))
    sp = speaker.Speaker(str(path), "n1", speaker.Log("none"), sysfs=str(tmp_path / "none"))
    sp.ifaces = {"eth0": MAC}
    sp.look(100.0)
    assert len(sent) == 2 and sp.next_spam == pytest.approx(101.1)
    # the run loop's beat (it looks every 0.1 s): a request and a reply at each tick until 5 s have passed
    now = 100.0
    while now < 107.0:
        now += 0.1
        sp.spam_tick(now)
    assert len(sent) == 2 + 2 * 4 and not sp.spam      # at 0, then ~1.1, 2.2, 3.3, 4.4 s; none at 5.5
