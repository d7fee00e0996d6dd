"""Which UDP conntrack entries are stale after a sync (netlab.render.conntrack): kube-proxy's rule."""
from __future__ import annotations

from netlab.render.conntrack import (Deletion, Entry, frontends_record, needs_cleanup, parse_list, stale,
                                    udp_frontends)

from netlab.model.build import build

from ..builders import lb_granted
from . import scenarios as s


def udp_cluster(replicas: int = 2, **svc_spec):
    """(a LoadBalancer Service's loadBalancerIP: its status, as MetalLB's controller grants it)"""
    return build(lb_granted(s.load(
        s.cluster(),
        s.deployment("dns", replicas=replicas, containers=[s.container("c", [(53, "dns", "UDP"), (80, "web")])]),
        s.service("dns", ports=[{"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"},
                                {"name": "web", "port": 80, "targetPort": "web"}],
                  selector={"app": "dns"}, **svc_spec),
        s.service("none", ports=[{"port": 54, "targetPort": 53, "protocol": "UDP"}], selector={"app": "nothing"}),
    )))


def vip(c, name="dns"):
    return str(next(x.cluster_ip for x in c.services if x.name == name))


def pod_ips(c):
    return sorted(str(p.ip) for p in c.pods)


def test_entries_to_a_removed_endpoint_are_deleted_and_live_ones_kept():
    c = udp_cluster()
    a, b = pod_ips(c)
    gone = "10.244.9.9"   # an endpoint the model no longer has
    entries = [Entry(vip(c), 53, a), Entry(vip(c), 53, b), Entry(vip(c), 53, gone)]
    assert stale(udp_frontends(c), entries) == [Deletion(53, gone, vip(c))]


def test_entry_made_without_endpoints_is_deleted_once_there_are_some():
    """Not translated: its reply source is the VIP itself."""
    c = udp_cluster()
    assert stale(udp_frontends(c), [Entry(vip(c), 53, vip(c))]) == [Deletion(53, vip(c), vip(c))]


def test_service_without_endpoints_and_tcp_ports_are_left_alone():
    c = udp_cluster()
    f = udp_frontends(c)
    assert stale(f, [Entry(vip(c, "none"), 54, vip(c, "none")),     # nothing better to send it to
                     Entry(vip(c), 80, "10.244.9.9"),                 # port 80 is TCP
                     Entry(vip(c), 5353, "10.244.9.9"),               # not a service port
                     Entry("10.244.0.7", 53, "10.244.9.9")]) == []    # not a frontend


def test_no_ready_endpoint_means_no_cleanup():
    c = udp_cluster(replicas=0)
    assert not udp_frontends(c)
    assert stale(udp_frontends(c), [Entry(vip(c), 53, "10.244.9.9")]) == []


def test_nodeport_external_ip_and_lb_ip_frontends():
    c = udp_cluster(type="LoadBalancer", externalIPs=["192.0.2.10"], loadBalancerIP="192.0.2.20")
    svc = next(x for x in c.services if x.name == "dns")
    np = next(p.node_port for p in svc.ports if p.protocol == "UDP")
    assert np
    gone = "10.244.9.9"
    got = stale(udp_frontends(c), [Entry("192.0.2.10", 53, gone), Entry("192.0.2.20", 53, gone),
                                   Entry("172.18.0.3", np, gone), Entry("172.18.0.3", np, pod_ips(c)[0])])
    assert got == [Deletion(53, gone, "192.0.2.10"), Deletion(53, gone, "192.0.2.20"), Deletion(np, gone)]
    assert Deletion(np, gone).args() == ["-p", "udp", "--orig-port-dst", str(np), "--reply-src", gone]
    assert Deletion(53, gone, "192.0.2.10").args() == ["-p", "udp", "--orig-dst", "192.0.2.10",
                                                        "--orig-port-dst", "53", "--reply-src", gone]


def test_services_kube_proxy_ignores_are_not_cleaned():
    c = s.cluster_of(
        s.cluster(),
        s.deployment("dns", replicas=1, containers=[s.container("c", [(53, "dns", "UDP")])]),
        s.service("other", ports=[{"port": 53, "targetPort": 53, "protocol": "UDP"}], selector={"app": "dns"}),
    )
    c.services[0].spec.labels["service.kubernetes.io/service-proxy-name"] = "someone-else"
    assert not udp_frontends(c)


def test_each_filter_once():
    c = udp_cluster()
    e = Entry(vip(c), 53, "10.244.9.9")
    assert len(stale(udp_frontends(c), [e, e, e])) == 1


def test_parse_conntrack_list_output():
    text = (
        "udp      17 27 src=10.244.1.2 dst=10.96.0.12 sport=40001 dport=81 src=10.244.0.3 dst=10.244.1.2 "
        "sport=8081 dport=40001 mark=0 use=1\n"
        "udp      17 29 src=10.244.1.2 dst=10.96.0.13 sport=40003 dport=82 [UNREPLIED] src=10.96.0.13 "
        "dst=10.244.1.2 sport=82 dport=40003 mark=0 use=1\n"
        "tcp      6 431999 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 "
        "dport=1 [ASSURED] mark=0 use=1\n"
        "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.\n")
    assert parse_list(text) == [Entry("10.96.0.12", 81, "10.244.0.3"), Entry("10.96.0.13", 82, "10.96.0.13")]


def test_tables_are_looked_at_only_when_udp_endpoints_changed():
    two, one, none = udp_cluster(2), udp_cluster(1), udp_cluster(0)
    # build() keeps pod names and IPs stable for the same scenario: the same map, the same record
    assert frontends_record(udp_frontends(two)) == frontends_record(udp_frontends(udp_cluster(2)))
    last = frontends_record(udp_frontends(two))
    assert not needs_cleanup(last, udp_frontends(two))            # nothing changed
    assert needs_cleanup(last, udp_frontends(one))                # an endpoint left
    assert needs_cleanup(None, udp_frontends(two))                # no record: look
    assert not needs_cleanup(None, udp_frontends(none))           # nothing that could be stale
    # 0 -> N: a flow made while there was no endpoint may wait untranslated
    assert needs_cleanup(frontends_record(udp_frontends(none)), udp_frontends(one))
    # an endpoint that stops being ready leaves the map too
    c = udp_cluster(2)
    next(x for x in c.services if x.name == "dns").endpoints["dns"][0].ready = False
    assert needs_cleanup(last, udp_frontends(c))
