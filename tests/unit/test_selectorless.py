"""Services without a selector and the EndpointSlices / Endpoints written for them by hand (issue 12):
parsing and refusals, the model's endpoints (kube-proxy's reading of the conditions), and every proxy
mode's rendering of an endpoint that is not a pod."""
from __future__ import annotations

import ipaddress

import pytest

from netlab.errors import SpecError
from netlab.model.build import build
from netlab.render import kubeproxy_ipvs as ki
from netlab.render import kubeproxy_nftables as kn
from netlab.render.conntrack import udp_frontends
from netlab.render.iptables import node_rules, to_restore
from netlab.spec.parse import load_text

HEAD = """apiVersion: netlab.dev/v1alpha1
kind: Cluster
nodes: [{name: n1, role: control-plane}, {name: n2}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  nodeName: n2
  containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  ports: [{name: sql, port: 5432, targetPort: 5432}, {name: dns, port: 53, protocol: UDP}]
"""

SLICE = """---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports: [{name: sql, port: 15432}, {name: dns, port: 5353, protocol: UDP}]
endpoints:
- addresses: ["192.0.2.10"]
- addresses: ["192.0.2.11"]
  conditions: {ready: false}
- addresses: ["192.0.2.12"]
  conditions: {ready: false, serving: true, terminating: true}
"""

ENDPOINTS = """---
apiVersion: v1
kind: Endpoints
metadata: {name: db}
subsets:
- addresses: [{ip: 192.0.2.20}]
  notReadyAddresses: [{ip: 192.0.2.21}]
  ports: [{name: sql, port: 6432}, {name: dns, port: 53, protocol: UDP}]
"""


def eps(c, port: str) -> list[tuple[str, int, bool]]:
    svc = next(s for s in c.services if s.name == "db")
    return [(str(e.ip), e.port, e.ready) for e in svc.endpoints.get(port, [])]


def test_a_selectorless_service_gets_its_slices_endpoints_as_kube_proxy_reads_them():
    c = build(load_text(HEAD + SLICE))
    # ready: used; not ready: left out; not ready but serving while terminating: kept (the fallback)
    assert eps(c, "sql") == [("192.0.2.10", 15432, True), ("192.0.2.12", 15432, False)]
    assert eps(c, "dns") == [("192.0.2.10", 5353, True), ("192.0.2.12", 5353, False)]


def test_endpoints_are_used_when_there_is_no_slice_and_slices_win_over_them():
    c = build(load_text(HEAD + ENDPOINTS))
    assert eps(c, "sql") == [("192.0.2.20", 6432, True)]
    c = build(load_text(HEAD + ENDPOINTS + SLICE))
    assert [ip for ip, _, _ in eps(c, "sql")] == ["192.0.2.10", "192.0.2.12"]


def test_a_slice_address_of_a_pod_is_that_pods_endpoint():
    c = build(load_text(HEAD))
    web = c.pod("default", "web")
    c = build(load_text(HEAD + SLICE.replace("192.0.2.10", str(web.ip))))
    svc = next(s for s in c.services if s.name == "db")
    e = next(e for e in svc.endpoints["sql"] if e.ip == web.ip)
    assert (e.node, e.pod) == ("n2", "web")


def test_a_slice_of_another_service_or_a_service_with_a_selector_is_not_used():
    text = HEAD + SLICE.replace("service-name: db", "service-name: other")
    assert eps(build(load_text(text)), "sql") == []
    sel = HEAD.replace("  ports: [{name: sql", "  selector: {app: nothing}\n  ports: [{name: sql") + SLICE
    assert eps(build(load_text(sel)), "sql") == []


def test_every_proxy_mode_renders_the_external_address():
    c = build(load_text(HEAD + SLICE))
    for n in c.nodes:
        assert "192.0.2.10:15432" in to_restore(node_rules(c, n))
        assert "192.0.2.10" in kn.nft_script(c, n)
        assert "192.0.2.10:15432" in ki.describe_ipvs(c, n)
    assert ipaddress.IPv4Address("192.0.2.10") in {ipaddress.IPv4Address(ip) for ips in udp_frontends(c).by_vip.values()
                                                    for ip in ips}


@pytest.mark.parametrize("change, words", [
    (("addressType: IPv4", "addressType: IPv6"), ["EndpointSlice default/db-1", "addressType", "use addressType: IPv4"]),
    (("addressType: IPv4", "addressType: FQDN"), ["addressType", "'FQDN' is not supported"]),
    (('"192.0.2.10"', '"2001:db8::1"'), ["endpoints[0].addresses[0]", "is not an IPv4 address"]),
    (('"192.0.2.10"', '"127.0.0.1"'), ["endpoints[0].addresses[0]", "loopback"]),
    (("conditions: {ready: false}", "conditions: {redy: false}"), ["unknown field", "did you mean ready"]),
    (("conditions: {ready: false}", "conditions: {ready: 'no'}"), ["conditions.ready", "true or false"]),
    (("{name: sql, port: 15432}", "{name: sql, port: 0}"), ["ports[0].port"]),
    (("addressType: IPv4\n", ""), ["addressType", "required"]),
])
def test_bad_slices_are_refused_in_one_line_naming_the_document_and_field(change, words):
    with pytest.raises(SpecError) as e:
        load_text(HEAD + SLICE.replace(*change))
    msg = str(e.value)
    assert "\n" not in msg and e.value.exit_code == 2
    for w in words:
        assert w in msg, msg


def test_bad_endpoints_are_refused():
    with pytest.raises(SpecError) as e:
        load_text(HEAD + ENDPOINTS.replace("ip: 192.0.2.21", "ip: fe80::1"))
    assert "Endpoints default/db" in str(e.value) and "notReadyAddresses[0].ip" in str(e.value)
    with pytest.raises(SpecError) as e:
        load_text(HEAD + ENDPOINTS.replace("notReadyAddresses", "notReadyAdresses"))
    assert "did you mean notReadyAddresses" in str(e.value)


def test_a_slice_in_a_namespace_that_does_not_exist_is_refused():
    with pytest.raises(SpecError) as e:
        load_text(HEAD + SLICE.replace("  name: db-1\n", "  name: db-1\n  namespace: nowhere\n"))
    assert str(e.value) == ("EndpointSlice nowhere/db-1: metadata.namespace 'nowhere' does not exist; "
                            "add a Namespace document named nowhere")
