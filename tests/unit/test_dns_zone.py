"""The cluster DNS zone (netlab.dns.zone): CoreDNS kubernetes-plugin records as a pure function."""
from __future__ import annotations

import json
import os

import pytest

from netlab.dns.zone import DnsSettings, dumps, render_zone, write_zone

from . import golden
from .dns_objects import SETTINGS, objects


def rows(zone):
    return {(o, t, r) for o, _ttl, t, r in zone["records"]}


def test_golden_zone():
    golden.check("dns_zone", dumps(render_zone(objects(), SETTINGS)), "zone differs")


def test_deterministic_and_json():
    a, b = render_zone(objects(), SETTINGS), render_zone(dict(reversed(list(objects().items()))), SETTINGS)
    assert a == b and json.loads(json.dumps(a)) == a
    assert a["records"] == sorted(a["records"], key=lambda r: (r[0], r[2], r[3], r[1]))


def test_clusterip_headless_and_endpoint_names():
    r = rows(render_zone(objects(), SETTINGS))
    assert ("web.default.svc.cluster.local.", "A", "10.96.0.20") in r
    # endpoint names exist for ClusterIP Services too (CoreDNS), only for ready endpoints
    assert ("10-244-1-5.web.default.svc.cluster.local.", "A", "10.244.1.5") in r
    assert not any(o.startswith("10-244-2-6.") for o, _, _ in r)
    # headless: every ready address, hostnames from the slice
    assert {x for o, t, x in r if o == "db.default.svc.cluster.local." and t == "A"} == {"10.244.1.7", "10.244.2.8"}
    assert ("db-0.db.default.svc.cluster.local.", "A", "10.244.1.7") in r
    assert not any(o.startswith("db-2.") for o, _, _ in r)
    # headless with no ready endpoint: no record at all (NXDOMAIN)
    assert not any("empty.default" in o for o, _, _ in r)
    # a namespace that does not exist is not served
    assert not any("nowhere" in o for o, _, _ in r)


def test_srv_weights_and_targets():
    r = rows(render_zone(objects(), SETTINGS))
    assert ("_http._tcp.web.default.svc.cluster.local.", "SRV", "0 100 80 web.default.svc.cluster.local.") in r
    assert {x for o, t, x in r if o == "_pg._tcp.db.default.svc.cluster.local." and t == "SRV"} == {
        "0 50 5432 db-0.db.default.svc.cluster.local.", "0 50 5432 db-1.db.default.svc.cluster.local."}
    # the unnamed port has no _port._proto name, but is in the Service name's SRV set
    assert ("web.default.svc.cluster.local.", "SRV", "0 50 8443 web.default.svc.cluster.local.") in r


def test_externalname_ptr_apex():
    r = rows(render_zone(objects(), SETTINGS))
    assert ("ext.default.svc.cluster.local.", "CNAME", "www.example.org.") in r
    assert ("20.0.96.10.in-addr.arpa.", "PTR", "web.default.svc.cluster.local.") in r
    assert ("7.1.244.10.in-addr.arpa.", "PTR", "db-0.db.default.svc.cluster.local.") in r
    assert ("cluster.local.", "NS", "kube-dns.kube-system.svc.cluster.local.") in r
    assert ("ns.dns.cluster.local.", "A", "10.96.0.10") in r
    assert ("dns-version.cluster.local.", "TXT", '"1.1.0"') in r


def test_pod_modes():
    ins = render_zone(objects(), SETTINGS)
    assert not any(".pod." in o for o, _, _, _ in ins["records"]) and ins["pods"] == "insecure"
    ver = rows(render_zone(objects(), DnsSettings(pods="verified")))
    assert ("10-244-1-5.default.pod.cluster.local.", "A", "10.244.1.5") in ver
    assert ("10-244-2-20.shop.pod.cluster.local.", "A", "10.244.2.20") in ver
    assert not any(o.startswith("10-244-2-30.") for o, _, _ in ver)   # terminating
    with pytest.raises(ValueError):
        render_zone(objects(), DnsSettings(pods="bogus"))


def test_domain_and_ttl():
    z = render_zone(objects(), DnsSettings(domain="Corp.Example.", ttl=5))
    assert z["domain"] == "corp.example" and z["ttl"] == 5
    assert ["web.default.svc.corp.example.", 5, "A", "10.96.0.20"] in z["records"]


def test_write_zone_atomic_and_changed(tmp_path):
    p = str(tmp_path / "dns" / "zone.json")
    z = render_zone(objects(), SETTINGS)
    assert write_zone(p, z) is True
    assert write_zone(p, z) is False
    assert json.loads(open(p).read()) == z
    z2 = render_zone(objects(), DnsSettings(ttl=7))
    assert write_zone(p, z2) is True and json.loads(open(p).read())["ttl"] == 7
    assert [f for f in os.listdir(tmp_path / "dns")] == ["zone.json"]
