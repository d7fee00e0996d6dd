"""Terminating endpoints: the model's EndpointSlice conditions and kube-proxy's fallback to serving
terminating endpoints (proxy.CategorizeEndpoints), in every proxy mode's rendering.

Goldens: tests/unit/golden/terminating_*.txt (NETLAB_UPDATE_GOLDEN=1 to rewrite them after an intended
change, then review the diff).
"""
from __future__ import annotations

from netlab.model.build import refresh_endpoints
from netlab.render import kubeproxy_ipvs as ki
from netlab.render import kubeproxy_nftables as kn
from netlab.render.conntrack import udp_frontends
from netlab.render.iptables import node_rules, to_restore
from netlab.render.services import categorize_endpoints, port_info

from . import golden
from .test_kubeproxy_iptables import cluster_of


def terminating(c, *names: str, serving: bool = True):
    """Mark pods of cluster `c` as being deleted (serving or not) and compute the endpoints again."""
    for p in c.pods:
        if p.name in names:
            p.terminating = True
            p.ready = serving
    refresh_endpoints(c)
    return c


def svc(c, key):
    return next(s for s in c.services if s.key == key)


def chosen(c, key, port, node) -> tuple[set[str], set[str], set[str], bool]:
    s = svc(c, key)
    p = next(p for p in s.ports if (p.name or "") == port)
    n = next(n for n in c.nodes if n.name == node)
    cl, lo, reach, anyep = categorize_endpoints(port_info(s, p), n)
    return ({e.pod for e in cl}, {e.pod for e in lo}, {e.pod for e in reach}, anyep)


# ---------------------------------------------------------------- the model's conditions

def test_terminating_pod_is_a_serving_terminating_endpoint():
    c = terminating(cluster_of("basic"), "web-a")
    eps = {e.pod: e for e in svc(c, "default/web").endpoints["http"]}
    assert (eps["web-a"].ready, eps["web-a"].serving, eps["web-a"].terminating) == (False, True, True)
    assert (eps["web-b"].ready, eps["web-b"].serving, eps["web-b"].terminating) == (True, True, False)


def test_terminating_pod_that_no_longer_serves_is_no_endpoint():
    c = terminating(cluster_of("basic"), "web-a", serving=False)
    assert "web-a" not in {e.pod for e in svc(c, "default/web").endpoints["http"]}


# ---------------------------------------------------------------- CategorizeEndpoints

def test_ready_endpoints_win_over_terminating_ones():
    c = terminating(cluster_of("basic"), "web-a")
    assert chosen(c, "default/web", "http", "kp-worker") == ({"web-b", "web-c"}, set(), {"web-b", "web-c"}, True)


def test_fallback_to_serving_terminating_when_none_is_ready():
    c = terminating(cluster_of("basic"), "web-a", "web-b", "web-c")
    assert chosen(c, "default/web", "http", "kp-worker") == ({"web-a", "web-b", "web-c"}, set(),
                                                              {"web-a", "web-b", "web-c"}, True)


def test_no_fallback_to_terminating_endpoints_that_do_not_serve():
    c = terminating(cluster_of("basic"), "web-a", "web-b", "web-c", serving=False)
    assert chosen(c, "default/web", "http", "kp-worker") == (set(), set(), set(), False)


def test_local_policy_falls_back_per_node():
    # itp-local: echo-1 and echo-2 on the worker; echo-1 terminating: echo-2 is the only local choice;
    # both terminating: they are used (local fallback)
    c = terminating(cluster_of("policies"), "echo-1")
    assert chosen(c, "default/itp-local", "http", "kp-worker")[1] == {"echo-2"}
    c = terminating(cluster_of("policies"), "echo-1", "echo-2")
    assert chosen(c, "default/itp-local", "http", "kp-worker") == (set(), {"echo-1", "echo-2"},
                                                                    {"echo-1", "echo-2"}, True)
    # externalTrafficPolicy Local: the cluster list falls back too, and the local one on the worker
    cl, lo, reach, anyep = chosen(c, "default/etp-local", "http", "kp-worker")
    assert (cl, lo, reach, anyep) == ({"echo-1", "echo-2"}, {"echo-1", "echo-2"}, {"echo-1", "echo-2"}, True)
    cl, lo, reach, anyep = chosen(c, "default/etp-local", "http", "kp-control-plane")
    assert (lo, anyep) == (set(), True)


def test_local_terminating_beside_remote_ready_is_merged():
    # etp-local of the basic-like layout: a local terminating endpoint and a remote ready one
    c = terminating(cluster_of("policies"), "echo-1", "echo-2")
    for p in c.pods:
        if p.name == "client":
            p.labels = dict(p.labels, app="echo")   # a ready endpoint on the control plane
    refresh_endpoints(c)
    cl, lo, reach, _ = chosen(c, "default/etp-local", "http", "kp-worker")
    assert cl == {"client"} and lo == {"echo-1", "echo-2"} and reach == {"client", "echo-1", "echo-2"}


# ---------------------------------------------------------------- every mode's rendering

def iptables_text(c) -> str:
    return "".join(f"# node {n.name}\n" + to_restore(node_rules(c, n)) for n in c.nodes)


def nft_text(c) -> str:
    return "".join(f"# node {n.name}\n" + kn.nft_script(c, n) for n in c.nodes)


def ipvs_text(c) -> str:
    return "".join(ki.describe_ipvs(c, n) for n in c.nodes)


def fallback_cluster():
    """basic with every web pod but web-c terminating and still serving, and web-c gone from web-np's
    endpoints too: web (ready web-c wins) and the UDP port; then everything terminating."""
    return terminating(cluster_of("basic"), "web-a", "web-b")


def test_golden_iptables():
    golden.check("terminating_iptables", iptables_text(fallback_cluster()) + "# all terminating\n"
                 + iptables_text(terminating(cluster_of("basic"), "web-a", "web-b", "web-c")), "rules differ")


def test_golden_nftables():
    golden.check("terminating_nft", nft_text(fallback_cluster()) + "# all terminating\n"
                 + nft_text(terminating(cluster_of("basic"), "web-a", "web-b", "web-c")), "script differs")


def test_golden_ipvs():
    c = cluster_of("basic")
    c.networking.proxy_mode = "ipvs"
    all_term = cluster_of("basic")
    all_term.networking.proxy_mode = "ipvs"
    golden.check("terminating_ipvs", ipvs_text(terminating(c, "web-a", "web-b")) + "# all terminating\n"
                 + ipvs_text(terminating(all_term, "web-a", "web-b", "web-c")), "state differs")


def ep_ips(c, *pods):
    return {str(p.ip) for p in c.pods if p.name in pods}


def test_each_mode_chooses_only_ready_then_falls_back():
    """The rendered rules of each mode name exactly the endpoints CategorizeEndpoints chose."""
    some = fallback_cluster()
    every = terminating(cluster_of("basic"), "web-a", "web-b", "web-c")
    none = terminating(cluster_of("basic"), "web-a", "web-b", "web-c", serving=False)
    for c, want, absent in ((some, {"web-c"}, {"web-a", "web-b"}), (every, {"web-a", "web-b", "web-c"}, set()),
                            (none, set(), {"web-a", "web-b", "web-c"})):
        text = iptables_text(c)
        for ip in ep_ips(c, *want):
            assert f"--to-destination {ip}:8080" in text
        for ip in ep_ips(c, *absent):
            assert f"{ip}:8080" not in text
        text = nft_text(c)
        for ip in ep_ips(c, *want):
            assert f"dnat to {ip}:8080" in text
        for ip in ep_ips(c, *absent):
            assert f"{ip}:8080" not in text
        c.networking.proxy_mode = "ipvs"
        for n in c.nodes:
            st = ki.ipvs_state(c, n)
            vs = next(v for v in st.virtual_servers if v.key == ("TCP", "10.96.0.100", 80))
            assert {rs.address for rs in vs.real_servers} == ep_ips(c, *want)


def test_conntrack_keeps_flows_to_the_fallback_endpoints():
    c = terminating(cluster_of("basic"), "web-a", "web-b", "web-c")
    fr = udp_frontends(c)
    assert fr.by_vip[("10.96.0.100", 53)] == frozenset(ep_ips(c, "web-a", "web-b", "web-c"))
    c = fallback_cluster()
    assert udp_frontends(c).by_vip[("10.96.0.100", 53)] == frozenset(ep_ips(c, "web-c"))


def test_get_endpointslices_columns():
    from netlab.controllers.printers import table
    s = {"metadata": {"name": "web-abcde", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
         "addressType": "IPv4", "ports": [{"port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": [f"10.244.1.{i}"], "conditions": {"ready": i != 2, "serving": True,
                                                                       "terminating": i == 2}} for i in range(1, 6)]}
    rows = table("EndpointSlice", [s], 1767225600.0 + 60)
    assert rows[0] == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert rows[1][:4] == ["web-abcde", "IPv4", "8080", "10.244.1.1,10.244.1.2,10.244.1.3 + 2 more..."]
    empty = dict(s, ports=[], endpoints=[])
    assert table("EndpointSlice", [empty], 1767225600.0)[1][2:4] == ["<unset>", "<none>"]
