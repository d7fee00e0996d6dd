"""kube-proxy's side of LoadBalancer Services (issue 14), pure parts: the Service fields with the API
server's checks, the healthCheckNodePort allocation, the rules' behaviour (packet walks through the
rendered iptables rules), ipMode Proxy and loadBalancerClass, kube-proxy's health server answers."""
from __future__ import annotations

import dataclasses
import json

import pytest

from netlab.errors import SpecError
from netlab.lb import healthcheck
from netlab.render import kubeproxy_iptables as kp
from netlab.render import kubeproxy_ipvs as ki
from netlab.render import kubeproxy_nftables as kn
from netlab.render.fabric import node_local_ips
from netlab.render.iptables import node_rules
from netlab.render.trace import Tracer
from netlab.spec.parse import load_text
from netlab.workload import apps

from ..builders import lb_granted
from .scenarios import build, cluster, deployment, load, pod, service, state_of, text


def cluster_of(*docs, prev=None):
    """The model with each LoadBalancer Service's loadBalancerIP as its status, as MetalLB grants it."""
    return build(lb_granted(load(*docs)), prev)

LB = dict(type="LoadBalancer")


def error(*docs) -> str:
    with pytest.raises(SpecError) as e:
        load_text(text(cluster(), *docs), "in.yaml")
    assert e.value.exit_code == 2
    (line,) = str(e.value).splitlines()
    return line


# ---------------------------------------------------------------- the spec fields

def test_source_ranges_are_cidrs_trimmed_and_normalised_as_kube_proxy_uses_them():
    s = load(cluster(), service("web", loadBalancerSourceRanges=[" 10.1.2.3/16", "192.0.2.7/32"], **LB)).services[0]
    assert s.source_ranges == ["10.1.0.0/16", "192.0.2.7/32"]


@pytest.mark.parametrize("spec, message", [
    (dict(loadBalancerSourceRanges=["192.0.2.7"], **LB),
     "spec.loadBalancerSourceRanges[0] '192.0.2.7' is not an IPv4 CIDR"),
    (dict(loadBalancerSourceRanges=["10.0.0.0/8", "nope/3"], **LB),
     "spec.loadBalancerSourceRanges[1] 'nope/3' is not an IPv4 CIDR"),
    (dict(loadBalancerSourceRanges=["2001:db8::/32"], **LB),
     "spec.loadBalancerSourceRanges[0] '2001:db8::/32' is not an IPv4 CIDR"),
    (dict(loadBalancerSourceRanges=["10.0.0.0/8"], type="NodePort"),
     "spec.loadBalancerSourceRanges may only be used when type is 'LoadBalancer', not NodePort"),
    (dict(healthCheckNodePort=30100, **LB),
     "spec.healthCheckNodePort may only be set when type is 'LoadBalancer' and externalTrafficPolicy is 'Local'"),
    (dict(healthCheckNodePort=30100, type="NodePort", externalTrafficPolicy="Local"),
     "spec.healthCheckNodePort may only be set when type is 'LoadBalancer' and externalTrafficPolicy is 'Local'"),
    (dict(healthCheckNodePort=8080, externalTrafficPolicy="Local", **LB),
     "spec.healthCheckNodePort 8080 is outside the node port range 30000-32767"),
    (dict(healthCheckNodePort=30100, externalTrafficPolicy="Local", ports=[{"port": 80, "nodePort": 30100}], **LB),
     "spec.healthCheckNodePort 30100 is also a nodePort of this Service"),
    (dict(allocateLoadBalancerNodePorts=False, type="NodePort"),
     "spec.allocateLoadBalancerNodePorts may only be used when type is 'LoadBalancer', not NodePort"),
    (dict(allocateLoadBalancerNodePorts="no", **LB), "spec.allocateLoadBalancerNodePorts must be true or false"),
    (dict(loadBalancerClass="example.com/lb"), "spec.loadBalancerClass may only be used when type is 'LoadBalancer'"),
    (dict(loadBalancerClass="Not A Class!", **LB), "spec.loadBalancerClass 'Not A Class!' is not a qualified name"),
])
def test_the_api_servers_checks_one_line_each(spec, message):
    ports = spec.pop("ports", [{"port": 80}])
    line = error(service("web", ports, **spec))
    assert line.startswith(f"Service default/web: {message}"), line


def test_the_legacy_annotation_is_checked_and_reported_as_not_enforced():
    ann = "service.beta.kubernetes.io/load-balancer-source-ranges"
    s = service("web", **LB)
    s["metadata"]["annotations"] = {ann: "10.0.0.0/8, 192.0.2.0/24"}
    sc = load(cluster(), s)
    # kube-proxy reads only the field: nothing is filtered, and the user is told so
    assert sc.services[0].source_ranges == []
    assert sc.ignored == [f"Service default/web: metadata.annotations[{ann}] (kube-proxy reads only "
                          "spec.loadBalancerSourceRanges; move the ranges there)"]
    s["metadata"]["annotations"] = {ann: "10.0.0.0/8,bad"}
    assert f"metadata.annotations[{ann}] 'bad' is not an IPv4 CIDR" in error(s)
    s["spec"]["type"] = "ClusterIP"
    s["metadata"]["annotations"] = {ann: "10.0.0.0/8"}
    assert "may only be used when type is 'LoadBalancer', not ClusterIP" in error(s)
    # with the field set, the API server looks at the field only (the annotation is not even parsed)
    s = service("web", loadBalancerSourceRanges=["10.0.0.0/8"], **LB)
    s["metadata"]["annotations"] = {ann: "junk"}
    sc = load(cluster(), s)
    assert sc.services[0].source_ranges == ["10.0.0.0/8"] and sc.ignored == []


def test_load_balancer_class_is_parsed_and_changes_no_rule():
    base = [deployment("web", 2), service("web", [{"port": 80, "targetPort": 8080, "nodePort": 30080}],
                                          loadBalancerIP="192.0.2.10", **LB)]
    classy = [deployment("web", 2), service("web", [{"port": 80, "targetPort": 8080, "nodePort": 30080}],
                                            loadBalancerIP="192.0.2.10", loadBalancerClass="example.com/other", **LB)]
    a, b = cluster_of(cluster(), *base), cluster_of(cluster(), *classy)
    assert b.services[0].spec.lb_class == "example.com/other"
    for na, nb in zip(a.nodes, b.nodes):
        assert node_rules(a, na) == node_rules(b, nb)
        assert kn.desired_objects(a, na).chains == kn.desired_objects(b, nb).chains


# ---------------------------------------------------------------- the API server's allocation

def test_health_check_node_port_is_allocated_for_local_load_balancers_only_and_kept():
    docs = [cluster(), service("local", externalTrafficPolicy="Local", **LB),
            service("cluster", **LB), service("np", type="NodePort", externalTrafficPolicy="Local")]
    c = cluster_of(*docs)
    by = {s.name: s for s in c.services}
    hc = by["local"].health_check_node_port
    lo, hi = c.networking.nodeport_range
    assert lo <= hc <= hi and hc not in {p.node_port for s in c.services for p in s.ports}
    assert by["cluster"].health_check_node_port is None and by["np"].health_check_node_port is None
    # kept across passes, even when a new Service would hash to it
    prev = state_of(c)
    assert prev["services"]["default/local"]["healthCheckNodePort"] == hc
    again = cluster_of(*docs, service("other", externalTrafficPolicy="Local", **LB), prev=prev)
    assert next(s for s in again.services if s.name == "local").health_check_node_port == hc
    # one given in the spec is used as it is
    given = cluster_of(cluster(), service("local", externalTrafficPolicy="Local", healthCheckNodePort=31999, **LB))
    assert given.services[0].health_check_node_port == 31999


def test_health_check_node_port_taken_by_another_service_is_refused():
    with pytest.raises(SpecError) as e:
        cluster_of(cluster(), service("a", [{"port": 80, "nodePort": 31000}], type="NodePort"),
                   service("b", externalTrafficPolicy="Local", healthCheckNodePort=31000, **LB))
    assert "spec.healthCheckNodePort 31000 is also used by Service default/a" in str(e.value)


def test_allocate_load_balancer_node_ports_false_gives_only_the_written_ones():
    c = cluster_of(cluster(), service("web", [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30081}],
                                      allocateLoadBalancerNodePorts=False, **LB))
    assert [p.node_port for p in c.services[0].ports] == [None, 30081]
    c = cluster_of(cluster(), service("web", allocateLoadBalancerNodePorts=True, **LB))
    assert c.services[0].ports[0].node_port is not None


def test_external_host_has_two_addresses_no_node_takes():
    c = cluster_of(cluster(nodes=["control-plane", "worker", "worker"], nodeSubnet="10.9.0.0/29"))
    assert (str(c.external_ip), str(c.external_ip2)) == ("10.9.0.6", "10.9.0.5")
    assert {str(n.ip) for n in c.nodes} == {"10.9.0.2", "10.9.0.3", "10.9.0.4"}
    line = error_of_cluster(cluster(nodes=["control-plane"] + ["worker"] * 3, nodeSubnet="10.9.0.0/29"))
    assert "networking.nodeSubnet 10.9.0.0/29 is too small for 4 nodes" in line


def error_of_cluster(doc) -> str:
    with pytest.raises(SpecError) as e:
        load_text(text(doc), "in.yaml")
    return str(e.value)


# ---------------------------------------------------------------- the rules, walked

FENCED = [cluster(), pod("a", {"app": "web"}, nodeName="t-worker"),
          service("web", [{"port": 80, "targetPort": 8080, "nodePort": 30080}], loadBalancerIP="192.0.2.10",
                  loadBalancerSourceRanges=["203.0.113.0/24"], **LB)]


def fates(c, node, src, dst="192.0.2.10", port=80, host=False):
    paths = Tracer(node_rules(c, node), node_local_ips(c, node)).trace(src, dst, "tcp", port, from_host=host)
    return {(p.verdict, p.dnat) for p in paths}


def test_source_ranges_let_their_sources_in_and_drop_the_rest():
    c = cluster_of(*FENCED)
    ep = f"{c.pod('default', 'a').ip}:8080"
    for node in c.nodes:
        assert fates(c, node, "203.0.113.9") == {("ACCEPT", ep)}
        assert fates(c, node, str(c.external_ip)) == {("DROP", None)}
        # the NodePort is not subject to the source ranges (kube-proxy: "for better or for worse")
        assert fates(c, node, str(c.external_ip), str(node.ip), 30080) == {("ACCEPT", ep)}


def test_a_range_holding_the_node_ip_lets_the_lb_ip_itself_in():
    docs = list(FENCED)
    docs[2] = service("web", [{"port": 80, "targetPort": 8080}], loadBalancerIP="192.0.2.10",
                      loadBalancerSourceRanges=["172.18.0.0/16"], **LB)
    c = cluster_of(*docs)
    node = c.nodes[0]
    fw = kp.fw_chain("default/web", "tcp")
    assert f"-A {fw} -s 192.0.2.10/32 -m comment --comment \"default/web loadbalancer IP\" " \
           f"-j {kp.ext_chain('default/web', 'tcp')}" in node_rules(c, node)["nat"].chains[fw]
    assert fates(c, node, "192.0.2.10") == {("ACCEPT", f"{c.pod('default', 'a').ip}:8080")}
    assert fates(c, node, "198.51.100.1") == {("DROP", None)}
    assert kn.desired_objects(c, node).chains["firewall-" + kn.service_chain_base("default", "web", "tcp", None)] \
        == ["ip saddr != { 172.18.0.0/16, 192.0.2.10 } drop"]
    st = ki.ipvs_state(c, node)
    assert st.ipsets[ki.LOAD_BALANCER_SOURCE_IP].entries == ["192.0.2.10,tcp:80,192.0.2.10"]
    assert st.iptables["filter"].chains["KUBE-IPVS-OUT-FILTER"] == []
    # a range without the node: no LB IP source, and IPVS drops the node's own connections to it
    c2 = cluster_of(*FENCED)
    st = ki.ipvs_state(c2, c2.nodes[0])
    assert st.ipsets[ki.LOAD_BALANCER_SOURCE_IP].entries == []
    assert st.iptables["filter"].chains["KUBE-IPVS-OUT-FILTER"] == [
        "-A KUBE-IPVS-OUT-FILTER -s 192.0.2.10/32 -m ipvs --vproto 6 --vaddr 192.0.2.10/32 --vport 80 -j DROP"]


def test_ip_mode_proxy_is_left_to_the_load_balancer():
    c = cluster_of(*FENCED)
    svc = c.services[0]
    for mode, programmed in (("VIP", True), ("Proxy", False)):
        svc.spec = dataclasses.replace(svc.spec, lb_ingress=[{"ip": "192.0.2.20", "ipMode": mode}])
        for node in c.nodes:
            nat = "\n".join(node_rules(c, node)["nat"].chains["KUBE-SERVICES"])
            assert ("192.0.2.20/32" in nat) == programmed, mode
            assert any("192.0.2.20 . tcp . 80" in k for k in kn.desired_objects(c, node).sets["service-ips"].elements) \
                == programmed
            assert any(vs.address == "192.0.2.20" for vs in ki.ipvs_state(c, node).virtual_servers) == programmed


def test_health_check_node_port_is_accepted_in_the_filter_table():
    c = cluster_of(cluster(), pod("a", {"app": "web"}, nodeName="t-worker"),
                   service("web", [{"port": 80, "targetPort": 8080}], externalTrafficPolicy="Local",
                           healthCheckNodePort=31500, **LB))
    for node in c.nodes:
        assert node_rules(c, node)["filter"].chains["KUBE-NODEPORTS"] == [
            '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web health check node port" '
            '-m tcp --dport 31500 -j ACCEPT']
        assert ki.ipvs_state(c, node).ipsets[ki.HEALTH_CHECK_NODE_PORT].entries == ["31500"]


# ---------------------------------------------------------------- kube-proxy's health server

def test_local_ready_endpoints_count_each_address_once():
    c = cluster_of(cluster(), pod("a", {"app": "web"}, nodeName="t-worker"),
                   pod("b", {"app": "web"}, nodeName="t-worker"), pod("c", {"app": "web"}, nodeName="t-control-plane"),
                   service("web", [{"name": "h", "port": 80, "targetPort": 8080},
                                   {"name": "g", "port": 81, "targetPort": 8081}],
                           externalTrafficPolicy="Local", **LB))
    svc = c.services[0]
    assert healthcheck.local_ready_endpoints(svc, "t-worker") == 2
    assert healthcheck.local_ready_endpoints(svc, "t-control-plane") == 1
    c.pod("default", "a").ready = False
    from netlab.model.build import refresh_endpoints
    refresh_endpoints(c)
    assert json.loads(healthcheck.state_text(c, "t-worker")) == {"default/web": 1}
    entry = healthcheck.server_entry(c, "t-worker", "/run/netns/x", "/tmp/state.json")
    assert entry["key"] == healthcheck.SERVER_KEY and [p["port"] for p in entry["ports"]] == \
        [svc.health_check_node_port]


def test_health_answers_as_kube_proxy_does(tmp_path):
    state = tmp_path / "healthz.json"
    app = {"app": healthcheck.APP, "namespace": "default", "name": "web", "state": str(state)}
    r = apps.handle(app, None, "GET", "/anything", "", [], "1.2.3.4:5")
    assert (r.status, r.ctype) == (503, "application/json")      # no file yet: no local endpoint
    state.write_text(json.dumps({"default/web": 2}))
    r = apps.handle(app, None, "GET", "/healthz", "", [], "1.2.3.4:5")
    assert r.status == 200 and dict(r.headers) == {"X-Content-Type-Options": "nosniff",
                                                   "X-Load-Balancing-Endpoint-Weight": "2"}
    # kube-proxy's Go template, dedented and trimmed: tabs, no trailing newline
    assert r.body == ('{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "web"\n\t},\n'
                      '\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}')
    assert json.loads(r.body)["localEndpoints"] == 2
