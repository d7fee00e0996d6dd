"""kube-proxy iptables mode: golden payloads, chain-name hashing, packet walks, and the real parser.

Goldens live in tests/unit/golden/; after an intended change regenerate them with
    NETLAB_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_kubeproxy_iptables.py
and review the diff. Without that variable any change of the rendered text fails the test.
"""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess

import pytest

from netlab.dataplane.iptables import parse_save, plan_restore
from netlab.model.build import build
from netlab.render import kubeproxy_iptables as kp
from netlab.render import services
from netlab.render.fabric import node_local_ips
from netlab.render.iptables import node_rules, to_restore
from netlab.render.trace import Tracer, parse_rule
from netlab.spec.parse import load_text

from ..builders import lb_granted
from . import golden  # noqa: E402

# ---------------------------------------------------------------- scenarios

CLUSTER = """\
apiVersion: netlab.dev/v1alpha1
kind: Cluster
name: kp
nodes:
- role: control-plane
- role: worker
"""


def pod(name: str, node: str, labels: str, ns: str = "default") -> str:
    return f"""\
---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}
spec:
  nodeName: {node}
  containers:
  - name: app
    image: busybox
    ports:
    - {{name: http, containerPort: 8080}}
    - {{name: dns, containerPort: 8053, protocol: UDP}}
"""


# ClusterIP with three endpoints, a TCP+UDP multi-port Service, a NodePort Service.
BASIC = CLUSTER + pod("web-a", "kp-control-plane", "app: web") + pod("web-b", "kp-worker", "app: web") \
    + pod("web-c", "kp-worker", "app: web") + pod("client", "kp-control-plane", "app: client") + """\
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.100
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, targetPort: 8053, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  clusterIP: 10.96.0.101
  selector: {app: web}
  ports:
  - {port: 8080, nodePort: 30080}
"""

# externalTrafficPolicy Local (endpoints only on the worker), internalTrafficPolicy Local, ClientIP affinity.
POLICIES = CLUSTER + pod("echo-1", "kp-worker", "app: echo") + pod("echo-2", "kp-worker", "app: echo") \
    + pod("client", "kp-control-plane", "app: client") + """\
---
apiVersion: v1
kind: Service
metadata: {name: etp-local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  clusterIP: 10.96.0.110
  selector: {app: echo}
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30110}
---
apiVersion: v1
kind: Service
metadata: {name: itp-local}
spec:
  internalTrafficPolicy: Local
  clusterIP: 10.96.0.111
  selector: {app: echo}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: sticky}
spec:
  clusterIP: 10.96.0.112
  selector: {app: echo}
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  ports:
  - {name: http, port: 80, targetPort: 8080}
"""

# externalIPs, LoadBalancer IPs (Cluster and Local policy), Services without endpoints, and Services
# kube-proxy ignores (headless, ExternalName, service-proxy-name, headless label).
EXTERNAL = CLUSTER + pod("api-a", "kp-control-plane", "app: api") \
    + pod("api-b", "kp-worker", "app: api, tier: backend") + pod("ext-1", "kp-worker", "app: ext", ns="apps") \
    + pod("ext-2", "kp-control-plane", "app: ext", ns="apps") + """\
---
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: apps}
spec:
  clusterIP: 10.96.0.120
  externalIPs: [192.0.2.50]
  selector: {app: ext}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  clusterIP: 10.96.0.121
  selector: {app: api}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: lb}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.122
  loadBalancerIP: 192.0.2.60
  selector: {app: api}
  ports:
  - {name: https, port: 443, targetPort: 8080, nodePort: 30443}
---
apiVersion: v1
kind: Service
metadata: {name: lb-local}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  clusterIP: 10.96.0.123
  loadBalancerIP: 192.0.2.61
  selector: {tier: backend}
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30444}
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  type: NodePort
  clusterIP: 10.96.0.124
  externalIPs: [192.0.2.70]
  selector: {app: nothing}
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30200}
  - {name: dns, port: 53, targetPort: 8053, protocol: UDP, nodePort: 30201}
---
apiVersion: v1
kind: Service
metadata: {name: lb-empty}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.125
  loadBalancerIP: 192.0.2.80
  selector: {app: nothing}
  ports:
  - {port: 80, targetPort: 8080, nodePort: 30202}
---
apiVersion: v1
kind: Service
metadata: {name: manual}
spec:
  clusterIP: 10.96.0.126
  ports:
  - {port: 80}
---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec:
  clusterIP: None
  selector: {app: api}
  ports:
  - {port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: extname}
spec:
  type: ExternalName
  externalName: example.com
---
apiVersion: v1
kind: Service
metadata:
  name: other-proxy
  labels: {service.kubernetes.io/service-proxy-name: someone-else}
spec:
  clusterIP: 10.96.0.127
  selector: {app: api}
  ports:
  - {port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: headless-label
  labels: {service.kubernetes.io/headless: ""}
spec:
  clusterIP: 10.96.0.128
  selector: {app: api}
  ports:
  - {port: 80, targetPort: 8080}
"""

# LoadBalancer Services as kube-proxy's own tests have them (issue 14): loadBalancerSourceRanges (one that
# holds the node IPs, so the LB IP itself is let in too), externalTrafficPolicy Local with a
# healthCheckNodePort, allocateLoadBalancerNodePorts false, a foreign loadBalancerClass, and source
# ranges on a Service without endpoints.
LOADBALANCER = CLUSTER + pod("api-a", "kp-control-plane", "app: api") \
    + pod("api-b", "kp-worker", "app: api, tier: backend") + """\
---
apiVersion: v1
kind: Service
metadata: {name: fw}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.130
  loadBalancerIP: 192.0.2.90
  loadBalancerSourceRanges: [203.0.113.0/25, " 198.51.100.7/32"]
  selector: {app: api}
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30500}
---
apiVersion: v1
kind: Service
metadata: {name: fw-local}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: 30510
  clusterIP: 10.96.0.131
  loadBalancerIP: 192.0.2.91
  loadBalancerSourceRanges: [172.18.0.0/16]
  selector: {tier: backend}
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30501}
  - {name: dns, port: 53, targetPort: 8053, protocol: UDP, nodePort: 30502}
---
apiVersion: v1
kind: Service
metadata: {name: no-np}
spec:
  type: LoadBalancer
  allocateLoadBalancerNodePorts: false
  externalTrafficPolicy: Local
  clusterIP: 10.96.0.132
  loadBalancerIP: 192.0.2.92
  selector: {app: api}
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: classy}
spec:
  type: LoadBalancer
  loadBalancerClass: example.com/other
  clusterIP: 10.96.0.133
  loadBalancerIP: 192.0.2.93
  selector: {app: api}
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30503}
---
apiVersion: v1
kind: Service
metadata: {name: fw-empty}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.134
  loadBalancerIP: 192.0.2.94
  loadBalancerSourceRanges: [203.0.113.0/25]
  selector: {app: nothing}
  ports:
  - {name: http, port: 80, targetPort: 8080, nodePort: 30504}
"""

SCENARIOS = {"basic": BASIC, "policies": POLICIES, "external": EXTERNAL, "loadbalancer": LOADBALANCER}


def cluster_of(name: str):
    return build(lb_granted(load_text(SCENARIOS[name], f"<{name}>")))  # (the LB IPs as MetalLB grants them)


def payload(cluster, node) -> str:
    return to_restore(node_rules(cluster, node))


def golden_text(name: str) -> str:
    c = cluster_of(name)
    return "".join(f"# node {n.name}\n" + payload(c, n) for n in c.nodes)


# ---------------------------------------------------------------- golden files

@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden(name):
    golden.check(f"kubeproxy_{name}", golden_text(name), "rules differ")


def test_render_is_deterministic():
    for name in SCENARIOS:
        assert golden_text(name) == golden_text(name)


def test_only_flannel_without_iptables_proxy():
    c = cluster_of("basic")
    c.networking.proxy_mode = "nftables"          # its rules live in its own nftables table
    d = node_rules(c, c.nodes[0])
    # only the kubelet's flavour hint and the NetworkPolicy chain (empty without policies), which every mode has
    assert [(t, ch) for t, ts in d.items() for ch in ts.chains if ch.startswith("KUBE-")] == \
        [("filter", "KUBE-ROUTER-FORWARD"), ("mangle", "KUBE-IPTABLES-HINT")]
    assert d["filter"].chains["KUBE-ROUTER-FORWARD"] == []
    assert [spec for ts in d.values() for _, spec in ts.jumps if "KUBE-" in spec] == \
        ['-m comment --comment "kube-router netpol - network policies" -j KUBE-ROUTER-FORWARD']


def test_kubelet_hint_chain_in_every_mode():
    """The kubelet's empty KUBE-IPTABLES-HINT chain in mangle, whatever the proxy mode."""
    c = cluster_of("basic")
    for mode in ("iptables", "nftables", "ipvs"):
        c.networking.proxy_mode = mode
        d = node_rules(c, c.nodes[0])
        assert d["mangle"].chains["KUBE-IPTABLES-HINT"] == [], mode
        assert ":KUBE-IPTABLES-HINT - [0:0]" in to_restore(d).split("*mangle\n", 1)[1].split("COMMIT")[0]


# ---------------------------------------------------------------- names and numbers

def independent_hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")[:16]


def test_chain_hash_against_independent_derivation():
    assert kp.port_proto_hash("ns1/svc1:p80", "TCP") == independent_hash("ns1/svc1:p80" + "tcp")
    assert kp.svc_chain("ns1/svc1:p80", "tcp") == "KUBE-SVC-" + independent_hash("ns1/svc1:p80tcp")
    assert kp.svl_chain("ns1/svc1:p80", "tcp") == "KUBE-SVL-" + independent_hash("ns1/svc1:p80tcp")
    assert kp.ext_chain("ns1/svc1:p80", "tcp") == "KUBE-EXT-" + independent_hash("ns1/svc1:p80tcp")
    assert kp.fw_chain("ns1/svc1:p80", "tcp") == "KUBE-FW-" + independent_hash("ns1/svc1:p80tcp")
    assert kp.sep_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80") == \
        "KUBE-SEP-" + independent_hash("ns1/svc1:p80tcp10.180.0.1:80")
    for name in ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-"):
        assert len(name + "X" * 16) <= 28                      # iptables' chain name limit


def test_chain_hash_against_kube_proxy():
    # Expected values from kubernetes/kubernetes pkg/proxy/iptables/proxier_test.go (TestParseIPTablesData):
    # Service port "ns1/svc1:p80" (TCP) is KUBE-SVC-XPGD46QRK7WJZT7O, its endpoint 10.180.0.1:80 is
    # KUBE-SEP-SXIVWICOYRO3J4NJ.
    assert kp.svc_chain("ns1/svc1:p80", "tcp") == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert kp.sep_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80") == "KUBE-SEP-SXIVWICOYRO3J4NJ"


def test_service_port_name():
    c = cluster_of("external")
    svc = {s.key: s for s in c.services}
    assert services.service_port_name(svc["apps/ext"], svc["apps/ext"].ports[0]) == "apps/ext:http"
    # ServicePortName.String() leaves out the ':' for an unnamed port
    assert services.service_port_name(svc["default/manual"], svc["default/manual"].ports[0]) == "default/manual"


def test_probability_as_iptables_prints_it():
    # kube-proxy writes 1/n with ten decimals; iptables-save prints the stored value with eleven
    # (checked against iptables-legacy-save and iptables-nft-save 1.8).
    assert kp.probability(2) == "0.50000000000"
    assert kp.probability(3) == "0.33333333349"
    assert kp.probability(4) == "0.25000000000"
    assert kp.probability(10) == "0.10000000009"


def test_endpoint_order_is_by_ip_port_string():
    text = CLUSTER + "".join(pod(f"p{i}", "kp-worker", "app: many") for i in range(11)) + """\
---
apiVersion: v1
kind: Service
metadata: {name: many}
spec:
  clusterIP: 10.96.0.200
  selector: {app: many}
  ports:
  - {port: 80, targetPort: 8080}
"""
    c = build(load_text(text))
    d = kp.kube_proxy_tables(c, c.nodes[0])
    ladder = d["nat"].chains[kp.svc_chain("default/many", "tcp")][1:]
    dests = [r.split('"')[1].split(" -> ")[1] for r in ladder]
    assert dests == sorted(dests)                                  # kube-proxy sorts by Endpoint.String()
    assert dests[:2] == ["10.244.1.10:8080", "10.244.1.11:8080"]   # a string sort, not a numeric one
    assert len(ladder) == 11 and "--probability" not in ladder[-1]


# ---------------------------------------------------------------- structure

@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_jump_has_a_chain_and_every_chain_is_used(name):
    """The checks kube-proxy's own tests make (checkIPTablesRuleJumps), on every node."""
    c = cluster_of(name)
    builtin_targets = {"ACCEPT", "DROP", "REJECT", "RETURN", "MARK", "DNAT", "MASQUERADE", ""}  # "": no -j
    for node in c.nodes:
        for table, ts in kp.kube_proxy_tables(c, node).items():
            rules = [f"-A {b} {spec}" for b, spec in ts.jumps] + [r for rs in ts.chains.values() for r in rs]
            jumped = {parse_rule(r).target for r in rules} - builtin_targets
            for chain, rs in ts.chains.items():
                assert all(r.startswith(f"-A {chain} ") for r in rs)
            assert jumped <= set(ts.chains), f"{table}: jumps to undeclared chains {jumped - set(ts.chains)}"
            empty = {ch for ch in jumped if not ts.chains[ch]} - {"KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL"}
            if table == "filter":
                empty -= {"KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS"}
            assert not empty, f"{table}: chains jumped to but empty: {empty}"
            base = set(kp.NAT_BASE_CHAINS if table == "nat" else kp.FILTER_BASE_CHAINS) | {kp.KUBELET_FIREWALL}
            unused = set(ts.chains) - jumped - base
            assert not unused, f"{table}: chains nobody jumps to: {unused}"


def test_ignored_services_render_nothing():
    c = cluster_of("external")
    text = "".join(payload(c, n) for n in c.nodes)
    for name in ("headless", "extname", "other-proxy", "headless-label"):
        assert f"default/{name}" not in text
    assert "10.96.0.127" not in text and "10.96.0.128" not in text


def test_no_endpoints_reject_in_filter_only():
    c = cluster_of("external")
    d = kp.kube_proxy_tables(c, c.nodes[0])
    nat_text = "\n".join(r for rs in d["nat"].chains.values() for r in rs)
    assert "default/empty" not in nat_text and "default/manual" not in nat_text
    assert '-A KUBE-SERVICES -d 10.96.0.124/32 -p tcp -m comment --comment "default/empty:http has no endpoints" ' \
           '-m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable' in d["filter"].chains["KUBE-SERVICES"]
    ext = d["filter"].chains["KUBE-EXTERNAL-SERVICES"]
    assert '-A KUBE-EXTERNAL-SERVICES -p udp -m comment --comment "default/empty:dns has no endpoints" ' \
           '-m addrtype --dst-type LOCAL -m udp --dport 30201 -j REJECT --reject-with icmp-port-unreachable' in ext
    assert '-A KUBE-EXTERNAL-SERVICES -d 192.0.2.70/32 -p tcp -m comment --comment "default/empty:http has no ' \
           'endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable' in ext
    assert any("192.0.2.80/32" in r and "default/lb-empty has no endpoints" in r for r in ext)


# ---------------------------------------------------------------- packet walks

def tracer(c, node):
    return Tracer(node_rules(c, node), node_local_ips(c, node))


def eps(c, svc_key, port=""):
    svc = next(s for s in c.services if s.key == svc_key)
    return {f"{e.ip}:{e.port}" for e in svc.endpoints[port]}


def dnats(paths):
    return {p.dnat for p in paths}


def test_pod_to_cluster_ip_reaches_every_endpoint_without_snat():
    c = cluster_of("basic")
    client = c.pod("default", "client")
    node = c.node(client.node)
    paths = tracer(c, node).trace(str(client.ip), "10.96.0.100", "tcp", 80)
    assert dnats(paths) == eps(c, "default/web", "http") and len(paths) == 3
    assert all(p.verdict == "ACCEPT" and not p.marked and not p.masquerade for p in paths)
    udp = tracer(c, node).trace(str(client.ip), "10.96.0.100", "udp", 53)
    assert dnats(udp) == eps(c, "default/web", "dns") == {f"{p.ip}:8053" for p in c.pods if p.name.startswith("web")}
    # a port the Service does not have is not touched
    other = tracer(c, node).trace(str(client.ip), "10.96.0.100", "tcp", 81)
    assert dnats(other) == {None}


def test_off_cluster_source_to_cluster_ip_is_masqueraded():
    c = cluster_of("basic")
    node = c.nodes[1]
    paths = tracer(c, node).trace(str(c.external_ip), "10.96.0.100", "tcp", 80)
    assert dnats(paths) == eps(c, "default/web", "http")
    assert all(p.marked and p.masquerade for p in paths)


@pytest.mark.parametrize("node_index", [0, 1])
def test_nodeport_cluster_policy_reaches_every_endpoint_with_snat(node_index):
    c = cluster_of("basic")
    node = c.nodes[node_index]
    t = tracer(c, node)
    for src, from_host, dst in [(str(c.external_ip), False, str(node.ip)),      # from outside
                                (str(node.ip), True, str(node.ip)),             # from the node itself
                                ("127.0.0.1", True, "127.0.0.1")]:              # localhost NodePort
        paths = t.trace(src, dst, "tcp", 30080, from_host=from_host)
        assert dnats(paths) == eps(c, "default/web-np"), (src, dst)
        assert all(p.verdict == "ACCEPT" and p.marked and p.masquerade for p in paths), (src, dst)


def test_etp_local_external_client_only_reaches_local_endpoints_and_keeps_its_source():
    c = cluster_of("policies")
    worker, cp = c.node("kp-worker"), c.node("kp-control-plane")
    local = eps(c, "default/etp-local", "http")
    assert all(e.node == "kp-worker" for e in next(s for s in c.services if s.name == "etp-local").endpoints["http"])
    paths = tracer(c, worker).trace(str(c.external_ip), str(worker.ip), "tcp", 30110)
    assert dnats(paths) == local
    assert all(p.verdict == "ACCEPT" and not p.marked and not p.masquerade for p in paths)
    assert any(ch.startswith("nat/KUBE-SVL-") for ch in paths[0].trail)
    # a node without local endpoints drops external traffic (filter KUBE-EXTERNAL-SERVICES)
    paths = tracer(c, cp).trace(str(c.external_ip), str(cp.ip), "tcp", 30110)
    assert [(p.verdict, p.dnat) for p in paths] == [("DROP", None)]
    assert "filter/KUBE-EXTERNAL-SERVICES" in paths[0].trail


def test_etp_local_short_circuits_pods_and_the_node():
    c = cluster_of("policies")
    cp = c.node("kp-control-plane")
    client = c.pod("default", "client")                 # on the node without local endpoints
    t = tracer(c, cp)
    from_pod = t.trace(str(client.ip), str(cp.ip), "tcp", 30110)
    assert dnats(from_pod) == eps(c, "default/etp-local", "http")
    assert all(p.verdict == "ACCEPT" and not p.marked for p in from_pod)
    from_node = t.trace(str(cp.ip), str(cp.ip), "tcp", 30110, from_host=True)
    assert dnats(from_node) == eps(c, "default/etp-local", "http")
    assert all(p.marked and p.masquerade for p in from_node)


def test_itp_local_uses_node_local_endpoints_only():
    c = cluster_of("policies")
    worker, cp = c.node("kp-worker"), c.node("kp-control-plane")
    paths = tracer(c, worker).trace(str(worker.gateway), "10.96.0.111", "tcp", 80, from_host=True)
    assert dnats(paths) == {f"{p.ip}:8080" for p in c.pods_on("kp-worker")}
    client = c.pod("default", "client")
    paths = tracer(c, cp).trace(str(client.ip), "10.96.0.111", "tcp", 80)
    assert [(p.verdict, p.dnat) for p in paths] == [("DROP", None)]


def test_session_affinity_still_reaches_every_endpoint():
    c = cluster_of("policies")
    client = c.pod("default", "client")
    node = c.node(client.node)
    paths = tracer(c, node).trace(str(client.ip), "10.96.0.112", "tcp", 80)
    assert dnats(paths) == eps(c, "default/sticky", "http")
    chain = node_rules(c, node)["nat"].chains[kp.svc_chain("default/sticky:http", "tcp")]
    assert sum("--rcheck --seconds 600 --reap" in r for r in chain) == 2
    assert all("--rcheck" in r for r in chain[1:3]) and "--probability" in chain[3]


@pytest.mark.parametrize("svc_key", ["default/web", "default/web-np"])
def test_hairpin_is_masqueraded(svc_key):
    c = cluster_of("basic")
    me = c.pod("default", "web-b")
    node = c.node(me.node)
    svc = next(s for s in c.services if s.key == svc_key)
    port = svc.ports[0]
    paths = tracer(c, node).trace(str(me.ip), str(svc.cluster_ip), "tcp", port.port)
    mine = f"{me.ip}:8080"
    assert dnats(paths) == eps(c, svc_key, port.name or "")
    for p in paths:
        assert p.marked == (p.dnat == mine) and p.masquerade == (p.dnat == mine), p


def test_external_ip_and_load_balancer_ip():
    c = cluster_of("external")
    for node in c.nodes:
        t = tracer(c, node)
        paths = t.trace(str(c.external_ip), "192.0.2.50", "tcp", 80)
        assert dnats(paths) == eps(c, "apps/ext", "http") and all(p.marked and p.masquerade for p in paths)
        paths = t.trace(str(c.external_ip), "192.0.2.60", "tcp", 443)
        assert dnats(paths) == eps(c, "default/lb", "https") and all(p.marked and p.masquerade for p in paths)
        # the NodePort of the LoadBalancer Service works as well
        paths = t.trace(str(c.external_ip), str(node.ip), "tcp", 30443)
        assert dnats(paths) == eps(c, "default/lb", "https")
    backend = c.pod("default", "api-b")
    worker, cp = c.node("kp-worker"), c.node("kp-control-plane")
    paths = tracer(c, worker).trace(str(c.external_ip), "192.0.2.61", "tcp", 80)
    assert dnats(paths) == {f"{backend.ip}:8080"} and not any(p.marked for p in paths)
    paths = tracer(c, cp).trace(str(c.external_ip), "192.0.2.61", "tcp", 80)
    assert [(p.verdict, p.dnat) for p in paths] == [("DROP", None)]


def test_no_endpoints_are_refused():
    c = cluster_of("external")
    node = c.nodes[0]
    t = tracer(c, node)
    api = c.pod("default", "api-a")
    cases = [(str(api.ip), "10.96.0.124", "tcp", 80, False),       # ClusterIP, from a pod (FORWARD)
             (str(node.ip), "10.96.0.126", "tcp", 80, True),       # selectorless Service, from the node (OUTPUT)
             (str(c.external_ip), str(node.ip), "tcp", 30200, False),   # NodePort (INPUT)
             (str(c.external_ip), str(node.ip), "udp", 30201, False),
             (str(c.external_ip), "192.0.2.70", "tcp", 80, False),  # externalIP
             (str(c.external_ip), "192.0.2.80", "tcp", 80, False)]  # LoadBalancer IP
    for src, dst, proto, port, host in cases:
        paths = t.trace(src, dst, proto, port, from_host=host)
        assert [(p.verdict, p.dnat) for p in paths] == [("REJECT", None)], (dst, port)


# ---------------------------------------------------------------- the real parser (root)

FLAVOURS = [f for f in ("legacy", "nft") if shutil.which(f"iptables-{f}-restore") and shutil.which(f"iptables-{f}-save")]
needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None or not FLAVOURS,
                                reason="needs root, unshare and iptables-{legacy,nft}-restore")


def _in_throwaway_netns(script: str, stdin: str) -> subprocess.CompletedProcess:
    """Run `script` in a new, anonymous network namespace that disappears when it exits."""
    return subprocess.run(["unshare", "--net", "sh", "-c", script], input=stdin, capture_output=True, text=True,
                          timeout=120)


def _payloads():
    for name in sorted(SCENARIOS):
        c = cluster_of(name)
        for node in c.nodes:
            yield f"{name}/{node.name}", node_rules(c, node)


@pytest.mark.root
@needs_root
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_payloads_pass_iptables_restore_test(flavour):
    for where, desired in _payloads():
        p = _in_throwaway_netns(f"iptables-{flavour}-restore --test", to_restore(desired))
        assert p.returncode == 0, f"{where}: iptables-{flavour}-restore --test: {p.stderr}"


@pytest.mark.root
@needs_root
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_payloads_round_trip_through_iptables_save(flavour):
    """Load each payload for real, read it back: iptables-save prints exactly the rendered rules, so the
    apply layer finds nothing to change on the next sync."""
    for where, desired in _payloads():
        p = _in_throwaway_netns(f"iptables-{flavour}-restore && iptables-{flavour}-save", to_restore(desired))
        assert p.returncode == 0, f"{where}: {p.stderr}"
        saved = parse_save(p.stdout)
        for table, ts in desired.items():
            for chain, rules in ts.chains.items():
                assert saved[table][chain] == rules, f"{where}: {table}/{chain} reads back differently"
            for builtin in {b for b, _ in ts.jumps}:
                assert saved[table][builtin] == [f"-A {b} {s}" for b, s in ts.jumps if b == builtin], \
                    f"{where}: {table}/{builtin} reads back differently"
        payload_again, changes = plan_restore(desired, saved)
        assert payload_again == "" and changes == [], f"{where}: a second sync would change {changes}"


def test_without_localhost_nodeports():
    c = cluster_of("basic")
    d = kp.kube_proxy_tables(c, c.nodes[0], localhost_nodeports=False)
    assert d["nat"].chains["KUBE-SERVICES"][-1] == (
        f'-A KUBE-SERVICES ! -d 127.0.0.0/8 -m comment --comment "{kp.NODEPORTS_COMMENT}" '
        "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    assert d["filter"].chains[kp.KUBELET_FIREWALL] == []          # the chain and its jumps stay, empty
    paths = Tracer(d, node_local_ips(c, c.nodes[0])).trace("127.0.0.1", "127.0.0.1", "tcp", 30080, from_host=True)
    assert {p.dnat for p in paths} == {None}


def _with_endpoints(total: int):
    """The basic scenario with one Service's port given extra endpoints, `total` endpoints in all."""
    import ipaddress

    from netlab.model.objects import Endpoint
    c = cluster_of("basic")
    have = sum(len(eps) for s in c.services if services.is_proxied(s) for eps in s.endpoints.values())
    svc = next(s for s in c.services if services.is_proxied(s) and any(s.endpoints.values()))
    port = next(p for p, eps in svc.endpoints.items() if eps)
    first = svc.endpoints[port][0]
    base = int(ipaddress.ip_address("10.250.0.0"))
    svc.endpoints[port] = svc.endpoints[port] + [
        Endpoint(ipaddress.ip_address(base + i), first.port, first.node, f"extra-{i}", first.namespace)
        for i in range(total - have)]
    return c


def _comments(c, node) -> dict[str, int]:
    """Rules with and without a comment, by kind of chain."""
    out: dict[str, int] = {}
    for rules in node_rules(c, node)["nat"].chains.values():
        for r in rules:
            chain = r.split()[1]
            kind = chain[:9] if chain.startswith(("KUBE-SEP-", "KUBE-SVC-")) else chain
            key = f"{kind} {'comment' if '--comment' in r else 'bare'}"
            out[key] = out.get(key, 0) + 1
    return out


def test_large_cluster_mode_drops_the_endpoint_rules_comments():
    # kube-proxy: more than 1000 endpoints in all -> no comment on the KUBE-SEP rules and on the KUBE-SVC
    # rules that pick an endpoint; the KUBE-SERVICES rules and the SVC chain's masquerade rule keep theirs
    small, large = _with_endpoints(1000), _with_endpoints(1001)
    node = small.nodes[0]
    got_small, got_large = _comments(small, node), _comments(large, large.nodes[0])
    assert "KUBE-SEP- bare" not in got_small and got_small["KUBE-SEP- comment"] >= 2000
    assert "KUBE-SEP- comment" not in got_large and got_large["KUBE-SEP- bare"] >= 2002
    assert got_large["KUBE-SVC- comment"] == sum(
        1 for s in large.services if services.is_proxied(s) for eps in s.endpoints.values() if eps)
    assert got_large["KUBE-SERVICES comment"] == got_small["KUBE-SERVICES comment"]
    assert "KUBE-SERVICES bare" not in got_large


@pytest.mark.parametrize("hinted", [False, True])
def test_large_cluster_mode_switch_renders_every_service_again(hinted):
    # the memo's context holds the mode: crossing the threshold renders every Service again, and the
    # incremental result is the full render's (also when the caller names the one Service that changed)
    from netlab.render.service_memo import ServiceMemo
    c = _with_endpoints(1000)
    node = c.nodes[0]
    memo = ServiceMemo()
    kp.kube_proxy_tables(c, node, memo=memo)
    big = _with_endpoints(1001)
    svc = next(s for s in big.services if len(next(iter(s.endpoints.values()), [])) > 900)
    mine = next(s for s in c.services if s.key == svc.key)
    mine.endpoints = svc.endpoints
    got = kp.kube_proxy_tables(c, node, memo=memo, changed={svc.key} if hinted else None)
    assert memo.rendered == sum(1 for s in c.services if services.is_proxied(s))
    want = kp.kube_proxy_tables(c, node)
    assert {t: ts.chains for t, ts in got.items()} == {t: ts.chains for t, ts in want.items()}
