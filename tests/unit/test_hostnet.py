"""hostNetwork pods in the pure core (issue 12): the model gives them their node's address and network
namespace and no podCIDR address; `up`'s plan builds no namespace for them, starts them when new or
changed and stops them (never the node's namespace) when they go; the API server's defaults and the
fabric's text."""
from __future__ import annotations

from netlab.controllers.validation import default_pod_spec
from netlab.dataplane import plan
from netlab.model.build import build
from netlab.render.fabric import describe
from netlab.spec.parse import load_text

from .scenarios import cluster, container, pod, service, state_of, text

LAB = "t"


def scenario(host=True, port=8080, extra=()):
    return (cluster(LAB, nodes=[{"role": "worker", "name": "a"}, {"role": "worker", "name": "b"}]),
            pod("h", labels={"app": "h"}, hostNetwork=host, nodeName="a", containers=[container(ports=[port])]),
            pod("p", nodeName="a"), service("h", selector={"app": "h"}, ports=[{"port": 80, "targetPort": port}]),
            *extra)


def desired(*docs, prev=None):
    return build(load_text(text(*docs)), prev)


def recorded(c) -> dict:
    return {p.key: {"node": p.node, "ip": str(p.ip), "uid": p.uid, "fingerprint": p.fingerprint(), "netns": p.netns}
            for p in c.pods}


def again(c, *docs):
    st = state_of(c)
    st["pods"] = recorded(c)
    return desired(*docs, prev=st)


def test_a_host_network_pod_has_its_nodes_address_and_namespace():
    c = desired(*scenario())
    h, p, a = c.pod("default", "h"), c.pod("default", "p"), c.node("a")
    assert h.host_network and h.ip == a.ip and h.netns == a.netns and h.uts_hostname == "a"
    assert not p.host_network and p.ip in a.pod_cidr and p.ip == a.pod_cidr.network_address + 2  # no address taken
    assert h.host_ports == [(8080, "TCP", None, 8080)]   # the API server's default: hostPort = containerPort
    eps = c.services[0].endpoints[""]
    assert [(str(e.ip), e.port, e.node, e.pod) for e in eps] == [(str(a.ip), 8080, "a", "h")]


def test_up_builds_no_namespace_for_it_and_starts_it_once():
    c = desired(*scenario())
    first = plan.plan_namespaces(c, {}, set())
    assert first.create == ["default/p"] and "default/h" not in first.check
    assert plan.host_pods_fresh(c, {}) == ["default/h"]
    c2 = again(c, *scenario())
    existing = {c.underlay_netns, c.external_netns} | {n.netns for n in c.nodes} | {c.pod("default", "p").netns}
    p2 = plan.plan_namespaces(c2, recorded(c), existing)
    assert p2.remove == [] and p2.create == [] and p2.check == ["default/p"]
    assert plan.host_pods_fresh(c2, recorded(c)) == [] and plan.host_pods_gone(c2, recorded(c)) == []


def test_a_host_network_pod_that_goes_or_changes_is_stopped_and_its_node_stays():
    c = desired(*scenario())
    prev = recorded(c)
    existing = {c.underlay_netns, c.external_netns} | {n.netns for n in c.nodes} | {c.pod("default", "p").netns}
    gone = again(c, cluster(LAB, nodes=[{"role": "worker", "name": "a"}, {"role": "worker", "name": "b"}]),
                 pod("p", nodeName="a"))
    p = plan.plan_namespaces(gone, prev, existing)
    assert p.remove == [] and plan.host_pods_gone(gone, prev) == ["default/h"]
    changed = again(c, *scenario(port=9090))
    assert plan.host_pods_gone(changed, prev) == ["default/h"] and plan.host_pods_fresh(changed, prev) == ["default/h"]
    own = again(c, *scenario(host=False))   # no longer hostNetwork: stopped in the node, built as a pod
    assert plan.host_pods_gone(own, prev) == ["default/h"] and "default/h" in plan.plan_namespaces(own, prev, existing).create


def test_the_api_servers_default_host_port_and_the_fabric_text():
    spec = default_pod_spec({"hostNetwork": True, "containers": [{"name": "c", "ports": [{"containerPort": 53,
                                                                                          "protocol": "UDP"}]}]})
    assert spec["containers"][0]["ports"][0] == {"containerPort": 53, "protocol": "UDP", "hostPort": 53}
    assert "hostPort" not in default_pod_spec({"containers": [{"name": "c", "ports": [{"containerPort": 53}]}]}
                                              )["containers"][0]["ports"][0]
    c = desired(*scenario())
    out = describe(c, c.node("a"))
    assert f"# pod default/h: hostNetwork, in {c.node('a').netns} with address {c.node('a').ip}" in out


# ------------------------------------------------------------------ hostPort: CNI portmap's chains

def hostport_scenario(*extra, host_ip=None):
    port = {"containerPort": 80, "hostPort": 8080}
    if host_ip:
        port["hostIP"] = host_ip
    return (cluster(LAB, nodes=[{"role": "worker", "name": "a"}, {"role": "worker", "name": "b"}]),
            pod("web", nodeName="a", containers=[container(ports=[port, {"containerPort": 53, "hostPort": 5353,
                                                                         "protocol": "UDP"}])]),
            pod("plain", nodeName="a"), *extra)


def test_hostport_chains_golden():
    from netlab.render.iptables import node_rules, to_restore
    from .golden import check
    c = desired(*hostport_scenario(), pod("other", nodeName="a", containers=[container(ports=[
        {"containerPort": 8443, "hostPort": 443, "hostIP": "172.18.0.2"}])]))
    a = c.node("a")
    text_a = to_restore({"nat": node_rules(c, a)["nat"]})
    check("hostport_portmap", text_a, "rules differ")
    assert "CNI-" not in to_restore(node_rules(c, c.node("b")))   # a node without hostPort pods: none


def test_hostport_rules_are_portmaps():
    from netlab.render.hostport import dn_chain, hostport_tables
    c = desired(*hostport_scenario(host_ip="172.18.0.9"))
    web = c.pod("default", "web")
    nat = hostport_tables(c, c.node("a"))["nat"]
    chain = dn_chain(web)
    assert len(chain) == 28 and chain.startswith("CNI-DN-")
    assert ("PREROUTING", "-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT") in nat.jumps
    assert ("OUTPUT", "-m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT") in nat.jumps
    assert nat.chains[chain] == [
        f"-A {chain} -s {web.ip}/32 -d 172.18.0.9/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -s 127.0.0.1/32 -d 172.18.0.9/32 -p tcp -m tcp --dport 8080 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -d 172.18.0.9/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination {web.ip}:80",
        f"-A {chain} -s {web.ip}/32 -p udp -m udp --dport 5353 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -s 127.0.0.1/32 -p udp -m udp --dport 5353 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -p udp -m udp --dport 5353 -j DNAT --to-destination {web.ip}:53"]
    assert nat.chains["CNI-HOSTPORT-MASQ"] == ["-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE"]


def test_host_network_pods_get_no_portmap_rules_and_removal_drops_the_chain():
    from netlab.dataplane.iptables import plan_restore
    from netlab.render.iptables import node_rules
    c = desired(*scenario())
    assert not any(ch.startswith("CNI-") for ch in node_rules(c, c.node("a"))["nat"].chains)
    with_port = desired(*hostport_scenario())
    have = {}
    for t, ts in node_rules(with_port, with_port.node("a")).items():   # the tables as iptables-save shows them
        have[t] = dict(ts.chains)
        for builtin, spec in ts.jumps:
            have[t].setdefault(builtin, []).append(f"-A {builtin} {spec}")
    without = again(with_port, cluster(LAB, nodes=[{"role": "worker", "name": "a"}, {"role": "worker", "name": "b"}]),
                    pod("plain", nodeName="a"))
    payload, what = plan_restore(node_rules(without, without.node("a")), have)
    from netlab.render.hostport import dn_chain
    gone = dn_chain(with_port.pod("default", "web"))
    assert f"-X {gone}" in payload and "-X CNI-HOSTPORT-DNAT" in payload
    assert "-D PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in payload


def test_host_ip_0000_is_every_address():
    c = desired(*hostport_scenario(host_ip="0.0.0.0"))
    assert c.pod("default", "web").host_ports[0] == (8080, "TCP", None, 80)


def test_the_packet_tracer_follows_portmaps_chains():
    """render.trace walks a packet to nodeIP:hostPort through CNI-HOSTPORT-DNAT to the pod; localhost
    and hairpin traffic is masqueraded (CNI-HOSTPORT-MASQ); another port is not touched."""
    from netlab.render.fabric import node_local_ips
    from netlab.render.iptables import node_rules
    from netlab.render.trace import Tracer
    c = desired(*hostport_scenario())
    a, web = c.node("a"), c.pod("default", "web")
    tr = Tracer(node_rules(c, a), node_local_ips(c, a))
    (outside,) = tr.trace(str(c.node("b").ip), str(a.ip), "tcp", 8080)
    assert outside.dnat == f"{web.ip}:80" and not outside.masquerade
    assert "nat/CNI-HOSTPORT-DNAT" in outside.trail
    (local,) = tr.trace("127.0.0.1", "127.0.0.1", "tcp", 8080, from_host=True)
    assert local.dnat == f"{web.ip}:80" and local.masquerade
    (hairpin,) = tr.trace(str(web.ip), str(a.ip), "udp", 5353)
    assert hairpin.dnat == f"{web.ip}:53" and hairpin.masquerade
    (other,) = tr.trace(str(c.node("b").ip), str(a.ip), "tcp", 8081)
    assert other.dnat is None
