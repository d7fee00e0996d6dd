"""`netlab probe lb/NAME[:PORT]`'s plan: the Service's LoadBalancer IPs (its status, through
lb_ingress_ips), one check per IP and port, any ready endpoint may answer; a pending Service or one
that is not a LoadBalancer is refused with one line."""
from __future__ import annotations

import pytest

from netlab.errors import NotFound
from netlab.model.build import build
from netlab.probe import plan

from ..builders import lb_granted
from .scenarios import cluster, container, deployment, load, service


def lab(lb_ip="192.0.2.20", **spec):
    sc = load(cluster(), deployment("web", replicas=2, containers=[container("c", [(8080, "http")])]),
              service("web", type="LoadBalancer", ports=[{"name": "http", "port": 80, "targetPort": "http"},
                                                         {"name": "alt", "port": 81, "targetPort": "http"}],
                      selector={"app": "web"}, **({"loadBalancerIP": lb_ip} if lb_ip else {}), **spec),
              service("plain", selector={"app": "web"}, ports=[{"port": 80, "targetPort": 8080}]))
    return build(lb_granted(sc))


def test_lb_target_checks_each_ip_and_port_from_the_external_host():
    c = lab()
    ext = plan.resolve_sources(c, "external")[0]
    checks = plan.target_checks(c, ext, "lb/web")
    assert [ch.target for ch in checks] == ["lb/web:http@192.0.2.20", "lb/web:alt@192.0.2.20"]
    assert all(ch.expect == "reachable" and ch.probes[0].dst == "192.0.2.20" for ch in checks)
    assert [ch.probes[0].port for ch in checks] == [80, 81]
    assert checks[0].backends == {p.name for p in c.pods if p.name.startswith("web-")}
    assert [ch.target for ch in plan.target_checks(c, ext, "lb/web:81")] == ["lb/web:alt@192.0.2.20"]


def test_pending_or_not_a_load_balancer_is_refused():
    c = lab(lb_ip=None)   # no status: <pending>
    ext = plan.resolve_sources(c, "external")[0]
    with pytest.raises(NotFound, match=r"Service default/web has no LoadBalancer IP yet \(EXTERNAL-IP <pending>"):
        plan.target_checks(c, ext, "lb/web")
    with pytest.raises(NotFound, match="Service default/plain is of type ClusterIP, not LoadBalancer"):
        plan.target_checks(c, ext, "lb/plain")
